/*
 * The state root of a call, found before any planner is asked: --root among
 * the global flags, else the default of src/runtime/store.ts defaultRoot().
 * Wherever the answer is not certain the front says so (-1) and runs today's
 * path: the planner re-checks the root anyway and falls back when it differs.
 */
#include "front.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The global flags that take a value (src/cli/main.ts); the others are booleans. */
static const char *const VALUE_FLAGS[] = {"--root",     "--log",  "--log-format",
                                          "--rootless", "--criu", "--cgroup-manager"};

static int takes_value(const char *a) {
  for (size_t i = 0; i < sizeof VALUE_FLAGS / sizeof *VALUE_FLAGS; i++)
    if (strcmp(a, VALUE_FLAGS[i]) == 0) return 1;
  return 0;
}

int front_parse_args(struct front_call *c) {
  c->verb = NULL;
  c->root_flag = NULL;
  for (int i = 1; i < c->argc; i++) {
    const char *a = c->argv[i];
    if (a[0] != '-' || a[1] == 0) {
      c->verb = a;
      return 0;
    }
    if (strcmp(a, "--") == 0) return 0; /* what follows is no subcommand commander would run */
    if (strncmp(a, "--root=", 7) == 0) {
      c->root_flag = a + 7;
      continue;
    }
    if (takes_value(a)) {
      if (i + 1 >= c->argc) return 0;
      if (strcmp(a, "--root") == 0) c->root_flag = c->argv[i + 1];
      i++;
    }
  }
  return 0;
}

/* Appends path p to out (an absolute, normalized path of len bytes), as
 * node's path.resolve does: "." and empty parts are dropped, ".." goes up. */
static int resolve_onto(char *out, size_t *len, size_t size, const char *p) {
  while (*p) {
    while (*p == '/') p++;
    const char *end = strchrnul(p, '/');
    size_t n = (size_t)(end - p);
    if (n == 0 || (n == 1 && p[0] == '.')) {
      /* nothing */
    } else if (n == 2 && p[0] == '.' && p[1] == '.') {
      while (*len > 0 && out[*len - 1] != '/') (*len)--;
      if (*len > 0) (*len)--;
    } else {
      if (*len + 1 + n + 1 > size) return -1;
      out[(*len)++] = '/';
      memcpy(out + *len, p, n);
      *len += n;
    }
    p = end;
  }
  return 0;
}

static int resolve(char *out, size_t size, const char *base, const char *p, const char *tail) {
  size_t len = 0;
  if (size < 2) return -1;
  out[0] = 0;
  if (p[0] != '/' && resolve_onto(out, &len, size, base) < 0) return -1;
  if (resolve_onto(out, &len, size, p) < 0) return -1;
  if (tail && resolve_onto(out, &len, size, tail) < 0) return -1;
  if (len == 0) out[len++] = '/';
  out[len] = 0;
  return 0;
}

/* Whether we run in a user namespace: our uid map is not the host's identity (facts.ts). */
static int in_user_namespace(void) {
  int fd = open("/proc/self/uid_map", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[256];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = 0;
  char a[16], b[16], c[16];
  if (sscanf(buf, "%15s %15s %15s", a, b, c) != 3) return 1;
  return !(strcmp(a, "0") == 0 && strcmp(b, "0") == 0 && strcmp(c, "4294967295") == 0);
}

static int owned_dir(const char *dir, uid_t uid) {
  struct stat st;
  return lstat(dir, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == uid && (st.st_mode & 022) == 0;
}

int front_state_root(const struct front_call *c, char *out, size_t size) {
  if (c->root_flag) {
    if (c->root_flag[0] == 0) return -1;
    char cwd[PATH_MAX];
    if (c->root_flag[0] != '/' && !getcwd(cwd, sizeof cwd)) return -1;
    return resolve(out, size, cwd, c->root_flag, NULL);
  }
  uid_t uid = geteuid();
  const char *xdg = getenv("XDG_RUNTIME_DIR");
  if (xdg && !*xdg) xdg = NULL;
  if (uid == 0 && !(xdg && in_user_namespace())) return resolve(out, size, "/", "/run/hako", NULL);
  /* The XDG spec: a relative path is invalid and ignored. One that is not a
   * usable dir is an error sentence of today's path. */
  if (xdg && xdg[0] == '/') {
    struct stat st;
    if (stat(xdg, &st) < 0 || !S_ISDIR(st.st_mode) || access(xdg, W_OK | X_OK) < 0) return -1;
    return resolve(out, size, "/", xdg, "hako");
  }
  char run_user[64];
  snprintf(run_user, sizeof run_user, "/run/user/%u", (unsigned)uid);
  if (owned_dir(run_user, uid)) return resolve(out, size, "/", run_user, "hako");
  /* The passwd home, not $HOME, so every invocation of one user agrees on it. */
  struct passwd *pw = getpwuid(uid);
  if (!pw || !pw->pw_dir || pw->pw_dir[0] != '/' || strcmp(pw->pw_dir, "/") == 0 || !owned_dir(pw->pw_dir, uid))
    return -1;
  return resolve(out, size, "/", pw->pw_dir, ".local/state/hako");
}

int front_open_root(const char *root) {
  /* O_NOFOLLOW|O_DIRECTORY: a symlink is refused; the checks are made on the
   * very directory the socket is then reached through (no race). */
  int fd = open(root, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return -errno;
  struct stat st;
  if (fstat(fd, &st) < 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 022) != 0) {
    close(fd);
    return -EPERM;
  }
  return fd;
}
