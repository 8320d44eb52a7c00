// Which layer holds each limit on this host: cgroup v2, cgroup v1, an rlimit, the preload
// shim, or none. `hako plan` prints it for a bundle, `hako doctor` for the host. Pure: the
// host's usable cgroup controllers are passed in (hostLimitFacts reads them from detect()).
import type { Config } from '../oci/config.js';
import type { ShimConfig } from './shim.js';

export type Layer = 'cgroup v2' | 'cgroup v1' | 'rlimit' | 'shim' | 'none';
export type LimitName = 'memory' | 'processes' | 'files' | 'connect' | 'exec';

export interface HostLimitFacts {
  /** Controllers this user may use in cgroup v2 (the delegated subtree's, rootless). */
  v2: string[];
  /** Controllers of the writable cgroup v1 hierarchies hako uses (root on a hybrid or legacy host). */
  v1: string[];
}

export interface LimitLayer {
  limit: LimitName;
  /** The layers that enforce it, strongest first; ['none'] when nothing does. */
  layers: Layer[];
  /** Something asked for that this host cannot hold, in words. */
  unheld?: string[];
}

/** From detect()'s HostCgroups (described by shape: the plan does not import the cgroup driver). */
export function hostLimitFacts(h: {
  base: string | null;
  problem: string | null;
  baseControllers: string[];
  v1?: Array<{ controllers: string[] }>;
}): HostLimitFacts {
  return { v2: h.base && !h.problem ? h.baseControllers : [], v1: (h.v1 ?? []).flatMap((x) => x.controllers) };
}

function cgroupLayer(host: HostLimitFacts, controller: string): Layer | null {
  if (host.v2.includes(controller)) return 'cgroup v2';
  if (host.v1.includes(controller)) return 'cgroup v1';
  return null;
}

const done = (limit: LimitName, layers: (Layer | null | false | undefined)[], unheld: string[] = []): LimitLayer => {
  const l = layers.filter((x): x is Layer => !!x);
  return { limit, layers: l.length ? l : ['none'], ...(unheld.length ? { unheld } : {}) };
};

/** For a bundle: the layers its config and annotations actually use here. */
export function limitLayers(cfg: Config, host: HostLimitFacts, shim: ShimConfig | null): LimitLayer[] {
  const res = cfg.linux?.resources as { memory?: { limit?: number }; pids?: { limit?: number } } | undefined;
  const rl = new Set((cfg.process?.rlimits ?? []).map((r) => r.type));
  const memAsked = (res?.memory?.limit ?? 0) > 0;
  const pidsAsked = (res?.pids?.limit ?? 0) > 0;
  const memCg = memAsked ? cgroupLayer(host, 'memory') : null;
  const pidsCg = pidsAsked ? cgroupLayer(host, 'pids') : null;
  const memUnheld = memAsked && !memCg ? ['linux.resources.memory.limit: no memory controller hako may use here'] : [];
  const pidsUnheld = pidsAsked && !pidsCg ? ['linux.resources.pids.limit: no pids controller hako may use here'] : [];
  return [
    done('memory', [memCg, (rl.has('RLIMIT_AS') || rl.has('RLIMIT_DATA')) && 'rlimit', !!shim?.memory && 'shim'], memUnheld),
    done('processes', [pidsCg, rl.has('RLIMIT_NPROC') && 'rlimit', !!shim?.processes && 'shim'], pidsUnheld),
    done('files', [rl.has('RLIMIT_NOFILE') && 'rlimit', !!shim?.files && 'shim']),
    done('connect', [!!shim?.connect && 'shim']),
    done('exec', [!!shim?.exec && 'shim']),
  ];
}

/** For the host: the layers that could hold each limit for this user. */
export function hostLimitLayers(host: HostLimitFacts): LimitLayer[] {
  return [
    done('memory', [cgroupLayer(host, 'memory'), 'rlimit', 'shim']),
    done('processes', [cgroupLayer(host, 'pids'), 'rlimit', 'shim']),
    done('files', ['rlimit', 'shim']),
    done('connect', ['shim']),
    done('exec', ['shim']),
  ];
}

const WHAT: Record<LimitName, string> = {
  memory: 'memory (cgroup memory.max; rlimit RLIMIT_AS, per process and counting reservations; shim run.hako.shim.memory)',
  processes: 'processes (cgroup pids.max; rlimit RLIMIT_NPROC, per user not per container; shim run.hako.shim.processes)',
  files: 'open files (rlimit RLIMIT_NOFILE; shim run.hako.shim.files)',
  connect: 'connect allowlist (shim run.hako.shim.connect; Landlock run.hako.landlock.net.connect for TCP ports)',
  exec: 'exec allowlist (shim run.hako.shim.exec)',
};

/** doctor's lines: warn where no cgroup holds memory or processes, and say what is left. */
export function limitChecks(host: HostLimitFacts): Array<{ verdict: 'ok' | 'warn'; text: string }> {
  return hostLimitLayers(host).map((l) => {
    const cg = l.layers.some((x) => x.startsWith('cgroup'));
    const needsCg = l.limit === 'memory' || l.limit === 'processes';
    return {
      verdict: needsCg && !cg ? 'warn' : 'ok',
      text: `limits: ${WHAT[l.limit]}: ${l.layers.join(', ')}${needsCg && !cg ? ' — no cgroup here: the shim is a second layer, not a sandbox (docs/limits.md)' : ''}`,
    };
  });
}

/** The shim's ceilings a cgroup holds here for the whole container already (the config asks
 *  linux.resources for the same limit and a controller hako may use is there): `hako up`
 *  leaves those to the cgroup, which no process inside can go around. */
export function shimCeilingsHeldByCgroups(cfg: Config, host: HostLimitFacts, shim: ShimConfig | null): Array<'memory' | 'processes'> {
  if (!shim) return [];
  const held = limitLayers(cfg, host, shim);
  const byCgroup = (l: LimitName) => held.find((x) => x.limit === l)!.layers.some((x) => x.startsWith('cgroup'));
  return (['memory', 'processes'] as const).filter((l) => shim[l] !== undefined && byCgroup(l));
}
