// The container's cgroup over its life: prepared and created before the init
// runs, the init (and each exec'd process) born in it or moved there before it
// goes on, recorded in state.json, found again by later commands, removed by delete.
import fs from 'node:fs';
import type { Log } from './context.js';
import type { LaunchHooks } from './launch.js';
import { errnoName } from '../sys/errno.js';
import type { Config } from '../oci/config.js';
import { HakoError } from '../errors.js';
import {
  CgroupError,
  CgroupManager,
  detect,
  parseProcCgroup,
  prepareCgroup,
  type CgroupState,
  type HostCgroups,
  type LinuxResources,
} from '../cgroups/index.js';

/** `"none"`: the container asks for no cgroup of its own (crun's --cgroup-manager=disabled),
 *  as the library does for a container without limits. Only where nothing needs one: no limits
 *  and no cgroupsPath (Kubernetes always sets both: an annotation never drops a pod's limits),
 *  its own pid namespace (its processes die with its init, and none is left for a cgroup to
 *  find), and no cgroup filesystem mounted in (it would show the runtime's cgroup tree). */
export const NO_CGROUP_ANNOTATION = 'run.hako.cgroup';

function sentence<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof CgroupError) throw new HakoError(`${what}: ${e.message}`);
    throw e;
  }
}

/** Decides the cgroup and creates it (or returns null on a host with no usable
 *  cgroup v2, after warning once — an error when strict). */
export function createCgroup(id: string, cfg: Config, log: Log): CgroupManager | null {
  let host: HostCgroups | undefined;
  if (cfg.annotations?.[NO_CGROUP_ANNOTATION] !== undefined) {
    checkNoCgroup(cfg);
    // Without a user namespace of its own, a container run by root reaches real devices, and on
    // a v1 host the devices controller is what keeps it to /dev's few (runc's rules): that one
    // hierarchy stays. Rootless, or in a user namespace, the kernel refuses it devices anyway.
    const ownUserNs = cfg.linux?.namespaces?.some((n) => n.type === 'user' && !n.path);
    if (process.geteuid?.() !== 0 || ownUserNs) return null;
    host = detect();
    const devices = host.v1?.find((h) => h.controllers.includes('devices'));
    if (!devices) return null; // cgroup v2: hako writes no device rules there, so nothing is lost
    host = { ...host, mount: null, base: null, v1: [devices] };
  }
  const prepared = sentence("cannot apply the container's limits", () =>
    prepareCgroup({
      id,
      cgroupsPath: cfg.linux?.cgroupsPath,
      resources: cfg.linux?.resources as LinuxResources | undefined,
      devices: cfg.linux?.devices,
      host,
    }),
  );
  for (const w of prepared.warnings) log.warn(w);
  const m = prepared.manager;
  if (!m) return null;
  const warnings = sentence("cannot create the container's cgroup", () => m.create());
  for (const w of warnings) log.warn(w);
  return m;
}

/** Refuses run.hako.cgroup where a cgroup is needed, in one sentence naming what needs it. */
function checkNoCgroup(cfg: Config): void {
  const where = `annotations["${NO_CGROUP_ANNOTATION}"]`;
  const value = cfg.annotations?.[NO_CGROUP_ANNOTATION];
  if (value !== 'none') throw new HakoError(`config.json: ${where}: expected "none", got ${JSON.stringify(value)}`);
  const resources = cfg.linux?.resources as Record<string, unknown> | undefined;
  const limits = Object.keys(resources ?? {}).filter((k) => resources![k] !== undefined && resources![k] !== null);
  if (limits.length)
    throw new HakoError(`config.json: ${where}: a container without a cgroup cannot have linux.resources (${limits.join(', ')})`);
  if (cfg.linux?.cgroupsPath) throw new HakoError(`config.json: ${where}: a container without a cgroup cannot have linux.cgroupsPath`);
  if (!cfg.linux?.namespaces?.some((n) => n.type === 'pid' && !n.path))
    throw new HakoError(
      `config.json: ${where}: a container without a cgroup needs a pid namespace of its own (its processes die with its init)`,
    );
  const mount = cfg.mounts?.find((m) => m.type === 'cgroup' || m.type === 'cgroup2');
  if (mount)
    throw new HakoError(
      `config.json: ${where}: a container without a cgroup cannot mount ${mount.type} on ${mount.destination} (it would see the runtime's cgroups)`,
    );
}

/** Where launch() puts a new process: born in the cgroup, or moved there before it goes on. */
export function cgroupTarget(m: CgroupManager | null, log: Log): LaunchHooks['cgroup'] {
  if (!m) return undefined;
  return {
    // clone3 takes only a cgroup v2 directory, and the kernel finds out only after copying the
    // whole process (then dropped, and cloned again): a v1-only cgroup is not offered to it.
    dir: m.state.legacy ? '' : m.dir,
    placed: (pid, cloneErrno) => {
      if (cloneErrno === 0) {
        log.debug(
          `process ${pid} started in ${m.dir} (clone3 CLONE_INTO_CGROUP)${m.usesV1 ? ', moved into its cgroup v1 hierarchies' : ''}`,
        );
        if (m.usesV1) sentence('cannot put the container process in its cgroup', () => m.addProcess(pid, true));
        return;
      }
      const why = m.state.legacy ? 'cgroup v1 only' : cloneErrno < 0 ? 'cannot open the directory' : errnoName(cloneErrno);
      log.debug(`process ${pid} moved into ${m.dir} through cgroup.procs (clone3 CLONE_INTO_CGROUP: ${why})`);
      sentence('cannot put the container process in its cgroup', () => m.addProcess(pid));
    },
  };
}

/** Removes a cgroup whose processes are already dead: destroy() has nothing to
 *  wait for then, so its work is done before it returns. */
export function removeEmptyCgroup(m: CgroupManager | null): void {
  if (!m) return;
  void m.destroy().catch(() => {
    // reported by the delete that follows
  });
}

/** The cgroup an exec'd process joins: the init's own when it moved below the container's
 *  cgroup (a container that manages cgroups itself, as systemd does, leaves its top one with
 *  controllers enabled, where v2 allows no process), else the container's (runc's rule). */
export function execCgroupOf(state: CgroupState | undefined, initPid: number): CgroupManager | null {
  const m = cgroupOf(state);
  if (!m) return null;
  let initPath: string;
  try {
    initPath = parseProcCgroup(fs.readFileSync(`/proc/${initPid}/cgroup`, 'utf8'));
  } catch {
    return m; // the init is gone: exec fails on its namespaces anyway
  }
  if (!initPath.startsWith(`${m.state.path}/`)) return m;
  const below = new CgroupManager({ ...m.state, path: initPath, created: [] });
  return below.exists() ? below : m;
}

export function cgroupOf(state: CgroupState | undefined): CgroupManager | null {
  if (!state?.mount) return null;
  const m = new CgroupManager(state);
  return m.exists() ? m : null;
}
