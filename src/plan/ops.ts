// The launch plan's vocabulary. Keep in sync with native/plan_format.h.
// A step is pure data: an op, its args, and a human description that an error
// message or `hako plan` shows.

export const OP = {
  SETNS: 2,
  UNSHARE: 3,
  WRITE_FILE: 4,
  FORK: 5,
  SETSID: 6,
  MOUNT: 7,
  MKDIR_IN_ROOT: 8,
  MKFILE_IN_ROOT: 9,
  MKNOD_IN_ROOT: 10,
  SYMLINK_IN_ROOT: 11,
  OPEN_ROOT: 12,
  PIVOT_ROOT: 13,
  MOVE_CHROOT: 14,
  MASK_PATH: 15,
  READONLY_PATH: 16,
  SETHOSTNAME: 17,
  SETDOMAINNAME: 18,
  RLIMIT: 19,
  CHDIR: 20,
  SETGROUPS: 21,
  SETRESGID: 22,
  SETRESUID: 23,
  KEEPCAPS: 24,
  CAPBSET_KEEP: 25,
  CAPSET: 26,
  AMBIENT_RAISE: 27,
  NO_NEW_PRIVS: 28,
  UMASK: 29,
  LANDLOCK_CREATE: 30,
  LANDLOCK_PATH: 31,
  LANDLOCK_PORT: 32,
  LANDLOCK_ENFORCE: 33,
  SECCOMP: 34,
  CONSOLE_CONNECT: 35,
  CONSOLE_PTY: 36,
  OPEN_FIFO: 37,
  REPORT_READY: 38,
  WAIT_FIFO: 39,
  HOOK_PAUSE: 40,
  FIND_EXEC: 41,
  EXEC: 42,
  LOOPBACK_UP: 43,
  OOM_SCORE_ADJ: 45,
  PARENT_MOUNT_PRIVATE: 46,
  CHROOT: 47,
  RUN_HOOK: 48,
} as const;

export type OpName = keyof typeof OP;

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

export interface LaunchPlan {
  /** clone(2) flags for the child (namespaces to create). */
  cloneFlags: number;
  /** Namespaces the parent thread joins around clone (pid, time): they apply to children only. */
  parentNamespaces: string[];
  /** fds the container should see: from (in the runtime) -> to (in the container). */
  fds: Array<{ from: number; to: number }>;
  /** The ordered steps the child executes. */
  steps: Step[];
}
