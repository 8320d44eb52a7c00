// The filesystem side of the driver: one container's cgroup, from plan to rmdir.
// plan() is the pure decision (path, writes, warnings); the rest touches cgroupfs.
import { closeSync, constants, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmdirSync, statSync, writeSync } from 'node:fs';
import { posix } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { HostCgroups } from './detect.js';
import { readControllers } from './detect.js';
import { CgroupError } from './errors.js';
import { readMemoryEvents, watchOom, type MemoryEvents } from './events.js';
import { resolveCgroupPath } from './path.js';
import { toCgroupWrites, type Conversion } from './resources.js';
import { readStats, type StatsEvent } from './stats.js';
import type { CgroupWrite, LinuxResources } from './types.js';

export interface PlanInput {
  id: string;
  cgroupsPath?: string;
  resources?: LinuxResources;
  host: HostCgroups;
  /** Refuse, instead of warn, when a requested limit's controller is not available. */
  strict?: boolean;
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
}

export interface CgroupPlan extends Omit<CgroupState, 'created'> {
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
      throw new CgroupError(`${w.field}: the ${w.controller} controller is not available in ${where} (it offers: ${available.join(' ') || 'none'})`);
    }
    missing.add(w.controller);
    return false;
  });
  const warnings = [...conv.warnings];
  if (missing.size > 0) {
    warnings.push(`${[...missing].join(', ')} limits are not applied: ${where} offers no such controller (set HAKO_CGROUP_STRICT=1 to refuse instead)`);
  }
  return { writes, warnings };
}

/** Writes an existing cgroup file as runc does (O_WRONLY|O_TRUNC): without O_CREAT a missing file is ENOENT, not EACCES. */
function put(path: string, value: string): void {
  const fd = openSync(path, constants.O_WRONLY | constants.O_TRUNC);
  try {
    writeSync(fd, value);
  } finally {
    closeSync(fd);
  }
}

/** A cgroup's directory: the mount joined with a hierarchy path, without a trailing slash for "/". */
function dirOf(mount: string, path: string): string {
  return path === '/' ? mount : posix.join(mount, path);
}

function errno(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? String(e);
}

export class CgroupManager {
  readonly state: CgroupState;
  /** The resources a plan was made for: what create() applies. */
  private readonly planned: LinuxResources | undefined;

  constructor(state: CgroupState, planned?: LinuxResources) {
    this.state = { ...state, created: [...state.created] };
    this.planned = planned;
  }

  /** Pure: where the cgroup goes and what gets written, or a CgroupError naming the field. */
  static plan(input: PlanInput): CgroupPlan {
    const { host } = input;
    if (!host.mount || host.base === null) {
      throw new CgroupError(`cannot create a cgroup: ${host.problem ?? 'no writable cgroup v2 hierarchy'}`);
    }
    const path = resolveCgroupPath(input.cgroupsPath, { id: input.id, rootless: host.rootless, ownCgroup: host.ownCgroup, base: host.base });
    const strict = input.strict ?? false;
    const where = dirOf(host.mount, host.base);
    const conv = onlyAvailable(toCgroupWrites(input.resources), host.baseControllers, strict, where);
    return {
      id: input.id, mount: host.mount, base: host.base, path, available: host.baseControllers, strict,
      resources: input.resources, writes: conv.writes, warnings: conv.warnings,
    };
  }

  static fromPlan(plan: CgroupPlan): CgroupManager {
    const { mount, base, path, available, strict } = plan;
    return new CgroupManager({ mount, base, path, available, strict, created: [] }, plan.resources);
  }

  /** The cgroup's directory on the host, e.g. /sys/fs/cgroup/hako/c1. */
  get dir(): string {
    return posix.join(this.state.mount, this.state.path);
  }

  toJSON(): CgroupState {
    return { ...this.state, created: [...this.state.created] };
  }

  exists(): boolean {
    return existsSync(posix.join(this.dir, 'cgroup.procs'));
  }

  private file(name: string): string {
    return posix.join(this.dir, name);
  }

