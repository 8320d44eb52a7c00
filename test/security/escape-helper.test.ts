// Issue 9, class 1 (runc CVE-2019-5736, CVE-2016-9962): the process hako puts into a container
// before the container's own execve — the init of a created container, the helper of `hako exec` —
// must be non-dumpable, hold no host fd, and its executable must not be reachable. Performed for
// real from inside containers by a static attacker (helpers/attacker.c): it stops every new
// process of its pid namespace the moment it exists and tries /proc/PID/{exe,fd,cwd,root} and
// pidfd_getfd, walking `..` from anything it gets to a host marker file. A bait (helpers/bait.c),
// a dumpable process in the same namespaces holding a host directory, is the control: the same
// probes reach the marker through it.
import fs from 'node:fs';
import os from 'node:os';
import { describe, it, expect } from 'vitest';
import { hako, WHO, type Who } from '../helpers/hako.js';
import { IS_ROOT, BUSYBOX_ROOTFS } from '../helpers/env.js';
import {
  attackKit,
  jsonLines,
  isProbe,
  isRuntimeProcess,
  breaches,
  readText,
  nsPidOf,
  pidsInNamespaceOf,
  hakoAsync,
  type Probe,
  type Bait,
  type Watch,
} from './helpers/attack.js';

const kit = attackKit();
const EXECS = 8;

/** The control: the same probes, from the same container, reach the host through the bait. */
function expectControlReached(who: Who, w: Watch, b: Bait): void {
  const p = kit.probeFrom(who, w.root, w.id, [b.nsPid])[0];
  expect(p, 'the attacker could not probe the bait (control)').toBeDefined();
  expect(p!.reached).toBe(true);
  expect(p!.marker).toBe(kit.marker.secret);
  expect(p!.fdList.fds.some((f) => f.dir && f.open)).toBe(true);
  expect(p!.getfd.got.some((g) => g.type === 'dir')).toBe(true);
}

/** dev:ino of what a path (a /proc magic link too) leads to, or the error code. */
function fileId(p: string): string {
  try {
    const st = fs.statSync(p);
    return `${st.dev}:${st.ino}`;
  } catch (e) {
    return `(${(e as NodeJS.ErrnoException).code})`;
  }
}

/** As root, from the host: what one of hako's processes is and holds. */
function hostView(hostPid: number) {
  let exe = '';
  try {
    exe = fs.readlinkSync(`/proc/${hostPid}/exe`);
  } catch (e) {
    exe = `(${(e as NodeJS.ErrnoException).code})`;
  }
  const fds: Array<{ fd: string; link: string; dir: string | null }> = [];
  for (const fd of fs.readdirSync(`/proc/${hostPid}/fd`)) {
    let link = '';
    let dir: string | null = null;
    try {
      link = fs.readlinkSync(`/proc/${hostPid}/fd/${fd}`);
      if (fs.statSync(`/proc/${hostPid}/fd/${fd}`).isDirectory()) dir = fileId(`/proc/${hostPid}/fd/${fd}`);
    } catch {
      // closed meanwhile
    }
    fds.push({ fd, link, dir });
  }
  return { hostPid, exe, root: fileId(`/proc/${hostPid}/root`), cwd: fileId(`/proc/${hostPid}/cwd`), fds };
}

/** Its exe is not the node that runs hako; no fd is a directory but the container's root, or a
 *  cgroup's; its root and cwd are not the host's. */
function expectHostViewClean(v: ReturnType<typeof hostView>, containerRoot: string): void {
  const node = fs.realpathSync(process.execPath);
  const hostDirs = new Set([fileId('/'), fileId(os.tmpdir()), fileId(process.cwd())]);
  expect(v.exe, JSON.stringify(v)).not.toBe(node);
  expect(v.exe, JSON.stringify(v)).not.toMatch(/\/node$/);
  expect(
    v.fds.filter((f) => (f.dir !== null && f.dir !== containerRoot) || f.link.startsWith('/sys/fs/cgroup')),
    JSON.stringify(v),
  ).toEqual([]);
  expect(hostDirs.has(v.root) || hostDirs.has(v.cwd), `root or cwd on the host: ${JSON.stringify(v)}`).toBe(false);
}

