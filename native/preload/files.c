/*
 * The descriptor ceiling (run.hako.shim.files): a process may hold at most
 * that many open descriptors. A bitmap says which descriptors the shim knows
 * are open: the inherited ones (from /proc/self/fd, or probed with fcntl when
 * /proc is not mounted) and those the wrapped calls return. A call that would
 * pass the ceiling closes what it got and fails with EMFILE, as the kernel
 * does at RLIMIT_NOFILE.
 *
 * Descriptors glibc opens internally (opendir, getaddrinfo, syslog…) are not
 * seen; fopen and fclose are wrapped because stdio is common. RLIMIT_NOFILE
 * (process.rlimits) is the kernel's own limit and works rootless: prefer it.
 */
#include "shim.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <linux/close_range.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define TRACKED (1 << 20) /* descriptors above this are not counted */

static unsigned long bits[TRACKED / (8 * sizeof(unsigned long))];
static long open_count;

#define WORD(fd) bits[(unsigned)(fd) / (8 * sizeof(unsigned long))]
#define BIT(fd)  (1ul << ((unsigned)(fd) % (8 * sizeof(unsigned long))))

static void mark_open(int fd) {
  if (fd < 0 || fd >= TRACKED) return;
  if (!(__atomic_fetch_or(&WORD(fd), BIT(fd), __ATOMIC_RELAXED) & BIT(fd)))
    __atomic_add_fetch(&open_count, 1, __ATOMIC_RELAXED);
}

static void mark_closed(int fd) {
  if (fd < 0 || fd >= TRACKED) return;
  if (__atomic_fetch_and(&WORD(fd), ~BIT(fd), __ATOMIC_RELAXED) & BIT(fd))
    __atomic_sub_fetch(&open_count, 1, __ATOMIC_RELAXED);
}

void shim_files_init(void) {
  if (!shim_cfg.files) return;
  int dfd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) {
    for (int fd = 0; fd < 4096; fd++)
      if (syscall(SYS_fcntl, fd, F_GETFD) >= 0) mark_open(fd);
    return;
  }
  char buf[4096];
  long n;
  while ((n = syscall(SYS_getdents64, dfd, buf, sizeof buf)) > 0) {
    for (long off = 0; off < n;) {
      struct dirent64 *d = (struct dirent64 *)(buf + off);
      int fd = 0, digits = 0;
      for (const char *c = d->d_name; *c >= '0' && *c <= '9'; c++, digits++) fd = fd * 10 + (*c - '0');
      if (digits && fd != dfd) mark_open(fd);
      off += d->d_reclen;
    }
  }
  syscall(SYS_close, dfd);
}

/* A call returned fd: count it, or give it back and fail when past the ceiling. */
static int counted(int fd, const char *call) {
  if (fd < 0 || !shim_cfg.files) return fd;
  mark_open(fd);
  long n = __atomic_load_n(&open_count, __ATOMIC_RELAXED);
  if (n <= shim_cfg.files) return fd;
  mark_closed(fd);
  syscall(SYS_close, fd);
  struct shim_field f[] = {{"open", NULL, n - 1}, {"limit", NULL, shim_cfg.files}, {NULL, NULL, 0}};
  shim_deny("files", call, f);
  errno = EMFILE;
  return -1;
}

