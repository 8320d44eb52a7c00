// Host facts: where cgroup v2 is mounted, in which mode (unified, hybrid, legacy), which
// controllers it offers, and which subtree this user may write (for rootless, the one
// delegated to it, as systemd's user@.service does).
import { accessSync, constants, readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { V1_JOIN, v1Hierarchies, type V1Hierarchy } from './v1.js';
import { callerProc } from '../sys/caller.js';

export type CgroupMode = 'unified' | 'hybrid' | 'legacy' | 'none';

export interface HostCgroups {
  mode: CgroupMode;
  /** Mount point of the v2 hierarchy, or null. */
  mount: string | null;
  /** Controllers the v2 root offers (its cgroup.controllers). */
  controllers: string[];
  /** Controllers bound to v1 hierarchies (hybrid and legacy modes). */
  v1Controllers: string[];
  uid: number;
  rootless: boolean;
  /** Our own v2 cgroup, from /proc/self/cgroup. */
  ownCgroup: string;
  /** The subtree this user may create cgroups in ("/" for root; the delegated one rootless), or null. */
  base: string | null;
  /** Controllers available in base (its cgroup.controllers). */
  baseControllers: string[];
  /** Why no limit can be applied here, in one sentence; null when base (or v1) is usable. */
  problem: string | null;
  /** Root on a hybrid or legacy host: the v1 hierarchies that take the limits v2 cannot
   *  (runc's fs driver); absent or empty where v2 is whole, or rootless (no v1 delegation). */
  v1?: V1Hierarchy[];
}

export interface MountEntry {
  mountPoint: string;
  fsType: string;
  superOptions: string;
}

/** Parses /proc/self/mountinfo (fields after " - " are fstype, source, super options). */
export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const pre = line.slice(0, sep).split(' ');
    const post = line.slice(sep + 3).split(' ');
    // Mount points escape spaces and the like as octal (\040).
    const mountPoint = pre[4].replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    out.push({ mountPoint, fsType: post[0], superOptions: post[2] ?? '' });
  }
  return out;
}

/** The v2 path in /proc/self/cgroup ("0::/path"); "/" when there is none. */
export function parseProcCgroup(text: string): string {
  for (const line of text.split('\n')) {
    if (line.startsWith('0::')) return line.slice(3) || '/';
  }
  return '/';
}

export function readControllers(dir: string): string[] {
  try {
    return readFileSync(posix.join(dir, 'cgroup.controllers'), 'utf8').trim().split(/\s+/).filter(Boolean);
  } catch {
    return [];
  }
}

function writable(dir: string): boolean {
  try {
    // Creating a child needs the directory; moving processes needs cgroup.procs (delegation
    // hands over both, plus cgroup.subtree_control).
    accessSync(dir, constants.W_OK);
    accessSync(posix.join(dir, 'cgroup.procs'), constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** The topmost ancestor of `own` that this user can write, walking up while it stays writable. */
export function delegatedRoot(mount: string, own: string): string | null {
  let found: string | null = null;
  for (let p = own; ; p = posix.dirname(p)) {
    if (!writable(posix.join(mount, p))) break;
    found = p;
    if (p === '/') break;
  }
  return found;
}

// Controllers whose absence means "no limits" for a typical container (what docker/podman set).
const ESSENTIAL = ['memory', 'pids', 'cpu'];

export function detect(opts: { proc?: string; uid?: number } = {}): HostCgroups {
  // The caller's own process (a planner call's is the front, src/sys/caller.ts), or a test's /proc.
  const self = opts.proc ? `${opts.proc}/self` : callerProc();
  const uid = opts.uid ?? process.geteuid?.() ?? 0;
  const mounts = parseMountinfo(readFileSync(`${self}/mountinfo`, 'utf8'));
  const v2 = mounts.find((m) => m.fsType === 'cgroup2');
  const v1Controllers = [
    ...new Set(mounts.filter((m) => m.fsType === 'cgroup').flatMap((m) => m.superOptions.split(',').filter((o) => V1_JOIN.includes(o)))),
  ].sort();
  const mode: CgroupMode = v2 ? (v1Controllers.length > 0 ? 'hybrid' : 'unified') : v1Controllers.length > 0 ? 'legacy' : 'none';
  const mount = v2?.mountPoint ?? null;
  const controllers = mount ? readControllers(mount) : [];
  let procCgroup = '';
  try {
    procCgroup = readFileSync(`${self}/cgroup`, 'utf8');
  } catch {
    // No /proc/self/cgroup: a kernel without cgroups; `problem` below says so.
  }
  const ownCgroup = procCgroup ? parseProcCgroup(procCgroup) : '/';
  const rootless = uid !== 0;
  const host: HostCgroups = {
    mode,
    mount,
    controllers,
    v1Controllers,
    uid,
    rootless,
    ownCgroup,
    base: null,
    baseControllers: [],
    problem: null,
  };
  const hierarchies = v1Hierarchies(mounts, procCgroup).filter((h) => writable(h.mount));
  const v1Covers = (missing: string[]) =>
    !rootless && missing.length > 0 && missing.every((c) => hierarchies.some((h) => h.controllers.includes(c)));
  if (!mount) {
    if (mode === 'legacy' && v1Covers(ESSENTIAL)) {
      host.v1 = hierarchies;
      return host;
    }
    host.problem =
      mode === 'legacy'
        ? rootless
          ? `this host has only cgroup v1 (legacy mode), which cannot be delegated to uid ${uid}: limits need root here`
          : 'this host has only cgroup v1 (legacy mode), and its hierarchies are not writable'
        : 'this host has no cgroup filesystem mounted';
    return host;
  }
  host.base = rootless ? delegatedRoot(mount, ownCgroup) : writable(mount) ? '/' : null;
  const v1Held = ESSENTIAL.filter((c) => v1Controllers.includes(c));
  if (host.base === null) {
    host.problem = rootless
      ? v1Held.length > 0
        ? `cgroup v1 holds ${v1Held.join(', ')} here (hybrid mode), and cgroup v1 cannot be delegated to uid ${uid}: limits need root on this host, or a cgroup v2 host with a delegated subtree`
        : `no cgroup v2 subtree is delegated to uid ${uid} (its cgroup ${ownCgroup} is not writable); run hako under systemd-run --user --scope -p Delegate=yes, or as root`
      : `the cgroup v2 hierarchy at ${mount} is not writable`;
    return host;
  }
  host.baseControllers = readControllers(posix.join(mount, host.base));
  const missing = ESSENTIAL.filter((c) => !host.baseControllers.includes(c));
  if (v1Covers(missing)) {
    // runc's way on a hybrid host as root: limits in the v1 hierarchies, the process in v2 too.
    host.v1 = hierarchies;
  } else if (missing.length > 0) {
    const where = host.base === '/' ? mount : posix.join(mount, host.base);
    host.problem =
      mode === 'hybrid'
        ? rootless
          ? `cgroup v2 runs in hybrid mode here: ${missing.join(', ')} belong to cgroup v1, which cannot be delegated to uid ${uid}, and ${where} offers only ${host.baseControllers.join(' ') || 'no controllers'}`
          : `cgroup v2 runs in hybrid mode here: ${missing.join(', ')} belong to cgroup v1, and ${where} offers only ${host.baseControllers.join(' ') || 'no controllers'}`
        : `${where} offers no ${missing.join(', ')} controller${missing.length > 1 ? 's' : ''}${rootless ? ' (not delegated to this user)' : ''}`;
  }
  return host;
}
