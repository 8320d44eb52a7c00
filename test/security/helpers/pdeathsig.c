/*
 * The executor's PARENT_DEATH_SIGNAL step against a parent that dies, for
 * test/security/die-with-up.test.ts. Three processes, as under `hako up`: this
 * one (a subreaper, like up for a forked init), a "runtime" R holding its end of
 * the sync socket, and R's child C, which runs the plan (executor.c, linked in).
 *
 *   pdeathsig PLAN dead-before  R closes its end and exits before C runs the plan
 *                               (C waits until it is reparented to us first)
 *   pdeathsig PLAN dies-after   R waits for C's MSG_READY, then exits
 *
 * Prints what became of C: "exit N", "signal N", or "alive" when C still runs
 * 1.5 s after R is gone (C is killed then).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../../native/executor.h"
#include "../../../native/plan_format.h"

static unsigned char plan[65536];

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, 0);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: pdeathsig PLAN dead-before|dies-after\n");
    return 2;
  }
  int before = strcmp(argv[2], "dead-before") == 0;
  int fd = open(argv[1], O_RDONLY | O_CLOEXEC);
  ssize_t len = fd < 0 ? -1 : read(fd, plan, sizeof plan);
  if (len <= 0) {
    perror("read the plan");
    return 2;
  }
  close(fd);
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
    perror("PR_SET_CHILD_SUBREAPER");
    return 2;
  }
  /* R writes C's pid here, so we can wait for C once R is gone. */
  int pp[2];
  if (pipe2(pp, O_CLOEXEC) < 0) return 2;
  pid_t r = fork();
  if (r == 0) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) _exit(3);
    pid_t rpid = getpid();
    pid_t c = fork();
    if (c == 0) {
      close(sv[0]);
      /* dead-before: run the plan only once R has exited and we are ours. */
      if (before)
        while (getppid() == rpid) sleep_ms(5);
      hako_run_plan(plan, (size_t)len, sv[1]);
      _exit(99);
    }
    close(sv[1]);
    if (write(pp[1], &c, sizeof c) != (ssize_t)sizeof c) _exit(3);
    if (!before) {
      struct hako_msg_wire m;
      ssize_t n;
      do n = recv(sv[0], &m, sizeof m, 0);
      while (n < 0 && errno == EINTR);
      if (n != (ssize_t)sizeof m || m.type != MSG_READY) {
        fprintf(stderr, "pdeathsig: no MSG_READY from the plan (got %zd bytes, type %u)\n", n, n > 0 ? m.type : 0);
        _exit(4);
      }
    }
    _exit(0);
  }
  close(pp[1]);
  pid_t c = -1;
  if (read(pp[0], &c, sizeof c) != (ssize_t)sizeof c) {
    fprintf(stderr, "pdeathsig: no child pid\n");
    return 2;
  }
  int st;
  waitpid(r, &st, 0);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    fprintf(stderr, "pdeathsig: the runtime process failed (%#x)\n", st);
    kill(c, SIGKILL);
    return 2;
  }
  /* C is ours now (we are the subreaper): wait for it a while. */
  for (int waited = 0; waited < 1500; waited += 10) {
    pid_t w = waitpid(c, &st, WNOHANG);
    if (w == c) {
      if (WIFSIGNALED(st))
        printf("signal %d\n", WTERMSIG(st));
      else
        printf("exit %d\n", WEXITSTATUS(st));
      return 0;
    }
    sleep_ms(10);
  }
  printf("alive\n");
  kill(c, SIGKILL);
  waitpid(c, &st, 0);
  return 0;
}
