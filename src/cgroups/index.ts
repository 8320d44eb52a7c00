/**
 * hako's cgroup v2 driver (docs/cgroups.md).
 *
 * For the runtime, the whole lifecycle is:
 *
 *   const { manager, warnings } = prepareCgroup({ id, cgroupsPath: spec.linux?.cgroupsPath,
 *                                                 resources: spec.linux?.resources });
 *   // log warnings once; manager is null when the host has no writable cgroup v2 subtree
 *   manager?.create();                 // before the container process runs; nothing left on error
 *   // the runtime clones the process into manager.dir (clone3 CLONE_INTO_CGROUP), or:
 *   manager?.addProcess(pid);          // before the process is let go on
 *   state.cgroup = manager?.toJSON();  // CgroupState, for later commands
 *
 *   const cg = new CgroupManager(state.cgroup);  // in `update`, `pause`, `kill`, `delete`, …
 *   cg.apply(resources);               // update: returns warnings
 *   await cg.freeze(); await cg.thaw();// pause / resume
 *   cg.killAll('SIGTERM'); cg.pids();  // kill --all, ps
 *   cg.stats(id);                      // events --stats: {"type":"stats","id":…,"data":{…}}
 *   cg.oomEvents(); cg.watchOom(cb);   // events: memory.events counters / OOM notifications
 *   await cg.destroy();                // delete: kills leftovers, rmdir, empty parents it made
 *
 * Every failure is a CgroupError whose message is one sentence naming the JSON path
 * (`linux.resources.memory.limit: -5 is not a valid limit`) or the cgroup file.
 * Strictness: HAKO_CGROUP_STRICT=1 makes "limits not applied" an error instead of a warning.
 * `hako doctor` prints describeHost(); `hako features` embeds cgroupFeatures().
 */
export { CgroupError } from './errors.js';
export type { LinuxResources, CgroupWrite } from './types.js';
export { detect, parseMountinfo, parseProcCgroup, type HostCgroups, type CgroupMode } from './detect.js';
export { resolveCgroupPath, expandSlice, type PathContext } from './path.js';
export { toCgroupWrites, sharesToWeight, blkioToIoWeight, swapToV2, type Conversion } from './resources.js';
export { CgroupManager, type CgroupPlan, type CgroupState, type PlanInput } from './manager.js';
export { readStats, type CgroupStats, type StatsEvent } from './stats.js';
export { readMemoryEvents, type MemoryEvents } from './events.js';
export { prepareCgroup, describeHost, cgroupFeatures, isStrict, STRICT_ENV, type PrepareInput, type PreparedCgroup } from './host.js';
