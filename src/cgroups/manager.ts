// The filesystem side of the driver: one container's cgroup, from plan to rmdir.
// plan() is the pure decision (path, writes, warnings); the rest touches cgroupfs.
import { existsSync, mkdirSync, readdirSync, rmdirSync, statSync } from 'node:fs';
import { posix } from 'node:path';
import { constants as osConstants } from 'node:os';
import { signalPid } from '../sys/proc.js';
import { setTimeout as sleep } from 'node:timers/promises';
import type { HostCgroups } from './detect.js';
import { readControllers } from './detect.js';
import { CgroupError } from './errors.js';
import { cgroupDir, putFile, readFile } from './files.js';
import { readMemoryEvents, watchOom, type MemoryEvents } from './events.js';
import { resolveCgroupPath } from './path.js';
import { toCgroupWrites, type Conversion } from './resources.js';
import { readStats, type StatsEvent } from './stats.js';
import type { CgroupWrite, LinuxResources } from './types.js';
import { toV1Writes, V1Cgroups, type DeviceNodeInput, type V1State } from './v1.js';
import { readMemoryEventsV1, watchOomV1 } from './events.js';
import { readStatsV1 } from './stats.js';

export interface PlanInput {
  id: string;
  cgroupsPath?: string;
  resources?: LinuxResources;
  host: HostCgroups;
  /** Refuse, instead of warn, when a requested limit's controller is not available. */
  strict?: boolean;
  /** linux.devices: with a v1 devices controller, the nodes the container gets are allowed (runc). */
  devices?: DeviceNodeInput[];
}

/** What the runtime stores in state.json to find the cgroup again from another process. */
export interface CgroupState {
  /** v2 mount point, e.g. /sys/fs/cgroup. */
  mount: string;
  /** The subtree we may write ("/" or the delegated cgroup); never removed. */
  base: string;
  /** The container's cgroup inside the hierarchy, e.g. /hako/c1. */
  path: string;
  /** Controllers available in base: limits for others are dropped (or refused when strict). */
  available: string[];
  strict: boolean;
  /** Cgroups create() made, outermost first: destroy() removes them when empty. */
  created: string[];
  /** Root on a hybrid or legacy host: the container's cgroup in each v1 hierarchy, which
   *  takes the limits of the controllers it holds (src/cgroups/v1.ts). */
  v1?: V1State[];
  /** Legacy host (no v2 tree): mount and path name the first v1 hierarchy's cgroup. */
  legacy?: boolean;
}

export interface CgroupPlan extends Omit<CgroupState, 'created' | 'v1'> {
  v1?: V1State[];
  /** The v1 writes create() will make, each into the hierarchy holding its controller. */
  v1Writes: CgroupWrite[];
  devices?: DeviceNodeInput[];
  id: string;
  resources: LinuxResources | undefined;
  /** The writes create() will make (io weights may move to io.bfq.weight when BFQ is there). */
  writes: CgroupWrite[];
  warnings: string[];
}

/** Drops (or, when strict, refuses) typed limits whose controller is unavailable; unified keys always refuse. */
function onlyAvailable(conv: Conversion, available: string[], strict: boolean, where: string): Conversion {
  const missing = new Set<string>();
  const writes = conv.writes.filter((w) => {
    if (w.controller === 'cgroup' || available.includes(w.controller)) return true;
    if (strict || w.field.includes('.unified[')) {
      throw new CgroupError(
        `${w.field}: the ${w.controller} controller is not available in ${where} (it offers: ${available.join(' ') || 'none'})`,
      );
    }
    missing.add(w.controller);
    return false;
  });
  const warnings = [...conv.warnings];
  if (missing.size > 0) {
    warnings.push(
      `${[...missing].join(', ')} limits are not applied: ${where} offers no such controller (set HAKO_CGROUP_STRICT=1 to refuse instead)`,
    );
  }
  return { writes, warnings };
}

function errno(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? String(e);
}

