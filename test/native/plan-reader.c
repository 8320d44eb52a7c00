/*
 * Drives the executor's plan reader with well-formed, truncated and corrupted
 * plans under AddressSanitizer/UBSan, in a forked child each time (the
 * executor exits). The plan holds harmless steps (UMASK, CHDIR, RLIMIT on
 * RLIMIT_CORE, FIND_EXEC), but a corrupted op byte can turn one into another
 * with the same arguments (CHDIR into MOVE_CHROOT): each child runs in new
 * user, mount, network, uts and ipc namespaces, so nothing reaches the host.
 * Every run must end in a clean exit with code 0 (plan done) or 125 (a step
 * or the plan refused), never a crash.
 *
 * usage: plan-reader <iterations>
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../native/executor.h"
#include "../../native/plan_format.h"

static unsigned char buf[4096];
static size_t len;

static void u32(uint32_t v) {
  for (int i = 0; i < 4; i++) buf[len++] = (unsigned char)(v >> (8 * i));
}
static void arg_int(uint64_t v) {
  u32(HAKO_ARG_INT);
  for (int i = 0; i < 8; i++) buf[len++] = (unsigned char)(v >> (8 * i));
}
static void arg_str(const char *s) {
  u32(HAKO_ARG_BYTES);
  u32((uint32_t)strlen(s));
  memcpy(buf + len, s, strlen(s) + 1);
  len += strlen(s) + 1;
}

static void build_valid(void) {
  len = 0;
  memcpy(buf, HAKO_PLAN_MAGIC, 4);
  len = 4;
  u32(HAKO_PLAN_VERSION);
  u32(4);
  u32(OP_UMASK);
  u32(1);
  arg_int(022);
  u32(OP_CHDIR);
  u32(1);
  arg_str("/tmp");
  u32(OP_RLIMIT);
  u32(3);
  arg_int(4 /* RLIMIT_CORE */);
  arg_int(0);
  arg_int(0);
  u32(OP_FIND_EXEC);
  u32(2);
  arg_str("/nonexistent/x");
  arg_str("/bin/sh");
}

/* Runs the plan in a child; returns its exit code, or -signal. */
static int run(const unsigned char *p, size_t n) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) < 0) return -100;
  pid_t pid = fork();
  if (pid == 0) {
    close(sv[0]);
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC) < 0) _exit(98);
    hako_run_plan(p, n, sv[1]);
    _exit(99);
  }
  close(sv[1]);
  char drain[64];
  while (read(sv[0], drain, sizeof drain) > 0) {}
  close(sv[0]);
  int st;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
}

int main(int argc, char **argv) {
  int iterations = argc > 1 ? atoi(argv[1]) : 200;
  unsigned seed = 12345;
  build_valid();
  int r = run(buf, len);
  if (r != 0) {
    fprintf(stderr, "valid plan: exit %d, want 0\n", r);
    return 1;
  }
  unsigned char copy[4096];
  for (size_t cut = 0; cut < len; cut++) {
    r = run(buf, cut);
    if (r != 125) {
      fprintf(stderr, "plan cut at %zu: exit %d, want 125\n", cut, r);
      return 1;
    }
  }
  for (int i = 0; i < iterations; i++) {
    memcpy(copy, buf, len);
    for (int k = 0; k < 3; k++) {
      seed = seed * 1103515245u + 12345u;
      size_t at = 12 + (seed >> 8) % (len - 12);
      seed = seed * 1103515245u + 12345u;
      copy[at] = (unsigned char)(seed >> 16);
    }
    r = run(copy, len);
    if (r < 0 || (r != 0 && r != 125 && r != 126 && r != 127)) {
      fprintf(stderr, "corrupted plan %d: exit %d\n", i, r);
      return 1;
    }
  }
  printf("plan reader: valid, %zu truncations and %d corruptions handled\n", len, iterations);
  return 0;
}
