/*
 * A witness for the front's tests: listens on a SOCK_SEQPACKET socket where a
 * planner would, and says whether the front connected and what it sent. It
 * serves nothing (it closes the connection after the request): a test sees
 * with it whether the front reached a socket at all, never a planner's work.
 *
 * usage: front-witness SOCKET TIMEOUT_MS
 * prints "ready", then one of: "none" (no connection), "no request" (connected,
 * closed without a request), "request uid=U argc=N argv=A|B|... env=K" (K: the
 * number of env strings).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../../native/front/protocol.h"

static unsigned char msg[sizeof(struct hako_call_hdr) + HAKO_CALL_CHUNK];

int main(int argc, char **argv) {
  if (argc != 3) return 2;
  int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  snprintf(a.sun_path, sizeof a.sun_path, "%s", argv[1]);
  umask(077);
  if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 4) < 0) {
    perror("front-witness");
    return 2;
  }
  printf("ready\n");
  fflush(stdout);
  struct pollfd p = {s, POLLIN, 0};
  if (poll(&p, 1, atoi(argv[2])) <= 0) {
    printf("none\n");
    return 0;
  }
  int c = accept(s, NULL, NULL);
  struct ucred cred;
  socklen_t cl = sizeof cred;
  if (c < 0 || getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0) return 2;
  struct hako_call_hdr h;
  struct hako_call_request req;
  ssize_t r = recv(c, msg, sizeof msg, 0);
  if (r < (ssize_t)(sizeof h + sizeof req)) {
    printf("no request\n");
    return 0;
  }
  memcpy(&h, msg, sizeof h);
  memcpy(&req, msg + sizeof h, sizeof req);
  static char payload[1 << 20];
  size_t got = 0;
  while (got < req.payload_len && got < sizeof payload) {
    r = recv(c, msg, sizeof msg, 0);
    if (r <= (ssize_t)sizeof h) break;
    size_t n = (size_t)r - sizeof h;
    if (n > sizeof payload - got) n = sizeof payload - got;
    memcpy(payload + got, msg + sizeof h, n);
    got += n;
  }
  printf("request uid=%u argc=%u argv=", (unsigned)cred.uid, req.argc);
  size_t off = 0;
  for (uint32_t i = 0; i < req.argc && off < got; i++) {
    printf("%s%s", i ? "|" : "", payload + off);
    off += strlen(payload + off) + 1;
  }
  printf(" env=%u\n", req.envc);
  close(c);
  return 0;
}
