export { compileSeccomp, MAX_INSTRUCTIONS, BAD_ARCH_ACTION } from './compile.js';
export type { CompiledSeccomp, CompileOptions, CompileStats } from './compile.js';
export { SeccompError } from './errors.js';
export { features } from './features.js';
export type { SeccompFeatures } from './features.js';
export { runBpf } from './bpf-interp.js';
export type { SeccompData, BpfResult } from './bpf-interp.js';
export type * from './types.js';
