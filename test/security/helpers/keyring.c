/*
 * The session keyring attack's two halves (test/security/keyring.test.ts), static so it runs in
 * any rootfs.
 *
 *   keyring host DESC SECRET CMD ARGS...  on the host: join a new session keyring of our own, add
 *                                         a "user" key DESC with payload SECRET to it, check we
 *                                         can read it back, then exec CMD (hako) with it.
 *   keyring probe DESC                    in a container: say which session keyring we were
 *                                         given and whether DESC is in it, as one JSON line, with
 *                                         the payload when it could be read.
 *   keyring squat NAME DESC SECRET        on the host, as another user: make the session keyring
 *                                         NAME, open to everyone, with the key DESC in it; say
 *                                         "ready" and hold it until killed.
 *   keyring join NAME DESC                join the session keyring NAME, then probe DESC.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define KEY_SPEC_SESSION_KEYRING    -3
#define KEYCTL_GET_KEYRING_ID       0
#define KEYCTL_JOIN_SESSION_KEYRING 1
#define KEYCTL_SETPERM              5
#define KEYCTL_DESCRIBE             6
#define KEYCTL_SEARCH               10
#define KEYCTL_READ                 11

static long keyctl(int cmd, long a, long b, long c, long d) {
  return syscall(SYS_keyctl, cmd, a, b, c, d);
}

/* JSON string contents: printable ASCII only, the rest escaped. */
static void json_str(const char *s, long n) {
  putchar('"');
  for (long i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch == '"' || ch == '\\')
      printf("\\%c", ch);
    else if (ch < 0x20 || ch > 0x7e)
      printf("\\u%04x", ch);
    else
      putchar(ch);
  }
  putchar('"');
}

static int host(const char *desc, const char *secret, char **cmd) {
  long ring = keyctl(KEYCTL_JOIN_SESSION_KEYRING, 0, 0, 0, 0);
  if (ring < 0) {
    fprintf(stderr, "keyring host: join a new session keyring: %s\n", strerror(errno));
    return 2;
  }
  long key = syscall(SYS_add_key, "user", desc, secret, strlen(secret), KEY_SPEC_SESSION_KEYRING);
  if (key < 0) {
    fprintf(stderr, "keyring host: add_key: %s\n", strerror(errno));
    return 2;
  }
  char back[256];
  long n = keyctl(KEYCTL_READ, key, (long)back, sizeof back, 0);
  if (n != (long)strlen(secret) || memcmp(back, secret, (size_t)n) != 0) {
    fprintf(stderr, "keyring host: the key cannot be read back here: %s\n", n < 0 ? strerror(errno) : "wrong payload");
    return 2;
  }
  execvp(cmd[0], cmd);
  fprintf(stderr, "keyring host: exec %s: %s\n", cmd[0], strerror(errno));
  return 127;
}

static int probe(const char *desc) {
  char sdesc[512] = "";
  long ses = keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0, 0, 0);
  int sesErr = ses < 0 ? errno : 0;
  if (ses >= 0) {
    long n = keyctl(KEYCTL_DESCRIBE, ses, (long)sdesc, sizeof sdesc - 1, 0);
    if (n > 0 && n < (long)sizeof sdesc)
      sdesc[n] = 0;
    else
      sdesc[0] = 0;
  }
  /* In the session keyring, and in keyrings linked from it (the kernel searches those too). */
  long key = keyctl(KEYCTL_SEARCH, KEY_SPEC_SESSION_KEYRING, (long)"user", (long)desc, 0);
  int searchErr = key < 0 ? errno : 0;
  char payload[256];
  long plen = -1;
  int readErr = 0;
  if (key >= 0) {
    plen = keyctl(KEYCTL_READ, key, (long)payload, sizeof payload, 0);
    if (plen < 0) readErr = errno;
    if (plen > (long)sizeof payload) plen = sizeof payload;
  }
  /* The session keyring's own list: the key may be visible (described) without being searchable. */
  int32_t ids[128];
  long len = ses >= 0 ? keyctl(KEYCTL_READ, ses, (long)ids, sizeof ids, 0) : -1;
  int listErr = len < 0 ? errno : 0;
  int listed = 0;
  for (long i = 0; len > 0 && i < len / 4 && i < 128; i++) {
    char d[512];
    long m = keyctl(KEYCTL_DESCRIBE, ids[i], (long)d, sizeof d - 1, 0);
    if (m <= 0 || m >= (long)sizeof d) continue;
    d[m] = 0;
    const char *name = strrchr(d, ';');
    if (name && strcmp(name + 1, desc) == 0) listed = 1;
  }
  printf("{\"sessionId\":%ld,\"session\":", ses);
  json_str(sdesc, (long)strlen(sdesc));
  printf(",\"sessionErrno\":%d,\"searchErrno\":%d,\"listErrno\":%d,\"listed\":%s,\"found\":%s,\"readErrno\":%d,"
         "\"payload\":",
         sesErr, searchErr, listErr, listed ? "true" : "false", key >= 0 ? "true" : "false", readErr);
  if (plen >= 0)
    json_str(payload, plen);
  else
    printf("null");
  printf("}\n");
  return 0;
}

static int squat(const char *name, const char *desc, const char *secret) {
  long ring = keyctl(KEYCTL_JOIN_SESSION_KEYRING, (long)name, 0, 0, 0);
  if (ring < 0 || keyctl(KEYCTL_SETPERM, ring, 0x3f3f3f3f, 0, 0) < 0) {
    fprintf(stderr, "keyring squat: %s: %s\n", name, strerror(errno));
    return 2;
  }
  long key = syscall(SYS_add_key, "user", desc, secret, strlen(secret), ring);
  if (key < 0 || keyctl(KEYCTL_SETPERM, key, 0x3f3f3f3f, 0, 0) < 0) {
    fprintf(stderr, "keyring squat: add_key: %s\n", strerror(errno));
    return 2;
  }
  printf("ready\n");
  fflush(stdout);
  for (;;) pause();
}

int main(int argc, char **argv) {
  if (argc >= 5 && strcmp(argv[1], "host") == 0) return host(argv[2], argv[3], argv + 4);
  if (argc == 3 && strcmp(argv[1], "probe") == 0) return probe(argv[2]);
  if (argc == 5 && strcmp(argv[1], "squat") == 0) return squat(argv[2], argv[3], argv[4]);
  if (argc == 4 && strcmp(argv[1], "join") == 0) {
    if (keyctl(KEYCTL_JOIN_SESSION_KEYRING, (long)argv[2], 0, 0, 0) < 0) {
      fprintf(stderr, "keyring join: %s: %s\n", argv[2], strerror(errno));
      return 2;
    }
    return probe(argv[3]);
  }
  fprintf(stderr,
          "usage: keyring host DESC SECRET CMD ARGS... | probe DESC | squat NAME DESC SECRET | join NAME DESC\n");
  return 2;
}
