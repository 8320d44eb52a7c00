/*
 * Passing one fd over a unix socket (SCM_RIGHTS): the pty master to a console
 * socket, a seccomp listener to the runtime, the runtime's sockets to itself.
 * Raw system calls only, so the executor may use it after clone.
 */
#include "fdpass.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

union cmsg_space {
  char buf[CMSG_SPACE(sizeof(int))];
  struct cmsghdr align;
};

int hako_send_fd(int sock, int fd, const void *data, size_t len) {
  struct iovec iov = {(void *)data, len};
  union cmsg_space u;
  struct msghdr mh;
  memset(&mh, 0, sizeof mh);
  memset(&u, 0, sizeof u);
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = u.buf;
  mh.msg_controllen = sizeof u.buf;
  struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cm), &fd, sizeof(int));
  long r;
  do r = syscall(SYS_sendmsg, sock, &mh, MSG_NOSIGNAL);
  while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : 0;
}

long hako_recv_msg(int sock, void *data, size_t len, int *fd, int *pid) {
  struct iovec iov = {data, len};
  union {
    char buf[CMSG_SPACE(sizeof(int) * 4) + CMSG_SPACE(sizeof(struct ucred))];
    struct cmsghdr align;
  } u;
  struct msghdr mh;
  memset(&mh, 0, sizeof mh);
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = u.buf;
  mh.msg_controllen = sizeof u.buf;
  *fd = -1;
  if (pid) *pid = 0;
  long r;
  do r = syscall(SYS_recvmsg, sock, &mh, MSG_CMSG_CLOEXEC);
  while (r < 0 && errno == EINTR);
  if (r < 0) return -errno;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level != SOL_SOCKET) continue;
    if (c->cmsg_type == SCM_RIGHTS) {
      size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < n; i++) {
        int f;
        memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof f);
        if (*fd < 0)
          *fd = f;
        else
          syscall(SYS_close, f);
      }
    } else if (c->cmsg_type == SCM_CREDENTIALS && pid) {
      struct ucred uc;
      memcpy(&uc, CMSG_DATA(c), sizeof uc);
      *pid = uc.pid;
    }
  }
  return r;
}

long hako_recv_fd(int sock, void *data, size_t len, int *fd) {
  return hako_recv_msg(sock, data, len, fd, 0);
}
