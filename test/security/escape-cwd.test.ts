// Issue 9, class 2 (runc CVE-2024-21626): a cwd of /proc/self/fd/N, in config.json's process.cwd
// or `hako exec --cwd`, must never leave the container's process in a host directory (an fd the
// runtime still held when it chdir'ed). Either hako refuses it with one sentence, or the process
// runs with a cwd inside the container's root. The probe (attacker cwd) prints getcwd() and tries
// to read a host marker file through `../../..` from its cwd. Control: the same probe with a host
// directory as its cwd does read the marker.
import { spawnSync } from 'node:child_process';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { hako, scratchForThisFile, WHO } from '../helpers/hako.js';
import { IS_ROOT } from '../helpers/env.js';
import { ATTACK_ROOTFS, buildAttackTools, makeMarker, jsonLines, oneSentence, hakoAsync, type Marker } from './helpers/attack.js';

const { makeBundle } = scratchForThisFile();
let tools: { attacker: string; bait: string };
let marker: Marker;
const cleanups: Array<() => void> = [];

beforeAll(() => {
  tools = buildAttackTools();
  marker = makeMarker();
});
afterAll(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

interface CwdReport {
  cwd: string | null;
  cwdErrno: number;
  cwdIsRoot: boolean;
  marker: string | null;
}

// The runtime's leaked fds were above 12 on the old build (node's own take 3..16): look further.
const FDS = Array.from({ length: 22 }, (_, i) => i + 3);
const BATCH = 4;

/** fn over items, BATCH at a time. */
async function batched<T, R>(items: T[], fn: (x: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += BATCH) out.push(...(await Promise.all(items.slice(i, i + BATCH).map(fn))));
  return out;
}

/** What one attempt gave: refused in one sentence, or ran with a cwd in the container. */
function judge(what: string, r: { status: number | null; stdout: string; stderr: string }): string | null {
  if (r.status !== 0) return oneSentence(r.stderr) ? null : `${what}: failed without one sentence: ${JSON.stringify(r.stderr)}`;
  const rep = jsonLines<CwdReport>(r.stdout)[0];
  if (!rep) return `${what}: ran, but the probe said nothing: ${JSON.stringify(r.stdout + r.stderr)}`;
  if (rep.marker !== null) return `${what}: HOST MARKER READ from cwd ${rep.cwd}`;
  // getcwd() names a directory outside the process's root "(unreachable)/…" (or fails).
  if (rep.cwd === null || !rep.cwd.startsWith('/')) return `${what}: cwd outside the container root: ${rep.cwd} (errno ${rep.cwdErrno})`;
  return null;
}

describe('the probe sees a host cwd when there is one (control)', () => {
  it('attacker cwd, run on the host from the marker directory, reads the marker', () => {
    const r = spawnSync(tools.attacker, ['cwd', marker.file], { cwd: marker.dir, encoding: 'utf8' });
    const rep = jsonLines<CwdReport>(r.stdout)[0]!;
    expect(rep.marker).toBe(marker.secret);
    expect(rep.cwd).toBe(marker.dir);
    expect(judge('host control', { status: 0, stdout: r.stdout, stderr: '' })).toMatch(/HOST MARKER READ/);
    expect(
      judge('unreachable control', {
        status: 0,
        stdout: '{"cwd":"(unreachable)/x","cwdErrno":0,"cwdIsRoot":false,"marker":null}\n',
        stderr: '',
      }),
    ).toMatch(/outside the container root/);
  });
});

describe.each(WHO)('cwd through /proc/self/fd (%s)', (who) => {
  const run = it.skipIf(who === 'root' && !IS_ROOT);

  run(`process.cwd = /proc/self/fd/N in config.json (N = 3..${FDS[FDS.length - 1]})`, async () => {
    const results = await batched(FDS, async (n) => {
      const { bundle, root } = makeBundle(who, (c) => {
        c.root = { path: ATTACK_ROOTFS, readonly: true };
        c.process!.cwd = `/proc/self/fd/${n}`;
        c.process!.args = ['/bin/attacker', 'cwd', marker.file];
      });
      const r = await hakoAsync(who, root, ['run', '-b', bundle, `cwd${n}`]);
      if (r.status === 0) hako(who, root, ['delete', '--force', `cwd${n}`]);
      return judge(`process.cwd /proc/self/fd/${n}`, r);
    });
    expect(results.filter((p) => p !== null)).toEqual([]);
  });

  run(`hako exec --cwd /proc/self/fd/N (N = 3..${FDS[FDS.length - 1]})`, async () => {
    const id = `cwdx-${who}`;
    const { bundle, root } = makeBundle(who, (c) => {
      c.root = { path: ATTACK_ROOTFS, readonly: true };
      c.process!.args = ['sleep', '60'];
    });
    expect(hako(who, root, ['run', '-d', '-b', bundle, id], { detached: true }).status).toBe(0);
    cleanups.push(() => hako(who, root, ['delete', '--force', id]));
    const problems = (
      await batched(FDS, async (n) =>
        judge(
          `exec --cwd /proc/self/fd/${n}`,
          await hakoAsync(who, root, ['exec', '--cwd', `/proc/self/fd/${n}`, id, '/bin/attacker', 'cwd', marker.file]),
        ),
      )
    ).filter((p) => p !== null);
    // An ordinary exec still works, and the probe runs in the container's /.
    const ok = hako(who, root, ['exec', '--cwd', '/', id, '/bin/attacker', 'cwd', marker.file]);
    expect(ok.stderr).toBe('');
    expect(jsonLines<CwdReport>(ok.stdout)[0]).toMatchObject({ cwd: '/', cwdIsRoot: true, marker: null });
    expect(problems).toEqual([]);
  });
});
