// The pure half of the driver: OCI linux.resources -> the ordered list of cgroup v2 file
// writes. No filesystem access; every bad value fails here with its JSON path, before
// anything is created. Where the spec is silent, runc's fs2 driver is the reference.
import { CgroupError, describeValue } from './errors.js';
import type { CgroupWrite, LinuxDeviceRate, LinuxResources } from './types.js';

export interface ConvertOptions {
  /** The cgroup has io.bfq.weight (BFQ scheduler): weights go there, unconverted, as runc does. */
  bfq?: boolean;
}

export interface Conversion {
  writes: CgroupWrite[];
  /** Settings that only exist in cgroup v1 and are ignored here, one sentence each. */
  warnings: string[];
}

const R = 'linux.resources';
const MAX_SHARES = 262144;

/** cpu.shares (v1, 2..262144) -> cpu.weight (v2, 1..10000): the formula runc and crun share. */
export function sharesToWeight(shares: number): number {
  // The v1 kernel clamped shares to this range; clamp the same way rather than refuse.
  const s = Math.min(Math.max(shares, 2), MAX_SHARES);
  return 1 + Math.floor(((s - 2) * 9999) / 262142);
}

/** blkio.weight (v1, 10..1000) -> io.weight (v2, 1..10000), as runc converts it. */
export function blkioToIoWeight(weight: number): number {
  return 1 + Math.floor(((weight - 10) * 9999) / 990);
}

/**
 * OCI memory.swap is memory+swap (the v1 memsw meaning); v2 wants swap alone.
 * Returns the memory.swap.max value, or undefined when nothing is to be written.
 * Mirrors runc's ConvertMemorySwapToCgroupV2Value.
 */
export function swapToV2(swap: number | undefined, limit: number | undefined): string | undefined {
  const field = `${R}.memory.swap`;
  if (swap === undefined || swap === 0) {
    // An unlimited memory with no swap setting means "both unlimited" (v1 compatibility).
    return limit === -1 ? 'max' : undefined;
  }
  if (swap === -1) return 'max';
  if (limit === undefined || limit === 0 || limit === -1) {
    throw new CgroupError(`${field}: a swap limit needs linux.resources.memory.limit to be set too`);
  }
  if (swap < limit) {
    throw new CgroupError(`${field}: ${swap} is below memory.limit ${limit}, but it counts memory plus swap`);
  }
  return String(swap - limit);
}

export function integer(value: unknown, field: string, what = 'a valid limit'): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new CgroupError(`${field}: ${describeValue(value)} is not ${what}`);
  }
  return value;
}

/** A limit where -1 means unlimited ("max") and 0 means unset (runc's reading). */
export function limit(value: unknown, field: string): string | undefined {
  if (value === undefined) return undefined;
  const n = integer(value, field);
  if (n === 0) return undefined;
  if (n === -1) return 'max';
  if (n < 0) throw new CgroupError(`${field}: ${n} is not a valid limit`);
  return String(n);
}

export function inRange(value: unknown, field: string, min: number, max: number): number {
  const n = integer(value, field, `an integer between ${min} and ${max}`);
  if (n < min || n > max) throw new CgroupError(`${field}: ${n} is not between ${min} and ${max}`);
  return n;
}

// cpuset lists: "0-3,5", as the kernel parses them.
const CPU_LIST = /^\s*\d+(-\d+)?(\s*,\s*\d+(-\d+)?)*\s*$/;

export function cpuList(value: unknown, field: string): string {
  if (typeof value !== 'string' || !CPU_LIST.test(value)) {
    throw new CgroupError(`${field}: ${describeValue(value)} is not a list like "0-3,5"`);
  }
  return value.replace(/\s+/g, '');
}

export function device(d: { major: unknown; minor: unknown }, field: string): string {
  return `${integer(d.major, `${field}.major`, 'a device major number')}:${integer(d.minor, `${field}.minor`, 'a device minor number')}`;
}

function memory(res: LinuxResources, out: Conversion): void {
  const m = res.memory;
  if (!m) return;
  const f = `${R}.memory`;
  const max = limit(m.limit, `${f}.limit`);
  if (m.swap !== undefined) integer(m.swap, `${f}.swap`);
  if (m.swap !== undefined && m.swap < -1) throw new CgroupError(`${f}.swap: ${m.swap} is not a valid limit`);
  const swap = swapToV2(m.swap, m.limit);
  const low = limit(m.reservation, `${f}.reservation`);
  // runc writes swap first: lowering both at once must not meet a transient memory.max < usage+swap check.
  if (swap !== undefined) out.writes.push({ file: 'memory.swap.max', value: swap, controller: 'memory', field: `${f}.swap` });
  if (max !== undefined) out.writes.push({ file: 'memory.max', value: max, controller: 'memory', field: `${f}.limit` });
  if (low !== undefined) out.writes.push({ file: 'memory.low', value: low, controller: 'memory', field: `${f}.reservation` });
  for (const key of ['kernel', 'kernelTCP', 'swappiness', 'disableOOMKiller'] as const) {
    if (m[key] !== undefined && m[key] !== 0 && m[key] !== false) {
      out.warnings.push(`${f}.${key} exists only in cgroup v1 and is ignored`);
    }
  }
}

