// cgroup v1 (root on a hybrid or legacy host): the pure half — which hierarchies, and
// linux.resources -> v1 writes, split from what stays for v2. Real containers: test/integration/cgroup-v1.test.ts.
import { describe, expect, it } from 'vitest';
import { parseMountinfo } from '../../src/cgroups/detect.js';
import { CgroupManager } from '../../src/cgroups/manager.js';
import { parseV1ProcCgroup, toV1Writes, v1Hierarchies } from '../../src/cgroups/v1.js';
import type { HostCgroups } from '../../src/cgroups/detect.js';

const files = (ws: { file: string; value: string }[]) => ws.map((w) => `${w.file}=${w.value}`);

describe('cgroup v1', () => {
  it('finds each hierarchy once, co-mounted controllers together, with our own cgroup in it', () => {
    const mounts = parseMountinfo(
      [
        '31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct',
        '32 30 0:29 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory',
        '33 30 0:29 / /mnt/again rw - cgroup cgroup rw,memory',
        '34 30 0:30 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd',
        '35 30 0:31 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw',
      ].join('\n'),
    );
    const own = '4:memory:/process_api/x\n3:cpu,cpuacct:/\n1:name=systemd:/init.scope\n0::/\n';
    expect(parseV1ProcCgroup(own).get('memory')).toBe('/process_api/x');
    expect(v1Hierarchies(mounts, own)).toEqual([
      { mount: '/sys/fs/cgroup/cpu,cpuacct', controllers: ['cpu', 'cpuacct'], own: '/' },
      { mount: '/sys/fs/cgroup/memory', controllers: ['memory'], own: '/process_api/x' },
    ]);
  });

  it("writes runc's v1 files: memory, memsw, cpu period before quota, pids, blkio, devices", () => {
    const { writes, warnings } = toV1Writes({
      resources: {
        memory: { limit: 64 << 20, swap: 128 << 20, reservation: 32 << 20, swappiness: 10, disableOOMKiller: true, kernel: 1 << 20 },
        cpu: { shares: 512, quota: 20000, period: 50000, cpus: '0-1', mems: '0' },
        pids: { limit: -1 },
        blockIO: { weight: 500, throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1000 }] },
        devices: [
          { allow: false, access: 'rwm' },
          { allow: true, type: 'c', major: 10, minor: 229, access: 'rw' },
        ],
      },
      devices: [{ type: 'c', major: 1, minor: 3 }, { type: 'p' }],
      deviceRules: true,
    });
    expect(files(writes)).toEqual([
      'cpu.shares=512',
      'cpu.cfs_period_us=50000',
      'cpu.cfs_quota_us=20000',
      'cpuset.cpus=0-1',
      'cpuset.mems=0',
      `memory.limit_in_bytes=${64 << 20}`,
      `memory.memsw.limit_in_bytes=${128 << 20}`,
      `memory.soft_limit_in_bytes=${32 << 20}`,
      'memory.swappiness=10',
      'memory.oom_control=1',
      'pids.max=max',
      'blkio.weight=500',
      'blkio.throttle.read_bps_device=8:0 1000',
      'devices.deny=a',
      'devices.deny=a',
      'devices.allow=c 10:229 rw',
      'devices.allow=c 1:3 rwm',
      'devices.allow=c *:* m',
      'devices.allow=b *:* m',
      'devices.allow=c 1:3 rwm',
      'devices.allow=c 1:8 rwm',
      'devices.allow=c 1:7 rwm',
      'devices.allow=c 5:0 rwm',
      'devices.allow=c 1:5 rwm',
      'devices.allow=c 1:9 rwm',
      'devices.allow=c 5:1 rwm',
      'devices.allow=c 136:* rwm',
      'devices.allow=c 5:2 rwm',
    ]);
    expect(warnings).toEqual(['linux.resources.memory.kernel: kernel memory limits are deprecated and ignored (as runc does)']);
    // An unlimited memory with no swap setting: memory+swap unlimited too (runc).
    expect(files(toV1Writes({ resources: { memory: { limit: -1 } } }).writes)).toEqual([
      'memory.limit_in_bytes=-1',
      'memory.memsw.limit_in_bytes=-1',
    ]);
  });

  it('names the field of a bad value', () => {
    expect(() => toV1Writes({ resources: { memory: { limit: 64, swap: 32 } } })).toThrow(
      'linux.resources.memory.swap: 32 is below memory.limit 64, but it counts memory plus swap',
    );
    expect(() => toV1Writes({ resources: { cpu: { quota: 10 } } })).toThrow(
      "linux.resources.cpu.quota: 10 is below the kernel's minimum of 1000 µs",
    );
    expect(() => toV1Writes({ resources: { devices: [{ allow: true, type: 'x' }] } })).toThrow(
      'linux.resources.devices[0].type: "x" is not one of "a", "b", "c"',
    );
  });

  it('plans v1 writes for the controllers v1 holds and leaves the rest (hugetlb here) to v2', () => {
    const host: HostCgroups = {
      mode: 'hybrid',
      mount: '/sys/fs/cgroup/unified',
      controllers: ['hugetlb'],
      v1Controllers: ['cpu', 'memory', 'pids'],
      uid: 0,
      rootless: false,
      ownCgroup: '/',
      base: '/',
      baseControllers: ['hugetlb'],
      problem: null,
      v1: [
        { mount: '/sys/fs/cgroup/memory', controllers: ['memory'], own: '/p/x' },
        { mount: '/sys/fs/cgroup/cpu', controllers: ['cpu'], own: '/' },
        { mount: '/sys/fs/cgroup/pids', controllers: ['pids'], own: '/' },
      ],
    };
    const plan = CgroupManager.plan({
      id: 'c1',
      host,
      cgroupsPath: 'sub/c1',
      resources: {
        memory: { limit: 1 << 20, swappiness: 5 },
        cpu: { quota: 5000 },
        pids: { limit: 5 },
        hugepageLimits: [{ pageSize: '2MB', limit: 0 }],
      },
    });
    expect(files(plan.writes)).toEqual(['hugetlb.2MB.max=0']);
    expect(files(plan.v1Writes)).toEqual([
      'cpu.cfs_quota_us=5000',
      `memory.limit_in_bytes=${1 << 20}`,
      'memory.swappiness=5',
      'pids.max=5',
    ]);
    expect(plan.warnings).toEqual([]);
    // A relative path sits next to our own cgroup in each hierarchy; the v2 one as before.
    expect(plan.v1!.map((h) => h.path)).toEqual(['/p/sub/c1', '/sub/c1', '/sub/c1']);
    expect(plan.path).toBe('/sub/c1');
    const m = CgroupManager.fromPlan(plan);
    expect(m.usesV1).toBe(true);
    expect(new CgroupManager(m.toJSON()).toJSON().v1).toEqual(plan.v1);
    expect(() => CgroupManager.plan({ id: 'c1', host, cgroupsPath: '/../x' })).toThrow('may not contain ".."');
  });
});
