/*
 * bait: the control for the attacks on the runtime's processes. A process
 * that deliberately has everything hako's helpers must not have, put where the
 * attacker can see it: it joins the user and pid namespaces of a container's
 * process (TARGET_PID, a host pid) and forks a child there that stays dumpable,
 * holds an fd on a host directory (DIR) and a SOCK_SEQPACKET socketpair, and
 * has DIR as its cwd and the host's / as its root. An attacker that finds the
 * marker through it shows that the probes do see an escape when there is one.
 *
 *   bait TARGET_PID DIR
 *
 * Prints {"hostPid":H,"nsPid":N} once the child is in place (N: its pid in
 * the container's pid namespace), then waits for the child, which ends on
 * SIGKILL/SIGTERM or after 90 s.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/capability.h>
#include <unistd.h>

static int die(const char *what) {
  printf("{\"error\":\"%s\",\"errno\":%d}\n", what, errno);
  fflush(stdout);
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 3) return 2;
  alarm(95);
  long target = atol(argv[1]);
  int dirfd = open(argv[2], O_RDONLY | O_DIRECTORY);
  if (dirfd < 0) return die("open dir");
  if (chdir(argv[2]) < 0) return die("chdir");
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) < 0) return die("socketpair");

  char p[64];
  struct stat mine, theirs;
  snprintf(p, sizeof p, "/proc/%ld/ns/user", target);
  int joined_user = 0;
  if (stat("/proc/self/ns/user", &mine) < 0 || stat(p, &theirs) < 0) return die("stat user ns");
  if (mine.st_ino != theirs.st_ino) {
    int fd = open(p, O_RDONLY);
    if (fd < 0 || setns(fd, CLONE_NEWUSER) < 0) return die("setns user");
    close(fd);
    joined_user = 1;
  }
  snprintf(p, sizeof p, "/proc/%ld/ns/pid", target);
  int fd = open(p, O_RDONLY);
  if (fd < 0 || setns(fd, CLONE_NEWPID) < 0) return die("setns pid");
  close(fd);

  int pipefd[2];
  if (pipe(pipefd) < 0) return die("pipe");
  pid_t child = fork();
  if (child < 0) return die("fork");
  if (child == 0) {
    close(pipefd[0]);
    /* Be the container's root, as its processes are (ids in a user namespace
     * we joined are mapped ones), and stay dumpable: everything the runtime
     * must not be. */
    if (joined_user && (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)) _exit(3);
    /* No capabilities: the kernel lets a process read another's fds only when
     * its own permitted set covers the other's (commoncap), and the container's
     * processes have few. */
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct none[2] = {{0, 0, 0}, {0, 0, 0}};
    if (syscall(SYS_capset, &hdr, none) < 0) _exit(5);
    prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
    alarm(90);
    pid_t me = getpid();
    if (write(pipefd[1], &me, sizeof me) != sizeof me) _exit(4);
    close(pipefd[1]);
    for (;;) pause();
  }
  close(pipefd[1]);
  pid_t ns_pid = -1;
  if (read(pipefd[0], &ns_pid, sizeof ns_pid) != sizeof ns_pid) {
    kill(child, SIGKILL);
    return die("child did not start");
  }
  printf("{\"hostPid\":%d,\"nsPid\":%d,\"dirFd\":%d,\"sockets\":[%d,%d]}\n", child, ns_pid, dirfd, sv[0], sv[1]);
  fflush(stdout);
  int st;
  while (waitpid(child, &st, 0) < 0 && errno == EINTR) {}
  return 0;
}
