// The runtime-spec `linux.seccomp` object (config.json), as hako reads it. Strings stay
// `string` on purpose: the compiler validates them and names the bad field.

export const ACTIONS = [
  'SCMP_ACT_KILL',
  'SCMP_ACT_KILL_PROCESS',
  'SCMP_ACT_KILL_THREAD',
  'SCMP_ACT_TRAP',
  'SCMP_ACT_ERRNO',
  'SCMP_ACT_TRACE',
  'SCMP_ACT_ALLOW',
  'SCMP_ACT_LOG',
  'SCMP_ACT_NOTIFY',
] as const;
export type SeccompAction = (typeof ACTIONS)[number];

export const OPERATORS = [
  'SCMP_CMP_NE',
  'SCMP_CMP_LT',
  'SCMP_CMP_LE',
  'SCMP_CMP_EQ',
  'SCMP_CMP_GE',
  'SCMP_CMP_GT',
  'SCMP_CMP_MASKED_EQ',
] as const;
export type SeccompOperator = (typeof OPERATORS)[number];

export const ARCHITECTURES = ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32', 'SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'] as const;
export type SeccompArch = (typeof ARCHITECTURES)[number];

export const FLAGS = [
  'SECCOMP_FILTER_FLAG_TSYNC',
  'SECCOMP_FILTER_FLAG_LOG',
  'SECCOMP_FILTER_FLAG_SPEC_ALLOW',
  'SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV',
] as const;
export type SeccompFlag = (typeof FLAGS)[number];

/** Node's `process.arch` values hako can build a filter for. */
export type NodeArch = 'x64' | 'ia32' | 'arm64' | 'arm';

/** JSON numbers lose precision above 2^53; callers that parse with bigints may pass them. */
export type U64 = number | bigint;

export interface OciSeccompArg {
  index: number;
  value: U64;
  valueTwo?: U64;
  op: SeccompOperator | string;
}

export interface OciSeccompSyscall {
  names: string[];
  action: SeccompAction | string;
  errnoRet?: number;
  args?: OciSeccompArg[];
}

export interface OciSeccomp {
  defaultAction: SeccompAction | string;
  defaultErrnoRet?: number;
  architectures?: Array<SeccompArch | string>;
  flags?: Array<SeccompFlag | string>;
  listenerPath?: string;
  listenerMetadata?: string;
  syscalls?: OciSeccompSyscall[];
}
