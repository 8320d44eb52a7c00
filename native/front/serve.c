/*
 * Serving the planner's requests: the front executes, the planner decides. It
 * clones the container's processes (they are the caller's descendants, as with
 * today's in-process path), reaps and waits for them, forwarding the signals
 * it receives meanwhile, until the planner says EXIT. A planner that ends
 * after something was spawned takes it down with it: nothing is left running
 * that no state describes.
 */
#include "front.h"

#include "../spawn.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/* Only namespace flags: anything else (CLONE_VM, CLONE_THREAD, ...) would make
 * the child something other than a fork of the front. */
#define NS_FLAGS                                                                                                       \
  ((uint64_t)(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET |                \
              CLONE_NEWCGROUP | CLONE_NEWTIME))
#define KNOWN_CHILD_FLAGS 3 /* HAKO_CHILD_DUMPABLE_WHILE_WAITING | HAKO_CHILD_BECOME_ROOT */
#define MAX_SPAWNS        64

/* The pidfds of what this call spawned: killed if the planner ends mid-call. */
static int spawned[MAX_SPAWNS];
static int nspawned;
/* The planner said it acts on the call (TAKEN): today's path may not run it again. */
static int taken;

static int pidfd_open_(pid_t pid) {
  return (int)syscall(SYS_pidfd_open, pid, 0);
}
static int pidfd_signal(int pidfd, int sig) {
  return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

static void planner_ended(void) __attribute__((noreturn));
static void planner_ended(void) {
  for (int i = 0; i < nspawned; i++) pidfd_signal(spawned[i], SIGKILL);
  for (int i = 0; i < nspawned; i++) {
    siginfo_t si;
    /* ECHILD: reaped already through REAP or WAIT. */
    while (waitid((idtype_t)P_PIDFD, (id_t)spawned[i], &si, WEXITED | __WALL) < 0 && errno == EINTR) {}
  }
  fputs("hako: the planner ended during the call; nothing it started is left running\n", stderr);
  exit(1);
}

static int reply_status(int sock, uint32_t type, pid_t pid, int status, int err) {
  struct hako_call_status st = {pid, status, err};
  return front_send(sock, type, &st, sizeof st, NULL, 0);
}

/* Each serve_* answers its request: 0, or -1 when the planner is lost (a
 * broken request, or the answer could not be sent). */
static int serve_spawn(int sock, struct front_msg *m) {
  struct front_spawn_req q;
  if (front_parse_spawn(m, &q) < 0) {
    front_close_fds(m);
    return -1;
  }
  struct hako_call_spawned res = {-1, 0, -1};
  int from[FRONT_MAX_CHILD_FDS], to[FRONT_MAX_CHILD_FDS], ns_fd[HAKO_SPAWN_MAX_NS], ns_type[HAKO_SPAWN_MAX_NS];
  int fixed = 3 + (int)q.h.has_cgroup;
  for (uint32_t i = 0; i < q.h.nfds; i++) {
    from[i] = q.fd_from[i] >= 0 ? q.fd_from[i] : m->fds[fixed - q.fd_from[i] - 1];
    to[i] = q.fd_to[i];
  }
  for (uint32_t i = 0; i < q.h.nns; i++) {
    ns_fd[i] = m->fds[fixed + q.nsent + (int)i];
    ns_type[i] = (int)q.ns_type[i];
  }
  struct hako_spawned out = {-1, -1, -1, -1, 0};
  if ((q.h.clone_flags & ~NS_FLAGS) || (q.h.child_flags & ~KNOWN_CHILD_FLAGS)) {
    res.err = EINVAL;
  } else if (nspawned == MAX_SPAWNS) {
    res.err = EAGAIN;
  } else {
    struct hako_spawn s = {
        .clone_flags = q.h.clone_flags,
        .init_fd = m->fds[0],
        .plan_fd = m->fds[1],
        .sync_fd = m->fds[2],
        .fd_from = from,
        .fd_to = to,
        .nfds = (int)q.h.nfds,
        .ns_fd = ns_fd,
        .ns_type = ns_type,
        .nns = (int)q.h.nns,
        .cgroup_fd = q.h.has_cgroup ? m->fds[3] : -1,
        .child_flags = q.h.child_flags,
    };
    int r = hako_spawn(&s, &out);
    res.pid = r < 0 ? -1 : out.pid;
    res.err = r < 0 ? -r : 0;
    res.cgroup_errno = out.cgroup_errno;
  }
  front_close_fds(m);
  if (res.pid > 0) spawned[nspawned++] = out.pidfd;
  return front_send(sock, CALL_SPAWNED, &res, sizeof res, res.pid > 0 ? &out.pidfd : NULL, res.pid > 0);
}

static int serve_reap(int sock, pid_t pid) {
  int status = 0;
  pid_t r = waitpid(pid, &status, WNOHANG | __WALL);
  return reply_status(sock, CALL_REAPED, r, r > 0 ? status : 0, r < 0 ? errno : 0);
}

/* waitpid(pid) until it ends; the signals a terminal or a supervisor sends the
 * front meanwhile are meant for the container: they go to pid. A planner that
 * ends meanwhile ends the call. */
static int serve_wait(int sock, pid_t pid) {
  static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};
  sigset_t set, old;
  sigemptyset(&set);
  for (size_t i = 0; i < sizeof forwarded / sizeof *forwarded; i++) sigaddset(&set, forwarded[i]);
  if (sigprocmask(SIG_BLOCK, &set, &old) < 0) return reply_status(sock, CALL_WAITED, -1, 0, errno);
  int status = 0, err = 0;
  pid_t r = waitpid(pid, &status, WNOHANG | __WALL);
  int sfd = r == 0 ? signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK) : -1;
  int pfd = r == 0 && pid > 0 ? pidfd_open_(pid) : -1;
  if (r == 0 && (sfd < 0 || pfd < 0)) {
    /* No way to watch it (no pidfd for pid -1): wait without forwarding. */
    do r = waitpid(pid, &status, __WALL);
    while (r < 0 && errno == EINTR);
  }
  while (r == 0) {
    struct pollfd p[3] = {{sfd, POLLIN, 0}, {pfd, POLLIN, 0}, {sock, 0, 0}};
    if (poll(p, 3, -1) < 0) {
      if (errno == EINTR) continue;
      err = errno;
      r = -1;
      break;
    }
    if (p[2].revents & (POLLHUP | POLLERR)) planner_ended();
    if (p[0].revents & POLLIN) {
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) pidfd_signal(pfd, (int)si.ssi_signo);
    }
    if (p[1].revents & POLLIN) {
      do r = waitpid(pid, &status, __WALL);
      while (r < 0 && errno == EINTR);
    }
  }
  if (r < 0 && !err) err = errno;
  if (sfd >= 0) {
    /* What arrived after the end is for no one: not for the front's own default action. */
    struct signalfd_siginfo si;
    while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {}
    close(sfd);
  }
  if (pfd >= 0) close(pfd);
  sigprocmask(SIG_SETMASK, &old, NULL);
  return reply_status(sock, CALL_WAITED, r, r > 0 ? status : 0, r < 0 ? err : 0);
}

