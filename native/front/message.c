/*
 * The planner's messages, read and checked before anything acts on them: one
 * datagram each, a header whose length is the datagram's, a body of exactly
 * the size its type names, and no fd where none belongs. Anything else is a
 * broken planner (-EPROTO), treated as one that ended.
 */
#include "front.h"

#include "../spawn.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

union fd_space {
  char buf[CMSG_SPACE(sizeof(int) * HAKO_CALL_MAX_FDS)];
  struct cmsghdr align;
};

void front_close_fds(struct front_msg *m) {
  for (int i = 0; i < m->nfds; i++) close(m->fds[i]);
  m->nfds = 0;
}

/* The body size each type must have; -1: checked by its own parser (SPAWN). */
static long body_size(uint32_t type) {
  switch (type) {
  case CALL_FALLBACK:
  case CALL_SUBREAPER:
  case CALL_TAKEN:
    return 0;
  case CALL_REAP:
  case CALL_WAIT:
    return sizeof(struct hako_call_pid);
  case CALL_EXIT:
    return sizeof(struct hako_call_exit);
  case CALL_SPAWN:
    return -1;
  default:
    return -2;
  }
}

int front_recv(int sock, struct front_msg *m, unsigned char *buf, size_t size) {
  struct hako_call_hdr hdr;
  struct iovec iov[2] = {{&hdr, sizeof hdr}, {buf, size}};
  union fd_space u;
  struct msghdr mh;
  memset(&mh, 0, sizeof mh);
  memset(&u, 0, sizeof u);
  mh.msg_iov = iov;
  mh.msg_iovlen = 2;
  mh.msg_control = u.buf;
  mh.msg_controllen = sizeof u.buf;
  m->nfds = 0;
  ssize_t r;
  do r = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
  while (r < 0 && errno == EINTR);
  if (r < 0) return -errno;
  if (mh.msg_controllen > 0)
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len < CMSG_LEN(0)) continue;
      size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < n; i++) {
        int fd;
        memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
        if (m->nfds < (int)HAKO_CALL_MAX_FDS)
          m->fds[m->nfds++] = fd;
        else
          close(fd);
      }
    }
  if (r == 0 && m->nfds == 0) return 0;
  int bad = (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || (size_t)r < sizeof hdr || hdr.magic != HAKO_CALL_MAGIC ||
            hdr.version != HAKO_CALL_VERSION || hdr.len != (size_t)r - sizeof hdr;
  long want = bad ? -2 : body_size(hdr.type);
  if (!bad && (want == -2 || (want >= 0 && (hdr.len != (uint32_t)want || m->nfds != 0)))) bad = 1;
  if (bad) {
    front_close_fds(m);
    return -EPROTO;
  }
  m->type = hdr.type;
  m->len = hdr.len;
  m->body = buf;
  return 1;
}

int front_parse_spawn(const struct front_msg *m, struct front_spawn_req *out) {
  if (m->type != CALL_SPAWN || m->len < sizeof out->h) return -EPROTO;
  memcpy(&out->h, m->body, sizeof out->h);
  const struct hako_call_spawn *h = &out->h;
  if (h->nfds > FRONT_MAX_CHILD_FDS || h->nns > HAKO_SPAWN_MAX_NS || h->has_cgroup > 1) return -EPROTO;
  size_t want = sizeof out->h + sizeof(int32_t) * (2 * (size_t)h->nfds + h->nns);
  if (m->len != want) return -EPROTO;
  int fixed = 3 + (int)h->has_cgroup;
  out->nsent = m->nfds - fixed - (int)h->nns;
  if (out->nsent < 0) return -EPROTO;
  /* The body follows the header at an 8-byte aligned offset (24): 4-byte reads are aligned. */
  out->fd_to = (const int32_t *)(m->body + sizeof out->h);
  out->fd_from = out->fd_to + h->nfds;
  out->ns_type = (const uint32_t *)(out->fd_from + h->nfds);
  for (uint32_t i = 0; i < h->nfds; i++) {
    int64_t from = out->fd_from[i];
    /* The caller's own stdio, or one of the fds sent with this message. */
    if (from > 2 || (from < 0 && -(from + 1) >= out->nsent)) return -EPROTO;
    if (out->fd_to[i] < 0 || out->fd_to[i] >= 65536) return -EPROTO;
  }
  for (uint32_t i = 0; i < h->nns; i++)
    if (out->ns_type[i] != CLONE_NEWPID && out->ns_type[i] != CLONE_NEWTIME) return -EPROTO;
  return 0;
}

int front_send(int sock, uint32_t type, const void *body, uint32_t len, const int *fds, int nfds) {
  struct hako_call_hdr hdr = {HAKO_CALL_MAGIC, HAKO_CALL_VERSION, type, len};
  struct iovec iov[2] = {{&hdr, sizeof hdr}, {(void *)body, len}};
  union fd_space u;
  struct msghdr mh;
  memset(&mh, 0, sizeof mh);
  mh.msg_iov = iov;
  mh.msg_iovlen = len ? 2 : 1;
  if (nfds > (int)HAKO_CALL_MAX_FDS) return -EINVAL;
  if (nfds > 0) {
    memset(&u, 0, sizeof u);
    mh.msg_control = u.buf;
    mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
  }
  ssize_t r;
  do r = sendmsg(sock, &mh, MSG_NOSIGNAL);
  while (r < 0 && errno == EINTR);
  if (r < 0) return -errno;
  return (size_t)r == sizeof hdr + len ? 0 : -EIO;
}
