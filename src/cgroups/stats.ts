// Reading a cgroup's usage counters into the JSON runc prints for `events --stats`:
// {"type":"stats","id":…,"data":{"cpu":…,"memory":…,"pids":…,"blkio":…,"hugetlb":…}}.
// Field names and units follow runc's types/events.go and its fs2 stats readers.
import { readdirSync, readFileSync } from 'node:fs';
import { posix } from 'node:path';

// runc reports an unlimited memory.max as MaxUint64; a JS number rounds it to 2^64.
const UNLIMITED = 2 ** 64 - 1;

/** "key value" lines (memory.stat, cpu.stat, memory.events) -> record of numbers. */
export function parseFlatKeyed(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const [key, value] = line.trim().split(/\s+/);
    if (key && value !== undefined) out[key] = value === 'max' ? UNLIMITED : Number(value);
  }
  return out;
}

/** io.stat lines: "MAJ:MIN rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0". */
export function parseIoStat(text: string): { major: number; minor: number; fields: Record<string, number> }[] {
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((line) => {
      const [dev, ...kv] = line.trim().split(/\s+/);
      const [major, minor] = dev.split(':').map(Number);
      const fields: Record<string, number> = {};
      for (const pair of kv) {
        const [k, v] = pair.split('=');
        fields[k] = Number(v);
      }
      return { major, minor, fields };
    });
}

function read(dir: string, file: string): string | null {
  try {
    return readFileSync(posix.join(dir, file), 'utf8');
  } catch {
    return null; // the controller is not enabled for this cgroup
  }
}

function single(dir: string, file: string): number {
  const text = read(dir, file)?.trim();
  if (!text) return 0;
  return text === 'max' ? UNLIMITED : Number(text);
}

export interface BlkioEntry {
  major: number;
  minor: number;
  op: string;
  value: number;
}

export interface CgroupStats {
  cpu: {
    usage: { total: number; kernel: number; user: number };
    throttling: { periods: number; throttledPeriods: number; throttledTime: number };
  };
  memory: {
    cache: number;
    usage: { usage: number; limit: number; max: number; failcnt: number };
    swap: { usage: number; limit: number; failcnt: number };
    raw: Record<string, number>;
  };
  pids: { current: number; limit: number };
  blkio: { ioServiceBytesRecursive: BlkioEntry[]; ioServicedRecursive: BlkioEntry[] };
  hugetlb: Record<string, { usage: number; max: number; failcnt: number }>;
}

export interface StatsEvent {
  type: 'stats';
  id: string;
  data: CgroupStats;
}

export function readStats(dir: string): CgroupStats {
  const cpu = parseFlatKeyed(read(dir, 'cpu.stat') ?? '');
  const mem = parseFlatKeyed(read(dir, 'memory.stat') ?? '');
  const memEvents = parseFlatKeyed(read(dir, 'memory.events') ?? '');
  const swapEvents = parseFlatKeyed(read(dir, 'memory.swap.events') ?? '');
  const bytes: BlkioEntry[] = [];
  const ios: BlkioEntry[] = [];
  for (const { major, minor, fields } of parseIoStat(read(dir, 'io.stat') ?? '')) {
    bytes.push({ major, minor, op: 'Read', value: fields.rbytes ?? 0 }, { major, minor, op: 'Write', value: fields.wbytes ?? 0 });
    ios.push({ major, minor, op: 'Read', value: fields.rios ?? 0 }, { major, minor, op: 'Write', value: fields.wios ?? 0 });
  }
  const hugetlb: CgroupStats['hugetlb'] = {};
  for (const name of readdirSync(dir)) {
    const m = /^hugetlb\.(\w+)\.current$/.exec(name);
    if (!m) continue;
    hugetlb[m[1]] = {
      usage: single(dir, name),
      max: single(dir, `hugetlb.${m[1]}.max`),
      failcnt: parseFlatKeyed(read(dir, `hugetlb.${m[1]}.events`) ?? '').max ?? 0,
    };
  }
  const pidsMax = single(dir, 'pids.max');
  return {
    // cpu.stat counts microseconds; runc reports nanoseconds.
    cpu: {
      usage: { total: (cpu.usage_usec ?? 0) * 1000, kernel: (cpu.system_usec ?? 0) * 1000, user: (cpu.user_usec ?? 0) * 1000 },
      throttling: {
        periods: cpu.nr_periods ?? 0,
        throttledPeriods: cpu.nr_throttled ?? 0,
        throttledTime: (cpu.throttled_usec ?? 0) * 1000,
      },
    },
    memory: {
      cache: mem.file ?? 0,
      usage: {
        usage: single(dir, 'memory.current'),
        limit: single(dir, 'memory.max'),
        max: single(dir, 'memory.peak'),
        failcnt: memEvents.max ?? 0,
      },
      swap: { usage: single(dir, 'memory.swap.current'), limit: single(dir, 'memory.swap.max'), failcnt: swapEvents.max ?? 0 },
      raw: mem,
    },
    // runc shows an unlimited pids.max as 0.
    pids: { current: single(dir, 'pids.current'), limit: pidsMax === UNLIMITED ? 0 : pidsMax },
    blkio: { ioServiceBytesRecursive: bytes, ioServicedRecursive: ios },
    hugetlb,
  };
}

