/*
 * The clone of a container process (issue 20: shared by the addon and the
 * front). The child is a copy of its parent (node, or the front) and runs
 * hako_child_exec, which makes raw system calls only until it executes
 * hako-init.
 */
#include "spawn.h"

#include "child.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

/* clone3's argument, up to `cgroup` (CLONE_ARGS_SIZE_VER2), spelled out so the
 * build does not depend on <linux/sched.h> agreeing with glibc's <sched.h>. */
struct hako_clone_args {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};
#define HAKO_CLONE_INTO_CGROUP 0x200000000ULL
#define HAKO_CLONE_PIDFD       0x1000ULL

static void leave(const int *saved, const int *type, int n) {
  for (int i = n - 1; i >= 0; i--) {
    setns(saved[i], type[i]);
    close(saved[i]);
  }
}

int hako_spawn(const struct hako_spawn *s, struct hako_spawned *out) {
  out->pid = -1;
  out->pidfd = -1;
  out->cgroup_errno = -1;
  out->failed_ns = -1;
  out->failed_save = 0;
  if (s->nns < 0 || s->nns > HAKO_SPAWN_MAX_NS || s->nfds < 0) return -EINVAL;

  /* Namespaces that only affect children (pid, time) are joined by this
   * thread around clone and left again right after. */
  int saved[HAKO_SPAWN_MAX_NS], joined = 0;
  for (int i = 0; i < s->nns; i++) {
    int type = s->ns_type[i];
    if (type != CLONE_NEWPID && type != CLONE_NEWTIME) {
      leave(saved, s->ns_type, joined);
      out->failed_ns = i;
      return -EINVAL;
    }
    const char *self =
        type == CLONE_NEWTIME ? "/proc/thread-self/ns/time_for_children" : "/proc/thread-self/ns/pid_for_children";
    int fd = open(self, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(s->ns_fd[i], type) < 0) {
      int e = errno;
      out->failed_save = fd < 0;
      if (fd >= 0) close(fd);
      leave(saved, s->ns_type, joined);
      out->failed_ns = i;
      return -e;
    }
    saved[joined++] = fd;
  }

  /* Born into a pid namespace others live in, the child would be visible there
   * from its first instruction, dumpable like us until it says otherwise: make
   * it non-dumpable from birth (the flag belongs to the memory it copies), as
   * runc's nsexec is. Our own is given back right after. */
  int was_dumpable = joined ? prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) : -1;
  if (was_dumpable > 0) prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  /* fork semantics (no CLONE_VM): the child has its own copy of the fd
   * vectors, and only this thread. CLONE_PIDFD: the child is named by a pidfd
   * from its birth on. */
  int pidfd = -1;
  long pid = -1;
  struct hako_clone_args ca;
  memset(&ca, 0, sizeof ca);
  ca.flags = s->clone_flags | HAKO_CLONE_PIDFD;
  ca.pidfd = (uint64_t)(uintptr_t)&pidfd;
  ca.exit_signal = SIGCHLD;
  if (s->cgroup_fd >= 0) {
    /* Born in its cgroup: no later migration, which costs the kernel an RCU
     * grace period per write to cgroup.procs. */
    ca.flags |= HAKO_CLONE_INTO_CGROUP;
    ca.cgroup = (uint64_t)s->cgroup_fd;
    pid = syscall(SYS_clone3, &ca, sizeof ca);
    out->cgroup_errno = pid >= 0 ? 0 : errno;
    ca.flags &= ~HAKO_CLONE_INTO_CGROUP;
    ca.cgroup = 0;
  }
  if (pid < 0) pid = syscall(SYS_clone3, &ca, sizeof ca);
  if (pid == 0) {
    hako_child_exec(s->init_fd, s->plan_fd, s->sync_fd, s->fd_from, s->fd_to, s->nfds, s->child_flags);
    for (;;) syscall(SYS_exit_group, 125);
  }
  int e = errno;
  if (was_dumpable > 0) prctl(PR_SET_DUMPABLE, was_dumpable, 0, 0, 0);
  leave(saved, s->ns_type, joined);
  if (pid < 0) return -e;
  out->pid = (int)pid;
  out->pidfd = pidfd;
  return 0;
}
