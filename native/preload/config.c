/*
 * The shim's configuration: a small text file the runtime writes from the
 * run.hako.shim.* annotations (src/plan/shim.ts), already validated there.
 * One setting a line:
 *
 *   memory BYTES
 *   processes N
 *   files N
 *   connect-set                       an allowlist follows (it may be empty)
 *   connect inet ADDR PREFIX PORT     PORT 0: any port
 *   connect inet6 ADDR PREFIX PORT
 *   connect unix PATH                 '@' first: an abstract socket
 *   exec-set
 *   exec PATH
 *
 * Parsed in the constructor with no allocation. Anything unexpected fails the
 * whole file: the shim then refuses every limited call rather than guess.
 */
#include "shim.h"

#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

static int parse_num(const char *s, size_t n, long long *out) {
  long long v = 0;
  if (n == 0 || n > 18) return -1;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return 0;
}

/* The next space-separated word of [*p, end): its start and length. */
static int word(const char **p, const char *end, const char **w, size_t *n) {
  while (*p < end && **p == ' ') (*p)++;
  *w = *p;
  while (*p < end && **p != ' ') (*p)++;
  *n = (size_t)(*p - *w);
  return *n ? 0 : -1;
}

static int is(const char *w, size_t n, const char *lit) {
  return strlen(lit) == n && memcmp(w, lit, n) == 0;
}

static int parse_connect(const char *p, const char *end, struct shim_config *cfg) {
  const char *w;
  size_t n;
  if (cfg->nconnect >= SHIM_MAX_CONNECT || word(&p, end, &w, &n)) return -1;
  struct shim_net_rule *r = &cfg->connect[cfg->nconnect];
  memset(r, 0, sizeof *r);
  if (is(w, n, "unix")) {
    while (p < end && *p == ' ') p++;
    size_t len = (size_t)(end - p);
    if (len == 0 || len >= sizeof r->path) return -1;
    r->family = AF_UNIX;
    memcpy(r->path, p, len);
    cfg->nconnect++;
    return 0;
  }
  if (is(w, n, "inet"))
    r->family = AF_INET;
  else if (is(w, n, "inet6"))
    r->family = AF_INET6;
  else
    return -1;
  char addr[64];
  long long prefix, port;
  if (word(&p, end, &w, &n) || n >= sizeof addr) return -1;
  memcpy(addr, w, n);
  addr[n] = 0;
  if (inet_pton(r->family, addr, r->addr) != 1) return -1;
  if (word(&p, end, &w, &n) || parse_num(w, n, &prefix) || prefix > (r->family == AF_INET ? 32 : 128)) return -1;
  if (word(&p, end, &w, &n) || parse_num(w, n, &port) || port > 65535) return -1;
  r->prefix = (int)prefix;
  r->port = (int)port;
  cfg->nconnect++;
  return 0;
}

static int parse_line(const char *p, const char *end, struct shim_config *cfg) {
  const char *w;
  size_t n;
  long long v;
  if (word(&p, end, &w, &n)) return 0; /* an empty line */
  if (is(w, n, "connect-set")) return cfg->connect_set = 1, 0;
  if (is(w, n, "exec-set")) return cfg->exec_set = 1, 0;
  if (is(w, n, "connect")) return parse_connect(p, end, cfg);
  if (is(w, n, "exec")) {
    while (p < end && *p == ' ') p++;
    size_t len = (size_t)(end - p);
    if (cfg->nexec >= SHIM_MAX_EXEC || len == 0 || len >= SHIM_PATH_MAX || *p != '/') return -1;
    memcpy(cfg->exec[cfg->nexec], p, len);
    cfg->exec[cfg->nexec][len] = 0;
    cfg->nexec++;
    return 0;
  }
  const char *key = w;
  size_t keyn = n;
  if (word(&p, end, &w, &n) || parse_num(w, n, &v) || v <= 0) return -1;
  if (is(key, keyn, "memory"))
    cfg->memory = v;
  else if (is(key, keyn, "processes"))
    cfg->processes = (long)v;
  else if (is(key, keyn, "files"))
    cfg->files = (long)v;
  else
    return -1;
  return 0;
}

int shim_parse_config(const char *text, size_t len, struct shim_config *cfg) {
  const char *p = text, *end = text + len;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *eol = nl ? nl : end;
    if (parse_line(p, eol, cfg)) return -1;
    p = nl ? nl + 1 : end;
  }
  return 0;
}
