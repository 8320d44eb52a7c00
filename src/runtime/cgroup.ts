// The container's cgroup over its life: prepared and created before the init
// runs, the init (and each exec'd process) born in it or moved there before it
// goes on, recorded in state.json, found again by later commands, removed by delete.
import fs from 'node:fs';
import type { Log } from './context.js';
import type { LaunchHooks } from './launch.js';
import { errnoName } from '../sys/errno.js';
import type { Config } from '../oci/config.js';
import { HakoError } from '../errors.js';
import { CgroupError, CgroupManager, parseProcCgroup, prepareCgroup, type CgroupState, type LinuxResources } from '../cgroups/index.js';

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
  const prepared = sentence("cannot apply the container's limits", () =>
    prepareCgroup({
      id,
      cgroupsPath: cfg.linux?.cgroupsPath,
      resources: cfg.linux?.resources as LinuxResources | undefined,
      devices: cfg.linux?.devices,
    }),
  );
  for (const w of prepared.warnings) log.warn(w);
  const m = prepared.manager;
  if (!m) return null;
  const warnings = sentence("cannot create the container's cgroup", () => m.create());
  for (const w of warnings) log.warn(w);
  return m;
}

/** Where launch() puts a new process: born in the cgroup, or moved there before it goes on. */
export function cgroupTarget(m: CgroupManager | null, log: Log): LaunchHooks['cgroup'] {
  if (!m) return undefined;
  return {
    dir: m.dir,
    placed: (pid, cloneErrno) => {
      if (cloneErrno === 0) {
        log.debug(
          `process ${pid} started in ${m.dir} (clone3 CLONE_INTO_CGROUP)${m.usesV1 ? ', moved into its cgroup v1 hierarchies' : ''}`,
        );
        if (m.usesV1) sentence('cannot put the container process in its cgroup', () => m.addProcess(pid, true));
        return;
      }
      log.debug(
        `process ${pid} moved into ${m.dir} through cgroup.procs (clone3 CLONE_INTO_CGROUP: ${cloneErrno < 0 ? 'cannot open the directory' : errnoName(cloneErrno)})`,
      );
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
