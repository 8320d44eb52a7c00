/*
 * The front <-> planner protocol (issue 20). bin/hako (the front, C) connects to
 * the warm planner of its own uid at <state root>/.planner.sock, a
 * SOCK_SEQPACKET socket, one connection per call. The planner decides (parse,
 * validate, plan, state, cgroups, hooks); the front executes: it clones the
 * container's processes itself (native/spawn.c, the addon's own clone
 * sequence), so they are the caller's descendants exactly as with today's
 * in-process path.
 *
 * Every message is one datagram: struct hako_call_hdr, then the body its type
 * names (len bytes). fds ride as SCM_RIGHTS on the message that names them, in
 * the order given. All integers are in the host's byte order (same machine).
 *
 *   front -> planner                       planner -> front
 *   REQUEST (fds: cwd, 0, 1, 2)
 *   PAYLOAD ... (argv, env)
 *                                          FALLBACK, or TAKEN then the rest
 *                                          EXIT | SPAWN | REAP | WAIT | SUBREAPER
 *   SPAWNED (fd: pidfd) | REAPED | WAITED | DONE
 *                                          ... until EXIT
 *
 * FALLBACK is only ever sent before any SPAWN: the front then runs today's
 * path (node bin/hako.cjs) with the same argv. EOF from the planner before EXIT
 * is a crashed planner: before any SPAWN (and before TAKEN) the front falls
 * back the same way; after one it kills what it spawned and exits 1 with one
 * sentence. TAKEN (optional, unanswered) says the planner acts on the call from
 * now on (state dirs, cgroups may be made before any SPAWN): a planner that
 * ends after it must not have the call run a second time by today's path.
 */
#ifndef HAKO_FRONT_PROTOCOL_H
#define HAKO_FRONT_PROTOCOL_H
#include <stdint.h>

#define HAKO_CALL_MAGIC   0x4c4c4143u /* "CALL" */
#define HAKO_CALL_VERSION 1u
#define HAKO_CALL_SOCKET  ".planner.sock"
/* A datagram's body is at most this long: argv and env are split into PAYLOADs. */
#define HAKO_CALL_CHUNK 65536u
/* At most this many fds on one message (SCM_MAX_FD is 253). */
#define HAKO_CALL_MAX_FDS 200u

enum hako_call_type {
  /* front -> planner */
  CALL_REQUEST = 1, /* struct hako_call_request; fds: cwd (O_PATH|O_DIRECTORY of the caller's cwd), 0, 1, 2 */
  CALL_PAYLOAD = 2, /* the next bytes of the payload (see struct hako_call_request) */
  CALL_SPAWNED = 3, /* struct hako_call_spawned; fd: the child's pidfd when pid > 0 */
  CALL_REAPED = 4,  /* struct hako_call_status */
  CALL_WAITED = 5,  /* struct hako_call_status */
  CALL_DONE = 6,    /* no body: SUBREAPER is done */
  /* planner -> front */
  CALL_FALLBACK = 16, /* no body: run today's path with the same argv */
  CALL_SPAWN =
      17,              /* struct hako_call_spawn, then int32 fd_to[nfds], int32 fd_from[nfds], uint32 ns_type[nns];
                          fds: init, plan, sync, [cgroup dir if has_cgroup], the sent from-fds in order, the ns fds in order */
  CALL_REAP = 18,      /* struct hako_call_pid: waitpid(pid, WNOHANG | __WALL) */
  CALL_WAIT = 19,      /* struct hako_call_pid: waitpid(pid, __WALL) until it ends, forwarding SIGINT, SIGTERM, SIGHUP,
                          SIGQUIT, SIGUSR1, SIGUSR2 and SIGWINCH the front receives meanwhile to pid */
  CALL_SUBREAPER = 20, /* no body: prctl(PR_SET_CHILD_SUBREAPER, 1), answered with DONE */
  CALL_EXIT = 21,      /* struct hako_call_exit: the front exits with code */
  CALL_TAKEN = 22,     /* no body, no answer: the planner acts on the call from now on; FALLBACK may not follow */
};

struct hako_call_hdr {
  uint32_t magic;   /* HAKO_CALL_MAGIC */
  uint32_t version; /* HAKO_CALL_VERSION */
  uint32_t type;    /* enum hako_call_type */
  uint32_t len;     /* body bytes after this header */
};

/* The payload is argc NUL-terminated strings (argv[0] first), then envc
 * NUL-terminated "NAME=value" strings: payload_len bytes in all, sent in
 * PAYLOAD messages of at most HAKO_CALL_CHUNK bytes right after REQUEST. */
struct hako_call_request {
  uint32_t umask; /* the caller's umask */
  uint32_t argc;
  uint32_t envc;
  uint32_t payload_len;
};

/* fd_from[i] >= 0: that fd of the front's own (the caller's stdio, 0..2);
 * fd_from[i] = -(k + 1): the k-th sent from-fd. fd_to[i]: where the child gets it.
 * ns_type[i]: CLONE_NEWPID or CLONE_NEWTIME, joined by the front around clone
 * (the addon's parentNamespaces). */
struct hako_call_spawn {
  uint64_t clone_flags;
  int32_t child_flags; /* HAKO_CHILD_* of child.h */
  uint32_t nfds;
  uint32_t nns;
  uint32_t has_cgroup; /* 1: a cgroup v2 dir fd follows sync: clone3 CLONE_INTO_CGROUP is tried first */
};

/* pid > 0: the child (pidfd attached); pid = -1: clone failed with err.
 * cgroup_errno as the addon's spawn: 0 born in the cgroup, -1 no fd given, else clone3's errno. */
struct hako_call_spawned {
  int32_t pid;
  int32_t err;
  int32_t cgroup_errno;
};

struct hako_call_pid {
  int32_t pid;
};

/* pid 0 with REAPED: still running. status: the raw wait status. err: waitpid's errno, or 0. */
struct hako_call_status {
  int32_t pid;
  int32_t status;
  int32_t err;
};

struct hako_call_exit {
  int32_t code;
};

#endif