function cpu(res: LinuxResources, out: Conversion): void {
  const c = res.cpu;
  if (!c) return;
  const f = `${R}.cpu`;
  const push = (file: string, value: string, field: string, controller = 'cpu') =>
    out.writes.push({ file, value, controller, field: `${f}.${field}` });
  if (c.shares !== undefined && c.shares !== 0) {
    const s = integer(c.shares, `${f}.shares`);
    if (s < 0) throw new CgroupError(`${f}.shares: ${s} is not a valid share count`);
    push('cpu.weight', String(sharesToWeight(s)), 'shares');
  }
  if ((c.quota !== undefined && c.quota !== 0) || (c.period !== undefined && c.period !== 0)) {
    let quota = 'max';
    if (c.quota !== undefined && c.quota !== 0) {
      const q = integer(c.quota, `${f}.quota`);
      if (q < -1) throw new CgroupError(`${f}.quota: ${q} is not a valid quota`);
      // The kernel refuses quotas under 1 ms with a bare EINVAL: say it here.
      if (q > 0 && q < 1000) throw new CgroupError(`${f}.quota: ${q} is below the kernel's minimum of 1000 µs`);
      if (q > 0) quota = String(q);
    }
    // 100 ms is the kernel's default period (cgroup-v2.rst), which runc also fills in.
    const period = c.period === undefined || c.period === 0 ? 100000 : inRange(c.period, `${f}.period`, 1000, 1000000);
    push('cpu.max', `${quota} ${period}`, c.quota ? 'quota' : 'period');
  }
  if (c.burst !== undefined) {
    const b = integer(c.burst, `${f}.burst`);
    if (b < 0) throw new CgroupError(`${f}.burst: ${b} is not a valid burst`);
    push('cpu.max.burst', String(b), 'burst');
  }
  if (c.idle !== undefined) push('cpu.idle', String(inRange(c.idle, `${f}.idle`, 0, 1)), 'idle');
  if ((c.realtimeRuntime ?? 0) !== 0 || (c.realtimePeriod ?? 0) !== 0) {
    throw new CgroupError(`${f}.realtimeRuntime: real-time CPU limits exist only in cgroup v1`);
  }
  if (c.cpus !== undefined && c.cpus !== '') push('cpuset.cpus', cpuList(c.cpus, `${f}.cpus`), 'cpus', 'cpuset');
  if (c.mems !== undefined && c.mems !== '') push('cpuset.mems', cpuList(c.mems, `${f}.mems`), 'mems', 'cpuset');
}

/** pids.max: the same file in v2 and v1. */
export function pids(res: LinuxResources, out: Conversion): void {
  const v = limit(res.pids?.limit, `${R}.pids.limit`);
  if (v !== undefined) out.writes.push({ file: 'pids.max', value: v, controller: 'pids', field: `${R}.pids.limit` });
}

const THROTTLES = [
  ['throttleReadBpsDevice', 'rbps'],
  ['throttleWriteBpsDevice', 'wbps'],
  ['throttleReadIOPSDevice', 'riops'],
  ['throttleWriteIOPSDevice', 'wiops'],
] as const;

