/* Cost of a system call under a seccomp filter: getppid in a loop, ns per call.
 *   cc -O2 -static -o getppid-loop getppid-loop.c
 *   ./getppid-loop [CALLS] [FILTER.bpf|-] [getppid|personality]
 * FILTER.bpf is a raw struct sock_filter[] (hako's `program`, or libseccomp's
 * seccomp_export_bpf output) loaded before the loop; without it (or with -) the loop runs
 * under whatever filter it inherited. The third argument picks the call: getppid (the
 * default: constant ALLOW in most profiles, so the kernel's action cache decides it
 * without running the filter) or personality(0xffffffff) (allowed by argument value in
 * the containers default profile, so the filter runs every time). Static, so it can run
 * as a container's whole rootfs. */
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void load(const char *path) {
  static struct sock_filter insns[4096];
  FILE *f = fopen(path, "rb");
  if (!f) { perror(path); exit(1); }
  size_t n = fread(insns, sizeof(insns[0]), 4096, f);
  fclose(f);
  struct sock_fprog prog = { .len = (unsigned short)n, .filter = insns };
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog)) {
    perror("seccomp");
    exit(1);
  }
}

int main(int argc, char **argv) {
  long calls = argc > 1 ? atol(argv[1]) : 5000000;
  if (argc > 2 && strcmp(argv[2], "-") != 0) load(argv[2]);
  int persona = argc > 3 && strcmp(argv[3], "personality") == 0;
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  if (persona)
    for (long i = 0; i < calls; i++) syscall(SYS_personality, 0xffffffffUL);
  else
    for (long i = 0; i < calls; i++) syscall(SYS_getppid);
  clock_gettime(CLOCK_MONOTONIC, &b);
  double ns = (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
  printf("%.1f\n", ns / (double)calls);
  return 0;
}