/** The settings of `res` that no v1 hierarchy of ours holds: what is left for v2. */
function leftForV2(res: LinuxResources | undefined, v1: Set<string>): LinuxResources | undefined {
  if (!res || v1.size === 0) return res;
  const out: LinuxResources = { ...res };
  if (v1.has('memory')) delete out.memory;
  if (v1.has('pids')) delete out.pids;
  if (v1.has('blkio')) delete out.blockIO;
  if (v1.has('hugetlb')) delete out.hugepageLimits;
  if (v1.has('rdma')) delete out.rdma;
  if (v1.has('net_cls') || v1.has('net_prio')) delete out.network;
  if (out.cpu) {
    const cpu = { ...out.cpu };
    if (v1.has('cpu'))
      for (const k of ['shares', 'quota', 'burst', 'period', 'realtimeRuntime', 'realtimePeriod', 'idle'] as const) delete cpu[k];
    if (v1.has('cpuset')) for (const k of ['cpus', 'mems'] as const) delete cpu[k];
    out.cpu = cpu;
  }
  return out;
}

/** The v1 writes for the controllers our v1 hierarchies hold. */
function v1Conversion(
  res: LinuxResources | undefined,
  v1: Set<string>,
  devices: DeviceNodeInput[] | undefined,
  deviceRules: boolean,
): Conversion {
  if (v1.size === 0) return { writes: [], warnings: [] };
  const conv = toV1Writes({ resources: res, devices, deviceRules: deviceRules && v1.has('devices') });
  return { writes: conv.writes.filter((w) => v1.has(w.controller)), warnings: v1.has('memory') ? conv.warnings : [] };
}

export class CgroupManager {
  readonly state: CgroupState;
  /** The resources a plan was made for: what create() applies. */
  private readonly planned: LinuxResources | undefined;

  private readonly plannedDevices: DeviceNodeInput[] | undefined;

  constructor(state: CgroupState, planned?: LinuxResources, plannedDevices?: DeviceNodeInput[]) {
    this.state = { ...state, created: [...state.created] };
    if (state.v1) this.state.v1 = state.v1.map((h) => ({ ...h, controllers: [...h.controllers], created: [...h.created] }));
    this.planned = planned;
    this.plannedDevices = plannedDevices;
  }

  /** Pure: where the cgroup goes and what gets written, or a CgroupError naming the field. */
  static plan(input: PlanInput): CgroupPlan {
    const { host } = input;
    const v1Hosts = host.v1 ?? [];
    if ((!host.mount || host.base === null) && v1Hosts.length === 0) {
      throw new CgroupError(`cannot create a cgroup: ${host.problem ?? 'no writable cgroup v2 hierarchy'}`);
    }
    const strict = input.strict ?? false;
    // Each v1 hierarchy resolves the path against our own cgroup in it; every one stays inside its mount.
    const v1: V1State[] = v1Hosts.map((h) => ({
      mount: h.mount,
      controllers: h.controllers,
      created: [],
      path: resolveCgroupPath(input.cgroupsPath, { id: input.id, rootless: false, ownCgroup: h.own, base: '/' }),
    }));
    const v1Set = new Set(v1.flatMap((h) => h.controllers));
    const v1conv = v1Conversion(input.resources, v1Set, input.devices, true);
    if (!host.mount || host.base === null) {
      // Legacy: no v2 tree at all; the first hierarchy names the cgroup (clone3 then falls back to moving it).
      return {
        id: input.id,
        mount: v1[0].mount,
        base: '/',
        path: v1[0].path,
        available: [],
        strict,
        legacy: true,
        v1,
        resources: input.resources,
        devices: input.devices,
        writes: [],
        v1Writes: v1conv.writes,
        warnings: v1conv.warnings,
      };
    }
    const path = resolveCgroupPath(input.cgroupsPath, {
      id: input.id,
      rootless: host.rootless,
      ownCgroup: host.ownCgroup,
      base: host.base,
    });
    const where = cgroupDir(host.mount, host.base);
    const conv = onlyAvailable(toCgroupWrites(leftForV2(input.resources, v1Set)), host.baseControllers, strict, where);
    return {
      id: input.id,
      mount: host.mount,
      base: host.base,
      path,
      available: host.baseControllers,
      strict,
      ...(v1.length > 0 ? { v1 } : {}),
      resources: input.resources,
      devices: input.devices,
      writes: conv.writes,
      v1Writes: v1conv.writes,
      warnings: [...v1conv.warnings, ...conv.warnings],
    };
  }

