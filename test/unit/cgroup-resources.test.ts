import { describe, expect, it } from 'vitest';
import { blkioToIoWeight, sharesToWeight, swapToV2, toCgroupWrites } from '../../src/cgroups/resources.js';
import type { LinuxResources } from '../../src/cgroups/types.js';

const files = (res: LinuxResources, bfq = false) => Object.fromEntries(toCgroupWrites(res, { bfq }).writes.map((w) => [w.file, w.value]));

describe('cgroup conversions', () => {
  it('converts cpu shares to weight with the runc/crun formula', () => {
    expect(sharesToWeight(2)).toBe(1);
    expect(sharesToWeight(1024)).toBe(39);
    expect(sharesToWeight(262144)).toBe(10000);
    expect(sharesToWeight(1)).toBe(1); // clamped like the v1 kernel
    expect(sharesToWeight(10_000_000)).toBe(10000);
  });

  it('converts blkio weight to io.weight', () => {
    expect(blkioToIoWeight(10)).toBe(1);
    expect(blkioToIoWeight(500)).toBe(4950);
    expect(blkioToIoWeight(1000)).toBe(10000);
  });

  it('reads OCI swap as memory+swap', () => {
    expect(swapToV2(300, 100)).toBe('200');
    expect(swapToV2(100, 100)).toBe('0');
    expect(swapToV2(-1, 100)).toBe('max');
    expect(swapToV2(undefined, -1)).toBe('max');
    expect(swapToV2(undefined, 100)).toBeUndefined();
    expect(() => swapToV2(50, 100)).toThrow('linux.resources.memory.swap: 50 is below memory.limit 100');
    expect(() => swapToV2(50, undefined)).toThrow(/needs linux.resources.memory.limit/);
  });

  it('maps memory, pids and cpu to v2 files', () => {
    expect(
      files({
        memory: { limit: 64 << 20, reservation: 32 << 20, swap: 128 << 20 },
        pids: { limit: 32 },
        cpu: { shares: 1024, quota: 50000, period: 100000, cpus: '0-1', mems: '0' },
      }),
    ).toEqual({
      'memory.max': String(64 << 20),
      'memory.low': String(32 << 20),
      'memory.swap.max': String(64 << 20),
      'pids.max': '32',
      'cpu.weight': '39',
      'cpu.max': '50000 100000',
      'cpuset.cpus': '0-1',
      'cpuset.mems': '0',
    });
  });

  it('reads -1 as max and 0 as unset', () => {
    expect(files({ memory: { limit: -1 }, pids: { limit: -1 }, cpu: { quota: -1 } })).toEqual({
      'memory.max': 'max',
      'memory.swap.max': 'max',
      'pids.max': 'max',
      'cpu.max': 'max 100000',
    });
    expect(files({ memory: { limit: 0 }, pids: { limit: 0 }, cpu: { shares: 0, quota: 0 } })).toEqual({});
  });

  it('defaults the cpu period and keeps quota max with only a period', () => {
    expect(files({ cpu: { quota: 20000 } })).toEqual({ 'cpu.max': '20000 100000' });
    expect(files({ cpu: { period: 50000 } })).toEqual({ 'cpu.max': 'max 50000' });
  });

  it('merges io throttles per device into one io.max line', () => {
    const { writes } = toCgroupWrites({
      blockIO: {
        weight: 500,
        throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1048576 }],
        throttleWriteBpsDevice: [
          { major: 8, minor: 0, rate: 2097152 },
          { major: 8, minor: 16, rate: 0 },
        ],
        throttleReadIOPSDevice: [{ major: 8, minor: 0, rate: 100 }],
        throttleWriteIOPSDevice: [{ major: 8, minor: 0, rate: 200 }],
      },
    });
    expect(writes.map((w) => `${w.file}: ${w.value}`)).toEqual([
      'io.weight: 4950',
      'io.max: 8:0 rbps=1048576 wbps=2097152 riops=100 wiops=200',
      'io.max: 8:16 wbps=max',
    ]);
  });

  it('puts io weights in io.bfq.weight unconverted when BFQ is there', () => {
    expect(files({ blockIO: { weight: 500 } }, true)).toEqual({ 'io.bfq.weight': '500' });
    const w = toCgroupWrites({ blockIO: { weightDevice: [{ major: 8, minor: 0, weight: 300 }] } }, { bfq: true }).writes;
    expect(w).toMatchObject([{ file: 'io.bfq.weight', value: '8:0 300' }]);
  });

  it('maps hugetlb, rdma and unified keys; unified wins over a typed field', () => {
    expect(
      files({
        hugepageLimits: [{ pageSize: '2MB', limit: 4194304 }],
        rdma: { mlx4_0: { hcaHandles: 2, hcaObjects: 2000 } },
        memory: { limit: 1000000 },
        unified: { 'memory.max': '2000000', 'memory.high': '900000', 'cgroup.max.descendants': '5' },
      }),
    ).toEqual({
      'hugetlb.2MB.max': '4194304',
      'rdma.max': 'mlx4_0 hca_handle=2 hca_object=2000',
      'memory.max': '2000000',
      'memory.high': '900000',
      'cgroup.max.descendants': '5',
    });
  });

  it('warns about v1-only settings instead of failing', () => {
    const { writes, warnings } = toCgroupWrites({
      memory: { kernel: 100, swappiness: 10 },
      network: { classID: 1 },
      blockIO: { leafWeight: 20 },
    });
    expect(writes).toEqual([]);
    expect(warnings).toEqual([
      'linux.resources.memory.kernel exists only in cgroup v1 and is ignored',
      'linux.resources.memory.swappiness exists only in cgroup v1 and is ignored',
      'linux.resources.blockIO.leafWeight exists only in cgroup v1 and is ignored',
      'linux.resources.network exists only in cgroup v1 (net_cls, net_prio) and is ignored',
    ]);
  });

  it.each([
    [{ memory: { limit: -5 } }, 'linux.resources.memory.limit: -5 is not a valid limit'],
    [{ memory: { limit: 1.5 } }, 'linux.resources.memory.limit: 1.5 is not a valid limit'],
    [{ memory: { limit: '1g' } }, 'linux.resources.memory.limit: "1g" is not a valid limit'],
    [{ memory: { reservation: -2 } }, 'linux.resources.memory.reservation: -2 is not a valid limit'],
    [{ pids: { limit: -3 } }, 'linux.resources.pids.limit: -3 is not a valid limit'],
    [{ cpu: { shares: -1 } }, 'linux.resources.cpu.shares: -1 is not a valid share count'],
    [{ cpu: { quota: 500 } }, "linux.resources.cpu.quota: 500 is below the kernel's minimum of 1000 µs"],
    [{ cpu: { quota: 5000, period: 10 } }, 'linux.resources.cpu.period: 10 is not between 1000 and 1000000'],
    [{ cpu: { cpus: '0-a' } }, 'linux.resources.cpu.cpus: "0-a" is not a list like "0-3,5"'],
    [{ cpu: { realtimeRuntime: 100 } }, 'linux.resources.cpu.realtimeRuntime: real-time CPU limits exist only in cgroup v1'],
    [{ blockIO: { weight: 5 } }, 'linux.resources.blockIO.weight: 5 is not between 10 and 1000'],
    [
      { blockIO: { throttleReadBpsDevice: [{ major: 8, minor: 0, rate: -1 }] } },
      'linux.resources.blockIO.throttleReadBpsDevice[0].rate: -1 is not a valid rate',
    ],
    [{ hugepageLimits: [{ pageSize: '2M', limit: 1 }] }, 'linux.resources.hugepageLimits[0].pageSize: "2M" is not a page size like "2MB"'],
    [
      { unified: { 'memory/../x': '1' } },
      'linux.resources.unified["memory/../x"]: "memory/../x" is not a cgroup v2 file name like "memory.high"',
    ],
    [
      { unified: { 'cgroup.procs': '1' } },
      'linux.resources.unified["cgroup.procs"]: cgroup.procs is managed by the runtime and cannot be set',
    ],
    [{ unified: { 'memory.high': 5 } }, 'linux.resources.unified["memory.high"]: 5 is not a string'],
  ])('refuses %j with one sentence naming the field', (res, message) => {
    expect(() => toCgroupWrites(res as LinuxResources)).toThrow(message);
  });
});
