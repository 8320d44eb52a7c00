/*
 * The plan executor: runs in the cloned child, after clone and before execve.
 *
 * Node is multi-threaded, so after clone only async-signal-safe work is allowed:
 * no malloc, no stdio, no locks. Every kernel call below goes through syscall(2)
 * (a thin wrapper around the instruction); strings are read in place from the
 * plan buffer, the child's copy of the parent's memory. A failing step is sent
 * to the parent as (step index, errno) and the child exits; TypeScript turns it
 * into a sentence.
 */
#include "executor.h"
#include "digits.h"
#include "fdpass.h"
#include "plan_format.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/keyctl.h>
#include <linux/openat2.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <termios.h>
#include <unistd.h>

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif
/* Landlock's ABI, declared here because the build host's headers may predate
 * network rules (ABI 4). Layouts are the kernel's uapi. */
struct hako_landlock_ruleset_attr {
  uint64_t handled_access_fs;
  uint64_t handled_access_net;
};
struct hako_landlock_path_beneath_attr {
  uint64_t allowed_access;
  int32_t parent_fd;
} __attribute__((packed));
struct hako_landlock_net_port_attr {
  uint64_t allowed_access;
  uint64_t port;
};
#define HAKO_LANDLOCK_RULE_PATH_BENEATH 1
#define HAKO_LANDLOCK_RULE_NET_PORT     2

/* ---- the plan reader: no allocation, pointers into the buffer ---- */

struct arg {
  int kind;
  uint64_t num;
  const char *bytes;
  uint32_t len;
};

struct step {
  uint32_t op;
  uint32_t nargs;
  struct arg args[HAKO_MAX_ARGS];
};

