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

long hako_recv_fd(int sock, void *data, size_t len, int *fd) {
  struct iovec iov = {data, len};
  union cmsg_space u;
  struct msghdr mh;
  memset(&mh, 0, sizeof mh);
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = u.buf;
  mh.msg_controllen = sizeof u.buf;
  *fd = -1;
  long r;
  do r = syscall(SYS_recvmsg, sock, &mh, MSG_CMSG_CLOEXEC);
  while (r < 0 && errno == EINTR);
  if (r < 0) return -errno;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) memcpy(fd, CMSG_DATA(c), sizeof(int));
  return r;
}
