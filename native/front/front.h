/* The front's pieces (issue 20): one file per concern, this header between them. */
#ifndef HAKO_FRONT_H
#define HAKO_FRONT_H
#include <stddef.h>
#include <stdint.h>

#include "protocol.h"

/* What the caller asked for, as the front understands it before any planner. */
struct front_call {
  int argc;
  char **argv;
  char **envp;
  const char *verb;      /* the subcommand after the global flags, or NULL */
  const char *root_flag; /* --root's value, or NULL */
};

/* root.c: the state root this call uses, absolute (default of src/runtime/store.ts
 * defaultRoot()); 0, or -1 when unsure (the front then never guesses). */
int front_parse_args(struct front_call *c);
int front_state_root(const struct front_call *c, char *out, size_t size);
/* The root opened O_PATH when it is the caller's own dir (fstat: owned by the
 * euid, a directory, not group/other writable); -ENOENT when missing, other
 * -errno when it must not be used. */
int front_open_root(const char *root);

/* connect.c: a connection to the root's planner, its peer checked; -errno
 * (-ENOENT, -ECONNREFUSED: no planner lives there; -EPERM: another uid's). */
int front_connect(int root_fd);
/* Sends REQUEST (umask, argv, env; fds cwd, 0, 1, 2) and the PAYLOADs; 0 or -errno. */
int front_send_request(int sock, const struct front_call *c);

/* message.c: one planner message, checked against the protocol. */
struct front_msg {
  uint32_t type;
  uint32_t len;
  unsigned char *body; /* len bytes */
  int fds[HAKO_CALL_MAX_FDS];
  int nfds;
};
/* Receives one message into buf (size bytes, the body's space): 1, 0 at EOF, or
 * -errno (-EPROTO: not a well-formed planner message; its fds are closed). */
int front_recv(int sock, struct front_msg *m, unsigned char *buf, size_t size);
void front_close_fds(struct front_msg *m);
/* A SPAWN body, checked: every count within its bound and the fds present. */
struct front_spawn_req {
  struct hako_call_spawn h;
  const int32_t *fd_to;    /* nfds, unaligned-safe copies are made by the server */
  const int32_t *fd_from;  /* nfds */
  const uint32_t *ns_type; /* nns */
  int nsent;               /* from-fds sent after init, plan, sync and the cgroup dir */
};
#define FRONT_MAX_CHILD_FDS 256 /* child.c's own bound */
int front_parse_spawn(const struct front_msg *m, struct front_spawn_req *out);
/* Sends a message with optional fds; 0 or -errno. */
int front_send(int sock, uint32_t type, const void *body, uint32_t len, const int *fds, int nfds);

/* serve.c: the planner's requests until EXIT (never returns then), FALLBACK or
 * an ended planner before any SPAWN (returns 0: run today's path). */
int front_serve(int sock, const char **why);

/* fallback.c */
/* Runs today's path: node bin/hako.cjs with the same argv. why: for HAKO_PLANNER=require. */
void front_fallback(const struct front_call *c, const char *why) __attribute__((noreturn));
/* Whether the planner serves this verb. */
int front_serves(const char *verb);
/* Starts the root's planner, detached, when the verb is one it serves. */
void front_start_planner(const struct front_call *c, const char *root);
/* The directory of /proc/self/exe (bin/); 0 or -1. */
int front_exe_dir(char *out, size_t size);

#endif