static uint32_t rd32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const unsigned char *p) {
  return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

/* Reads one step at *off; returns 0 or -1 when the buffer is malformed. */
static int read_step(const unsigned char *buf, size_t len, size_t *off, struct step *st) {
  size_t o = *off;
  if (o + 8 > len) return -1;
  st->op = rd32(buf + o);
  st->nargs = rd32(buf + o + 4);
  o += 8;
  if (st->nargs > HAKO_MAX_ARGS) return -1;
  for (uint32_t i = 0; i < st->nargs; i++) {
    if (o + 4 > len) return -1;
    struct arg *a = &st->args[i];
    a->kind = (int)rd32(buf + o);
    o += 4;
    if (a->kind == HAKO_ARG_INT) {
      if (o + 8 > len) return -1;
      a->num = rd64(buf + o);
      a->bytes = 0;
      a->len = 0;
      o += 8;
    } else if (a->kind == HAKO_ARG_BYTES) {
      if (o + 4 > len) return -1;
      a->len = rd32(buf + o);
      o += 4;
      if (o + a->len + 1 > len || buf[o + a->len] != 0) return -1;
      a->bytes = (const char *)buf + o;
      a->num = 0;
      o += a->len + 1;
    } else {
      return -1;
    }
  }
  *off = o;
  return 0;
}

/* Each op's arguments, by kind (plan_ops.def): 'i' an integer, 's' bytes; a
 * trailing '+' repeats the kind before it one or more times. A step that does
 * not match is refused before anything reads its args. */
static const char *const SIGNATURE[OP_MAX] = {
#define HAKO_OP(name, num, kinds) [OP_##name] = kinds,
#include "plan_ops.def"
};

static int kind_of(char k) {
  return k == 'i' ? HAKO_ARG_INT : HAKO_ARG_BYTES;
}

static int args_match(const struct step *st) {
  /* OP_EXEC is read apart (do_exec_big); 0 and retired numbers have no signature. */
  if (st->op == 0 || st->op >= OP_MAX || st->op == OP_EXEC || !SIGNATURE[st->op]) return 0;
  const char *sig = SIGNATURE[st->op];
  uint32_t fixed = 0;
  while (sig[fixed] && sig[fixed + 1] != '+') fixed++;
  int variadic = sig[fixed] != 0;
  /* variadic: the fixed kinds, then one or more of sig[fixed] */
  if (variadic ? st->nargs < fixed + 1 : st->nargs != fixed) return 0;
  for (uint32_t i = 0; i < st->nargs; i++)
    if (st->args[i].kind != kind_of(sig[i < fixed ? i : fixed])) return 0;
  /* RUN_HOOK's argc counts the argv among its strings, at least the path. */
  if (st->op == OP_RUN_HOOK && (st->args[1].num < 1 || st->args[1].num > st->nargs - 2)) return 0;
  return 1;
}

/* ---- small helpers, all async-signal-safe ---- */

static void die_exit(int code) {
  for (;;) syscall(SYS_exit_group, code);
}

static size_t slen(const char *s) {
  size_t n = 0;
  while (s[n]) n++;
  return n;
}

/* Writes "/proc/self/fd/<fd>" into out (at least 32 bytes). */
static const char *fd_path(char *out, int fd) {
  static const char prefix[] = "/proc/self/fd/";
  size_t i = 0;
  for (; prefix[i]; i++) out[i] = prefix[i];
  hako_utoa(out + i, (unsigned)fd);
  return out;
}

struct ctx {
  int sync_fd;    /* SOCK_SEQPACKET to the parent */
  int root_fd;    /* O_PATH of the root later steps resolve in, or -1 */
  int fifo_fd;    /* the exec fifo, held open read-write */
  int console_fd; /* connected console socket, or -1 */
  int landlock_fd;
  const char *exec_path;
  char *start_state; /* what `start` wrote into the fifo: the state for startContainer hooks */
  long start_state_len;
};

/* The child's own copy of memory: a static buffer is no allocation. */
static char start_state_buf[4096];

static int send_msg(struct ctx *c, unsigned type, unsigned step, int err, int value) {
  struct hako_msg_wire m = {type, step, err, value};
  long r;
  do r = syscall(SYS_sendto, c->sync_fd, &m, sizeof m, MSG_NOSIGNAL, 0, 0);
  while (r < 0 && errno == EINTR);
  return r == (long)sizeof m ? 0 : -1;
}

static int send_msg_fd(struct ctx *c, unsigned type, unsigned step, int value, int fd) {
  struct hako_msg_wire m = {type, step, 0, value};
  return hako_send_fd(c->sync_fd, fd, &m, sizeof m);
}

/* Waits for MSG_GO; anything else (or EOF) means the parent gave up. */
static int wait_go(struct ctx *c) {
  struct hako_msg_wire m;
  long r;
  do r = syscall(SYS_recvfrom, c->sync_fd, &m, sizeof m, 0, 0, 0);
  while (r < 0 && errno == EINTR);
  if (r < 0) return -errno;
  if (r != (long)sizeof m || m.type != MSG_GO) return -ECANCELED;
  return 0;
}

/* Opens path inside the plan's root: symlinks resolve as if it were "/", and
 * magic links (/proc/self/fd/N) are refused. extra: more RESOLVE_* flags. */
static int open_in_root_how(struct ctx *c, const char *path, uint64_t flags, uint64_t mode, uint64_t extra) {
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.flags = flags | O_CLOEXEC;
  how.mode = mode;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | extra;
  int dirfd = c->root_fd >= 0 ? c->root_fd : AT_FDCWD;
  if (c->root_fd < 0) how.resolve = RESOLVE_NO_MAGICLINKS | extra;
  long r;
  do r = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
  while (r < 0 && (errno == EINTR || errno == EAGAIN));
  return r < 0 ? -errno : (int)r;
}

static int open_in_root(struct ctx *c, const char *path, uint64_t flags, uint64_t mode) {
  return open_in_root_how(c, path, flags, mode, 0);
}

/* Whether fd is the plan's root directory while path names something else. */
static int is_root_itself(struct ctx *c, int fd, const char *path) {
  const char *p = path;
  while (*p == '/' || *p == '.') p++;
  if (!*p || c->root_fd < 0) return 0;
  struct stat a, b;
  if (syscall(SYS_fstat, fd, &a) < 0 || syscall(SYS_fstat, c->root_fd, &b) < 0) return 0;
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* Splits path into the parent (written into buf) and the last component. */
static const char *split_parent(const char *path, char *buf, size_t bufsz) {
  size_t n = slen(path);
  while (n > 1 && path[n - 1] == '/') n--;
  size_t cut = n;
  while (cut > 0 && path[cut - 1] != '/') cut--;
  if (cut >= bufsz) return 0;
  if (cut == 0) {
    buf[0] = '.';
    buf[1] = 0;
  } else {
    memcpy(buf, path, cut);
    buf[cut] = 0;
  }
  return path + cut;
}

/* mkdir -p inside the root: every prefix is opened with RESOLVE_IN_ROOT, so a
 * symlink in the rootfs can never lead the creation outside it. */
static int mkdir_in_root(struct ctx *c, const char *path, unsigned mode) {
  char prefix[4096];
  size_t n = slen(path), i = 0;
  if (n >= sizeof prefix) return -ENAMETOOLONG;
  while (i < n) {
    while (i < n && path[i] == '/') i++;
    if (i >= n) break;
    size_t start = i;
    while (i < n && path[i] != '/') i++;
    memcpy(prefix, path, i);
    prefix[i] = 0;
    int fd = open_in_root(c, prefix, O_PATH | O_DIRECTORY, 0);
    if (fd >= 0) {
      syscall(SYS_close, fd);
      continue;
    }
    if (fd != -ENOENT) return fd;
    char parent[4096];
    memcpy(parent, path, start);
    parent[start] = 0;
    if (start == 0) {
      parent[0] = '/';
      parent[1] = 0;
    }
    int pfd = open_in_root(c, parent, O_PATH | O_DIRECTORY, 0);
    if (pfd < 0) return pfd;
    char comp[256];
    if (i - start >= sizeof comp) {
      syscall(SYS_close, pfd);
      return -ENAMETOOLONG;
    }
    memcpy(comp, path + start, i - start);
    comp[i - start] = 0;
    long r = syscall(SYS_mkdirat, pfd, comp, mode);
    int e = errno;
    syscall(SYS_close, pfd);
    if (r < 0 && e != EEXIST) return -e;
    fd = open_in_root(c, prefix, O_PATH | O_DIRECTORY, 0);
    /* It exists but cannot be opened: a symlink whose target is not inside
     * the rootfs. Say so rather than create anything through it. */
    if (fd == -ENOENT && r < 0) return -ENOLINK;
    if (fd < 0) return fd;
    syscall(SYS_close, fd);
  }
  return 0;
}

/* Opens the parent directory of path inside the root (creating it) and returns
 * its fd; *last points at the final component. */
static int parent_in_root(struct ctx *c, const char *path, const char **last) {
  char parent[4096];
  const char *l = split_parent(path, parent, sizeof parent);
  if (!l || !*l) return -EINVAL;
  int r = mkdir_in_root(c, parent, 0755);
  if (r < 0) return r;
  *last = l;
  return open_in_root(c, parent, O_PATH | O_DIRECTORY, 0);
}

/* The flags of the mount at path that a user namespace may not clear. */
static unsigned long locked_flags(const char *path) {
  struct statfs sfs;
  unsigned long locked = 0;
  if (syscall(SYS_statfs, path, &sfs) < 0) return 0;
  if (sfs.f_flags & ST_NODEV) locked |= MS_NODEV;
  if (sfs.f_flags & ST_NOSUID) locked |= MS_NOSUID;
  if (sfs.f_flags & ST_NOEXEC) locked |= MS_NOEXEC;
  if (sfs.f_flags & ST_RDONLY) locked |= MS_RDONLY;
  if (sfs.f_flags & ST_NOATIME) locked |= MS_NOATIME;
  if (sfs.f_flags & ST_NODIRATIME) locked |= MS_NODIRATIME;
  if (sfs.f_flags & ST_RELATIME) locked |= MS_RELATIME;
  return locked;
}

static int do_mount(struct ctx *c, const struct step *st) {
  const char *src = st->args[0].len ? st->args[0].bytes : 0;
  const char *target = st->args[1].bytes;
  const char *fstype = st->args[2].len ? st->args[2].bytes : 0;
  unsigned long flags = (unsigned long)st->args[3].num;
  const char *data = st->args[4].len ? st->args[4].bytes : 0;
  unsigned opts = (unsigned)st->args[5].num;
  char tbuf[32], sbuf[32];
  int tfd = -1, sfd = -1;
  const char *tpath = target;
  if (opts & MNT_OPT_TARGET_IN_ROOT) {
    tfd = open_in_root_how(c, target, O_PATH, 0, (opts & MNT_OPT_NO_SYMLINKS) ? RESOLVE_NO_SYMLINKS : 0);
    if (tfd < 0) return tfd;
    /* A symlink resolved in the root can still name the root itself
     * (rootfs/proc -> /): a filesystem mounted there would cover the whole
     * container and hide what was set up. */
    if (is_root_itself(c, tfd, target)) {
      syscall(SYS_close, tfd);
      return -ELOOP;
    }
    tpath = fd_path(tbuf, tfd);
  }
  if ((opts & MNT_OPT_SOURCE_IN_ROOT) && src) {
    sfd = open_in_root(c, src, O_PATH, 0);
    if (sfd < 0) {
      if (tfd >= 0) syscall(SYS_close, tfd);
      return sfd;
    }
    src = fd_path(sbuf, sfd);
  }
  long r = syscall(SYS_mount, src, tpath, fstype, flags, data);
  int e = r < 0 ? errno : 0;
  if (r < 0 && e == EPERM && (opts & MNT_OPT_KEEP_LOCKED) && (flags & MS_REMOUNT)) {
    /* In a user namespace the kernel refuses to clear flags it locked on the
     * original mount; keep them, as runc does. */
    r = syscall(SYS_mount, src, tpath, fstype, flags | locked_flags(tpath), data);
    e = r < 0 ? errno : 0;
  }
  if (tfd >= 0) syscall(SYS_close, tfd);
  if (sfd >= 0) syscall(SYS_close, sfd);
  return r < 0 ? -e : 0;
}

static int do_pivot_root(struct ctx *c) {
  /* pivot_root(".", ".") stacks the old root on top of the new one; detaching
   * it leaves only the new root, with no directory needed for the old one.
   * The root is entered through the fd OPEN_ROOT took: its host path is not
   * resolved again (something could have replaced it meanwhile). */
  if (c->root_fd < 0) return -EBADF;
  int r = 0;
  if (syscall(SYS_fchdir, c->root_fd) < 0) r = -errno;
  if (!r && syscall(SYS_pivot_root, ".", ".") < 0) r = -errno;
  /* The old root may be shared with the host: make it slave before detaching,
   * so the detach does not propagate back. */
  if (!r && syscall(SYS_mount, 0, ".", 0, MS_SLAVE | MS_REC, 0) < 0) r = -errno;
  if (!r && syscall(SYS_umount2, ".", MNT_DETACH) < 0) r = -errno;
  if (!r && syscall(SYS_chdir, "/") < 0) r = -errno;
  if (!r && c->root_fd >= 0) {
    syscall(SYS_close, c->root_fd);
    c->root_fd = -1;
  }
  return r;
}

static int do_move_chroot(struct ctx *c) {
  if (c->root_fd < 0) return -EBADF;
  if (syscall(SYS_fchdir, c->root_fd) < 0) return -errno;
  if (syscall(SYS_mount, ".", "/", 0, MS_MOVE, 0) < 0) return -errno;
  if (syscall(SYS_chroot, ".") < 0) return -errno;
  if (syscall(SYS_chdir, "/") < 0) return -errno;
  if (c->root_fd >= 0) {
    syscall(SYS_close, c->root_fd);
    c->root_fd = -1;
  }
  return 0;
}

/* Into the root through its fd, without moving any mount: the runtime's mount
 * namespace is shared with others. */
static int do_chroot(struct ctx *c) {
  if (c->root_fd < 0) return -EBADF;
  if (syscall(SYS_fchdir, c->root_fd) < 0) return -errno;
  if (syscall(SYS_chroot, ".") < 0) return -errno;
  if (syscall(SYS_chdir, "/") < 0) return -errno;
  syscall(SYS_close, c->root_fd);
  c->root_fd = -1;
  return 0;
}

/* /dev/null in the root, checked on the opened fd to be the null device (1:3)
 * and not reached through a symlink; ENXIO otherwise. */
static int open_null(struct ctx *c) {
  int fd = open_in_root_how(c, "/dev/null", O_PATH, 0, RESOLVE_NO_SYMLINKS);
  if (fd == -ELOOP) return -ENXIO;
  if (fd < 0) return fd;
  struct stat sb;
  if (syscall(SYS_fstat, fd, &sb) < 0 || !S_ISCHR(sb.st_mode) || sb.st_rdev != makedev(1, 3)) {
    syscall(SYS_close, fd);
    return -ENXIO;
  }
  return fd;
}

/* maskedPaths: /dev/null over a file, an empty read-only tmpfs over a directory.
 * A path that does not exist needs no mask. */
static int do_mask(struct ctx *c, const char *path) {
  int fd = open_in_root(c, path, O_PATH, 0);
  if (fd == -ENOENT) return 0;
  if (fd < 0) return fd;
  struct stat sb;
  char buf[32], nbuf[32];
  long r = syscall(SYS_fstat, fd, &sb);
  if (r == 0) {
    if (S_ISDIR(sb.st_mode)) {
      r = syscall(SYS_mount, "tmpfs", fd_path(buf, fd), "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                  "size=0");
    } else {
      /* The container's /dev/null could be anything the rootfs made it (a
       * symlink to a host sysctl): bind only what is the null device. */
      int nfd = open_null(c);
      if (nfd < 0) {
        syscall(SYS_close, fd);
        return nfd;
      }
      r = syscall(SYS_mount, fd_path(nbuf, nfd), fd_path(buf, fd), 0, MS_BIND, 0);
      int e = errno;
      syscall(SYS_close, nfd);
      errno = e;
    }
  }
  int e = errno;
  syscall(SYS_close, fd);
  return r < 0 ? -e : 0;
}

static int do_readonly_path(struct ctx *c, const char *path) {
  int fd = open_in_root(c, path, O_PATH, 0);
  if (fd == -ENOENT) return 0;
  if (fd < 0) return fd;
  char buf[32];
  const char *p = fd_path(buf, fd);
  long r = syscall(SYS_mount, p, p, 0, MS_BIND | MS_REC, 0);
  int e = errno;
  syscall(SYS_close, fd);
  if (r < 0) return -e;
  /* Re-resolve: the bind is a new mount on top of the path. */
  fd = open_in_root(c, path, O_PATH, 0);
  if (fd < 0) return fd;
  p = fd_path(buf, fd);
  r = syscall(SYS_mount, 0, p, 0, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_REC, 0);
  if (r < 0 && errno == EPERM)
    r = syscall(SYS_mount, 0, p, 0, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_REC | locked_flags(p), 0);
  e = errno;
  syscall(SYS_close, fd);
  return r < 0 ? -e : 0;
}

static int mnt_id_of(int fd, uint64_t *id) {
  struct statx sx;
  if (syscall(SYS_statx, fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &sx) < 0) return -errno;
  if (!(sx.stx_mask & STATX_MNT_ID)) return -ENOSYS;
  *id = sx.stx_mnt_id;
  return 0;
}

/* pivot_root refuses a new root whose parent mount is shared (EINVAL): with
 * rootfsPropagation shared, make the mount that holds the rootfs private, as
 * runc does. Its mount point is found by walking up until ".." is on another
 * mount (or is the directory itself, at "/"). */
static int do_parent_mount_private(const char *path) {
  int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -errno;
  for (int depth = 0; depth < 4096; depth++) {
    int up = (int)syscall(SYS_openat, fd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (up < 0) {
      int e = errno;
      syscall(SYS_close, fd);
      return -e;
    }
    uint64_t here = 0, there = 0;
    struct stat a, b;
    int r = mnt_id_of(fd, &here);
    if (!r) r = mnt_id_of(up, &there);
    if (!r && (syscall(SYS_fstat, fd, &a) < 0 || syscall(SYS_fstat, up, &b) < 0)) r = -errno;
    if (r < 0) {
      syscall(SYS_close, fd);
      syscall(SYS_close, up);
      return r;
    }
    if (here != there || (a.st_dev == b.st_dev && a.st_ino == b.st_ino)) {
      char buf[32];
      long m = syscall(SYS_mount, 0, fd_path(buf, fd), 0, MS_PRIVATE, 0);
      int e = errno;
      syscall(SYS_close, fd);
      syscall(SYS_close, up);
      return m < 0 ? -e : 0;
    }
    syscall(SYS_close, fd);
    fd = up;
  }
  syscall(SYS_close, fd);
  return -ELOOP;
}

/* The working directory: resolved inside the root without magic links (no
 * /proc/self/fd/N), then checked to be reachable from the root (runc's fix
 * for CVE-2024-21626: the kernel's getcwd says "(unreachable)" otherwise). */
static int do_chdir(struct ctx *c, const char *path) {
  int fd = open_in_root(c, path, O_PATH | O_DIRECTORY, 0);
  if (fd < 0) return fd;
  long r = syscall(SYS_fchdir, fd);
  int e = errno;
  syscall(SYS_close, fd);
  if (r < 0) return -e;
  char buf[4096];
  r = syscall(SYS_getcwd, buf, sizeof buf);
  if (r < 0) return -errno;
  return buf[0] == '/' ? 0 : -ENOENT;
}

static int do_loopback_up(void) {
  int s = (int)syscall(SYS_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -errno;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, "lo", 3);
  long r = syscall(SYS_ioctl, s, SIOCGIFFLAGS, &ifr);
  if (r == 0) {
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    r = syscall(SYS_ioctl, s, SIOCSIFFLAGS, &ifr);
  }
  int e = errno;
  syscall(SYS_close, s);
  return r < 0 ? -e : 0;
}

static int do_capset(uint64_t eff, uint64_t perm, uint64_t inh) {
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct d[2];
  d[0].effective = (uint32_t)eff;
  d[1].effective = (uint32_t)(eff >> 32);
  d[0].permitted = (uint32_t)perm;
  d[1].permitted = (uint32_t)(perm >> 32);
  d[0].inheritable = (uint32_t)inh;
  d[1].inheritable = (uint32_t)(inh >> 32);
  return syscall(SYS_capset, &h, d) < 0 ? -errno : 0;
}

static int do_console_connect(struct ctx *c, const char *path) {
  struct sockaddr_un sa;
  size_t n = slen(path);
  if (n >= sizeof sa.sun_path) return -ENAMETOOLONG;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  memcpy(sa.sun_path, path, n);
  int s = (int)syscall(SYS_socket, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -errno;
  if (syscall(SYS_connect, s, &sa, sizeof sa) < 0) {
    int e = errno;
    syscall(SYS_close, s);
    return -e;
  }
  c->console_fd = s;
  return 0;
}

/* Opens a pty in the container's devpts, sends the master to the console
 * socket with its name as the data part (runc's message), and makes the peer
 * our controlling terminal and stdio. */
static int do_console_pty(struct ctx *c) {
  if (c->console_fd < 0) return -EBADF;
  int master = (int)syscall(SYS_openat, AT_FDCWD, "/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) return -errno;
  int unlock = 0, ptn = 0;
  if (syscall(SYS_ioctl, master, TIOCSPTLCK, &unlock) < 0) return -errno;
  if (syscall(SYS_ioctl, master, TIOCGPTN, &ptn) < 0) return -errno;
  int peer = (int)syscall(SYS_ioctl, master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (peer < 0) return -errno;
  char name[32] = "/dev/pts/";
  hako_utoa(name + 9, (unsigned)ptn);
  int sent = hako_send_fd(c->console_fd, master, name, slen(name));
  if (sent < 0) return sent;
  syscall(SYS_close, master);
  syscall(SYS_close, c->console_fd);
  c->console_fd = -1;
  if (syscall(SYS_setsid) < 0 && errno != EPERM) return -errno;
  if (syscall(SYS_ioctl, peer, TIOCSCTTY, 0) < 0) return -errno;
  for (int fd = 0; fd < 3; fd++)
    if (syscall(SYS_dup3, peer, fd, 0) < 0) return -errno;
  syscall(SYS_close, peer);
  return 0;
}

static int do_seccomp(struct ctx *c, const struct step *st, unsigned idx) {
  struct sock_fprog prog;
  prog.len = (unsigned short)(st->args[1].len / sizeof(struct sock_filter));
  prog.filter = (struct sock_filter *)(void *)st->args[1].bytes;
  if (st->args[1].len % sizeof(struct sock_filter) || prog.len == 0) return -EINVAL;
  unsigned flags = (unsigned)st->args[0].num;
  int send = st->args[2].num != 0;
  if (send) flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
  /* The program was copied into the buffer without alignment guarantees; the
   * kernel copies it from user memory, so any alignment is fine. */
  long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
  if (r < 0) return -errno;
  if (send) {
    int e = send_msg_fd(c, MSG_SECCOMP_FD, idx, 0, (int)r);
    syscall(SYS_close, (int)r);
    if (e < 0) return e;
    return wait_go(c);
  }
  return 0;
}

static int do_landlock_path(struct ctx *c, uint64_t access, const char *path) {
  struct hako_landlock_path_beneath_attr pb;
  int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_PATH | O_CLOEXEC);
  if (fd < 0) return -errno;
  /* A rule on a file (not a directory) takes only the rights a file has: execute,
   * write, read, truncate, ioctl on a device; the kernel refuses the others (EINVAL). */
  struct stat sb;
  if (syscall(SYS_fstat, fd, &sb) == 0 && !S_ISDIR(sb.st_mode))
    access &= (1ULL << 0) | (1ULL << 1) | (1ULL << 2) | (1ULL << 14) | (1ULL << 15);
  pb.allowed_access = access;
  pb.parent_fd = fd;
  long r = syscall(SYS_landlock_add_rule, c->landlock_fd, HAKO_LANDLOCK_RULE_PATH_BENEATH, &pb, 0);
  int e = errno;
  syscall(SYS_close, fd);
  return r < 0 ? -e : 0;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  syscall(SYS_nanosleep, &ts, 0);
}

/* startContainer hook: fork, give it the state on stdin, exec it inside the
 * container, wait (killing it after its timeout). Non-zero is a failure. */
static int do_run_hook(struct ctx *c, const struct step *st) {
  const char *argv[HAKO_MAX_ARGS + 1];
  const char *envp[HAKO_MAX_ARGS + 1];
  uint32_t argc = (uint32_t)st->args[1].num, n = 0, e = 0;
  for (uint32_t i = 2; i < 2 + argc; i++) argv[n++] = st->args[i].bytes;
  argv[n] = 0;
  for (uint32_t i = 2 + argc; i < st->nargs; i++) envp[e++] = st->args[i].bytes;
  envp[e] = 0;
  int p[2];
  if (syscall(SYS_pipe2, p, O_CLOEXEC) < 0) return -errno;
  if (c->start_state_len > 0) syscall(SYS_write, p[1], c->start_state, c->start_state_len);
  syscall(SYS_close, p[1]);
  long pid = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
  if (pid < 0) {
    int err = errno;
    syscall(SYS_close, p[0]);
    return -err;
  }
  if (pid == 0) {
    syscall(SYS_dup3, p[0], 0, 0);
    syscall(SYS_execve, argv[0], argv, envp);
    syscall(SYS_exit_group, 127);
  }
  syscall(SYS_close, p[0]);
  long timeout_ms = st->args[0].num ? (long)st->args[0].num * 1000 : -1;
  int status = 0;
  for (long waited = 0;; waited += 10) {
    long r = syscall(SYS_wait4, pid, &status, WNOHANG, 0);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) return -errno;
    if (timeout_ms >= 0 && waited >= timeout_ms) {
      syscall(SYS_kill, pid, SIGKILL);
      syscall(SYS_wait4, pid, &status, 0, 0);
      return -ETIME;
    }
    sleep_ms(10);
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
  return WIFEXITED(status) && WEXITSTATUS(status) == 127 ? -ENOENT : -ECHILD;
}

/* Waits until the process a pidfd names has exited (the pidfd turns readable). */
static int wait_exited(int pidfd) {
  struct pollfd p = {pidfd, POLLIN, 0};
  long r;
  do r = syscall(SYS_ppoll, &p, 1, 0, 0, 8);
  while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : 0;
}

/* Reads field idx (0: type, 1: uid, 2: gid, 3: perm) of a key's description
 * "type;uid;gid;perm;name" as a number in that base (10 or 16); -1 when it is
 * not one. */
static int64_t key_field(const char *d, long n, int idx, unsigned base) {
  int field = 0;
  long i = 0;
  for (; i < n && field < idx; i++)
    if (d[i] == ';') field++;
  if (field < idx) return -1;
  uint64_t v = 0;
  int digits = 0;
  for (; i < n && d[i] != ';'; i++, digits++) {
    char ch = d[i];
    unsigned x = ch >= '0' && ch <= '9'   ? (unsigned)(ch - '0')
                 : ch >= 'a' && ch <= 'f' ? (unsigned)(ch - 'a' + 10)
                                          : 99;
    if (x >= base || digits >= 10) return -1;
    v = v * base + x;
  }
  return digits && i < n && v <= 0xffffffffu ? (int64_t)v : -1;
}

/* Joins the session keyring of that name, so the container never holds the
 * caller's: what runc does for a container's init and for every exec'd process.
 * The kernel makes it when no keyring of the name is searchable by us yet, and
 * else joins that one, whoever owns it: a keyring of the name another user made
 * and let others search (a host user squatting a root container's name) is left
 * for an anonymous session keyring of our own (runc would join it). As runc, a
 * kernel without keyrings (ENOSYS) is not an error, any other refusal is. With
 * perm bits, they are added to our keyring's permissions (runc: search by the
 * owner's uid without a user namespace, by others in one, so exec'd processes
 * can find it by its name); failing that is an error. */
static int do_join_keyring(const char *name, uint32_t add) {
  long k = syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name, 0, 0, 0);
  if (k < 0) return errno == ENOSYS ? 0 : -errno;
  char d[512];
  long n = syscall(SYS_keyctl, KEYCTL_DESCRIBE, k, d, sizeof d, 0);
  if (n < 0) return -errno;
  /* n counts the NUL; a description longer than the buffer was cut short */
  if (n > (long)sizeof d) return -ENAMETOOLONG;
  int64_t uid = key_field(d, n, 1, 10), perm = key_field(d, n, 3, 16);
  if (uid < 0 || perm < 0) return -EINVAL;
  if (uid != (int64_t)(uint32_t)syscall(SYS_geteuid))
    return syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, 0, 0, 0, 0) < 0 ? -errno : 0;
  if (!add) return 0;
  return syscall(SYS_keyctl, KEYCTL_SETPERM, k, (uint32_t)perm | add, 0, 0) < 0 ? -errno : 0;
}

/* PR_SET_PDEATHSIG: the kernel sends sig when our parent (the thread that is it)
 * exits. It may have exited before: then nothing is sent, but its end of the sync
 * socket closed as it died, before the kernel reparented us, so a hang-up there
 * means the runtime is gone and we go too. */
static int do_parent_death_signal(struct ctx *c, int sig) {
  if (syscall(SYS_prctl, PR_SET_PDEATHSIG, (unsigned long)sig, 0, 0, 0) < 0) return -errno;
  struct pollfd p = {c->sync_fd, POLLRDHUP, 0};
  struct timespec now = {0, 0};
  long r;
  do r = syscall(SYS_ppoll, &p, 1, &now, 0, 8);
  while (r < 0 && errno == EINTR);
  if (r < 0) return -errno;
  return r > 0 && (p.revents & (POLLHUP | POLLRDHUP | POLLERR)) ? -EPIPE : 0;
}

/* OP_CHECK_PRELOAD: what the dynamic loader will do with /etc/ld.so.preload,
 * done first as the process itself (its ids, Landlock, seccomp): read the list
 * and map the library executable. The loader skips a list it cannot read, and
 * a library it cannot map, with no error: the runtime refuses instead. */
static int do_check_preload(const char *list, const char *lib) {
  char byte;
  int fd = (int)syscall(SYS_openat, AT_FDCWD, list, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  long r = syscall(SYS_read, fd, &byte, 1);
  int err = r < 0 ? errno : r == 0 ? ENODATA : 0;
  syscall(SYS_close, fd);
  if (err) return -err;
  fd = (int)syscall(SYS_openat, AT_FDCWD, lib, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  long p = syscall(SYS_mmap, NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
  err = p == -1 ? errno : 0;
  syscall(SYS_close, fd);
  if (err) return -err;
  syscall(SYS_munmap, p, 4096);
  return 0;
}

static int run_step(struct ctx *c, const struct step *st, unsigned idx) {
  const struct arg *a = st->args;
  switch (st->op) {
  case OP_SETNS: {
    int fd = (int)syscall(SYS_openat, AT_FDCWD, a[0].bytes, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    long r = syscall(SYS_setns, fd, (int)a[1].num);
    int e = errno;
    syscall(SYS_close, fd);
    return r < 0 ? -e : 0;
  }
  case OP_UNSHARE:
    return syscall(SYS_unshare, (unsigned long)a[0].num) < 0 ? -errno : 0;
  case OP_WRITE_FILE: {
    int fd = (int)syscall(SYS_openat, AT_FDCWD, a[0].bytes, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    long r = syscall(SYS_write, fd, a[1].bytes, a[1].len);
    int e = errno;
    syscall(SYS_close, fd);
    return r < 0 ? -e : 0;
  }
  case OP_PARENT_MOUNT_PRIVATE:
    return do_parent_mount_private(a[0].bytes);
  case OP_OOM_SCORE_ADJ: {
    int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    long r = syscall(SYS_write, fd, a[0].bytes, a[0].len);
    int e = errno;
    syscall(SYS_close, fd);
    return r < 0 ? -e : 0;
  }
  case OP_FORK: {
    /* A pidfd on this (the intermediate) process, which the grandchild inherits. */
    int self = (int)syscall(SYS_pidfd_open, (int)syscall(SYS_getpid), 0);
    if (self < 0) return -errno;
    long pid = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
    if (pid < 0) {
      int e = errno;
      syscall(SYS_close, self);
      return -e;
    }
    if (pid > 0) {
      /* The intermediate process reports the grandchild as a pidfd (it has not
       * reaped it, so the pid cannot have been reused) and leaves; the
       * grandchild is reparented to the nearest subreaper. */
      int pfd = (int)syscall(SYS_pidfd_open, (int)pid, 0);
      if (pfd < 0) {
        syscall(SYS_kill, (int)pid, SIGKILL);
        return -errno;
      }
      send_msg_fd(c, MSG_PID, idx, (int)pid, pfd);
      die_exit(0);
    }
    /* The grandchild goes on only once the intermediate has exited: the kernel
     * reparents us (to the nearest subreaper) before the pidfd turns readable, so
     * from here on our parent is final. A parent-death signal set earlier would
     * fire on that reparenting, whatever the runtime does. */
    int r = wait_exited(self);
    syscall(SYS_close, self);
    return r;
  }
  case OP_SETSID:
    return syscall(SYS_setsid) < 0 ? -errno : 0;
  case OP_MOUNT:
    return do_mount(c, st);
  case OP_MKDIR_IN_ROOT:
    return mkdir_in_root(c, a[0].bytes, (unsigned)a[1].num);
  case OP_MKFILE_IN_ROOT: {
    const char *last;
    int pfd = parent_in_root(c, a[0].bytes, &last);
    if (pfd < 0) return pfd;
    syscall(SYS_close, pfd);
    int fd = open_in_root(c, a[0].bytes, O_CREAT | O_RDONLY, (unsigned)a[1].num);
    if (fd == -EISDIR) return 0;
    if (fd < 0) return fd;
    syscall(SYS_close, fd);
    return 0;
  }
  case OP_MKNOD_IN_ROOT: {
    const char *last;
    int pfd = parent_in_root(c, a[0].bytes, &last);
    if (pfd < 0) return pfd;
    long r = syscall(SYS_mknodat, pfd, last, (unsigned)a[1].num, (unsigned)a[2].num);
    int e = errno;
    if (r == 0) {
      r = syscall(SYS_fchownat, pfd, last, (unsigned)a[3].num, (unsigned)a[4].num, AT_SYMLINK_NOFOLLOW);
      /* mknod applied the umask: give the node the mode asked for. */
      if (r == 0) r = syscall(SYS_fchmodat, pfd, last, (unsigned)a[1].num & 07777, 0);
      e = errno;
    } else if (e == EEXIST) {
      /* What the rootfs already has there must be that very device: a symlink
       * or another node in its place would be used as if it were. */
      struct stat sb;
      r = syscall(SYS_newfstatat, pfd, last, &sb, AT_SYMLINK_NOFOLLOW);
      e = errno;
      if (r == 0 && ((sb.st_mode & S_IFMT) != ((unsigned)a[1].num & S_IFMT) || sb.st_rdev != (dev_t)a[2].num)) {
        r = -1;
        e = EEXIST;
      }
    }
    syscall(SYS_close, pfd);
    return r < 0 ? -e : 0;
  }
  case OP_SYMLINK_IN_ROOT: {
    const char *last;
    int pfd = parent_in_root(c, a[1].bytes, &last);
    if (pfd < 0) return pfd;
    long r = syscall(SYS_symlinkat, a[0].bytes, pfd, last);
    int e = errno;
    syscall(SYS_close, pfd);
    return r < 0 && e != EEXIST ? -e : 0;
  }
  case OP_OPEN_ROOT: {
    int fd = (int)syscall(SYS_openat, AT_FDCWD, a[0].bytes, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -errno;
    if (c->root_fd >= 0) syscall(SYS_close, c->root_fd);
    c->root_fd = fd;
    return 0;
  }
  case OP_PIVOT_ROOT:
    return do_pivot_root(c);
  case OP_MOVE_CHROOT:
    return do_move_chroot(c);
  case OP_CHROOT:
    return do_chroot(c);
  case OP_MASK_PATH:
    return do_mask(c, a[0].bytes);
  case OP_READONLY_PATH:
    return do_readonly_path(c, a[0].bytes);
  case OP_SETHOSTNAME:
    return syscall(SYS_sethostname, a[0].bytes, a[0].len) < 0 ? -errno : 0;
  case OP_SETDOMAINNAME:
    return syscall(SYS_setdomainname, a[0].bytes, a[0].len) < 0 ? -errno : 0;
  case OP_RLIMIT: {
    struct rlimit rl = {(rlim_t)a[1].num, (rlim_t)a[2].num};
    return syscall(SYS_prlimit64, 0, (int)a[0].num, &rl, 0) < 0 ? -errno : 0;
  }
  case OP_CHDIR:
    return do_chdir(c, a[0].bytes);
  case OP_SETGROUPS:
    return syscall(SYS_setgroups, a[0].len / 4, a[0].len ? (const void *)a[0].bytes : 0) < 0 ? -errno : 0;
  case OP_SETRESGID:
    return syscall(SYS_setresgid, (unsigned)a[0].num, (unsigned)a[0].num, (unsigned)a[0].num) < 0 ? -errno : 0;
  case OP_SETRESUID:
    return syscall(SYS_setresuid, (unsigned)a[0].num, (unsigned)a[0].num, (unsigned)a[0].num) < 0 ? -errno : 0;
  case OP_KEEPCAPS:
    return syscall(SYS_prctl, PR_SET_KEEPCAPS, (unsigned long)a[0].num, 0, 0, 0) < 0 ? -errno : 0;
  case OP_CAPBSET_KEEP: {
    uint64_t keep = a[0].num;
    unsigned last = (unsigned)a[1].num;
    for (unsigned cap = 0; cap <= last && cap < 64; cap++) {
      if (keep & (1ULL << cap)) continue;
      if (syscall(SYS_prctl, PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL) return -errno;
    }
    return 0;
  }
  case OP_CAPSET:
    return do_capset(a[0].num, a[1].num, a[2].num);
  case OP_AMBIENT_RAISE:
    for (unsigned cap = 0; cap < 64; cap++) {
      if (!(a[0].num & (1ULL << cap))) continue;
      if (syscall(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0) return -errno;
    }
    return 0;
  case OP_NO_NEW_PRIVS:
    return syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ? -errno : 0;
  case OP_UMASK:
    syscall(SYS_umask, (unsigned)a[0].num);
    return 0;
  case OP_LANDLOCK_CREATE: {
    struct hako_landlock_ruleset_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.handled_access_fs = a[0].num;
    attr.handled_access_net = a[1].num;
    /* The short size keeps kernels before ABI 4 happy when no net rule is asked. */
    size_t sz = a[1].num ? sizeof attr : sizeof attr.handled_access_fs;
    long fd = syscall(SYS_landlock_create_ruleset, &attr, sz, 0);
    if (fd < 0) return -errno;
    c->landlock_fd = (int)fd;
    return 0;
  }
  case OP_LANDLOCK_PATH:
    return do_landlock_path(c, a[0].num, a[1].bytes);
  case OP_LANDLOCK_PORT: {
    struct hako_landlock_net_port_attr np;
    np.allowed_access = a[0].num;
    np.port = a[1].num;
    return syscall(SYS_landlock_add_rule, c->landlock_fd, HAKO_LANDLOCK_RULE_NET_PORT, &np, 0) < 0 ? -errno : 0;
  }
  case OP_LANDLOCK_ENFORCE: {
    long r = syscall(SYS_landlock_restrict_self, c->landlock_fd, 0);
    int e = errno;
    syscall(SYS_close, c->landlock_fd);
    c->landlock_fd = -1;
    return r < 0 ? -e : 0;
  }
  case OP_SECCOMP:
    return do_seccomp(c, st, idx);
  case OP_CONSOLE_CONNECT:
    return do_console_connect(c, a[0].bytes);
  case OP_CONSOLE_PTY:
    return do_console_pty(c);
  case OP_OPEN_FIFO: {
    /* The runtime opened it read-write (reading blocks until start writes) and
     * placed it at this fd; the container's process does not inherit it. */
    int fd = (int)a[0].num;
    struct stat sb;
    if (syscall(SYS_fstat, fd, &sb) < 0) return -errno;
    if (!S_ISFIFO(sb.st_mode)) return -EBADF;
    if (syscall(SYS_fcntl, fd, F_SETFD, FD_CLOEXEC) < 0) return -errno;
    c->fifo_fd = fd;
    return 0;
  }
  case OP_REPORT_READY:
    return send_msg(c, MSG_READY, idx, 0, 0) < 0 ? -errno : 0;
  case OP_WAIT_FIFO: {
    /* `start` writes the container state (under PIPE_BUF, so in one piece). */
    long r;
    do r = syscall(SYS_read, c->fifo_fd, start_state_buf, sizeof start_state_buf);
    while (r < 0 && errno == EINTR);
    if (r < 0) return -errno;
    c->start_state = start_state_buf;
    c->start_state_len = r;
    syscall(SYS_close, c->fifo_fd);
    c->fifo_fd = -1;
    return 0;
  }
  case OP_HOOK_PAUSE:
    if (send_msg(c, MSG_HOOKS, idx, 0, (int)a[0].num) < 0) return -errno;
    return wait_go(c);
  case OP_FIND_EXEC:
    for (uint32_t i = 0; i < st->nargs; i++) {
      struct stat sb;
      if (syscall(SYS_faccessat, AT_FDCWD, a[i].bytes, X_OK) == 0 && syscall(SYS_stat, a[i].bytes, &sb) == 0 &&
          S_ISREG(sb.st_mode)) {
        c->exec_path = a[i].bytes;
        return 0;
      }
    }
    return -ENOENT;
  case OP_LOOPBACK_UP:
    return do_loopback_up();
  case OP_RUN_HOOK:
    return do_run_hook(c, st);
  case OP_JOIN_SESSION_KEYRING:
    return do_join_keyring(a[0].bytes, (uint32_t)a[1].num);
  case OP_PARENT_DEATH_SIGNAL:
    return do_parent_death_signal(c, (int)a[0].num);
  case OP_CHECK_PRELOAD:
    return do_check_preload(a[0].bytes, a[1].bytes);
  default:
    return -ENOSYS;
  }
}

/* OP_EXEC: argc, then argc argv strings, then the env strings. It can hold
 * more strings than a step's arg array, so it is read straight from the
 * buffer into pointer arrays on this stack frame: no allocation. */
static int do_exec_big(struct ctx *c, const unsigned char *buf, size_t len, size_t off) {
  const char *argv[HAKO_EXEC_MAX + 1];
  const char *envp[HAKO_EXEC_MAX + 1];
  size_t o = off;
  if (o + 8 > len) return -EINVAL;
  uint32_t nargs = rd32(buf + o + 4);
  o += 8;
  uint32_t argc = 0, n = 0, e = 0;
  for (uint32_t i = 0; i < nargs; i++) {
    if (o + 4 > len) return -EINVAL;
    uint32_t kind = rd32(buf + o);
    o += 4;
    if (kind == HAKO_ARG_INT) {
      if (o + 8 > len) return -EINVAL;
      if (i == 0) argc = (uint32_t)rd64(buf + o);
      o += 8;
      continue;
    }
    if (o + 4 > len) return -EINVAL;
    uint32_t l = rd32(buf + o);
    o += 4;
    if (o + l + 1 > len) return -EINVAL;
    const char *s = (const char *)buf + o;
    o += l + 1;
    if (n < argc) {
      if (n >= HAKO_EXEC_MAX) return -E2BIG;
      argv[n++] = s;
    } else {
      if (e >= HAKO_EXEC_MAX) return -E2BIG;
      envp[e++] = s;
    }
  }
  argv[n] = 0;
  envp[e] = 0;
  if (n == 0) return -EINVAL;
  const char *path = c->exec_path ? c->exec_path : argv[0];
  syscall(SYS_execve, path, argv, envp);
  return -errno;
}

void hako_run_plan(const unsigned char *buf, size_t len, int sync_fd) {
  struct ctx c = {sync_fd, -1, -1, -1, -1, 0, 0, 0};
  struct step st;
  size_t off = 12;
  if (len < 12 || memcmp(buf, HAKO_PLAN_MAGIC, 4) != 0 || rd32(buf + 4) != HAKO_PLAN_VERSION) {
    send_msg(&c, MSG_ERROR, 0, EINVAL, 0);
    die_exit(125);
  }
  uint32_t nsteps = rd32(buf + 8);
  for (uint32_t i = 0; i < nsteps; i++) {
    size_t step_off = off;
    uint32_t op = off + 4 <= len ? rd32(buf + off) : 0;
    int r;
    if (op == OP_EXEC) {
      r = do_exec_big(&c, buf, len, step_off);
    } else if (read_step(buf, len, &off, &st) < 0 || !args_match(&st)) {
      r = -EINVAL;
    } else {
      r = run_step(&c, &st, i);
    }
    if (r < 0) {
      send_msg(&c, MSG_ERROR, i, -r, 0);
      /* 127/126 as a shell would, so an exec failure after start is still legible. */
      die_exit(op == OP_EXEC ? (r == -ENOENT ? 127 : 126) : 125);
    }
  }
  die_exit(0);
}