/** A v1 counter; the kernel's "unlimited" (a page-rounded LONG_MAX) shows as runc shows it, a huge number. */
function v1Number(text: string | null): number {
  const t = text?.trim();
  return t ? Number(t) : 0;
}

/** blkio.throttle.* recursive files: "8:0 Read 4096" lines (and a "Total" line, skipped). */
export function parseBlkioV1(text: string): BlkioEntry[] {
  const out: BlkioEntry[] = [];
  for (const line of text.split('\n')) {
    const [dev, op, value] = line.trim().split(/\s+/);
    if (!dev || !op || value === undefined || !dev.includes(':')) continue;
    const [major, minor] = dev.split(':').map(Number);
    out.push({ major, minor, op, value: Number(value) });
  }
  return out;
}

/** The same stats from cgroup v1 files (runc's fs stats readers); read(controller, file) gives a file's text or null. */
export function readStatsV1(
  read: (controller: string, file: string) => string | null,
  v2Hugetlb: CgroupStats['hugetlb'] = {},
): CgroupStats {
  const cpuStat = parseFlatKeyed(read('cpu', 'cpu.stat') ?? '');
  const mem = parseFlatKeyed(read('memory', 'memory.stat') ?? '');
  const pidsMax = read('pids', 'pids.max')?.trim();
  return {
    // cpuacct counts nanoseconds already.
    cpu: {
      usage: {
        total: v1Number(read('cpuacct', 'cpuacct.usage')),
        kernel: v1Number(read('cpuacct', 'cpuacct.usage_sys')),
        user: v1Number(read('cpuacct', 'cpuacct.usage_user')),
      },
      throttling: {
        periods: cpuStat.nr_periods ?? 0,
        throttledPeriods: cpuStat.nr_throttled ?? 0,
        throttledTime: cpuStat.throttled_time ?? 0,
      },
    },
    memory: {
      cache: mem.cache ?? mem.total_cache ?? 0,
      usage: {
        usage: v1Number(read('memory', 'memory.usage_in_bytes')),
        limit: v1Number(read('memory', 'memory.limit_in_bytes')),
        max: v1Number(read('memory', 'memory.max_usage_in_bytes')),
        failcnt: v1Number(read('memory', 'memory.failcnt')),
      },
      swap: {
        usage: v1Number(read('memory', 'memory.memsw.usage_in_bytes')),
        limit: v1Number(read('memory', 'memory.memsw.limit_in_bytes')),
        failcnt: v1Number(read('memory', 'memory.memsw.failcnt')),
      },
      raw: mem,
    },
    pids: { current: v1Number(read('pids', 'pids.current')), limit: !pidsMax || pidsMax === 'max' ? 0 : Number(pidsMax) },
    blkio: {
      ioServiceBytesRecursive: parseBlkioV1(read('blkio', 'blkio.throttle.io_service_bytes_recursive') ?? ''),
      ioServicedRecursive: parseBlkioV1(read('blkio', 'blkio.throttle.io_serviced_recursive') ?? ''),
    },
    hugetlb: v2Hugetlb,
  };
}