  /** Enables `controllers` in dir's cgroup.subtree_control, naming the cause when the kernel refuses. */
  private enable(path: string, controllers: string[]): void {
    const dir = dirOf(this.state.mount, path);
    let enabled: string[];
    try {
      enabled = readFileSync(posix.join(dir, 'cgroup.subtree_control'), 'utf8').trim().split(/\s+/);
    } catch (e) {
      throw new CgroupError(`cannot read ${dir}/cgroup.subtree_control: ${errno(e)} (is ${this.state.mount} a cgroup v2 mount?)`);
    }
    for (const c of controllers.filter((c) => !enabled.includes(c))) {
      try {
        put(posix.join(dir, 'cgroup.subtree_control'), `+${c}`);
      } catch (e) {
        const why = errno(e) === 'EBUSY'
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
      return this.apply(this.planned);
    } catch (e) {
      this.removeCreated();
      throw e;
    }
  }

  /** Writes the limits of `resources` (also for `update`); returns the warnings. */
  apply(resources: LinuxResources | undefined): string[] {
    const bfq = existsSync(this.file('io.bfq.weight'));
    const conv = onlyAvailable(toCgroupWrites(resources, { bfq }), this.state.available, this.state.strict, dirOf(this.state.mount, this.state.base));
    const present = readControllers(this.dir);
    for (const w of conv.writes) {
      if (w.controller !== 'cgroup' && !present.includes(w.controller)) {
        throw new CgroupError(`${w.field}: the ${w.controller} controller is not enabled for ${this.dir}`);
      }
      try {
        put(this.file(w.file), w.value);
      } catch (e) {
        const why = errno(e) === 'ENOENT' ? `${w.file} does not exist in this kernel` : `the kernel refused ${JSON.stringify(w.value)} for ${w.file} (${errno(e)})`;
        throw new CgroupError(`${w.field}: ${why}`);
      }
    }
    return conv.warnings;
  }

  /** Moves a process into the cgroup (cgroup.procs). */
  addProcess(pid: number): void {
    try {
      put(this.file('cgroup.procs'), String(pid));
    } catch (e) {
      const why = errno(e) === 'ESRCH' ? 'no such process'
        : errno(e) === 'EACCES' || errno(e) === 'EPERM' ? `${errno(e)}: moving a process needs write access to cgroup.procs of the common ancestor of its old and new cgroups`
        : errno(e);
      throw new CgroupError(`cannot move process ${pid} into ${this.dir}: ${why}`);
    }
  }

  /** Every process in the cgroup and the cgroups below it (a container may nest its own). */
  pids(): number[] {
    const out: number[] = [];
    const walk = (dir: string) => {
      let text: string;
      try {
        text = readFileSync(posix.join(dir, 'cgroup.procs'), 'utf8');
      } catch {
        return; // removed meanwhile
      }
      for (const line of text.split('\n')) if (line) out.push(Number(line));
      for (const entry of readdirSync(dir, { withFileTypes: true })) if (entry.isDirectory()) walk(posix.join(dir, entry.name));
    };
    walk(this.dir);
    return out;
  }

  private events(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const line of readFileSync(this.file('cgroup.events'), 'utf8').split('\n')) {
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
    put(this.file('cgroup.freeze'), '1');
    await this.waitFor('frozen', '1', timeoutMs, 'frozen');
  }

  async thaw(timeoutMs = 10_000): Promise<void> {
    put(this.file('cgroup.freeze'), '0');
    await this.waitFor('frozen', '0', timeoutMs, 'thawed');
  }

  frozen(): boolean {
    return this.events().frozen === '1';
  }

  /** Signals every process; SIGKILL goes through cgroup.kill (5.14+), which races no fork. */
  killAll(signal: NodeJS.Signals | number = 'SIGKILL'): void {
    const isKill = signal === 'SIGKILL' || signal === 9;
    if (isKill && existsSync(this.file('cgroup.kill'))) {
      put(this.file('cgroup.kill'), '1');
      return;
    }
    for (const pid of this.pids()) {
      try {
        process.kill(pid, signal);
      } catch (e) {
        if (errno(e) !== 'ESRCH') throw new CgroupError(`cannot signal process ${pid} in ${this.dir}: ${errno(e)}`);
      }
    }
  }

  /** Kills what is left, removes the cgroup and the parents create() made once they are empty. Idempotent. */
  async destroy(timeoutMs = 10_000): Promise<void> {
    if (this.exists()) {
      if (this.events().populated === '1') {
        // A frozen cgroup still dies from SIGKILL; thawing first is not needed.
        this.killAll('SIGKILL');
        await this.waitFor('populated', '0', timeoutMs, 'empty');
      }
      this.removeTree(this.dir);
    }
    this.removeCreated();
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
    return { type: 'stats', id, data: readStats(this.dir) };
  }

  oomEvents(): MemoryEvents {
    return readMemoryEvents(this.dir);
  }

  /** Calls onOom when the cgroup's oom or oom_kill counter grows; returns the unsubscribe function. */
  watchOom(onOom: (events: MemoryEvents) => void): () => void {
    return watchOom(this.dir, onOom);
  }
}
