/*
 * The front's reading of planner messages (native/front/message.c) and its
 * REQUEST/PAYLOAD sending (connect.c), under AddressSanitizer/UBSan, over a
 * real SOCK_SEQPACKET socketpair: well-formed messages are taken, every
 * malformed one (sizes that do not add up, fds where none belong, too many
 * fds, unknown types) is refused with -EPROTO and leaves no fd behind, and a
 * request of any size arrives whole in PAYLOAD chunks.
 *
 * usage: front-protocol <fuzz iterations>
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../native/front/front.h"

static int failures;
#define CHECK(cond, what)                                                                                              \
  do {                                                                                                                 \
    if (!(cond)) {                                                                                                     \
      fprintf(stderr, "FAIL %s (line %d)\n", what, __LINE__);                                                          \
      failures++;                                                                                                      \
    }                                                                                                                  \
  } while (0)

static int open_fds(void) {
  int n = 0;
  DIR *d = opendir("/proc/self/fd");
  if (!d) return -1;
  while (readdir(d)) n++;
  closedir(d);
  return n;
}

/* Sends one raw datagram: header fields as given, then body, with nfds copies of /dev/null. */
static void send_raw(int sock, uint32_t magic, uint32_t version, uint32_t type, uint32_t hdr_len, const void *body,
                     size_t len, int nfds) {
  struct hako_call_hdr h = {magic, version, type, hdr_len};
  unsigned char msg[sizeof h + 4096];
  memcpy(msg, &h, sizeof h);
  if (len) memcpy(msg + sizeof h, body, len);
  int fds[256];
  for (int i = 0; i < nfds; i++) fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
  struct iovec iov = {msg, sizeof h + len};
  union {
    char buf[CMSG_SPACE(sizeof(int) * 256)];
    struct cmsghdr a;
  } u;
  struct msghdr mh;
  memset(&mh, 0, sizeof mh);
  memset(&u, 0, sizeof u);
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  if (nfds) {
    mh.msg_control = u.buf;
    mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
  }
  if (sendmsg(sock, &mh, 0) < 0) {
    perror("sendmsg");
    exit(2);
  }
  for (int i = 0; i < nfds; i++) close(fds[i]);
}

static void send_msg(int sock, uint32_t type, const void *body, size_t len, int nfds) {
  send_raw(sock, HAKO_CALL_MAGIC, HAKO_CALL_VERSION, type, (uint32_t)len, body, len, nfds);
}

static unsigned char rbuf[HAKO_CALL_CHUNK] __attribute__((aligned(8)));

/* Receives one message: its result; the fds it brought are closed. */
static int recv_one(int sock, struct front_msg *m) {
  int r = front_recv(sock, m, rbuf, sizeof rbuf);
  return r;
}

static void expect_refused(int sock, const char *what) {
  struct front_msg m;
  int before = open_fds();
  int r = recv_one(sock, &m);
  CHECK(r == -EPROTO, what);
  CHECK(open_fds() == before, what);
  if (r > 0) front_close_fds(&m);
}

/* A SPAWN body: header, fd_to[nfds], fd_from[nfds], ns_type[nns]. */
static size_t spawn_body(unsigned char *out, uint32_t nfds, uint32_t nns, uint32_t has_cgroup, const int32_t *to,
                         const int32_t *from, const uint32_t *ns) {
  struct hako_call_spawn h = {CLONE_NEWPID | CLONE_NEWNS, 0, nfds, nns, has_cgroup};
  size_t n = 0;
  memcpy(out, &h, sizeof h);
  n += sizeof h;
  if (nfds <= 64) {
    memcpy(out + n, to, 4 * nfds);
    n += 4 * nfds;
    memcpy(out + n, from, 4 * nfds);
    n += 4 * nfds;
  }
  if (nns <= 8) {
    memcpy(out + n, ns, 4 * nns);
    n += 4 * nns;
  }
  return n;
}

static int spawn_case(int a, int b, const unsigned char *body, size_t len, int nfds) {
  struct front_msg m;
  send_msg(a, CALL_SPAWN, body, len, nfds);
  int before = open_fds();
  int r = recv_one(b, &m);
  if (r <= 0) return -1000;
  struct front_spawn_req q;
  int p = front_parse_spawn(&m, &q);
  front_close_fds(&m);
  if (open_fds() != before) return -2000;
  return p;
}

