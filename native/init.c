/*
 * hako-init: the program every container process runs before its own.
 *
 * The runtime's cloned child executes it from a sealed memfd (child.c), so the
 * container can never reach the runtime's executable through /proc/PID/exe,
 * and it starts with only the fds the container gets, the plan and the sync
 * socket. It stays non-dumpable until the container's execve, maps the plan
 * and runs it (executor.c).
 *
 * usage (from child.c only): hako-init <plan fd> <sync fd>
 */
#include "executor.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int parse_fd(const char *s) {
  int v = 0;
  if (!s || !*s) return -1;
  for (; *s; s++) {
    if (*s < '0' || *s > '9' || v > 100000) return -1;
    v = v * 10 + (*s - '0');
  }
  return v;
}

int main(int argc, char **argv) {
  /* execve made us dumpable again: undo that before anything else. */
  syscall(SYS_prctl, PR_SET_DUMPABLE, 0, 0, 0, 0);
  int plan_fd = argc == 3 ? parse_fd(argv[1]) : -1;
  int sync_fd = argc == 3 ? parse_fd(argv[2]) : -1;
  if (plan_fd < 3 || sync_fd < 3) return 125;
  /* The sync socket closes at the container's execve: EOF tells the runtime it succeeded. */
  syscall(SYS_fcntl, sync_fd, F_SETFD, FD_CLOEXEC);
  struct stat sb;
  if (syscall(SYS_fstat, plan_fd, &sb) < 0 || sb.st_size <= 0) return 125;
  void *buf = (void *)syscall(SYS_mmap, 0, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, plan_fd, 0);
  syscall(SYS_close, plan_fd);
  if (buf == MAP_FAILED) return 125;
  hako_run_plan((const unsigned char *)buf, (size_t)sb.st_size, sync_fd);
  return 125;
}