  static fromPlan(plan: CgroupPlan): CgroupManager {
    const { mount, base, path, available, strict, v1, legacy } = plan;
    const state: CgroupState = { mount, base, path, available, strict, created: [] };
    if (v1) state.v1 = v1.map((h) => ({ ...h, created: [] }));
    if (legacy) state.legacy = true;
    return new CgroupManager(state, plan.resources, plan.devices);
  }

  /** The v1 side (root on a hybrid or legacy host), or null where v2 is whole. */
  private get v1(): V1Cgroups | null {
    return this.state.v1?.length ? (this.v1Cache ??= new V1Cgroups(this.state.v1)) : null;
  }

  private v1Cache: V1Cgroups | undefined;

  /** Whether a v1 hierarchy takes some of the limits (the process joins it after clone3 put it in dir). */
  get usesV1(): boolean {
    return this.v1 !== null;
  }

  private get hasV2(): boolean {
    return !this.state.legacy;
  }

  /** The cgroup's directory on the host, e.g. /sys/fs/cgroup/hako/c1. */
  get dir(): string {
    return posix.join(this.state.mount, this.state.path);
  }

  toJSON(): CgroupState {
    const out: CgroupState = { ...this.state, created: [...this.state.created] };
    if (this.v1) out.v1 = this.v1.toJSON();
    return out;
  }

  exists(): boolean {
    if (!this.hasV2) return this.v1?.exists() ?? false;
    return existsSync(posix.join(this.dir, 'cgroup.procs'));
  }

  private file(name: string): string {
    return posix.join(this.dir, name);
  }

  /** Enables `controllers` in dir's cgroup.subtree_control, naming the cause when the kernel refuses. */
  private enable(path: string, controllers: string[]): void {
    const dir = cgroupDir(this.state.mount, path);
    let enabled: string[];
    try {
      enabled = readFile(posix.join(dir, 'cgroup.subtree_control')).trim().split(/\s+/);
    } catch (e) {
      throw new CgroupError(`cannot read ${dir}/cgroup.subtree_control: ${errno(e)} (is ${this.state.mount} a cgroup v2 mount?)`);
    }
    for (const c of controllers.filter((c) => !enabled.includes(c))) {
      try {
        putFile(posix.join(dir, 'cgroup.subtree_control'), `+${c}`);
      } catch (e) {
        const why =
          errno(e) === 'EBUSY'
            ? `${path} holds processes itself, and cgroup v2 enables controllers only below cgroups without their own processes`
            : errno(e);
        throw new CgroupError(`cannot enable the ${c} controller in ${dir}: ${why}`);
      }
    }
  }

  /** Creates the cgroup (and missing parents), enables controllers down to it and applies the plan's limits; returns warnings. Leaves nothing on error. */
  create(): string[] {
    const { base, path } = this.state;
    const rel = posix.relative(base, path).split('/');
    const chain = rel.map((_, i) => posix.join(base, ...rel.slice(0, i + 1)));
    try {
      if (this.v1) {
        this.v1.create('/');
        if (!this.hasV2) return this.apply(this.planned, { devices: this.plannedDevices, deviceRules: true });
      }
      for (const p of chain) {
        const dir = posix.join(this.state.mount, p);
        try {
          mkdirSync(dir);
          this.state.created.push(p);
        } catch (e) {
          if (errno(e) !== 'EEXIST') throw new CgroupError(`cannot create cgroup ${dir}: ${errno(e)}`);
          if (p === path && this.pids().length > 0) {
            throw new CgroupError(`cgroup ${dir} already exists and holds processes`);
          }
          if (p === path) this.state.created.push(p);
        }
      }
      // Every available controller, as runc does, so stats work even without limits.
      const want = this.state.available;
      for (const p of [base, ...chain.slice(0, -1)]) this.enable(p, want);
      return this.apply(this.planned, { devices: this.plannedDevices, deviceRules: true });
    } catch (e) {
      this.removeCreated();
      this.v1?.remove();
      throw e;
    }
  }