static void spawn_cases(int a, int b) {
  unsigned char body[1024];
  int32_t to[2] = {0, 3}, from[2] = {1, -1};
  uint32_t ns[1] = {CLONE_NEWPID};
  size_t n = spawn_body(body, 2, 1, 1, to, from, ns);
  /* init, plan, sync, cgroup, one sent fd, one ns fd */
  CHECK(spawn_case(a, b, body, n, 6) == 0, "a well-formed SPAWN is taken");
  CHECK(spawn_case(a, b, body, n, 5) == -EPROTO, "a SPAWN missing an fd is refused");
  CHECK(spawn_case(a, b, body, n - 4, 6) == -EPROTO, "a SPAWN shorter than its counts is refused");
  memcpy(body + n, "\0\0\0\0", 4);
  CHECK(spawn_case(a, b, body, n + 4, 6) == -EPROTO, "a SPAWN longer than its counts is refused");
  CHECK(spawn_case(a, b, body, 10, 6) == -EPROTO, "a SPAWN shorter than its header is refused");
  int32_t from2[2] = {1, -2};
  n = spawn_body(body, 2, 1, 1, to, from2, ns);
  CHECK(spawn_case(a, b, body, n, 6) == -EPROTO, "a from-fd beyond the fds sent is refused");
  int32_t from3[2] = {3, -1};
  n = spawn_body(body, 2, 1, 1, to, from3, ns);
  CHECK(spawn_case(a, b, body, n, 6) == -EPROTO, "a from-fd of the front's own beyond stdio is refused");
  int32_t from4[2] = {1, INT32_MIN};
  n = spawn_body(body, 2, 1, 1, to, from4, ns);
  CHECK(spawn_case(a, b, body, n, 6) == -EPROTO, "INT32_MIN as a from-fd is refused");
  int32_t to2[2] = {-1, 3};
  n = spawn_body(body, 2, 1, 1, to2, from, ns);
  CHECK(spawn_case(a, b, body, n, 6) == -EPROTO, "a negative target fd is refused");
  int32_t to3[2] = {0, 70000};
  n = spawn_body(body, 2, 1, 1, to3, from, ns);
  CHECK(spawn_case(a, b, body, n, 6) == -EPROTO, "a huge target fd is refused");
  uint32_t ns2[1] = {CLONE_NEWNET};
  n = spawn_body(body, 2, 1, 1, to, from, ns2);
  CHECK(spawn_case(a, b, body, n, 6) == -EPROTO, "a parent namespace other than pid or time is refused");
  n = spawn_body(body, 2, 1, 2, to, from, ns);
  CHECK(spawn_case(a, b, body, n, 6) == -EPROTO, "has_cgroup other than 0 or 1 is refused");
  n = spawn_body(body, 0xffffffffu, 0, 0, to, from, ns);
  CHECK(spawn_case(a, b, body, n, 3) == -EPROTO, "an nfds whose size overflows is refused");
  n = spawn_body(body, 0, 0xffffffffu, 0, to, from, ns);
  CHECK(spawn_case(a, b, body, n, 3) == -EPROTO, "an nns whose size overflows is refused");
  n = spawn_body(body, 0, 0, 0, to, from, ns);
  CHECK(spawn_case(a, b, body, n, 3) == 0, "a SPAWN of no fds and no namespaces is taken");
}

