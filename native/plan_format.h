/*
 * The launch plan's wire format, shared by the executor (C) and src/plan/encode.ts.
 *
 * A plan is: "HAKO" u32 version u32 nsteps, then nsteps steps. A step is
 * u32 op, u32 nargs, then nargs args; an arg is u32 kind, then for KIND_INT a
 * little-endian u64, for KIND_BYTES a u32 length, the bytes and one NUL.
 * All integers are little-endian. The executor never copies: string args point
 * into the buffer.
 */
#ifndef HAKO_PLAN_FORMAT_H
#define HAKO_PLAN_FORMAT_H

#define HAKO_PLAN_MAGIC "HAKO"
#define HAKO_PLAN_VERSION 1
#define HAKO_MAX_ARGS 64

enum hako_arg_kind { HAKO_ARG_INT = 0, HAKO_ARG_BYTES = 1 };

/* Keep in sync with OP in src/plan/ops.ts. */
enum hako_op {
  /* 1 was WAIT_PARENT: the child waits for the go-ahead before hako-init runs (child.c). */
  OP_SETNS = 2,            /* (path, nstype)                       join a namespace */
  OP_UNSHARE = 3,          /* (flags)                              e.g. CLONE_NEWTIME */
  OP_WRITE_FILE = 4,       /* (path, data)                         e.g. timens_offsets */
  OP_FORK = 5,             /* ()                                   grandchild goes on, its pid is reported */
  OP_SETSID = 6,           /* () */
  OP_MOUNT = 7,            /* (source, target, fstype, flags, data, opts) */
  OP_MKDIR_IN_ROOT = 8,    /* (path, mode) */
  OP_MKFILE_IN_ROOT = 9,   /* (path, mode) */
  OP_MKNOD_IN_ROOT = 10,   /* (path, mode, dev, uid, gid) */
  OP_SYMLINK_IN_ROOT = 11, /* (target, linkpath) */
  OP_OPEN_ROOT = 12,       /* (path)                               the root later steps resolve in */
  OP_PIVOT_ROOT = 13,      /* (path) */
  OP_MOVE_CHROOT = 14,     /* (path)                               --no-pivot */
  OP_MASK_PATH = 15,       /* (path) */
  OP_READONLY_PATH = 16,   /* (path) */
  OP_SETHOSTNAME = 17,     /* (name) */
  OP_SETDOMAINNAME = 18,   /* (name) */
  OP_RLIMIT = 19,          /* (resource, soft, hard) */
  OP_CHDIR = 20,           /* (path) */
  OP_SETGROUPS = 21,       /* (u32 array as bytes) */
  OP_SETRESGID = 22,       /* (gid) */
  OP_SETRESUID = 23,       /* (uid) */
  OP_KEEPCAPS = 24,        /* (on) */
  OP_CAPBSET_KEEP = 25,    /* (mask, lastcap)                      drop every bounding cap not in mask */
  OP_CAPSET = 26,          /* (effective, permitted, inheritable) */
  OP_AMBIENT_RAISE = 27,   /* (mask) */
  OP_NO_NEW_PRIVS = 28,    /* () */
  OP_UMASK = 29,           /* (mask) */
  OP_LANDLOCK_CREATE = 30, /* (handled_fs, handled_net) */
  OP_LANDLOCK_PATH = 31,   /* (access, path) */
  OP_LANDLOCK_PORT = 32,   /* (access, port) */
  OP_LANDLOCK_ENFORCE = 33,/* () */
  OP_SECCOMP = 34,         /* (flags, program, send_listener) */
  OP_CONSOLE_CONNECT = 35, /* (socket path) */
  OP_CONSOLE_PTY = 36,     /* ()                                   create pty, send master, make it our tty */
  OP_OPEN_FIFO = 37,       /* (fd)                                 the exec fifo, placed by the runtime */
  OP_REPORT_READY = 38,    /* () */
  OP_WAIT_FIFO = 39,       /* () */
  OP_HOOK_PAUSE = 40,      /* (kind)                               let the parent run hooks */
  OP_FIND_EXEC = 41,       /* (candidate...) */
  OP_EXEC = 42,            /* (argc, argv..., env...) */
  OP_LOOPBACK_UP = 43,     /* () */
  OP_OOM_SCORE_ADJ = 45,   /* (value as string) */
  OP_PARENT_MOUNT_PRIVATE = 46, /* (path)                          make the mount holding path private */
  OP_CHROOT = 47,          /* ()                                   chroot into the plan's root (no mount namespace) */
  OP_RUN_HOOK = 48,        /* (timeout_s, argc, path, argv..., env...) run a hook, the state from start on stdin */
  OP_MAX
};

/* OP_MOUNT opts bits */
#define MNT_OPT_TARGET_IN_ROOT 1u   /* resolve target inside the plan's root, symlinks stay inside */
#define MNT_OPT_KEEP_LOCKED 2u      /* on EPERM of a remount, add the flags the kernel locked and retry */
#define MNT_OPT_SOURCE_IN_ROOT 4u   /* resolve source inside the root as well */
#define MNT_OPT_NO_SYMLINKS 8u      /* no symlink anywhere on the target's path (/proc, /sys, /dev, proc and sysfs) */

/* Messages on the sync socket (SOCK_SEQPACKET), both directions. */
enum hako_msg {
  MSG_GO = 1,        /* parent -> child: go on */
  MSG_ERROR = 2,     /* child -> parent: step failed (step, err) */
  MSG_READY = 3,     /* child -> parent: set up, waiting for start */
  MSG_PID = 4,       /* child -> parent: the process that goes on, as a pidfd (SCM_RIGHTS) from our direct child */
  MSG_HOOKS = 5,     /* child -> parent: run hooks of kind value, then send MSG_GO */
  MSG_SECCOMP_FD = 6, /* child -> parent: a seccomp listener fd rides along (SCM_RIGHTS) */
  MSG_MAPS_PLEASE = 7 /* child -> parent: dumpable now, write the id maps (rootless) */
};

struct hako_msg_wire {
  unsigned int type;
  unsigned int step;
  int err;
  int value;
};

#endif