  /** Writes the limits of `resources` (also for `update`); returns the warnings. With v1 hierarchies,
   *  the controllers they hold take their settings there; the rest go to v2. Device rules are
   *  written at create (deviceRules), and on update only when resources.devices is given. */
  apply(resources: LinuxResources | undefined, opts: { devices?: DeviceNodeInput[]; deviceRules?: boolean } = {}): string[] {
    const v1 = this.v1;
    const v1Set = new Set(v1?.controllers ?? []);
    const v1conv = v1Conversion(resources, v1Set, opts.devices, opts.deviceRules ?? false);
    if (v1) v1.apply(v1conv.writes);
    if (!this.hasV2) return v1conv.warnings;
    return [...v1conv.warnings, ...this.applyV2(leftForV2(resources, v1Set))];
  }

  private applyV2(resources: LinuxResources | undefined): string[] {
    const bfq = existsSync(this.file('io.bfq.weight'));
    const conv = onlyAvailable(
      toCgroupWrites(resources, { bfq }),
      this.state.available,
      this.state.strict,
      cgroupDir(this.state.mount, this.state.base),
    );
    const present = readControllers(this.dir);
    for (const w of conv.writes) {
      if (w.controller !== 'cgroup' && !present.includes(w.controller)) {
        throw new CgroupError(`${w.field}: the ${w.controller} controller is not enabled for ${this.dir}`);
      }
      try {
        putFile(this.file(w.file), w.value);
      } catch (e) {
        const why =
          errno(e) === 'ENOENT'
            ? `${w.file} does not exist in this kernel`
            : `the kernel refused ${JSON.stringify(w.value)} for ${w.file} (${errno(e)})`;
        throw new CgroupError(`${w.field}: ${why}`);
      }
    }
    return conv.warnings;
  }

  /** Moves a process into the cgroup (cgroup.procs), in v2 and in each v1 hierarchy; `bornInDir`:
   *  clone3 already put it in dir (v2), so only the v1 hierarchies are left. */
  addProcess(pid: number, bornInDir = false): void {
    if (this.hasV2 && !bornInDir) this.addProcessV2(pid);
    this.v1?.addProcess(pid);
  }

  private addProcessV2(pid: number): void {
    try {
      putFile(this.file('cgroup.procs'), String(pid));
    } catch (e) {
      const why =
        errno(e) === 'ESRCH'
          ? 'no such process'
          : errno(e) === 'EACCES' || errno(e) === 'EPERM'
            ? `${errno(e)}: moving a process needs write access to cgroup.procs of the common ancestor of its old and new cgroups`
            : errno(e);
      throw new CgroupError(`cannot move process ${pid} into ${this.dir}: ${why}`);
    }
  }

  /** Every process in the cgroup and the cgroups below it (a container may nest its own). */
  pids(): number[] {
    if (!this.hasV2) return this.v1?.pids() ?? [];
    const out: number[] = [];
    const walk = (dir: string) => {
      let text: string;
      try {
        text = readFile(posix.join(dir, 'cgroup.procs'));
      } catch {
        return; // removed meanwhile
      }
      for (const line of text.split('\n')) if (/^[1-9]\d*$/.test(line)) out.push(Number(line));
      for (const entry of readdirSync(dir, { withFileTypes: true })) if (entry.isDirectory()) walk(posix.join(dir, entry.name));
    };
    walk(this.dir);
    return out;
  }