static void request_cases(void) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) < 0) exit(2);
  /* A big argv and env: several PAYLOADs, which must add up to payload_len. */
  static char big[200000];
  memset(big, 'x', sizeof big - 1);
  char *argv[] = {"hako", "run", big, NULL};
  static char bigenv[80000];
  memcpy(bigenv, "BIG=", 4);
  memset(bigenv + 4, 'y', sizeof bigenv - 5);
  char *envp[] = {"A=1", bigenv, NULL};
  struct front_call c = {3, argv, envp, "run", NULL};
  /* The receiver must drain while the sender sends: the socket buffer holds less than the payload. */
  pid_t pid = fork();
  if (pid == 0) {
    close(sv[1]);
    _exit(front_send_request(sv[0], &c) == 0 ? 0 : 1);
  }
  close(sv[0]);
  static unsigned char msg[sizeof(struct hako_call_hdr) + HAKO_CALL_CHUNK + 1];
  union {
    char buf[CMSG_SPACE(sizeof(int) * 8)];
    struct cmsghdr a;
  } u;
  struct iovec iov = {msg, sizeof msg};
  struct msghdr mh;
  memset(&mh, 0, sizeof mh);
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = u.buf;
  mh.msg_controllen = sizeof u.buf;
  ssize_t r = recvmsg(sv[1], &mh, MSG_CMSG_CLOEXEC);
  struct hako_call_hdr h;
  struct hako_call_request req;
  memcpy(&h, msg, sizeof h);
  memcpy(&req, msg + sizeof h, sizeof req);
  CHECK(r == (ssize_t)(sizeof h + sizeof req) && h.type == CALL_REQUEST && h.len == sizeof req, "REQUEST first");
  struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
  CHECK(cm && cm->cmsg_type == SCM_RIGHTS && cm->cmsg_len == CMSG_LEN(4 * sizeof(int)), "REQUEST brings 4 fds");
  if (cm)
    for (int i = 0; i < 4; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof fd);
      close(fd);
    }
  size_t want = sizeof "hako" + sizeof "run" + sizeof big + sizeof "A=1" + sizeof bigenv;
  CHECK(req.argc == 3 && req.envc == 2 && req.payload_len == want, "REQUEST counts");
  size_t got = 0;
  int chunks = 0;
  int ok = 1;
  while (got < req.payload_len) {
    mh.msg_control = NULL;
    mh.msg_controllen = 0;
    r = recvmsg(sv[1], &mh, 0);
    memcpy(&h, msg, sizeof h);
    if (r <= 0 || h.type != CALL_PAYLOAD || h.len + sizeof h != (size_t)r || h.len > HAKO_CALL_CHUNK) {
      ok = 0;
      break;
    }
    if (got < sizeof big + 9 && got + h.len > 9 && msg[sizeof h + (got < 9 ? 9 - got : 0)] != 'x') ok = 0;
    got += h.len;
    chunks++;
  }
  CHECK(ok && got == want && chunks == (int)((want + HAKO_CALL_CHUNK - 1) / HAKO_CALL_CHUNK),
        "the payload arrives whole in PAYLOAD chunks");
  int st;
  waitpid(pid, &st, 0);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "front_send_request succeeds");
  close(sv[1]);
}

