// The cgroup2 mount of a container with its own cgroup namespace, when an earlier rbind of the
// host's /sys (rootless) already put the host's cgroup2 mount there: the kernel refuses the same
// superblock on the same mount root (EBUSY, seen in the test VM), so a tmpfs covers it first.
import { describe, expect, it } from 'vitest';
import { buildCreatePlan } from '../../src/plan/build.js';
import { defaultSpec } from '../../src/oci/default.js';
import { validateConfig } from '../../src/oci/validate.js';
import type { HostFacts } from '../../src/host/facts.js';
import type { Config } from '../../src/oci/config.js';

const host: HostFacts = { uid: 1000, gid: 1000, user: 'alice', lastCap: 40, landlockAbi: 7, cgroup2Unified: true };
const CGROUP_MOUNT = {
  destination: '/sys/fs/cgroup',
  type: 'cgroup',
  source: 'cgroup',
  options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'],
};

function mountsOn(rootless: boolean, edit: (c: Config) => void = () => {}): string[][] {
  const c = defaultSpec(rootless);
  c.root = { path: '/nonexistent-rootfs', readonly: true };
  c.process!.terminal = false;
  if (rootless) {
    c.linux!.uidMappings = [{ containerID: 0, hostID: host.uid, size: 1 }];
    c.linux!.gidMappings = [{ containerID: 0, hostID: host.gid, size: 1 }];
  }
  if (!c.mounts!.some((m) => m.destination === '/sys/fs/cgroup')) c.mounts!.push(CGROUP_MOUNT);
  edit(c);
  const p = buildCreatePlan({
    cfg: validateConfig(JSON.parse(JSON.stringify(c))),
    bundle: '/b',
    rootless,
    host: { ...host, uid: rootless ? 1000 : 0 },
    fifoPath: '/s/exec.fifo',
  });
  return p.steps.filter((s) => s.op === 'MOUNT' && s.args[1] === '/sys/fs/cgroup').map((s) => [String(s.args[2]), s.what]);
}

describe('cgroup2 mount under a host /sys rbind', () => {
  it('rootless (/sys rbound from the host): a tmpfs covers the host cgroup tree, then cgroup2', () => {
    expect(mountsOn(true)).toEqual([
      ['tmpfs', "cover the host's cgroup tree on /sys/fs/cgroup"],
      ['cgroup2', 'mount cgroup2 on /sys/fs/cgroup'],
    ]);
  });

  it('root (a fresh sysfs): cgroup2 alone', () => {
    expect(mountsOn(false)).toEqual([['cgroup2', 'mount cgroup2 on /sys/fs/cgroup']]);
  });

  it('no cgroup namespace: the host tree is bound, nothing covered', () => {
    const m = mountsOn(true, (c) => void (c.linux!.namespaces = c.linux!.namespaces!.filter((n) => n.type !== 'cgroup')));
    expect(m.map(([t]) => t)).toEqual(['', '']); // the bind and its read-only remount
  });
});