  private events(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const line of readFile(this.file('cgroup.events')).split('\n')) {
      const [k, v] = line.split(' ');
      if (k) out[k] = v;
    }
    return out;
  }

  private async waitFor(key: string, value: string, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.events()[key] !== value) {
      if (Date.now() > deadline) throw new CgroupError(`${this.dir} did not become ${what} within ${timeoutMs} ms`);
      await sleep(2);
    }
  }

  /** Stops every process (cgroup.freeze) and waits until the kernel reports "frozen 1". */
  async freeze(timeoutMs = 10_000): Promise<void> {
    if (this.v1?.hasFreezer) return this.v1.setFrozen(true, timeoutMs, sleep);
    if (!this.hasV2) throw new CgroupError(`cannot freeze ${this.dir}: its cgroup has no freezer (cgroup v1 without that hierarchy)`);
    putFile(this.file('cgroup.freeze'), '1');
    await this.waitFor('frozen', '1', timeoutMs, 'frozen');
  }

  async thaw(timeoutMs = 10_000): Promise<void> {
    if (this.v1?.hasFreezer) return this.v1.setFrozen(false, timeoutMs, sleep);
    putFile(this.file('cgroup.freeze'), '0');
    await this.waitFor('frozen', '0', timeoutMs, 'thawed');
  }

  frozen(): boolean {
    if (this.v1?.hasFreezer) {
      try {
        return this.v1.freezerState() !== 'THAWED';
      } catch {
        return false;
      }
    }
    // v1 only, without the freezer (a container's devices cgroup alone): nothing can freeze it.
    if (!this.hasV2) return false;
    return this.events().frozen === '1';
  }

  /** Signals every process; SIGKILL goes through cgroup.kill (5.14+), which races no fork. */
  killAll(signal: NodeJS.Signals | number = 'SIGKILL'): void {
    const isKill = signal === 'SIGKILL' || signal === 9;
    if (isKill && this.hasV2 && existsSync(this.file('cgroup.kill'))) {
      putFile(this.file('cgroup.kill'), '1');
      return;
    }
    // Through a pidfd: a pid that exited and was reused since cgroup.procs was read is not hit.
    const sig = typeof signal === 'number' ? signal : osConstants.signals[signal];
    for (const pid of this.pids()) {
      try {
        signalPid(pid, sig);
      } catch (e) {
        throw new CgroupError(`cannot signal process ${pid} in ${this.dir}: ${(e as Error).message}`);
      }
    }
  }

  /** Kills what is left, removes the cgroup and the parents create() made once they are empty. Idempotent. */
  async destroy(timeoutMs = 10_000): Promise<void> {
    if (!this.hasV2) {
      const deadline = Date.now() + timeoutMs;
      while (this.v1 && this.v1.pids().length > 0) {
        this.killAll('SIGKILL');
        if (Date.now() > deadline) throw new CgroupError(`${this.dir} did not become empty within ${timeoutMs} ms`);
        await sleep(2);
      }
      this.v1?.remove();
      return;
    }
    if (this.exists()) {
      if (this.events().populated === '1') {
        // A frozen cgroup still dies from SIGKILL; thawing first is not needed.
        this.killAll('SIGKILL');
        await this.waitFor('populated', '0', timeoutMs, 'empty');
      }
      this.removeTree(this.dir);
    }
    this.removeCreated();
    // Every process was in the v2 cgroup too: now empty, the v1 cgroups are (or are about to be).
    this.v1?.remove();
  }

  /** Removes a cgroup and the ones a container nested inside it, deepest first. */
  private removeTree(dir: string): void {
    for (const entry of readdirSync(dir, { withFileTypes: true })) if (entry.isDirectory()) this.removeTree(posix.join(dir, entry.name));
    try {
      rmdirSync(dir);
    } catch (e) {
      if (errno(e) !== 'ENOENT') throw new CgroupError(`cannot remove cgroup ${dir}: ${errno(e)}`);
    }
  }

  private removeCreated(): void {
    for (const p of [...this.state.created].reverse()) {
      const dir = posix.join(this.state.mount, p);
      try {
        if (statSync(dir, { throwIfNoEntry: false })) rmdirSync(dir);
      } catch (e) {
        // Another container's cgroup still lives below a shared parent: it stays.
        if (errno(e) !== 'EBUSY' && errno(e) !== 'ENOTEMPTY') throw new CgroupError(`cannot remove cgroup ${dir}: ${errno(e)}`);
      }
    }
    this.state.created = [];
  }

  stats(id: string): StatsEvent {
    const v1 = this.v1;
    if (!v1) return { type: 'stats', id, data: readStats(this.dir) };
    return { type: 'stats', id, data: readStatsV1((c, f) => v1.read(c, f), this.hasV2 ? readStats(this.dir).hugetlb : {}) };
  }

  oomEvents(): MemoryEvents {
    const v1 = this.v1;
    if (v1?.dirFor('memory')) return readMemoryEventsV1((f) => v1.read('memory', f));
    return readMemoryEvents(this.dir);
  }

  /** Calls onOom when the cgroup's oom or oom_kill counter grows; returns the unsubscribe function. */
  watchOom(onOom: (events: MemoryEvents) => void): () => void {
    const v1 = this.v1;
    if (v1?.dirFor('memory')) return watchOomV1((f) => v1.read('memory', f), onOom);
    return watchOom(this.dir, onOom);
  }
}
