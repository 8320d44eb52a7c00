// The launch plan's vocabulary: the ops, their argument kinds, the sync
// socket's messages and the executor's limits. native/plan_ops.def is THE table
// (the C side expands it); this is its TypeScript copy, kept readable rather than
// generated, and test/unit/plan-ops-parity.test.ts fails on any difference.
// A step is pure data: an op, its args, and a human description that an error
// message or `hako plan` shows.

/** Each op's number and argument kinds: 'i' an integer, 's' bytes (a string or
 *  raw bytes); a trailing '+' repeats the kind before it one or more times. */
export const OPS = {
  SETNS: [2, 'si'],
  UNSHARE: [3, 'i'],
  WRITE_FILE: [4, 'ss'],
  FORK: [5, ''],
  SETSID: [6, ''],
  MOUNT: [7, 'sssisi'],
  MKDIR_IN_ROOT: [8, 'si'],
  MKFILE_IN_ROOT: [9, 'si'],
  MKNOD_IN_ROOT: [10, 'siiii'],
  SYMLINK_IN_ROOT: [11, 'ss'],
  OPEN_ROOT: [12, 's'],
  PIVOT_ROOT: [13, 's'],
  MOVE_CHROOT: [14, 's'],
  MASK_PATH: [15, 's'],
  READONLY_PATH: [16, 's'],
  SETHOSTNAME: [17, 's'],
  SETDOMAINNAME: [18, 's'],
  RLIMIT: [19, 'iii'],
  CHDIR: [20, 's'],
  SETGROUPS: [21, 's'],
  SETRESGID: [22, 'i'],
  SETRESUID: [23, 'i'],
  KEEPCAPS: [24, 'i'],
  CAPBSET_KEEP: [25, 'ii'],
  CAPSET: [26, 'iii'],
  AMBIENT_RAISE: [27, 'i'],
  NO_NEW_PRIVS: [28, ''],
  UMASK: [29, 'i'],
  LANDLOCK_CREATE: [30, 'ii'],
  LANDLOCK_PATH: [31, 'is'],
  LANDLOCK_PORT: [32, 'ii'],
  LANDLOCK_ENFORCE: [33, ''],
  SECCOMP: [34, 'isi'],
  CONSOLE_CONNECT: [35, 's'],
  CONSOLE_PTY: [36, ''],
  OPEN_FIFO: [37, 'i'],
  REPORT_READY: [38, ''],
  WAIT_FIFO: [39, ''],
  HOOK_PAUSE: [40, 'i'],
  FIND_EXEC: [41, 's+'],
  EXEC: [42, 'is+'],
  LOOPBACK_UP: [43, ''],
  OOM_SCORE_ADJ: [45, 's'],
  PARENT_MOUNT_PRIVATE: [46, 's'],
  CHROOT: [47, ''],
  RUN_HOOK: [48, 'iis+'],
  JOIN_SESSION_KEYRING: [49, 'si'],
  PARENT_DEATH_SIGNAL: [50, 'i'],
  CHECK_PRELOAD: [51, 'ss'],
} as const satisfies Record<string, readonly [number, string]>;

export type OpName = keyof typeof OPS;

/** Numbers once used and never to be reused (a plan from an older hako must not mean something else). */
export const RETIRED_OPS = { WAIT_PARENT: 1, CLOSE_FROM: 44 } as const;

/** op name -> number, as the wire carries it. */
export const OP = Object.fromEntries(Object.entries(OPS).map(([k, [n]]) => [k, n])) as { readonly [K in OpName]: (typeof OPS)[K][0] };

/** The wire format's constants (HAKO_CONST). */
export const FORMAT = { PLAN_VERSION: 1, ARG_INT: 0, ARG_BYTES: 1 } as const;

/** The executor's limits (HAKO_LIMIT): arguments in one step (every op but EXEC),
 *  and EXEC's argv strings and env strings, each. */
export const LIMIT = { MAX_ARGS: 64, EXEC_MAX: 4096 } as const;

/** An op's arguments: the fixed kinds, then `rest` ('' for none) one or more times. */
export function signature(op: OpName): { fixed: string; rest: '' | 'i' | 's' } {
  const kinds: string = OPS[op][1];
  if (!kinds.endsWith('+')) return { fixed: kinds, rest: '' };
  return { fixed: kinds.slice(0, -2), rest: kinds.at(-2) as 'i' | 's' };
}

/** How many strings a FIND_EXEC or RUN_HOOK step carries at most after its fixed
 *  arguments (RUN_HOOK: argv and env together). */
export function maxVariadic(op: 'FIND_EXEC' | 'RUN_HOOK'): number {
  return LIMIT.MAX_ARGS - signature(op).fixed.length;
}

/** OP_MOUNT opts bits */
export const MNT_OPT = { TARGET_IN_ROOT: 1, KEEP_LOCKED: 2, SOURCE_IN_ROOT: 4, NO_SYMLINKS: 8 } as const;

/** Messages on the sync socket. */
export const MSG = {
  GO: 1,
  ERROR: 2,
  READY: 3,
  PID: 4,
  HOOKS: 5,
  SECCOMP_FD: 6,
  MAPS_PLEASE: 7,
} as const;

/** An argument: a number (bigint for 64-bit masks), a string, or raw bytes. */
export type Arg = number | bigint | string | Uint8Array;

export interface Step {
  op: OpName;
  args: Arg[];
  /** What this step does, in words: "mount proc on /proc". */
  what: string;
}

/** Hook kinds the executor pauses for (OP_HOOK_PAUSE's arg). */
export const HOOK_POINT = { CREATE_RUNTIME: 1, CREATE_CONTAINER: 2 } as const;

/** The namespaces a parent thread can join for its children only. */
export type ParentNamespaceType = 'pid' | 'time';

export interface LaunchPlan {
  /** clone(2) flags for the child (namespaces to create). */
  cloneFlags: number;
  /** Namespaces the parent thread joins around clone (pid, time): they apply to children only. */
  parentNamespaces: string[];
  /** Each parent namespace's type, index for index: the native side is told, it does not guess. */
  parentNamespaceTypes: ParentNamespaceType[];
  /** fds the container should see: from (in the runtime) -> to (in the container). */
  fds: Array<{ from: number; to: number }>;
  /** The ordered steps the child executes. */
  steps: Step[];
}
