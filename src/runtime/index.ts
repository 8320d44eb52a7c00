// The runtime's one face: every verb the CLI, `hako up` and the library call, and the
// few helpers they need to turn their input into a verb's. Nothing outside src/runtime
// reaches past this file into it.
export type { RuntimeContext, Log } from './context.js';
export { makeStore, rootlessDefault } from './context.js';
export { Store, defaultRoot, checkId } from './store.js';

export { create, planContainer, loadBundleConfig, type CreateOptions, type Created, type PlannedContainer } from './create.js';
export { start } from './start.js';
export { run, startCreated } from './run.js';
export { exec, launchExec, type ExecOptions } from './exec.js';
export { kill } from './kill.js';
export { deleteContainer } from './delete.js';
export { state, list, type ListEntry } from './state.js';
export { pause, resume } from './pause.js';
export { update } from './update.js';
export { events, type EventsOptions } from './events.js';
export { ps } from './ps.js';
export { features } from './features.js';
export { Container } from './container.js';
export { describeDenial, logNewDenials, type ShimDenial } from './shim.js';

export { activationFromEnvironment, withSocketActivation, listenerFds } from './activation.js';
export { checkExec, waitAndForward, exitCodeOf } from './wait.js';
export { closeFd } from './launch.js';
export { NO_CGROUP_ANNOTATION } from './cgroup.js';
export { parseSignal } from '../sys/signals.js';
export { readInputFile, fileError } from './input-file.js';
export { signalProcess } from '../sys/proc.js';

// What a caller needs to build a verb's input: configs, processes, resources.
export { parseJson, validateConfig, validateProcess } from '../oci/validate.js';
export { defaultSpec } from '../oci/default.js';
export { capMask } from '../plan/capabilities.js';
export type { Config, Process } from '../oci/config.js';
export type { OciState } from '../oci/state.js';
export type { LinuxResources } from '../cgroups/index.js';
