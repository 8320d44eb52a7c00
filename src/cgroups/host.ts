// What the runtime asks of the driver as a whole: whether limits can be applied on this
// host (and the one warning when not), `hako doctor` lines and `hako features` facts.
import { detect, type HostCgroups } from './detect.js';
import { CgroupError } from './errors.js';
import { CgroupManager, type CgroupPlan } from './manager.js';
import { toCgroupWrites } from './resources.js';
import type { LinuxResources } from './types.js';

/** HAKO_CGROUP_STRICT=1 turns "limits not applied" from a warning into an error. */
export const STRICT_ENV = 'HAKO_CGROUP_STRICT';

export function isStrict(env: NodeJS.ProcessEnv = process.env): boolean {
  return env[STRICT_ENV] === '1' || env[STRICT_ENV] === 'true';
}

export interface PrepareInput {
  id: string;
  cgroupsPath?: string;
  resources?: LinuxResources;
  host?: HostCgroups;
  strict?: boolean;
  /** linux.devices (for a v1 devices controller's rules). */
  devices?: import('./v1.js').DeviceNodeInput[];
}

export interface PreparedCgroup {
  /** null when this host offers no writable cgroup v2 subtree: the container runs without one. */
  manager: CgroupManager | null;
  plan: CgroupPlan | null;
  /** At most a few sentences for the runtime to log once. */
  warnings: string[];
}

/**
 * Decides the container's cgroup without touching the filesystem. Like runc and crun
 * rootless, a host without usable cgroups means running without limits and one warning;
 * strict mode makes it an error. Bad values are errors either way.
 */
export function prepareCgroup(input: PrepareInput): PreparedCgroup {
  const host = input.host ?? detect();
  const strict = input.strict ?? isStrict();
  if (host.base === null && !host.v1?.length) {
    const { writes } = toCgroupWrites(input.resources); // still refuse bad values
    if (writes.length === 0) return { manager: null, plan: null, warnings: [] };
    const message = `linux.resources: limits are not applied because ${host.problem}`;
    if (strict) throw new CgroupError(message);
    return { manager: null, plan: null, warnings: [`${message} (set ${STRICT_ENV}=1 to refuse instead)`] };
  }
  const plan = CgroupManager.plan({ ...input, host, strict });
  return { manager: CgroupManager.fromPlan(plan), plan, warnings: plan.warnings };
}

/** Lines for `hako doctor`. */
export function describeHost(host: HostCgroups = detect()): string[] {
  const lines: string[] = [];
  const modeText = {
    unified: `cgroup v2 at ${host.mount} (unified mode)`,
    hybrid: `hybrid mode: cgroup v2 at ${host.mount}, cgroup v1 holds ${host.v1Controllers.join(' ')}`,
    legacy: `legacy mode: only cgroup v1 (${host.v1Controllers.join(' ')})`,
    none: 'no cgroup filesystem mounted',
  }[host.mode];
  lines.push(`cgroups: ${modeText}`);
  if (host.mount) lines.push(`cgroups: v2 root controllers: ${host.controllers.join(' ') || 'none'}`);
  const who = host.rootless ? `uid ${host.uid} (rootless)` : 'root';
  lines.push(`cgroups: running as ${who} in ${host.ownCgroup}`);
  if (host.base !== null) {
    lines.push(
      `cgroups: writable subtree ${host.base}${host.rootless ? ' (delegated)' : ''}, controllers: ${host.baseControllers.join(' ') || 'none'}`,
    );
  }
  if (host.v1?.length) {
    lines.push(
      `cgroups: cgroup v1 takes the limits of ${host.v1.flatMap((h) => h.controllers).join(' ')} (as runc does on a ${host.mode} host, as root)`,
    );
  }
  lines.push(
    host.problem === null
      ? `cgroups: ok: memory, pids and cpu limits are enforced${host.v1?.length ? ' (through cgroup v1)' : ''}`
      : `cgroups: warning: ${host.problem}; containers run without those limits (${STRICT_ENV}=1 refuses instead)`,
  );
  return lines;
}

/** The `linux.cgroup` object of runc's `features` output. */
export function cgroupFeatures(): { v1: boolean; v2: boolean; systemd: boolean; systemdUser: boolean; rdma: boolean } {
  // systemd-style cgroupsPath is accepted and mapped to a path, but no D-Bus is spoken.
  // v1: as root on a hybrid or legacy host, through the v1 hierarchies (src/cgroups/v1.ts).
  return { v1: true, v2: true, systemd: false, systemdUser: false, rdma: true };
}