int main(int argc, char **argv) {
  int iterations = argc > 1 ? atoi(argv[1]) : 100;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) < 0) return 2;
  int a = sv[0], b = sv[1];
  struct front_msg m;
  int32_t code = 7;

  send_msg(a, CALL_EXIT, &code, 4, 0);
  int r = recv_one(b, &m);
  CHECK(r == 1 && m.type == CALL_EXIT && m.len == 4, "a well-formed EXIT is taken");
  send_msg(a, CALL_FALLBACK, NULL, 0, 0);
  r = recv_one(b, &m);
  CHECK(r == 1 && m.type == CALL_FALLBACK, "a well-formed FALLBACK is taken");
  send_msg(a, CALL_TAKEN, NULL, 0, 0);
  r = recv_one(b, &m);
  CHECK(r == 1 && m.type == CALL_TAKEN, "a well-formed TAKEN is taken");
  send_msg(a, CALL_FALLBACK, &code, 4, 0);
  expect_refused(b, "a FALLBACK with a body is refused");
  send_msg(a, CALL_TAKEN, NULL, 0, 1);
  expect_refused(b, "a TAKEN bringing an fd is refused, and the fd closed");
  send_msg(a, CALL_EXIT, &code, 2, 0);
  expect_refused(b, "a short EXIT is refused");
  send_msg(a, CALL_WAIT, &code, 4, 1);
  expect_refused(b, "a WAIT bringing an fd is refused, and the fd closed");
  send_msg(a, CALL_REAP, &code, 4, 3);
  expect_refused(b, "a REAP bringing fds is refused, and the fds closed");
  send_raw(a, 0x12345678, HAKO_CALL_VERSION, CALL_EXIT, 4, &code, 4, 0);
  expect_refused(b, "a wrong magic is refused");
  send_raw(a, HAKO_CALL_MAGIC, 2, CALL_EXIT, 4, &code, 4, 0);
  expect_refused(b, "another version is refused");
  send_raw(a, HAKO_CALL_MAGIC, HAKO_CALL_VERSION, CALL_EXIT, 8, &code, 4, 0);
  expect_refused(b, "a header longer than the datagram is refused");
  send_raw(a, HAKO_CALL_MAGIC, HAKO_CALL_VERSION, CALL_EXIT, 0, &code, 4, 0);
  expect_refused(b, "a header shorter than the datagram is refused");
  send_msg(a, 99, NULL, 0, 0);
  expect_refused(b, "an unknown type is refused");
  send_msg(a, CALL_SPAWNED, &code, 4, 0);
  expect_refused(b, "a front-to-planner type is refused");
  if (send(a, "abc", 3, 0) != 3) return 2;
  expect_refused(b, "a datagram shorter than a header is refused");
  send_msg(a, CALL_SUBREAPER, NULL, 0, 210);
  expect_refused(b, "more fds than a message may bring are refused, all closed");
  {
    /* A datagram longer than the receiver's buffer: truncated, refused. */
    unsigned char small[64] __attribute__((aligned(8)));
    unsigned char body[100] = {0};
    send_msg(a, CALL_SPAWN, body, sizeof body, 2);
    int before = open_fds();
    r = front_recv(b, &m, small, sizeof small);
    CHECK(r == -EPROTO && open_fds() == before, "a datagram longer than the buffer is refused, its fds closed");
  }
  spawn_cases(a, b);

  /* Fuzz: random bytes after a valid header, random lengths and types, random fds. */
  srand(1);
  int fuzz_taken = 0;
  for (int i = 0; i < iterations; i++) {
    unsigned char body[512];
    size_t len = (size_t)rand() % sizeof body;
    for (size_t k = 0; k < len; k++) body[k] = (unsigned char)rand();
    uint32_t type = 16 + (uint32_t)rand() % 7;
    int nfds = rand() % 4 ? 0 : rand() % 10;
    if (len >= sizeof(struct hako_call_spawn) && rand() % 2) {
      /* Nearly right: counts within bounds, sometimes the exact size and fds. */
      struct hako_call_spawn *h = (struct hako_call_spawn *)(void *)body;
      h->nfds %= 8;
      h->nns %= 3;
      h->has_cgroup %= 2;
      if (rand() % 2) {
        type = CALL_SPAWN;
        len = sizeof *h + 4 * (2 * h->nfds + h->nns);
        nfds = 3 + (int)h->has_cgroup + (int)h->nns + rand() % 3;
        int32_t *v = (int32_t *)(void *)(body + sizeof *h);
        for (uint32_t k = 0; k < h->nfds; k++) {
          v[k] = rand() % 70;              /* fd_to */
          v[h->nfds + k] = rand() % 6 - 3; /* fd_from */
        }
        for (uint32_t k = 0; k < h->nns; k++) v[2 * h->nfds + k] = rand() % 2 ? CLONE_NEWPID : CLONE_NEWTIME;
      }
    }
    uint32_t hl = rand() % 8 ? (uint32_t)len : (uint32_t)rand();
    send_raw(a, HAKO_CALL_MAGIC, HAKO_CALL_VERSION, type, hl, body, len, nfds);
    int before = open_fds();
    r = recv_one(b, &m);
    if (r == 1) {
      if (m.type == CALL_SPAWN) {
        struct front_spawn_req q;
        if (front_parse_spawn(&m, &q) == 0) fuzz_taken++;
      }
      front_close_fds(&m);
    }
    CHECK(r == 1 || r == -EPROTO, "fuzz: taken or refused");
    CHECK(open_fds() == before, "fuzz: no fd left");
  }
  close(a);
  r = recv_one(b, &m);
  CHECK(r == 0, "EOF is 0");
  close(b);
  request_cases();
  if (failures) return 1;
  printf("front protocol: all cases handled, %d fuzzed messages (%d spawns taken)\n", iterations, fuzz_taken);
  return 0;
}
