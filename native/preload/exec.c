/*
 * The exec allowlist (run.hako.shim.exec): a program may execute only the
 * listed paths. A path matches when it is one of them as written, or when it
 * resolves (realpath, inside the container) to where one of them resolves, so
 * /bin/../bin/sh and a symlink to an allowed program both match it. Refused:
 * -1 with EACCES, as a noexec mount would.
 *
 * glibc's execl, execvp and friends reach execve through internal calls, so
 * each is wrapped here; the PATH search of execvp is done here first, to know
 * which file it would run. fexecve and execveat are checked through
 * /proc/self/fd when the path is relative to a descriptor.
 *
 * The container's first program is executed by hako-init, not through this:
 * it is always allowed.
 */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

void shim_exec_init(void) {
  for (int i = 0; i < shim_cfg.nexec; i++)
    if (!realpath(shim_cfg.exec[i], shim_cfg.exec_real[i])) shim_cfg.exec_real[i][0] = 0;
}

int shim_exec_allowed(const char *call, const char *path) {
  if (!shim_cfg.exec_set) return 0;
  if (path) {
    char real[PATH_MAX];
    int saved = errno;
    int resolved = realpath(path, real) != NULL;
    errno = saved;
    for (int i = 0; i < shim_cfg.nexec; i++) {
      if (strcmp(path, shim_cfg.exec[i]) == 0) return 0;
      if (resolved && shim_cfg.exec_real[i][0] && strcmp(real, shim_cfg.exec_real[i]) == 0) return 0;
    }
  }
  struct shim_field f[] = {{"path", path ? path : "", 0}, {NULL, NULL, 0}};
  shim_deny("exec", call, f);
  errno = EACCES;
  return -1;
}

int shim_exec_search(const char *file, char out[SHIM_PATH_MAX]) {
  if (!file || !*file) return -1;
  if (strchr(file, '/')) {
    if (strlen(file) >= SHIM_PATH_MAX) return -1;
    strcpy(out, file);
    return 0;
  }
  const char *p = getenv("PATH");
  if (!p) p = "/bin:/usr/bin";
  size_t fl = strlen(file);
  while (*p) {
    const char *colon = strchr(p, ':');
    size_t dl = colon ? (size_t)(colon - p) : strlen(p);
    if (dl + 1 + fl < SHIM_PATH_MAX) {
      memcpy(out, dl ? p : ".", dl ? dl : 1);
      size_t n = dl ? dl : 1;
      out[n] = '/';
      memcpy(out + n + 1, file, fl + 1);
      struct stat st;
      if (access(out, X_OK) == 0 && stat(out, &st) == 0 && S_ISREG(st.st_mode)) return 0;
    }
    if (!colon) break;
    p = colon + 1;
  }
  return -1;
}

typedef int execve_fn(const char *, char *const[], char *const[]);

static execve_fn *real_execve(void) {
  static execve_fn *real;
  if (!real) real = (execve_fn *)shim_real("execve");
  return real;
}

SHIM_API int execve(const char *path, char *const argv[], char *const envp[]) {
  if (shim_exec_allowed("execve", path)) return -1;
  return real_execve()(path, argv, envp);
}

SHIM_API int execv(const char *path, char *const argv[]) {
  if (shim_exec_allowed("execv", path)) return -1;
  return real_execve()(path, argv, environ);
}

/* execvp and execvpe: the file PATH finds is checked, then glibc searches as
 * it always does (and runs a script without #! with /bin/sh, checked too). */
static int execvp_checked(const char *call, const char *file, char *const argv[], char *const envp[]) {
  static int (*real)(const char *, char *const[], char *const[]);
  if (!real) real = (int (*)(const char *, char *const[], char *const[]))shim_real("execvpe");
  char found[SHIM_PATH_MAX];
  if (shim_exec_search(file, found)) {
    errno = ENOENT;
    return -1;
  }
  if (shim_exec_allowed(call, found)) return -1;
  return real(found, argv, envp);
}

SHIM_API int execvp(const char *file, char *const argv[]) {
  return execvp_checked("execvp", file, argv, environ);
}

SHIM_API int execvpe(const char *file, char *const argv[], char *const envp[]) {
  return execvp_checked("execvpe", file, argv, envp);
}

/* The execl family: their arguments into an array on the stack. */
#define MAX_LIST_ARGS 1024
#define COLLECT(first, ap, argv, n)                                                                                    \
  do {                                                                                                                 \
    argv[0] = (char *)(first);                                                                                         \
    for (n = 1; argv[n - 1] && n < MAX_LIST_ARGS; n++) argv[n] = va_arg(ap, char *);                                   \
    if (argv[n - 1]) {                                                                                                 \
      va_end(ap);                                                                                                      \
      errno = E2BIG;                                                                                                   \
      return -1;                                                                                                       \
    }                                                                                                                  \
  } while (0)

SHIM_API int execl(const char *path, const char *arg, ...) {
  char *argv[MAX_LIST_ARGS];
  int n;
  va_list ap;
  va_start(ap, arg);
  COLLECT(arg, ap, argv, n);
  va_end(ap);
  if (shim_exec_allowed("execl", path)) return -1;
  return real_execve()(path, argv, environ);
}

SHIM_API int execle(const char *path, const char *arg, ...) {
  char *argv[MAX_LIST_ARGS];
  int n;
  va_list ap;
  va_start(ap, arg);
  COLLECT(arg, ap, argv, n);
  char *const *envp = va_arg(ap, char *const *);
  va_end(ap);
  if (shim_exec_allowed("execle", path)) return -1;
  return real_execve()(path, argv, envp);
}

SHIM_API int execlp(const char *file, const char *arg, ...) {
  char *argv[MAX_LIST_ARGS];
  int n;
  va_list ap;
  va_start(ap, arg);
  COLLECT(arg, ap, argv, n);
  va_end(ap);
  return execvp_checked("execlp", file, argv, environ);
}

/* A descriptor's path, as /proc/self/fd shows it (no /proc: nothing matches). */
static const char *fd_path(int fd, char out[SHIM_PATH_MAX]) {
  char link[32];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, out, SHIM_PATH_MAX - 1);
  if (n < 0) return NULL;
  out[n] = 0;
  return out;
}

SHIM_API int fexecve(int fd, char *const argv[], char *const envp[]) {
  static int (*real)(int, char *const[], char *const[]);
  if (!real) real = (int (*)(int, char *const[], char *const[]))shim_real("fexecve");
  char buf[SHIM_PATH_MAX];
  if (shim_exec_allowed("fexecve", fd_path(fd, buf))) return -1;
  return real(fd, argv, envp);
}

SHIM_API int execveat(int dirfd, const char *path, char *const argv[], char *const envp[], int flags) {
  static int (*real)(int, const char *, char *const[], char *const[], int);
  if (!real) real = (int (*)(int, const char *, char *const[], char *const[], int))shim_real("execveat");
  char buf[SHIM_PATH_MAX];
  const char *checked = path;
  if (path[0] != '/') {
    const char *dir = dirfd == AT_FDCWD ? getcwd(buf, sizeof buf) : fd_path(dirfd, buf);
    if (!dir)
      checked = NULL;
    else if (path[0] == 0)
      checked = dir; /* AT_EMPTY_PATH: the descriptor itself */
    else if (strlen(dir) + 1 + strlen(path) < sizeof buf) {
      size_t dl = strlen(dir);
      buf[dl] = '/';
      strcpy(buf + dl + 1, path);
      checked = buf;
    } else
      checked = NULL;
  }
  if (shim_exec_allowed("execveat", checked)) return -1;
  return real(dirfd, path, argv, envp, flags);
}
