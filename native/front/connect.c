/*
 * Reaching the caller's own planner and handing it the call: argv, the
 * environment, the umask, the cwd (as an fd: the planner resolves relative
 * paths against it) and the caller's stdio.
 */
#include "front.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int front_connect(int root_fd) {
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  /* Through the checked root's fd: a short path whatever the root's length,
   * and the very directory that was checked. */
  snprintf(addr.sun_path, sizeof addr.sun_path, "/proc/self/fd/%d/%s", root_fd, HAKO_CALL_SOCKET);
  /* Non-blocking while connecting: a planner that does not accept (stopped,
   * its backlog full) is no reason to wait; today's path serves instead. */
  int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (s < 0) return -errno;
  if (connect(s, (struct sockaddr *)&addr, sizeof addr) < 0) {
    int e = errno == EAGAIN ? EBUSY : errno;
    close(s);
    return -e;
  }
  /* A planner serves only its own uid, and is served only by it. */
  struct ucred cred;
  socklen_t cl = sizeof cred;
  if (getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0 || cl != sizeof cred || cred.uid != geteuid()) {
    close(s);
    return -EPERM;
  }
  int fl = fcntl(s, F_GETFL);
  if (fl < 0 || fcntl(s, F_SETFL, fl & ~O_NONBLOCK) < 0) {
    int e = errno;
    close(s);
    return -e;
  }
  return s;
}

int front_send_request(int sock, const struct front_call *c) {
  /* The payload: argc strings then envc strings, each NUL-terminated. */
  size_t total = 0;
  uint32_t envc = 0;
  for (int i = 0; i < c->argc; i++) total += strlen(c->argv[i]) + 1;
  for (char **e = c->envp; *e; e++, envc++) total += strlen(*e) + 1;
  if (total > UINT32_MAX || c->argc < 0) return -E2BIG;
  char *payload = malloc(total ? total : 1);
  if (!payload) return -ENOMEM;
  size_t off = 0;
  for (int i = 0; i < c->argc; i++) {
    size_t n = strlen(c->argv[i]) + 1;
    memcpy(payload + off, c->argv[i], n);
    off += n;
  }
  for (char **e = c->envp; *e; e++) {
    size_t n = strlen(*e) + 1;
    memcpy(payload + off, *e, n);
    off += n;
  }

  mode_t mask = umask(0);
  umask(mask);
  struct hako_call_request req = {(uint32_t)mask, (uint32_t)c->argc, envc, (uint32_t)total};
  int fds[4];
  fds[0] = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fds[0] < 0) {
    int e = errno;
    free(payload);
    return -e;
  }
  fds[1] = 0;
  fds[2] = 1;
  fds[3] = 2;
  int r = front_send(sock, CALL_REQUEST, &req, sizeof req, fds, 4);
  close(fds[0]);
  for (off = 0; r == 0 && off < total; off += HAKO_CALL_CHUNK) {
    size_t n = total - off < HAKO_CALL_CHUNK ? total - off : HAKO_CALL_CHUNK;
    r = front_send(sock, CALL_PAYLOAD, payload + off, (uint32_t)n, NULL, 0);
  }
  free(payload);
  return r;
}
