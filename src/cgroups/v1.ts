// cgroup v1, as root on a hybrid or legacy host: the controllers a v1 hierarchy holds
// (memory, pids, cpu, cpuset, blkio, devices, freezer, …) get the container's limits there,
// and the process joins the container's cgroup in each hierarchy, as runc's fs driver does.
// Where the v2 tree is whole (unified mode) none of this is used. Rootless, v1 cannot be
// delegated: detect() says so once (strict: an error), as before.
//
// Pure half: which hierarchies, and linux.resources -> v1 file writes. Filesystem half: the
// V1Cgroups class, one container's cgroup in every hierarchy; every path stays inside the
// hierarchy's mount (no "..", checked again before each use) and files are opened O_NOFOLLOW.
import { existsSync, mkdirSync, readdirSync, rmdirSync } from 'node:fs';
import { posix } from 'node:path';
import { CgroupError } from './errors.js';
import { cgroupDir, putFile, readFile } from './files.js';
import type { MountEntry } from './detect.js';
import { cpuList, device, inRange, integer, limit, pids, type Conversion } from './resources.js';
import type { CgroupWrite, LinuxResources } from './types.js';
import { sleepMs } from '../sys/proc.js';

/** Controllers hako places a container in when a v1 hierarchy holds them (runc's list, less the named ones). */
export const V1_JOIN = [
  'cpu',
  'cpuacct',
  'cpuset',
  'memory',
  'pids',
  'blkio',
  'devices',
  'freezer',
  'hugetlb',
  'net_cls',
  'net_prio',
  'perf_event',
  'rdma',
  'misc',
];

/** One mounted v1 hierarchy: its mount point, the controllers it holds, and our own cgroup in it. */
export interface V1Hierarchy {
  mount: string;
  controllers: string[];
  /** This process's cgroup in the hierarchy (/proc/self/cgroup), for relative cgroupsPaths. */
  own: string;
}

/** What state.json keeps per hierarchy. */
export interface V1State {
  mount: string;
  controllers: string[];
  /** The container's cgroup in this hierarchy, e.g. /hako/c1. */
  path: string;
  /** Cgroups create() made here, outermost first: destroy() removes them when empty. */
  created: string[];
}

/** v1 lines of /proc/self/cgroup ("4:memory:/x", "1:cpu,cpuacct:/") -> controller -> path. */
export function parseV1ProcCgroup(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\d+:([^:]+):(.*)$/.exec(line);
    if (!m) continue;
    for (const c of m[1].split(',')) out.set(c, m[2] || '/');
  }
  return out;
}