describe.each(WHO)('the exec helper and a created init are out of reach (%s)', (who) => {
  const run = it.skipIf(who === 'root' && !IS_ROOT);

  // With the container's default capabilities, and (rootless: in its own user namespace) with every
  // capability, CAP_SYS_PTRACE included: then only a helper that is non-dumpable for the runtime's
  // user namespace, and holds nothing of the host, stays out of reach.
  const variants: Array<[string, boolean]> =
    who === 'rootless'
      ? [
          ['default capabilities', false],
          ['every capability', true],
        ]
      : [['default capabilities', false]];
  for (const [label, allCaps] of variants)
    run(`hako exec ×${EXECS} under an attacker that stops and probes every new process (${label})`, async () => {
      const w = await kit.startWatcher(who, `xh-${who}${allCaps ? '-caps' : ''}`, { allCaps });
      const b = await kit.bait(who, w.initPid);
      expectControlReached(who, w, b);
      let ok = 0;
      const failures: string[] = [];
      for (let i = 0; i < EXECS; i++) {
        const r = await hakoAsync(who, w.root, ['exec', w.id, '/bin/true']);
        if (r.status === 0) ok++;
        else failures.push(`${r.status}: ${r.stderr.trim()}`);
      }
      const probes = await kit.finish(w);
      const helpers = probes.filter((p) => p.pid !== b.nsPid && isRuntimeProcess(p));
      // The attack did happen: helpers were caught (stopped) before their execve.
      expect(
        helpers.filter((p) => p.stopped).length,
        `no helper was caught; probes: ${JSON.stringify(probes.map((p) => [p.pid, p.comm, p.exe.link]))}`,
      ).toBeGreaterThan(0);
      expect({
        breaches: breaches(probes, [b.nsPid]),
        markerRead: probes.filter((p) => p.pid !== b.nsPid && p.marker !== null).map((p) => p.pid),
      }).toEqual({ breaches: [], markerRead: [] });
      expect(ok, failures.join('\n')).toBeGreaterThan(0);
    });

  run('a created (not started) container seen from a neighbour in its pid namespace', async () => {
    const w = await kit.startWatcher(who, `nb-a-${who}`);
    const b = await kit.bait(who, w.initPid);
    const { bundle, root } = kit.makeBundle(who, (c) => {
      c.root = { path: BUSYBOX_ROOTFS, readonly: true };
      c.process!.args = ['true'];
      c.linux!.namespaces = c.linux!.namespaces!.map((n) =>
        n.type === 'pid'
          ? { type: 'pid', path: `/proc/${w.initPid}/ns/pid` }
          : n.type === 'user'
            ? { type: 'user', path: `/proc/${w.initPid}/ns/user` }
            : n,
      );
      if (who === 'rootless') {
        delete c.linux!.uidMappings;
        delete c.linux!.gidMappings;
      }
    });
    const created = hako(who, root, ['create', '-b', bundle, `nb-b-${who}`], { detached: true });
    expect(created.stderr).toBe('');
    expect(created.status).toBe(0);
    kit.cleanups.push(() => hako(who, root, ['delete', '--force', `nb-b-${who}`]));
    const bPid = JSON.parse(hako(who, root, ['state', `nb-b-${who}`]).stdout).pid as number;
    const bInA = nsPidOf(bPid);
    expect(pidsInNamespaceOf(w.initPid).get(bInA)).toBe(bPid);
    // As root the host sees what B's waiting init is and holds.
    if (who === 'root') expectHostViewClean(hostView(bPid), fileId(`/proc/${bPid}/root`));
    // From A, deliberately, at leisure: B's init waits for `start`.
    const scan = hako(who, w.root, ['exec', w.id, '/bin/attacker', 'scan', kit.marker.file]);
    expect(scan.stderr).toBe('');
    const scanned = jsonLines(scan.stdout).filter(isProbe) as Probe[];
    expectControlReached(who, w, b);
    const probes = [...(await kit.finish(w)), ...scanned];
    const onB = scanned.find((p) => p.pid === bInA);
    expect(onB, `the scan did not find B's init (${bInA}): ${scan.stdout}`).toBeDefined();
    expect(onB!.stopped).toBe(true);
    expect(isRuntimeProcess(onB!)).toBe(true);
    expect({
      breaches: breaches(probes, [b.nsPid]),
      markerRead: probes.filter((p) => p.pid !== b.nsPid && p.marker !== null).map((p) => p.pid),
    }).toEqual({ breaches: [], markerRead: [] });
  });

  // As root the host can look at the helper the attacker holds stopped: its exe must not be the
  // node that runs hako, and none of its fds a directory (the cgroup's, the host's).
  it.runIf(who === 'root' && IS_ROOT)('as root, the held exec helper: exe not node, no directory or cgroup fd', async () => {
    const w = await kit.startWatcher(who, 'xh-host', { extra: ['--hold=3000'] });
    const containerRoot = fileId(`/proc/${w.initPid}/root`);
    const seen: Array<ReturnType<typeof hostView> & { nsPid: number }> = [];
    let execsDone = false;
    const released = new Set<number>();
    const inspect = async () => {
      while (!execsDone) {
        for (const l of jsonLines<{ holding?: number }>(readText(w.out))) {
          const nsPid = l.holding;
          if (nsPid === undefined || released.has(nsPid)) continue;
          released.add(nsPid);
          const hostPid = pidsInNamespaceOf(w.initPid).get(nsPid);
          if (hostPid !== undefined) seen.push({ nsPid, ...hostView(hostPid) });
          fs.writeFileSync(`${w.out}.release.${nsPid}`, '');
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    const watcher = inspect();
    for (let i = 0; i < 4; i++) await hakoAsync(who, w.root, ['exec', w.id, '/bin/true']);
    execsDone = true;
    await watcher;
    await kit.finish(w);
    expect(seen.length, 'no helper was held for the host to look at').toBeGreaterThan(0);
    for (const v of seen) expectHostViewClean(v, containerRoot);
  });
});
