/*
 * The first moments of a container process, in the runtime's cloned child.
 *
 * The child is a copy of node: multi-threaded memory, the runtime's fds (the
 * cgroup directory, log files, sockets) and node as /proc/self/exe. Nothing of
 * that may reach the container (runc CVE-2019-5736, CVE-2024-21626), so the
 * child does the least it can with raw system calls and replaces itself with
 * hako-init, a small static program read from a sealed memfd: non-dumpable,
 * holding only the fds the container gets, the plan and the sync socket.
 */
#include "child.h"

#include "digits.h"
#include "plan_format.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef AT_EMPTY_PATH
#define AT_EMPTY_PATH 0x1000
#endif

/* Node ignores SIGPIPE and libuv blocks some signals; an ignored disposition
 * and the mask survive execve, so give the container the defaults. */
static void reset_signals(void) {
  struct {
    void *handler;
    unsigned long flags;
    void *restorer;
    uint64_t mask;
  } dfl = {0, 0, 0, 0};
  uint64_t empty = 0;
  for (int sig = 1; sig < 65; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    syscall(SYS_rt_sigaction, sig, &dfl, 0, 8);
  }
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &empty, 0, 8);
}

static void fail(int sync_fd, int err) {
  struct hako_msg_wire m = {MSG_ERROR, 0, err, 0};
  syscall(SYS_sendto, sync_fd, &m, sizeof m, MSG_NOSIGNAL, 0, 0);
  for (;;) syscall(SYS_exit_group, 125);
}

static int is_target(int fd, const int *fd_to, int n) {
  for (int i = 0; i < n; i++)
    if (fd_to[i] == fd) return 1;
  return 0;
}

/* Waits for the runtime's go-ahead (MSG_GO); anything else ends the child. */
static void wait_go(int sync_fd) {
  struct hako_msg_wire m;
  long r;
  do r = syscall(SYS_recvfrom, sync_fd, &m, sizeof m, 0, 0, 0);
  while (r < 0 && errno == EINTR);
  if (r != (long)sizeof m || m.type != MSG_GO)
    for (;;) syscall(SYS_exit_group, 125);
}

void hako_child_exec(int init_fd, int plan_fd, int sync_fd, const int *fd_from, const int *fd_to, int nfds, int flags) {
  int dumpable_while_waiting = flags & HAKO_CHILD_DUMPABLE_WHILE_WAITING;
  /* First of all: nothing in a namespace we share with others may ptrace us,
   * read our fds or open /proc/self/exe (the node binary). */
  syscall(SYS_prctl, PR_SET_DUMPABLE, 0, 0, 0, 0);
  reset_signals();
  if (nfds > 256) fail(sync_fd, E2BIG);
  /* Everything we keep goes above every target first, so no source is
   * clobbered on the way: then the targets, then sync, plan and init right
   * above them, then every other fd is closed. */
  int high = 3;
  for (int i = 0; i < nfds; i++)
    if (fd_to[i] >= high) high = fd_to[i] + 1;
  int scratch = high + 3, copies[256], keep[3];
  const int own[3] = {sync_fd, plan_fd, init_fd};
  for (int i = 0; i < 3; i++) {
    keep[i] = (int)syscall(SYS_fcntl, own[i], F_DUPFD_CLOEXEC, scratch);
    if (keep[i] < 0) fail(sync_fd, errno);
  }
  /* Node may have marked its stdio close-on-exec; the container inherits it. */
  for (int fd = 0; fd < 3; fd++) syscall(SYS_fcntl, fd, F_SETFD, 0);
  for (int i = 0; i < nfds; i++) {
    copies[i] = (int)syscall(SYS_fcntl, fd_from[i], F_DUPFD_CLOEXEC, scratch);
    if (copies[i] < 0) fail(keep[0], errno);
  }
  for (int i = 0; i < nfds; i++)
    if (syscall(SYS_dup3, copies[i], fd_to[i], 0) < 0) fail(keep[0], errno);
  /* sync and plan survive the execve into hako-init; init needs no fd there. */
  if (syscall(SYS_dup3, keep[0], high, 0) < 0) fail(keep[0], errno);
  if (syscall(SYS_dup3, keep[1], high + 1, 0) < 0) fail(keep[0], errno);
  if (syscall(SYS_dup3, keep[2], high + 2, O_CLOEXEC) < 0) fail(keep[0], errno);
  for (int fd = 3; fd < high; fd++)
    if (!is_target(fd, fd_to, nfds)) syscall(SYS_close, fd);
  if (syscall(SYS_close_range, (unsigned)(high + 3), ~0U, 0) < 0) fail(high, errno);

  /* The runtime writes our id maps and places us in our cgroup meanwhile. The
   * exec waits for the maps: a process whose uid is not mapped yet would lose
   * every capability in its new user namespace across execve. A rootless
   * runtime opens /proc/PID/uid_map only while we are dumpable (as runc's child
   * is then); the fds above are all we hold by now. */
  if (dumpable_while_waiting) {
    /* Say so: the runtime must not open /proc/PID before we are dumpable again. */
    struct hako_msg_wire m = {MSG_MAPS_PLEASE, 0, 0, 0};
    syscall(SYS_prctl, PR_SET_DUMPABLE, 1, 0, 0, 0);
    if (syscall(SYS_sendto, high, &m, sizeof m, MSG_NOSIGNAL, 0, 0) != (long)sizeof m) fail(high, errno);
  }
  wait_go(high);
  if (dumpable_while_waiting) syscall(SYS_prctl, PR_SET_DUMPABLE, 0, 0, 0, 0);
  /* We keep the runtime's ids, which the new namespace may not map (root's 0
   * onto a subordinate range): execve would then take every capability away.
   * As its root (mapped now), execve keeps them, as runc's child does. Where 0
   * is not mapped, the plan's own steps say what fails. */
  if (flags & HAKO_CHILD_BECOME_ROOT) {
    syscall(SYS_setresgid, 0, 0, 0);
    syscall(SYS_setresuid, 0, 0, 0);
  }

  char plan_arg[16], sync_arg[16];
  hako_utoa(plan_arg, (unsigned)(high + 1));
  hako_utoa(sync_arg, (unsigned)high);
  const char *argv[] = {"hako-init", plan_arg, sync_arg, 0};
  const char *envp[] = {0};
  syscall(SYS_execveat, high + 2, "", argv, envp, AT_EMPTY_PATH);
  fail(high, errno);
}