/** The v1 hierarchies holding a controller hako joins (one entry per mount, co-mounted controllers together). */
export function v1Hierarchies(mounts: MountEntry[], procSelfCgroup: string): V1Hierarchy[] {
  const own = parseV1ProcCgroup(procSelfCgroup);
  const seen = new Set<string>();
  const out: V1Hierarchy[] = [];
  for (const m of mounts) {
    if (m.fsType !== 'cgroup') continue;
    const controllers = m.superOptions
      .split(',')
      .filter((o) => V1_JOIN.includes(o))
      .sort();
    if (controllers.length === 0 || seen.has(controllers.join(','))) continue; // the same hierarchy mounted twice
    seen.add(controllers.join(','));
    out.push({ mount: m.mountPoint, controllers, own: own.get(controllers[0]) ?? '/' });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// linux.resources -> v1 writes. Each write's controller is the v1 subsystem whose hierarchy
// holds the file. Order and values follow runc's libcontainer/cgroups/fs.

const R = 'linux.resources';

/** The default device rules runc appends (specconv.AllowedDevices): mknod of anything, and the usual nodes. */
const ALLOWED_DEVICES = [
  'c *:* m',
  'b *:* m',
  'c 1:3 rwm',
  'c 1:8 rwm',
  'c 1:7 rwm',
  'c 5:0 rwm',
  'c 1:5 rwm',
  'c 1:9 rwm', // null random full tty zero urandom
  'c 5:1 rwm',
  'c 136:* rwm',
  'c 5:2 rwm', // console, pts, ptmx
];

/** A linux.devices entry or a linux.resources.devices rule, as far as v1 reads it. */
export interface DeviceRuleInput {
  allow?: boolean;
  type?: string;
  major?: number;
  minor?: number;
  access?: string;
}
export interface DeviceNodeInput {
  type: string;
  major?: number;
  minor?: number;
}

function v1Memory(res: LinuxResources, out: Conversion): void {
  const m = res.memory;
  if (!m) return;
  const f = `${R}.memory`;
  const push = (file: string, value: string, field: string) =>
    out.writes.push({ file, value, controller: 'memory', field: `${f}.${field}` });
  const max = m.limit === undefined ? undefined : integer(m.limit, `${f}.limit`);
  if (max !== undefined && max < -1) throw new CgroupError(`${f}.limit: ${max} is not a valid limit`);
  let swap = m.swap === undefined ? undefined : integer(m.swap, `${f}.swap`);
  if (swap !== undefined && swap < -1) throw new CgroupError(`${f}.swap: ${swap} is not a valid limit`);
  // runc: an unlimited memory with no swap setting means memory+swap unlimited too.
  if (max === -1 && (swap === undefined || swap === 0)) swap = -1;
  if (swap !== undefined && swap > 0 && max !== undefined && max > 0 && swap < max) {
    throw new CgroupError(`${f}.swap: ${swap} is below memory.limit ${max}, but it counts memory plus swap`);
  }
  // memory.memsw.limit_in_bytes must stay >= memory.limit_in_bytes at every step: apply() orders the pair.
  if (max !== undefined && max !== 0) push('memory.limit_in_bytes', String(max), 'limit');
  if (swap !== undefined && swap !== 0) push('memory.memsw.limit_in_bytes', String(swap), 'swap');
  const soft = limit(m.reservation, `${f}.reservation`);
  if (soft !== undefined) push('memory.soft_limit_in_bytes', soft === 'max' ? '-1' : soft, 'reservation');
  if (m.kernel !== undefined && m.kernel !== 0)
    out.warnings.push(`${f}.kernel: kernel memory limits are deprecated and ignored (as runc does)`);
  const tcp = limit(m.kernelTCP, `${f}.kernelTCP`);
  if (tcp !== undefined) push('memory.kmem.tcp.limit_in_bytes', tcp === 'max' ? '-1' : tcp, 'kernelTCP');
  if (m.swappiness !== undefined) {
    // runc reads a swappiness above 100 (the spec's uint64 -1) as "leave it".
    const s = integer(m.swappiness, `${f}.swappiness`);
    if (s >= 0 && s <= 100) push('memory.swappiness', String(s), 'swappiness');
    else if (s !== -1) throw new CgroupError(`${f}.swappiness: ${s} is not between 0 and 100`);
  }
  if (m.disableOOMKiller === true) push('memory.oom_control', '1', 'disableOOMKiller');
}

function v1Cpu(res: LinuxResources, out: Conversion): void {
  const c = res.cpu;
  if (!c) return;
  const f = `${R}.cpu`;
  const push = (file: string, value: string, field: string, controller = 'cpu') =>
    out.writes.push({ file, value, controller, field: `${f}.${field}` });
  if (c.shares !== undefined && c.shares !== 0) {
    const s = integer(c.shares, `${f}.shares`);
    if (s < 0) throw new CgroupError(`${f}.shares: ${s} is not a valid share count`);
    push('cpu.shares', String(s), 'shares');
  }
  // runc writes the period before the quota.
  if (c.period !== undefined && c.period !== 0)
    push('cpu.cfs_period_us', String(inRange(c.period, `${f}.period`, 1000, 1000000)), 'period');
  if (c.quota !== undefined && c.quota !== 0) {
    const q = integer(c.quota, `${f}.quota`);
    if (q < -1) throw new CgroupError(`${f}.quota: ${q} is not a valid quota`);
    if (q > 0 && q < 1000) throw new CgroupError(`${f}.quota: ${q} is below the kernel's minimum of 1000 µs`);
    push('cpu.cfs_quota_us', String(q), 'quota');
  }
  if (c.burst !== undefined) {
    const b = integer(c.burst, `${f}.burst`);
    if (b < 0) throw new CgroupError(`${f}.burst: ${b} is not a valid burst`);
    push('cpu.cfs_burst_us', String(b), 'burst');
  }
  if (c.realtimePeriod !== undefined && c.realtimePeriod !== 0)
    push('cpu.rt_period_us', String(integer(c.realtimePeriod, `${f}.realtimePeriod`)), 'realtimePeriod');
  if (c.realtimeRuntime !== undefined && c.realtimeRuntime !== 0)
    push('cpu.rt_runtime_us', String(integer(c.realtimeRuntime, `${f}.realtimeRuntime`)), 'realtimeRuntime');
  if (c.idle !== undefined) push('cpu.idle', String(inRange(c.idle, `${f}.idle`, 0, 1)), 'idle');
  if (c.cpus !== undefined && c.cpus !== '') push('cpuset.cpus', cpuList(c.cpus, `${f}.cpus`), 'cpus', 'cpuset');
  if (c.mems !== undefined && c.mems !== '') push('cpuset.mems', cpuList(c.mems, `${f}.mems`), 'mems', 'cpuset');
}

const V1_THROTTLES = [
  ['throttleReadBpsDevice', 'blkio.throttle.read_bps_device'],
  ['throttleWriteBpsDevice', 'blkio.throttle.write_bps_device'],
  ['throttleReadIOPSDevice', 'blkio.throttle.read_iops_device'],
  ['throttleWriteIOPSDevice', 'blkio.throttle.write_iops_device'],
] as const;

function v1BlockIO(res: LinuxResources, out: Conversion): void {
  const b = res.blockIO;
  if (!b) return;
  const f = `${R}.blockIO`;
  const push = (file: string, value: string, field: string) => out.writes.push({ file, value, controller: 'blkio', field });
  if (b.weight !== undefined && b.weight !== 0) push('blkio.weight', String(inRange(b.weight, `${f}.weight`, 10, 1000)), `${f}.weight`);
  if (b.leafWeight !== undefined && b.leafWeight !== 0)
    push('blkio.leaf_weight', String(inRange(b.leafWeight, `${f}.leafWeight`, 10, 1000)), `${f}.leafWeight`);
  (b.weightDevice ?? []).forEach((d, i) => {
    const field = `${f}.weightDevice[${i}]`;
    const dev = device(d, field);
    if (d.weight !== undefined && d.weight !== 0)
      push('blkio.weight_device', `${dev} ${inRange(d.weight, `${field}.weight`, 10, 1000)}`, field);
    if (d.leafWeight !== undefined && d.leafWeight !== 0)
      push('blkio.leaf_weight_device', `${dev} ${inRange(d.leafWeight, `${field}.leafWeight`, 10, 1000)}`, field);
  });
  for (const [list, file] of V1_THROTTLES) {
    (b[list] ?? []).forEach((d, i) => {
      const field = `${f}.${list}[${i}]`;
      const dev = device(d, field);
      const rate = integer(d.rate, `${field}.rate`, 'a valid rate');
      if (rate < 0) throw new CgroupError(`${field}.rate: ${rate} is not a valid rate`);
      push(file, `${dev} ${rate}`, field);
    });
  }
}

function v1Hugetlb(res: LinuxResources, out: Conversion): void {
  (res.hugepageLimits ?? []).forEach((h, i) => {
    const field = `${R}.hugepageLimits[${i}]`;
    if (typeof h.pageSize !== 'string' || !/^\d+[KMG]B$/.test(h.pageSize)) {
      throw new CgroupError(`${field}.pageSize: ${JSON.stringify(h.pageSize)} is not a page size like "2MB"`);
    }
    const n = integer(h.limit, `${field}.limit`);
    if (n < 0) throw new CgroupError(`${field}.limit: ${n} is not a valid limit`);
    out.writes.push({ file: `hugetlb.${h.pageSize}.limit_in_bytes`, value: String(n), controller: 'hugetlb', field });
  });
}

function v1Network(res: LinuxResources, out: Conversion): void {
  const n = res.network;
  if (!n) return;
  const f = `${R}.network`;
  if (n.classID !== undefined)
    out.writes.push({
      file: 'net_cls.classid',
      value: String(inRange(n.classID, `${f}.classID`, 0, 2 ** 32 - 1)),
      controller: 'net_cls',
      field: `${f}.classID`,
    });
  (n.priorities ?? []).forEach((p, i) => {
    const field = `${f}.priorities[${i}]`;
    if (typeof p.name !== 'string' || !/^[\w.@:-]+$/.test(p.name))
      throw new CgroupError(`${field}.name: ${JSON.stringify(p.name)} is not an interface name`);
    out.writes.push({
      file: 'net_prio.ifpriomap',
      value: `${p.name} ${inRange(p.priority, `${field}.priority`, 0, 2 ** 32 - 1)}`,
      controller: 'net_prio',
      field,
    });
  });
}

function deviceRule(r: DeviceRuleInput, field: string): { file: string; value: string } {
  const type = r.type ?? 'a';
  if (!['a', 'b', 'c'].includes(type)) throw new CgroupError(`${field}.type: ${JSON.stringify(type)} is not one of "a", "b", "c"`);
  const access = r.access ?? 'rwm';
  if (typeof access !== 'string' || !/^[rwm]{1,3}$/.test(access))
    throw new CgroupError(`${field}.access: ${JSON.stringify(access)} is not made of r, w and m`);
  const num = (v: number | undefined, what: string) =>
    v === undefined || v === -1 ? '*' : String(integer(v, `${field}.${what}`, 'a device number'));
  return {
    file: r.allow ? 'devices.allow' : 'devices.deny',
    value:
      type === 'a' && r.major === undefined && r.minor === undefined
        ? 'a'
        : `${type} ${num(r.major, 'major')}:${num(r.minor, 'minor')} ${access}`,
  };
}

/** runc's device rules: deny all, the config's rules in order, its linux.devices, then the default nodes. */
function v1Devices(res: LinuxResources, nodes: DeviceNodeInput[], out: Conversion): void {
  const field = `${R}.devices`;
  const push = (r: { file: string; value: string }, f: string) => out.writes.push({ ...r, controller: 'devices', field: f });
  push({ file: 'devices.deny', value: 'a' }, field);
  ((res.devices ?? []) as DeviceRuleInput[]).forEach((r, i) => push(deviceRule(r, `${field}[${i}]`), `${field}[${i}]`));
  nodes.forEach((d, i) => {
    if (d.type === 'p' || d.major === undefined || d.minor === undefined) return; // a fifo needs no device rule
    const type = d.type === 'b' ? 'b' : 'c'; // u is an unbuffered char device
    push({ file: 'devices.allow', value: `${type} ${d.major}:${d.minor} rwm` }, `linux.devices[${i}]`);
  });
  for (const rule of ALLOWED_DEVICES) push({ file: 'devices.allow', value: rule }, field);
}

export interface V1ConvertInput {
  resources: LinuxResources | undefined;
  /** linux.devices: nodes the container gets are allowed (runc adds them to the rules). Absent on update. */
  devices?: DeviceNodeInput[];
  /** Write the device rules (create); update leaves them as they are unless resources.devices is given. */
  deviceRules?: boolean;
}

/** linux.resources -> cgroup v1 writes for every controller (the caller keeps those a v1 hierarchy holds). */
export function toV1Writes(input: V1ConvertInput): Conversion {
  const out: Conversion = { writes: [], warnings: [] };
  const res = input.resources ?? {};
  v1Cpu(res, out);
  v1Memory(res, out);
  pids(res, out);
  v1BlockIO(res, out);
  v1Hugetlb(res, out);
  v1Network(res, out);
  if (input.deviceRules || (res.devices ?? []).length > 0) v1Devices(res, input.devices ?? [], out);
  return out;
}

/** The v1 controller that holds a v2 controller's settings. */
export function v1Name(v2Controller: string): string {
  return v2Controller === 'io' ? 'blkio' : v2Controller;
}

// ---------------------------------------------------------------------------------------------
// The filesystem half.

function errno(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? String(e);
}

/** The container's cgroup in every v1 hierarchy it uses. */
export class V1Cgroups {
  readonly hierarchies: V1State[];

  constructor(hierarchies: V1State[]) {
    this.hierarchies = hierarchies.map((h) => ({ ...h, controllers: [...h.controllers], created: [...h.created] }));
  }

  toJSON(): V1State[] {
    return this.hierarchies.map((h) => ({ ...h, controllers: [...h.controllers], created: [...h.created] }));
  }

  /** Every controller held by one of our hierarchies. */
  get controllers(): string[] {
    return this.hierarchies.flatMap((h) => h.controllers);
  }

  dirOf(h: V1State): string {
    return cgroupDir(h.mount, h.path);
  }

  /** The container's directory in the hierarchy that holds `controller`, or null. */
  dirFor(controller: string): string | null {
    const h = this.hierarchies.find((x) => x.controllers.includes(controller));
    return h ? this.dirOf(h) : null;
  }

  /** The first hierarchy's directory (a legacy host has no v2 one to name the cgroup by). */
  get firstDir(): string {
    return this.dirOf(this.hierarchies[0]);
  }

  exists(): boolean {
    return this.hierarchies.length > 0 && this.hierarchies.every((h) => existsSync(posix.join(this.dirOf(h), 'cgroup.procs')));
  }

  /** Makes the cgroup (and missing parents) in every hierarchy. cpuset children start with no
   *  cpus or mems, where no process may join: copy the parent's down, as runc does. */
  create(base = '/'): void {
    for (const h of this.hierarchies) {
      const rel = posix.relative(base, h.path).split('/').filter(Boolean);
      const chain = rel.map((_, i) => posix.join(base, ...rel.slice(0, i + 1)));
      for (const p of chain) {
        const dir = cgroupDir(h.mount, p);
        try {
          mkdirSync(dir, 0o755);
          h.created.push(p);
        } catch (e) {
          if (errno(e) !== 'EEXIST') throw new CgroupError(`cannot create cgroup ${dir}: ${errno(e)}`);
          if (p === h.path) {
            if (this.procsOf(dir).length > 0) throw new CgroupError(`cgroup ${dir} already exists and holds processes`);
            h.created.push(p);
          }
        }
        if (h.controllers.includes('cpuset')) {
          for (const file of ['cpuset.cpus', 'cpuset.mems']) {
            const own = posix.join(dir, file);
            if (readFile(own).trim() === '') putFile(own, readFile(posix.join(posix.dirname(dir), file)).trim());
          }
        }
      }
    }
  }

  /** Writes v1 writes into the hierarchy holding each one's controller. */
  apply(writes: CgroupWrite[]): void {
    const ordered = this.orderMemory(writes);
    for (const w of ordered) {
      const dir = this.dirFor(w.controller);
      if (!dir) throw new CgroupError(`${w.field}: no cgroup v1 hierarchy holds the ${w.controller} controller`);
      let file = w.file;
      // Without CFQ, weights live in BFQ's files (runc does the same).
      if (
        file.startsWith('blkio.weight') &&
        !existsSync(posix.join(dir, file)) &&
        existsSync(posix.join(dir, file.replace('blkio.', 'blkio.bfq.')))
      ) {
        file = file.replace('blkio.', 'blkio.bfq.');
      }
      try {
        putFile(posix.join(dir, file), w.value);
      } catch (e) {
        const why =
          errno(e) === 'ENOENT'
            ? `${file} does not exist in this kernel`
            : `the kernel refused ${JSON.stringify(w.value)} for ${file} (${errno(e)})`;
        throw new CgroupError(`${w.field}: ${why}`);
      }
    }
  }

  /** memory.limit_in_bytes may never exceed memory.memsw.limit_in_bytes: raising both, memsw goes first. */
  private orderMemory(writes: CgroupWrite[]): CgroupWrite[] {
    const li = writes.findIndex((w) => w.file === 'memory.limit_in_bytes');
    const si = writes.findIndex((w) => w.file === 'memory.memsw.limit_in_bytes');
    if (li < 0 || si < 0 || si < li) return writes;
    const dir = this.dirFor('memory');
    let current = Infinity;
    try {
      if (dir) current = Number(readFile(posix.join(dir, 'memory.memsw.limit_in_bytes')).trim());
    } catch {
      // no swap accounting: the memsw write fails on its own, naming the field
    }
    const limit = Number(writes[li].value);
    if (limit !== -1 && limit <= current) return writes;
    const out = [...writes];
    const [swap] = out.splice(si, 1);
    out.splice(li, 0, swap);
    return out;
  }

  /** Moves a process into the cgroup in every hierarchy. */
  addProcess(pid: number): void {
    for (const h of this.hierarchies) {
      const dir = this.dirOf(h);
      try {
        putFile(posix.join(dir, 'cgroup.procs'), String(pid));
      } catch (e) {
        throw new CgroupError(`cannot move process ${pid} into ${dir}: ${errno(e) === 'ESRCH' ? 'no such process' : errno(e)}`);
      }
    }
  }

  private procsOf(dir: string): number[] {
    try {
      return readFile(posix.join(dir, 'cgroup.procs')).split('\n').filter(Boolean).map(Number);
    } catch {
      return [];
    }
  }

  /** Every process in the cgroup and below it, from one hierarchy (freezer's, else the first). */
  pids(): number[] {
    const h = this.hierarchies.find((x) => x.controllers.includes('freezer')) ?? this.hierarchies[0];
    const out: number[] = [];
    const walk = (dir: string) => {
      out.push(...this.procsOf(dir));
      let entries;
      try {
        entries = readdirSync(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) if (e.isDirectory()) walk(posix.join(dir, e.name));
    };
    if (h) walk(this.dirOf(h));
    return [...new Set(out)];
  }

  get hasFreezer(): boolean {
    return this.dirFor('freezer') !== null;
  }

  freezerState(): string {
    return readFile(posix.join(this.dirFor('freezer')!, 'freezer.state')).trim();
  }

  /** Writes freezer.state and waits until the kernel reports it (FREEZING passes through). */
  async setFrozen(frozen: boolean, timeoutMs: number, sleep: (ms: number) => Promise<unknown>): Promise<void> {
    const dir = this.dirFor('freezer')!;
    const want = frozen ? 'FROZEN' : 'THAWED';
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      // runc writes FROZEN again while FREEZING: a task that forked meanwhile is frozen too.
      putFile(posix.join(dir, 'freezer.state'), want);
      if (this.freezerState() === want) return;
      if (Date.now() > deadline) throw new CgroupError(`${dir} did not become ${frozen ? 'frozen' : 'thawed'} within ${timeoutMs} ms`);
      await sleep(2);
    }
  }

  /** Removes the cgroup (and any the container nested in it) in every hierarchy, then the parents
   *  create() made once they are empty. A cgroup whose last task is still exiting is busy for a
   *  moment: retry briefly, synchronously (delete may exit right after). */
  remove(): void {
    for (const h of this.hierarchies) {
      const dir = this.dirOf(h);
      if (existsSync(dir)) this.removeTree(dir);
      for (const p of [...h.created].reverse()) {
        if (p === h.path) continue;
        const d = cgroupDir(h.mount, p);
        try {
          if (existsSync(d)) rmdirSync(d);
        } catch (e) {
          // Another container's cgroup still lives below a shared parent: it stays.
          if (!['EBUSY', 'ENOTEMPTY', 'ENOENT'].includes(errno(e))) throw new CgroupError(`cannot remove cgroup ${d}: ${errno(e)}`);
        }
      }
      h.created = [];
    }
  }

  private removeTree(dir: string): void {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) if (e.isDirectory()) this.removeTree(posix.join(dir, e.name));
    for (let i = 0; ; i++) {
      try {
        rmdirSync(dir);
        return;
      } catch (e) {
        if (errno(e) === 'ENOENT') return;
        if (errno(e) !== 'EBUSY' || i >= 100) throw new CgroupError(`cannot remove cgroup ${dir}: ${errno(e)}`);
        sleepMs(10);
      }
    }
  }

  /** Reads a file of the hierarchy holding `controller`, or null. */
  read(controller: string, file: string): string | null {
    const dir = this.dirFor(controller);
    if (!dir) return null;
    try {
      return readFile(posix.join(dir, file));
    } catch {
      return null;
    }
  }
}