/* The libc function this one hides, typed as the header declares it. */
#define REAL(name)                                                                                                     \
  static __typeof__(name) *real_##name;                                                                                \
  if (!real_##name) real_##name = (__typeof__(name) *)shim_real(#name)

/* open and openat take a mode only with O_CREAT or O_TMPFILE. */
static mode_t mode_of(int flags, va_list ap) {
  return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
}

SHIM_API int open(const char *path, int flags, ...) {
  REAL(open);
  va_list ap;
  va_start(ap, flags);
  mode_t mode = mode_of(flags, ap);
  va_end(ap);
  return counted(real_open(path, flags, mode), "open");
}

SHIM_API int open64(const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t mode = mode_of(flags, ap);
  va_end(ap);
  return open(path, flags, mode);
}

SHIM_API int __open_2(const char *path, int flags) {
  return open(path, flags);
}
SHIM_API int __open64_2(const char *path, int flags) {
  return open(path, flags);
}

SHIM_API int openat(int dirfd, const char *path, int flags, ...) {
  REAL(openat);
  va_list ap;
  va_start(ap, flags);
  mode_t mode = mode_of(flags, ap);
  va_end(ap);
  return counted(real_openat(dirfd, path, flags, mode), "openat");
}

SHIM_API int openat64(int dirfd, const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t mode = mode_of(flags, ap);
  va_end(ap);
  return openat(dirfd, path, flags, mode);
}

SHIM_API int __openat_2(int dirfd, const char *path, int flags) {
  return openat(dirfd, path, flags);
}
SHIM_API int __openat64_2(int dirfd, const char *path, int flags) {
  return openat(dirfd, path, flags);
}

SHIM_API int creat(const char *path, mode_t mode) {
  return open(path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}
SHIM_API int creat64(const char *path, mode_t mode) {
  return creat(path, mode);
}

SHIM_API int socket(int domain, int type, int proto) {
  REAL(socket);
  return counted(real_socket(domain, type, proto), "socket");
}

SHIM_API int accept(int fd, struct sockaddr *addr, socklen_t *len) {
  REAL(accept);
  return counted(real_accept(fd, addr, len), "accept");
}

SHIM_API int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
  REAL(accept4);
  return counted(real_accept4(fd, addr, len, flags), "accept4");
}

SHIM_API int dup(int fd) {
  REAL(dup);
  return counted(real_dup(fd), "dup");
}

SHIM_API int dup2(int fd, int to) {
  REAL(dup2);
  return counted(real_dup2(fd, to), "dup2"); /* onto an open one: it was counted already */
}

SHIM_API int dup3(int fd, int to, int flags) {
  REAL(dup3);
  return counted(real_dup3(fd, to, flags), "dup3");
}

SHIM_API int fcntl(int fd, int cmd, ...) {
  REAL(fcntl);
  va_list ap;
  va_start(ap, cmd);
  void *arg = va_arg(ap, void *);
  va_end(ap);
  int r = real_fcntl(fd, cmd, arg);
  return cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC ? counted(r, "fcntl") : r;
}

SHIM_API int fcntl64(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  void *arg = va_arg(ap, void *);
  va_end(ap);
  return fcntl(fd, cmd, arg);
}

/* Two descriptors at once: both are given back when the second does not fit. */
static int counted_pair(int r, int fds[2], const char *call) {
  if (r < 0 || !shim_cfg.files) return r;
  if (counted(fds[0], call) < 0) {
    syscall(SYS_close, fds[1]);
    return -1;
  }
  if (counted(fds[1], call) < 0) {
    mark_closed(fds[0]);
    syscall(SYS_close, fds[0]);
    return -1;
  }
  return r;
}

SHIM_API int pipe(int fds[2]) {
  REAL(pipe);
  return counted_pair(real_pipe(fds), fds, "pipe");
}

SHIM_API int pipe2(int fds[2], int flags) {
  REAL(pipe2);
  return counted_pair(real_pipe2(fds, flags), fds, "pipe2");
}

SHIM_API int socketpair(int domain, int type, int proto, int fds[2]) {
  REAL(socketpair);
  return counted_pair(real_socketpair(domain, type, proto, fds), fds, "socketpair");
}

SHIM_API int epoll_create1(int flags) {
  REAL(epoll_create1);
  return counted(real_epoll_create1(flags), "epoll_create1");
}

SHIM_API int epoll_create(int size) {
  REAL(epoll_create);
  return counted(real_epoll_create(size), "epoll_create");
}

SHIM_API int eventfd(unsigned initval, int flags) {
  REAL(eventfd);
  return counted(real_eventfd(initval, flags), "eventfd");
}

SHIM_API int memfd_create(const char *name, unsigned flags) {
  REAL(memfd_create);
  return counted(real_memfd_create(name, flags), "memfd_create");
}

SHIM_API int inotify_init1(int flags) {
  REAL(inotify_init1);
  return counted(real_inotify_init1(flags), "inotify_init1");
}

SHIM_API int timerfd_create(int clock, int flags) {
  REAL(timerfd_create);
  return counted(real_timerfd_create(clock, flags), "timerfd_create");
}

SHIM_API FILE *fopen(const char *path, const char *mode) {
  REAL(fopen);
  FILE *f = real_fopen(path, mode);
  if (f && shim_cfg.files && counted(fileno(f), "fopen") < 0) {
    /* counted() closed the descriptor: let fclose free the FILE (its close fails, EBADF). */
    REAL(fclose);
    real_fclose(f);
    errno = EMFILE;
    return NULL;
  }
  return f;
}

SHIM_API FILE *fopen64(const char *path, const char *mode) {
  return fopen(path, mode);
}

SHIM_API int fclose(FILE *f) {
  REAL(fclose);
  if (f) mark_closed(fileno(f));
  return real_fclose(f);
}

SHIM_API int close(int fd) {
  REAL(close);
  mark_closed(fd);
  return real_close(fd);
}

SHIM_API int close_range(unsigned first, unsigned last, int flags) {
  REAL(close_range);
  int r = real_close_range(first, last, flags);
  if (r == 0 && !(flags & CLOSE_RANGE_CLOEXEC))
    for (unsigned fd = first; fd <= last && fd < TRACKED; fd++) mark_closed((int)fd);
  return r;
}