int front_serve(int sock, const char **why) {
  static unsigned char buf[HAKO_CALL_CHUNK] __attribute__((aligned(8)));
  for (;;) {
    struct front_msg m;
    struct hako_call_pid p;
    int r = front_recv(sock, &m, buf, sizeof buf);
    if (r <= 0) {
      *why = r == 0 ? "the planner ended before serving it" : "the planner's message was not understood";
      break;
    }
    switch (m.type) {
    case CALL_TAKEN:
      taken = 1;
      break;
    case CALL_FALLBACK:
      if (nspawned || taken) planner_ended(); /* too late: something was done already */
      *why = "the planner sent it back";
      return 0;
    case CALL_EXIT: {
      struct hako_call_exit e;
      memcpy(&e, m.body, sizeof e);
      exit(e.code & 0xff);
    }
    case CALL_SPAWN:
      r = serve_spawn(sock, &m);
      break;
    case CALL_REAP:
      memcpy(&p, m.body, sizeof p);
      r = serve_reap(sock, p.pid);
      break;
    case CALL_WAIT:
      memcpy(&p, m.body, sizeof p);
      r = serve_wait(sock, p.pid);
      break;
    case CALL_SUBREAPER:
      prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
      r = front_send(sock, CALL_DONE, NULL, 0, NULL, 0);
      break;
    }
    if (r < 0) {
      *why = "the planner was lost during the call";
      break;
    }
  }
  /* Lost: before the planner acted today's path serves the call; after, nothing it spawned may stay. */
  if (nspawned || taken) planner_ended();
  return 0;
}