function blockIO(res: LinuxResources, out: Conversion, bfq: boolean): void {
  const b = res.blockIO;
  if (!b) return;
  const f = `${R}.blockIO`;
  const weightFile = bfq ? 'io.bfq.weight' : 'io.weight';
  const weight = (w: number) => String(bfq ? w : blkioToIoWeight(w));
  if (b.weight !== undefined && b.weight !== 0) {
    const w = inRange(b.weight, `${f}.weight`, 10, 1000);
    out.writes.push({ file: weightFile, value: weight(w), controller: 'io', field: `${f}.weight` });
  }
  (b.weightDevice ?? []).forEach((d, i) => {
    const field = `${f}.weightDevice[${i}]`;
    const dev = device(d, field);
    if (d.weight === undefined || d.weight === 0) return;
    const w = inRange(d.weight, `${field}.weight`, 10, 1000);
    out.writes.push({ file: weightFile, value: `${dev} ${weight(w)}`, controller: 'io', field });
  });
  if (b.leafWeight !== undefined && b.leafWeight !== 0) out.warnings.push(`${f}.leafWeight exists only in cgroup v1 and is ignored`);
  // io.max takes one line per device with every key; gather the four throttle lists by device.
  const lines = new Map<string, { keys: string[]; field: string }>();
  for (const [list, key] of THROTTLES) {
    (b[list] ?? []).forEach((d: LinuxDeviceRate, i) => {
      const field = `${f}.${list}[${i}]`;
      const dev = device(d, field);
      const rate = integer(d.rate, `${field}.rate`, 'a valid rate');
      if (rate < 0) throw new CgroupError(`${field}.rate: ${rate} is not a valid rate`);
      const line = lines.get(dev) ?? { keys: [], field };
      // A rate of 0 lifts the limit, as it did in v1.
      line.keys.push(`${key}=${rate === 0 ? 'max' : rate}`);
      lines.set(dev, line);
    });
  }
  for (const [dev, { keys, field }] of lines) {
    out.writes.push({ file: 'io.max', value: `${dev} ${keys.join(' ')}`, controller: 'io', field });
  }
}

function hugetlb(res: LinuxResources, out: Conversion): void {
  (res.hugepageLimits ?? []).forEach((h, i) => {
    const field = `${R}.hugepageLimits[${i}]`;
    if (typeof h.pageSize !== 'string' || !/^\d+[KMG]B$/.test(h.pageSize)) {
      throw new CgroupError(`${field}.pageSize: ${describeValue(h.pageSize)} is not a page size like "2MB"`);
    }
    const n = integer(h.limit, `${field}.limit`);
    if (n < 0) throw new CgroupError(`${field}.limit: ${n} is not a valid limit`);
    out.writes.push({ file: `hugetlb.${h.pageSize}.max`, value: String(n), controller: 'hugetlb', field });
  });
}

function rdma(res: LinuxResources, out: Conversion): void {
  for (const [dev, r] of Object.entries(res.rdma ?? {})) {
    const field = `${R}.rdma[${JSON.stringify(dev)}]`;
    if (!/^[\w.-]+$/.test(dev)) throw new CgroupError(`${field}: ${JSON.stringify(dev)} is not an RDMA device name`);
    const parts = [dev];
    if (r.hcaHandles !== undefined) parts.push(`hca_handle=${inRange(r.hcaHandles, `${field}.hcaHandles`, 0, 2 ** 31 - 1)}`);
    if (r.hcaObjects !== undefined) parts.push(`hca_object=${inRange(r.hcaObjects, `${field}.hcaObjects`, 0, 2 ** 31 - 1)}`);
    if (parts.length > 1) out.writes.push({ file: 'rdma.max', value: parts.join(' '), controller: 'rdma', field });
  }
}

// The runtime owns these core files (membership, freezing, killing); a config may not.
const RESERVED = new Set(['cgroup.procs', 'cgroup.threads', 'cgroup.subtree_control', 'cgroup.freeze', 'cgroup.kill', 'cgroup.type']);

function unified(res: LinuxResources, out: Conversion): void {
  for (const [key, value] of Object.entries(res.unified ?? {})) {
    const field = `${R}.unified[${JSON.stringify(key)}]`;
    if (!/^[a-z_]+\.[A-Za-z0-9_.]+$/.test(key)) {
      throw new CgroupError(`${field}: ${JSON.stringify(key)} is not a cgroup v2 file name like "memory.high"`);
    }
    if (RESERVED.has(key)) throw new CgroupError(`${field}: ${key} is managed by the runtime and cannot be set`);
    if (typeof value !== 'string') throw new CgroupError(`${field}: ${describeValue(value)} is not a string`);
    const controller = key.slice(0, key.indexOf('.'));
    // runc applies unified last, so it wins over the typed field that targets the same file.
    const typed = out.writes.findIndex((w) => w.file === key);
    if (typed >= 0) out.writes.splice(typed, 1);
    out.writes.push({ file: key, value, controller, field });
  }
}

/** Converts OCI linux.resources to cgroup v2 writes; throws CgroupError naming the bad field. */
export function toCgroupWrites(res: LinuxResources | undefined, opts: ConvertOptions = {}): Conversion {
  const out: Conversion = { writes: [], warnings: [] };
  if (!res) return out;
  cpu(res, out);
  memory(res, out);
  pids(res, out);
  blockIO(res, out, opts.bfq ?? false);
  hugetlb(res, out);
  rdma(res, out);
  if (res.network && (res.network.classID !== undefined || (res.network.priorities ?? []).length > 0)) {
    out.warnings.push(`${R}.network exists only in cgroup v1 (net_cls, net_prio) and is ignored`);
  }
  unified(res, out);
  return out;
}
