/*
 * The connect allowlist (run.hako.shim.connect): connect(2) reaches only the
 * listed IPv4 and IPv6 networks and ports and unix socket paths (a path ending
 * in '*' stands for every path that begins with the rest, as written: the
 * shim compares the address the program passes, it resolves nothing). Refused: -1
 * with EACCES (the errno of a Landlock or LSM refusal). An IPv4-mapped IPv6
 * address (::ffff:a.b.c.d) is checked as the IPv4 address it is.
 *
 * AF_UNSPEC (dissolving a UDP association) is always allowed; every other
 * family is refused. sendto(2) on an unconnected UDP socket, glibc's own
 * resolver and raw system calls are not checked: Landlock's TCP connect rules
 * and network namespaces are the kernel's answer.
 */
#include "shim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

static int prefix_match(const unsigned char *a, const unsigned char *b, int bits) {
  int bytes = bits / 8, rest = bits % 8;
  if (memcmp(a, b, (size_t)bytes)) return 0;
  if (!rest) return 1;
  unsigned char mask = (unsigned char)(0xff << (8 - rest));
  return (a[bytes] & mask) == (b[bytes] & mask);
}

static int allowed_inet(int family, const unsigned char *addr, int port) {
  for (int i = 0; i < shim_cfg.nconnect; i++) {
    const struct shim_net_rule *r = &shim_cfg.connect[i];
    if (r->family == family && (r->port == 0 || r->port == port) && prefix_match(r->addr, addr, r->prefix)) return 1;
  }
  return 0;
}

/* A rule ending in '*' matches every path it begins (/data/lock.* for lock.1, lock.2, ...). */
static int allowed_unix(const char *path) {
  for (int i = 0; i < shim_cfg.nconnect; i++) {
    const char *rule = shim_cfg.connect[i].path;
    if (shim_cfg.connect[i].family != AF_UNIX) continue;
    size_t n = strlen(rule);
    if (n && rule[n - 1] == '*' ? strncmp(rule, path, n - 1) == 0 : strcmp(rule, path) == 0) return 1;
  }
  return 0;
}

/* The target in words ("10.0.0.1:80", "[::1]:8080", "/run/x.sock", "@abstract"), and whether it may be reached. */
static int check(const struct sockaddr *sa, socklen_t len, char *what, size_t wn) {
  char host[INET6_ADDRSTRLEN];
  snprintf(what, wn, "family %d", sa ? sa->sa_family : -1);
  if (!sa || len < sizeof(sa_family_t)) return 0;
  if (sa->sa_family == AF_UNSPEC) return 1;
  if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
    const struct sockaddr_in *in = (const void *)sa;
    int port = ntohs(in->sin_port);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    snprintf(what, wn, "%s:%d", host, port);
    return allowed_inet(AF_INET, (const unsigned char *)&in->sin_addr, port);
  }
  if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
    const struct sockaddr_in6 *in6 = (const void *)sa;
    int port = ntohs(in6->sin6_port);
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    snprintf(what, wn, "[%s]:%d", host, port);
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) return allowed_inet(AF_INET, in6->sin6_addr.s6_addr + 12, port);
    return allowed_inet(AF_INET6, in6->sin6_addr.s6_addr, port);
  }
  if (sa->sa_family == AF_UNIX) {
    const struct sockaddr_un *un = (const void *)sa;
    size_t n = len - offsetof(struct sockaddr_un, sun_path);
    char path[sizeof un->sun_path + 1];
    if (n > sizeof un->sun_path) n = sizeof un->sun_path;
    memcpy(path, un->sun_path, n);
    path[n] = 0;
    if (n > 0 && path[0] == 0) { /* abstract: shown and listed with '@' */
      path[0] = '@';
      for (size_t i = 1; i < n; i++)
        if (path[i] == 0) path[i] = '@';
    }
    snprintf(what, wn, "%s", path);
    return allowed_unix(path);
  }
  return 0;
}

SHIM_API int connect(int fd, const struct sockaddr *sa, socklen_t len) {
  static int (*real)(int, const struct sockaddr *, socklen_t);
  if (!real) real = (int (*)(int, const struct sockaddr *, socklen_t))shim_real("connect");
  if (shim_cfg.connect_set) {
    char what[160];
    if (!check(sa, len, what, sizeof what)) {
      struct shim_field f[] = {{"target", what, 0}, {NULL, NULL, 0}};
      shim_deny("connect", "connect", f);
      errno = EACCES;
      return -1;
    }
  }
  return real(fd, sa, len);
}
