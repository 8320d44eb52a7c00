/* A small seccomp user-notification agent for the tests (runtime-spec 1.1 listenerPath).
 *   agent SOCKET LOG MODE VALUE
 * Listens on the unix socket SOCKET (mode 0777, so a rootless runtime can connect). Each
 * connection brings one container process state (JSON) with the notify fd in SCM_RIGHTS.
 * Every notification is answered: MODE "errno" fails the call with errno VALUE, MODE "value"
 * makes it succeed and return VALUE without running it. LOG gets one line per event:
 *   state <the JSON as received> fds=<number of fds received>
 *   notif pid=<pid> nr=<syscall nr> arch=<hex> arg0=<hex>
 * and "ready" goes to stdout once the socket listens. Runs until killed. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MAXFDS 16

static FILE *logf;

static int take_state(int conn) {
  static char buf[65536];
  union {
    char b[CMSG_SPACE(sizeof(int) * 4)];
    struct cmsghdr align;
  } u;
  struct iovec iov = {buf, sizeof buf - 1};
  struct msghdr mh = {0};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = u.b;
  mh.msg_controllen = sizeof u.b;
  ssize_t n = recvmsg(conn, &mh, MSG_CMSG_CLOEXEC);
  if (n < 0) return -1;
  buf[n] = 0;
  int fd = -1, nfds = 0;
  for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
    if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
      nfds = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
      if (nfds > 0) memcpy(&fd, CMSG_DATA(cm), sizeof(int));
    }
  }
  /* The runtime sends one state per connection, then closes it. */
  char rest;
  ssize_t more = recv(conn, &rest, 1, 0);
  fprintf(logf, "state %s fds=%d closed=%s\n", buf, nfds, more == 0 ? "yes" : "no");
  fflush(logf);
  return fd;
}

static void answer(int fd, const char *mode, long value) {
  struct seccomp_notif req;
  struct seccomp_notif_resp resp;
  memset(&req, 0, sizeof req);
  if (ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0) return; /* the caller went away */
  fprintf(logf, "notif pid=%u nr=%d arch=%x arg0=%llx\n", req.pid, req.data.nr, req.data.arch,
          (unsigned long long)req.data.args[0]);
  fflush(logf);
  memset(&resp, 0, sizeof resp);
  resp.id = req.id;
  if (strcmp(mode, "errno") == 0)
    resp.error = (int)-value;
  else
    resp.val = value;
  ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, &resp);
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: agent SOCKET LOG errno|value VALUE\n");
    return 2;
  }
  logf = fopen(argv[2], "a");
  if (!logf) {
    perror(argv[2]);
    return 1;
  }
  long value = strtol(argv[4], NULL, 0);
  struct sockaddr_un sa = {0};
  sa.sun_family = AF_UNIX;
  if (strlen(argv[1]) >= sizeof sa.sun_path) {
    fprintf(stderr, "socket path too long\n");
    return 1;
  }
  strcpy(sa.sun_path, argv[1]);
  unlink(argv[1]);
  int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(ls, 8) < 0) {
    perror("listen");
    return 1;
  }
  chmod(argv[1], 0777);
  printf("ready\n");
  fflush(stdout);
  struct pollfd p[MAXFDS + 1];
  int n = 0;
  p[0].fd = ls;
  p[0].events = POLLIN;
  for (;;) {
    if (poll(p, (nfds_t)n + 1, -1) < 0) {
      if (errno == EINTR) continue;
      perror("poll");
      return 1;
    }
    for (int i = n; i >= 1; i--) {
      if (p[i].revents & POLLIN)
        answer(p[i].fd, argv[3], value);
      else if (p[i].revents & (POLLHUP | POLLERR | POLLNVAL)) {
        /* Every process under the filter is gone. */
        close(p[i].fd);
        p[i] = p[n--];
      }
    }
    if (p[0].revents & POLLIN) {
      int conn = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
      if (conn < 0) continue;
      int fd = take_state(conn);
      close(conn);
      if (fd >= 0 && n < MAXFDS) {
        n++;
        p[n].fd = fd;
        p[n].events = POLLIN;
        p[n].revents = 0;
      } else if (fd >= 0)
        close(fd);
    }
  }
}
