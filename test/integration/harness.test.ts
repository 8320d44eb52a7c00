// The in-process harness, as a test suite would use it: start, exec, run,
// kill, cleanup — as root in this process, rootless in a child node process
// running as the test user.
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { describe, it, expect, afterAll } from 'vitest';
import { Hako } from '../../src/index.js';
import { makeBundle, scratch } from '../helpers/hako.js';
import { IS_ROOT, REPO, TEST_USER } from '../helpers/env.js';

/** This process's children that died and were never reaped. */
function zombieChildren(): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      // pid (comm) state ppid …: comm may hold spaces and parentheses, the last ')' ends it.
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (state === 'Z' && Number(ppid) === process.pid) out.push(Number(d));
    } catch {
      // gone
    }
  }
  return out;
}

describe('in-process harness', () => {
  const root = scratch('root', 'harness-');
  const hako = new Hako({ root });
  afterAll(() => hako.cleanup());

  it.skipIf(!IS_ROOT)('starts, execs into, signals and tears down real containers', async () => {
    const { bundle } = makeBundle(
      'root',
      (c) => (c.process!.args = ['sh', '-c', 'echo up; trap "echo bye; exit 5" TERM; while :; do sleep 0.1; done']),
    );
    const c = hako.start({ bundle });
    expect(c.state().status).toBe('running');
    const r = await c.exec(['sh', '-c', 'echo $$; hostname; echo oops >&2; exit 3']);
    // A pid of the container's namespace (small, not the init's 1) and its hostname.
    expect(r.code).toBe(3);
    expect(r.stderr).toBe('oops\n');
    expect(r.stdout).toMatch(/^([2-9]|\d\d)\nhako\n$/);
    expect(hako.list().map((s) => s.id)).toEqual([c.id]);
    c.kill('TERM');
    expect(await c.wait()).toBe(5);
    expect(c.output().stdout).toBe('up\nbye\n');
    await c.delete();
    expect(hako.list()).toEqual([]);
  });

  it.skipIf(!IS_ROOT)('runs a container to its end with its output', async () => {
    const { bundle } = makeBundle('root', (c) => (c.process!.args = ['sh', '-c', 'echo hello; exit 2']));
    expect(await hako.run({ bundle })).toEqual({ code: 2, stdout: 'hello\n', stderr: '' });
    expect(fs.readdirSync(root).filter((f) => !f.startsWith('.'))).toEqual([]);
  });

  it.skipIf(!IS_ROOT)('leaves no state dir and no zombie when the container fails after create', () => {
    // create succeeds; the init then runs the startContainer hook, which fails: start's exec check throws.
    const { bundle } = makeBundle('root', (c) => (c.hooks = { startContainer: [{ path: '/bin/false' }] }));
    const zombiesBefore = zombieChildren();
    expect(() => hako.start({ bundle, id: 'harness-failed-start' })).toThrow(/startContainer hook \/bin\/false failed/);
    expect(fs.readdirSync(root).filter((f) => !f.startsWith('.'))).toEqual([]);
    expect(zombieChildren().filter((z) => !zombiesBefore.includes(z))).toEqual([]);
    expect(hako.list()).toEqual([]);
  });

  it.skipIf(!IS_ROOT)('works rootless', () => {
    const { bundle, root: userRoot } = makeBundle('rootless', (c) => (c.process!.args = ['sh', '-c', 'cat /proc/self/uid_map']));
    const script = path.join(scratch('rootless', 'hs-'), 'run.mjs');
    fs.writeFileSync(
      script,
      `import { Hako } from '${REPO}/dist/index.js';
const h = new Hako({ root: '${userRoot}' });
const r = await h.run({ bundle: '${bundle}' });
console.log(JSON.stringify(r));`,
    );
    fs.chmodSync(script, 0o644);
    const p = spawnSync('setpriv', ['--reuid', TEST_USER, '--regid', TEST_USER, '--init-groups', process.execPath, script], {
      encoding: 'utf8',
    });
    expect(p.stderr).toBe('');
    const r = JSON.parse(p.stdout);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split(/\s+/)).toEqual([
      '0',
      String(Number(spawnSync('id', ['-u', TEST_USER], { encoding: 'utf8' }).stdout)),
      '1',
    ]);
  });
});
