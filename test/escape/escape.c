/*
 * escape: what an attacker inside a container tries first, one attempt at a
 * time, each named after its class (issue 12's escape suite). Static
 * (gcc -static -O2 -Wall -Werror), so it runs in any rootfs, the FHIR one
 * (no shell, no libc) included.
 *
 *   escape [--tcp=IP:PORT] [--udp=IP:PORT] [--fork-n=N] [--tmp=DIR] all | CLASS...
 *
 * (options first; ESCAPE_TCP / ESCAPE_UDP in the environment also aim the
 * network attempts, default 127.0.0.1:9). CLASS is a group or one attempt's
 * full name; the groups, in the order they run: mount, pivot_root, unshare,
 * setns, ptrace, bpf, perf_event_open, keyctl, module, kexec,
 * open_by_handle_at, userfaultfd, io_uring, mknod, chmod_setuid, chown,
 * proc_sys, sysrq_trigger, sys, raw_socket, packet_socket, tcp_connect,
 * udp_send, fork_bomb, fds, exe, umount (last: it changes the container's
 * mount table if it works). Every attempt prints one JSON line:
 *
 *   {"class":"unshare.user","ok":true,"errno":0,"detail":"..."}
 *
 * ok=true means THE ATTACK WORKED. Where doing the real thing would harm the
 * host if it worked, it is not done: module loading, kexec and pivot_root get
 * a bogus argument the kernel rejects right after its permission check (an
 * answer other than EPERM/EACCES/ENOSYS then means "permitted", ok=true, and
 * nothing was loaded or pivoted); /proc/sys and /sys files get their own value
 * written back; sysrq-trigger and an executable are only opened for writing.
 * "skipped":true marks an attempt that had nothing to attack here (no such
 * file on this kernel). The last line is {"done":true,...}: without it the
 * program died on the way.
 *
 * It never hangs (an alarm per attempt, poll with timeouts) and cleans up what
 * it made: every child is killed and reaped after each attempt, every file it
 * created is removed. Output is written with write(2), never stdio buffers, so
 * a fork cannot print a line twice.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/io_uring.h>
#include <linux/perf_event.h>
#include <linux/userfaultfd.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef SYS_kexec_file_load
#define SYS_kexec_file_load 320
#endif
#define KEYCTL_GET_KEYRING_ID       0
#define KEYCTL_JOIN_SESSION_KEYRING 1
#define KEYCTL_DESCRIBE             6
#define KEYCTL_READ                 11
#define KEYCTL_INVALIDATE           21
#define KEY_SPEC_PROCESS_KEYRING    (-2)
#define KEY_SPEC_SESSION_KEYRING    (-3)

/* ---- options ---- */
static char tcp_ip[64] = "127.0.0.1", udp_ip[64] = "127.0.0.1";
static int tcp_port = 9, udp_port = 9;
static int fork_n = 3000;
static const char *tmp_opt;
static char tmpdir[256]; /* a directory this process may create files in, "" if none */

/* ---- one result ---- */
struct res {
  int ok;
  int err;
  int skipped;
  char detail[768];
};

static void setd(struct res *r, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->detail, sizeof r->detail, fmt, ap);
  va_end(ap);
}

static void addd(struct res *r, const char *fmt, ...) {
  size_t n = strlen(r->detail);
  if (n >= sizeof r->detail - 1) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->detail + n, sizeof r->detail - n, fmt, ap);
  va_end(ap);
}

/* Refused (ok=0) or worked (ok=1) from a syscall's return value. */
static void from_rc(struct res *r, long rc, int err) {
  r->ok = rc >= 0;
  r->err = rc >= 0 ? 0 : err;
}

/* An answer past the permission check: the probe's bogus argument was rejected,
 * not the caller. */
static int permitted(int err) {
  return err != EPERM && err != EACCES && err != ENOSYS;
}

static void put_all(const char *s, size_t n) {
  while (n > 0) {
    ssize_t w = write(1, s, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    s += w;
    n -= (size_t)w;
  }
}

static size_t json_str(char *o, size_t cap, const char *s) {
  size_t n = 0;
  if (n < cap) o[n++] = '"';
  for (; *s && n + 7 < cap; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') {
      o[n++] = '\\';
      o[n++] = (char)c;
    } else if (c < 0x20 || c >= 0x7f) {
      n += (size_t)snprintf(o + n, cap - n, "\\u%04x", c);
    } else {
      o[n++] = (char)c;
    }
  }
  if (n < cap) o[n++] = '"';
  return n;
}

static void emit(const char *cls, const struct res *r) {
  char line[2048];
  size_t n = (size_t)snprintf(line, sizeof line, "{\"class\":\"%s\",\"ok\":%s,\"errno\":%d,%s\"detail\":", cls,
                              r->ok ? "true" : "false", r->err, r->skipped ? "\"skipped\":true," : "");
  n += json_str(line + n, sizeof line - n - 3, r->detail);
  line[n++] = '}';
  line[n++] = '\n';
  put_all(line, n);
}

/* ---- children: every one is tracked, killed and reaped after its attempt ---- */
#define MAX_KIDS 4096
static pid_t kids[MAX_KIDS];
static int nkids;

static pid_t track_fork(void) {
  if (nkids >= MAX_KIDS) {
    errno = EAGAIN;
    return -1;
  }
  pid_t p = fork();
  if (p == 0) {
    /* dies with us: nothing is left behind even if we are killed */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    alarm(0);
    nkids = 0;
  } else if (p > 0) {
    kids[nkids++] = p;
  }
  return p;
}

static void reap_all(void) {
  for (int i = 0; i < nkids; i++) kill(kids[i], SIGKILL);
  for (int i = 0; i < nkids; i++)
    while (waitpid(kids[i], NULL, __WALL) < 0 && errno == EINTR) {}
  nkids = 0;
  /* anything else reparented to us (we may be pid 1 of the container) */
  while (waitpid(-1, NULL, WNOHANG | __WALL) > 0) {}
}

/* Runs fn in a tracked child (so unshare, setns, keyrings, PTRACE_TRACEME
 * change nothing of ours) and brings its result back through a pipe. */
static void in_child(void (*fn)(struct res *), struct res *r, int timeout_ms) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) {
    setd(r, "pipe: %s", strerror(errno));
    r->err = errno;
    return;
  }
  pid_t pid = track_fork();
  if (pid < 0 && errno == EPERM) {
    /* A policy that refuses new processes (threads only): the attempt is made
     * here instead, so it still meets its own defence. If it works it changes
     * this process; it was an escape then anyway. */
    close(p[0]);
    close(p[1]);
    fn(r);
    addd(r, " (in this process: fork refused)");
    return;
  }
  if (pid < 0) {
    r->err = errno;
    setd(r, "fork: %s", strerror(errno));
    close(p[0]);
    close(p[1]);
    return;
  }
  if (pid == 0) {
    struct res c;
    memset(&c, 0, sizeof c);
    fn(&c);
    ssize_t w = write(p[1], &c, sizeof c);
    (void)w;
    _exit(0);
  }
  close(p[1]);
  struct pollfd pf = {.fd = p[0], .events = POLLIN};
  int n = poll(&pf, 1, timeout_ms);
  if (n == 1 && read(p[0], r, sizeof *r) == (ssize_t)sizeof *r) {
    close(p[0]);
    return;
  }
  close(p[0]);
  r->ok = 0;
  r->err = n == 0 ? ETIMEDOUT : EIO;
  setd(r, n == 0 ? "the child did not answer in time" : "the child died without answering");
}

/* ---- helpers ---- */
static int write_file(const char *path, const char *data, size_t len) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t w = write(fd, data, len);
  int e = errno;
  close(fd);
  errno = e;
  return w == (ssize_t)len ? 0 : -1;
}

/* The whole file (procfs hands out a page per read), NUL-terminated; -1 with errno. */
static ssize_t read_file(const char *path, char *buf, size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t n = 0;
  for (;;) {
    ssize_t got = read(fd, buf + n, cap - 1 - n);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      int e = errno;
      close(fd);
      buf[n] = 0;
      errno = e;
      return -1;
    }
    if (got == 0 || (n += (size_t)got) >= cap - 1) break;
  }
  close(fd);
  buf[n] = 0;
  return (ssize_t)n;
}

/* Whether path is a mount point in our mount table (mountinfo's 5th field). */
static int is_mount_point(const char *path) {
  static char buf[65536];
  if (read_file("/proc/self/mountinfo", buf, sizeof buf) <= 0) return 0;
  for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
    char *f = line;
    for (int i = 0; i < 4 && f; i++) {
      f = strchr(f, ' ');
      if (f) f++;
    }
    if (!f) continue;
    size_t n = strlen(path);
    if (strncmp(f, path, n) == 0 && f[n] == ' ') return 1;
  }
  return 0;
}

/* A path inside the writable directory. */
static int in_tmp(char *out, size_t cap, const char *name) {
  if (!tmpdir[0]) return -1;
  snprintf(out, cap, "%s/%s.%d", tmpdir, name, (int)getpid());
  return 0;
}

static void no_tmp(struct res *r) {
  r->skipped = 1;
  setd(r, "no writable directory here (--tmp=DIR)");
}

/* ---- mount, umount, pivot_root ---- */
static void mount_tmpfs(struct res *r) {
  char dir[300];
  if (in_tmp(dir, sizeof dir, "escape-mnt") < 0) return no_tmp(r);
  /* where mkdir is refused (a policy), over the writable directory itself */
  int made = mkdir(dir, 0755) == 0;
  if (!made) snprintf(dir, sizeof dir, "%s", tmpdir);
  long rc = mount("escape", dir, "tmpfs", 0, "size=16k");
  from_rc(r, rc, errno);
  setd(r, rc == 0 ? "tmpfs mounted on %s (unmounted again)" : "mount tmpfs on %s", dir);
  if (rc == 0) umount2(dir, MNT_DETACH);
  if (made) rmdir(dir);
}

static void mount_in_new_userns_child(struct res *r) {
  if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0) {
    r->err = errno;
    setd(r, "unshare(CLONE_NEWUSER|CLONE_NEWNS): %s", strerror(errno));
    return;
  }
  long rc = mount("escape", "/", "tmpfs", 0, "size=16k");
  from_rc(r, rc, errno);
  setd(r, rc == 0 ? "in a new user+mount namespace, tmpfs mounted on / (that namespace only)"
                  : "unshare worked; mount tmpfs on / in it");
}
static void mount_in_new_userns(struct res *r) {
  in_child(mount_in_new_userns_child, r, 5000);
}

/* The first masked path that is a mount point: unmounting it unmasks it. */
static const char *masked_mount(void) {
  static const char *cand[] = {"/proc/kcore",       "/proc/keys",          "/proc/timer_list",
                               "/proc/sched_debug", "/proc/acpi",          "/proc/scsi",
                               "/sys/firmware",     "/proc/latency_stats", NULL};
  for (int i = 0; cand[i]; i++)
    if (is_mount_point(cand[i])) return cand[i];
  return NULL;
}

static void umount_path(struct res *r, const char *path, const char *what) {
  if (!path || !is_mount_point(path)) {
    r->skipped = 1;
    setd(r, "no %s mount here", what);
    return;
  }
  /* the real attack: if it works, this container's mount table loses the mask */
  long rc = umount2(path, MNT_DETACH);
  from_rc(r, rc, errno);
  setd(r, rc == 0 ? "%s %s unmounted: no longer masked/read-only in this container" : "umount2(%s %s, MNT_DETACH)",
       what, path);
}
static void umount_masked(struct res *r) {
  umount_path(r, masked_mount(), "masked path");
}
static void umount_readonly(struct res *r) {
  umount_path(r, "/proc/sys", "read-only path");
}

static void do_pivot_root(struct res *r) {
  /* may_mount() is checked before the paths are looked up: ENOENT means permitted */
  long rc = syscall(SYS_pivot_root, "/.escape-nonexistent-new", "/.escape-nonexistent-old");
  int e = errno;
  r->err = rc < 0 ? e : 0;
  r->ok = rc == 0 || permitted(e);
  setd(r, r->ok ? "permitted (%s on a path that does not exist: nothing pivoted)" : "pivot_root: %s", strerror(e));
}

/* ---- unshare, setns ---- */
static int ns_flag;
static const char *ns_name;

static void unshare_child(struct res *r) {
  long rc = unshare(ns_flag);
  from_rc(r, rc, errno);
  setd(r, "unshare(CLONE_NEW%s)%s", ns_name, rc == 0 ? " worked" : "");
}

static void setns_child(struct res *r) {
  char path[64];
  snprintf(path, sizeof path, "/proc/1/ns/%s", ns_name);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    r->err = errno;
    if (errno == ENOENT) r->skipped = 1;
    setd(r, "open %s: %s", path, strerror(errno));
    return;
  }
  char self[64], link1[128] = "", link2[128] = "";
  snprintf(self, sizeof self, "/proc/self/ns/%s", ns_name);
  ssize_t a = readlink(path, link1, sizeof link1 - 1), b = readlink(self, link2, sizeof link2 - 1);
  if (a > 0) link1[a] = 0;
  if (b > 0) link2[b] = 0;
  long rc = setns(fd, 0);
  from_rc(r, rc, errno);
  setd(r, "setns(%s = %s)%s", path, link1, strcmp(link1, link2) == 0 ? ", the one we are in" : ", another namespace");
  close(fd);
}

static void ns_attempt(struct res *r, void (*fn)(struct res *), int flag, const char *name) {
  ns_flag = flag;
  ns_name = name;
  in_child(fn, r, 5000);
}

#define NS(fnname, flag, nm)                                                                                           \
  static void unshare_##fnname(struct res *r) {                                                                        \
    ns_attempt(r, unshare_child, flag, nm);                                                                            \
  }                                                                                                                    \
  static void setns_##fnname(struct res *r) {                                                                          \
    ns_attempt(r, setns_child, flag, #fnname);                                                                         \
  }
NS(user, CLONE_NEWUSER, "USER")
NS(mnt, CLONE_NEWNS, "NS")
NS(pid, CLONE_NEWPID, "PID")
NS(net, CLONE_NEWNET, "NET")
NS(uts, CLONE_NEWUTS, "UTS")
NS(ipc, CLONE_NEWIPC, "IPC")
NS(cgroup, CLONE_NEWCGROUP, "CGROUP")
NS(time, CLONE_NEWTIME, "TIME")

/* ---- ptrace ---- */
/* A process to trace: a child of ours; where new processes are refused, the
 * container's pid 1 (the server, a sibling's target). */
static pid_t sleeper(void) {
  pid_t p = track_fork();
  if (p == 0) {
    for (;;) pause();
  }
  return p < 0 && errno == EPERM && getpid() != 1 ? 1 : p;
}

static void ptrace_attach(struct res *r) {
  pid_t p = sleeper();
  if (p < 0) {
    r->err = errno;
    setd(r, "fork: %s", strerror(errno));
    return;
  }
  long rc = ptrace(PTRACE_ATTACH, p, 0, 0);
  from_rc(r, rc, errno);
  if (rc == 0) {
    int st;
    waitpid(p, &st, __WALL);
    setd(r, "PTRACE_ATTACH to pid %d worked", (int)p);
    ptrace(PTRACE_DETACH, p, 0, 0);
  } else {
    setd(r, "PTRACE_ATTACH to pid %d", (int)p);
  }
}

static void ptrace_seize(struct res *r) {
  pid_t p = sleeper();
  if (p < 0) {
    r->err = errno;
    setd(r, "fork: %s", strerror(errno));
    return;
  }
  long rc = ptrace(PTRACE_SEIZE, p, 0, 0);
  from_rc(r, rc, errno);
  setd(r, rc == 0 ? "PTRACE_SEIZE of pid %d worked" : "PTRACE_SEIZE of pid %d", (int)p);
  if (rc == 0 && p == 1) ptrace(PTRACE_DETACH, p, 0, 0);
  /* a seized tracee dies with the reap after this attempt */
}

static void traceme_child(struct res *r) {
  long rc = ptrace(PTRACE_TRACEME, 0, 0, 0);
  from_rc(r, rc, errno);
  setd(r, rc == 0 ? "PTRACE_TRACEME worked: our parent traces us" : "PTRACE_TRACEME");
}
static void ptrace_traceme(struct res *r) {
  in_child(traceme_child, r, 5000);
}

/* ---- bpf, perf ---- */
static void bpf_prog_load(struct res *r) {
  /* r0 = 0; exit: a socket filter that drops everything */
  struct bpf_insn insns[2] = {
      {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = 0},
      {.code = BPF_JMP | BPF_EXIT},
  };
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
  a.insn_cnt = 2;
  a.insns = (uint64_t)(uintptr_t)insns;
  a.license = (uint64_t)(uintptr_t) "GPL";
  long fd = syscall(SYS_bpf, BPF_PROG_LOAD, &a, sizeof a);
  from_rc(r, fd, errno);
  setd(r, fd >= 0 ? "a socket filter program was loaded" : "BPF_PROG_LOAD of a socket filter");
  if (fd >= 0) close((int)fd);
}

static void bpf_map_create(struct res *r) {
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.map_type = BPF_MAP_TYPE_ARRAY;
  a.key_size = 4;
  a.value_size = 4;
  a.max_entries = 1;
  long fd = syscall(SYS_bpf, BPF_MAP_CREATE, &a, sizeof a);
  from_rc(r, fd, errno);
  setd(r, fd >= 0 ? "an array map was created" : "BPF_MAP_CREATE of an array map");
  if (fd >= 0) close((int)fd);
}

static void perf_open(struct res *r, pid_t pid, int cpu, const char *what) {
  struct perf_event_attr a;
  memset(&a, 0, sizeof a);
  a.size = sizeof a;
  a.type = PERF_TYPE_SOFTWARE;
  a.config = PERF_COUNT_SW_CPU_CLOCK;
  a.disabled = 1;
  a.exclude_kernel = pid == 0; /* the least a user may ask for (paranoid 2) */
  a.exclude_hv = 1;
  long fd = syscall(SYS_perf_event_open, &a, pid, cpu, -1, 0);
  from_rc(r, fd, errno);
  setd(r, "perf_event_open(%s)%s", what, fd >= 0 ? " worked" : "");
  if (fd >= 0) close((int)fd);
}
static void perf_self(struct res *r) {
  perf_open(r, 0, -1, "this process, user space only");
}
static void perf_cpu(struct res *r) {
  perf_open(r, -1, 0, "every process on cpu 0");
}

/* ---- keyrings ---- */
static void join_session_child(struct res *r) {
  long k = syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, "escape-probe");
  from_rc(r, k, errno);
  setd(r, "KEYCTL_JOIN_SESSION_KEYRING%s", k >= 0 ? " worked (a new keyring, left to die with this process)" : "");
}
static void keyctl_join_session(struct res *r) {
  in_child(join_session_child, r, 5000);
}

/* The initial user namespace: the identity map of every uid. */
static int in_init_userns(void) {
  char buf[256];
  if (read_file("/proc/self/uid_map", buf, sizeof buf) <= 0) return 0;
  unsigned long a, b, c;
  return sscanf(buf, " %lu %lu %lu", &a, &b, &c) == 3 && a == 0 && b == 0 && c == 4294967295UL;
}

/* The session keyring this process was given. A runtime that makes none leaves the caller's:
 * an installed one ("_ses", a login session's, from pam_keyinit) is inherited across clone and
 * execve, in any user namespace; without one, the user's default "_uid_ses.UID" of the current
 * user namespace (per namespace since Linux 5.3), which in the initial one is shared with every
 * host process of that uid. Its possessor may read every key in it. */
/* Lists a keyring's keys into the detail, going one level into linked keyrings, and reads
 * the payload of each key that is not a keyring: its size is reported, never its content. */
static void list_keys(struct res *r, long ring, int depth, int *payloads) {
  int32_t ids[64];
  long len = syscall(SYS_keyctl, KEYCTL_READ, ring, ids, sizeof ids);
  if (len < 0) {
    addd(r, " [unreadable: %s]", strerror(errno));
    return;
  }
  addd(r, " [%ld keys", len / 4);
  for (long i = 0; i < len / 4 && i < 64; i++) {
    char d[200] = "";
    long m = syscall(SYS_keyctl, KEYCTL_DESCRIBE, ids[i], d, sizeof d - 1);
    if (m <= 0 || m >= (long)sizeof d) {
      addd(r, "; (not describable)");
      continue;
    }
    d[m] = 0;
    addd(r, "; %s", d);
    if (strncmp(d, "keyring;", 8) == 0) {
      if (depth < 1) list_keys(r, ids[i], depth + 1, payloads);
    } else {
      char payload[4096];
      long p = syscall(SYS_keyctl, KEYCTL_READ, ids[i], payload, sizeof payload);
      if (p >= 0) {
        addd(r, " (payload read: %ld bytes)", p);
        (*payloads)++;
      } else {
        addd(r, " (payload: %s)", strerror(errno));
      }
    }
  }
  addd(r, "]");
}

static void read_session(struct res *r) {
  long ses = syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0);
  if (ses < 0) {
    r->err = errno;
    setd(r, "no session keyring: %s", strerror(errno));
    return;
  }
  char desc[200] = "";
  long n = syscall(SYS_keyctl, KEYCTL_DESCRIBE, ses, desc, sizeof desc - 1);
  if (n > 0 && n < (long)sizeof desc) desc[n] = 0;
  const char *name = strrchr(desc, ';');
  name = name ? name + 1 : desc;
  int shared = strcmp(name, "_ses") == 0 || (strncmp(name, "_uid_ses.", 9) == 0 && in_init_userns());
  int32_t probe;
  long len = syscall(SYS_keyctl, KEYCTL_READ, ses, &probe, sizeof probe);
  r->ok = len >= 0 && shared;
  r->err = len < 0 ? errno : 0;
  setd(r, "session keyring %s (%s):", name,
       shared ? "the caller's, shared with the host" : "of this user namespace or its own");
  int payloads = 0;
  list_keys(r, ses, 0, &payloads);
  if (payloads) addd(r, " %d key payloads read", payloads);
}

static void add_key_child(struct res *r) {
  /* the process keyring: nothing shared is touched, and the key is invalidated at once */
  long k = syscall(SYS_add_key, "user", "escape-probe", "x", 1, KEY_SPEC_PROCESS_KEYRING);
  from_rc(r, k, errno);
  setd(r, k >= 0 ? "add_key(user) into the process keyring worked (invalidated)"
                 : "add_key(user) into the process keyring");
  if (k >= 0) syscall(SYS_keyctl, KEYCTL_INVALIDATE, k);
}
static void keyctl_add_key(struct res *r) {
  in_child(add_key_child, r, 5000);
}

/* ---- modules, kexec: probes that cannot load anything ---- */
static void verdict_probe(struct res *r, long rc, int e, const char *call) {
  r->err = rc < 0 ? e : 0;
  r->ok = rc >= 0 || permitted(e);
  setd(r, r->ok ? "%s permitted (%s on a bogus argument: nothing loaded)" : "%s: %s", call, strerror(e));
}

static void init_module_probe(struct res *r) {
  static const char junk[64] = "not an ELF module";
  long rc = syscall(SYS_init_module, junk, sizeof junk, "");
  verdict_probe(r, rc, errno, "init_module");
}
static void finit_module_probe(struct res *r) {
  long rc = syscall(SYS_finit_module, -1, "", 0);
  verdict_probe(r, rc, errno, "finit_module");
}
static void kexec_load_probe(struct res *r) {
  /* more segments than KEXEC_SEGMENT_MAX: EINVAL right after the permission check */
  long rc = syscall(SYS_kexec_load, 0, 1000, NULL, 0);
  verdict_probe(r, rc, errno, "kexec_load");
}
static void kexec_file_load_probe(struct res *r) {
  /* an unknown flag bit: EINVAL right after the permission check */
  long rc = syscall(SYS_kexec_file_load, -1, -1, 0, "", 0x80000000UL);
  verdict_probe(r, rc, errno, "kexec_file_load");
}

/* ---- open_by_handle_at (the "shocker" attack) ---- */
static void by_handle(struct res *r) {
  static const char *paths[] = {"/", "/bin", "/dev", "/proc", NULL};
  struct {
    struct file_handle fh;
    unsigned char buf[MAX_HANDLE_SZ];
  } h;
  int mount_id;
  const char *p = NULL;
  for (int i = 0; paths[i]; i++) {
    h.fh.handle_bytes = MAX_HANDLE_SZ;
    if (name_to_handle_at(AT_FDCWD, paths[i], &h.fh, &mount_id, 0) == 0) {
      p = paths[i];
      break;
    }
  }
  int named = p != NULL;
  if (!named) {
    /* no handle to be had: go on with a forged one (inode 2) on / all the same */
    int e = errno;
    p = "/";
    uint32_t forged[2] = {2, 0};
    h.fh.handle_type = 1; /* FILEID_INO32_GEN */
    h.fh.handle_bytes = 8;
    memcpy(h.fh.f_handle, forged, sizeof forged);
    setd(r, "name_to_handle_at failed on every path (%s); ", strerror(e));
  } else {
    r->detail[0] = 0;
  }
  int mfd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  long fd = open_by_handle_at(mfd, &h.fh, O_RDONLY | O_CLOEXEC);
  from_rc(r, fd, errno);
  addd(r, "%s of %s (type %d, %u bytes): open_by_handle_at %s", named ? "handle" : "forged handle", p, h.fh.handle_type,
       h.fh.handle_bytes, fd >= 0 ? "worked" : "refused");
  if (fd >= 0) {
    close((int)fd);
    /* shocker: a forged handle for inode 2 (an ext4 root) on the same file system */
    if (named && h.fh.handle_bytes >= 8) {
      uint32_t forged[2] = {2, 0};
      h.fh.handle_type = 1; /* FILEID_INO32_GEN */
      h.fh.handle_bytes = 8;
      memcpy(h.fh.f_handle, forged, sizeof forged);
      long f2 = open_by_handle_at(mfd, &h.fh, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (f2 >= 0) {
        char link[64], target[256] = "";
        snprintf(link, sizeof link, "/proc/self/fd/%ld", f2);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n > 0) target[n] = 0;
        addd(r, "; forged handle of inode 2 opened: %s", target);
        close((int)f2);
      } else {
        addd(r, "; forged handle of inode 2: %s", strerror(errno));
      }
    }
  }
  if (mfd >= 0) close(mfd);
}

/* ---- userfaultfd, io_uring ---- */
static void uffd(struct res *r, int flags, const char *what) {
  long fd = syscall(SYS_userfaultfd, O_CLOEXEC | flags);
  from_rc(r, fd, errno);
  setd(r, "userfaultfd(%s)%s", what, fd >= 0 ? " worked" : "");
  if (fd >= 0) close((int)fd);
}
static void uffd_kernel(struct res *r) {
  uffd(r, 0, "kernel faults too");
}
static void uffd_user(struct res *r) {
  uffd(r, UFFD_USER_MODE_ONLY, "UFFD_USER_MODE_ONLY");
}

static void io_uring(struct res *r) {
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  long fd = syscall(SYS_io_uring_setup, 8, &p);
  from_rc(r, fd, errno);
  setd(r, fd >= 0 ? "a ring of 8 entries was set up" : "io_uring_setup(8)");
  if (fd >= 0) close((int)fd);
}

/* ---- files: mknod, setuid, chown ---- */
static void mknod_dev(struct res *r, mode_t type, int maj, int min) {
  char path[300];
  if (in_tmp(path, sizeof path, "escape-dev") < 0) return no_tmp(r);
  long rc = mknod(path, type | 0600, makedev(maj, min));
  from_rc(r, rc, errno);
  setd(r, "mknod %c %d:%d in %s%s", type == S_IFCHR ? 'c' : 'b', maj, min, tmpdir, rc == 0 ? " worked (removed)" : "");
  if (rc == 0) {
    if (type == S_IFCHR) {
      /* the null device: harmless to open; says whether the mount allows devices */
      int fd = open(path, O_RDWR | O_CLOEXEC);
      addd(r, "; open: %s", fd >= 0 ? "worked" : strerror(errno));
      if (fd >= 0) close(fd);
    }
    unlink(path);
  }
}
static void mknod_char(struct res *r) {
  mknod_dev(r, S_IFCHR, 1, 3);
}
static void mknod_block(struct res *r) {
  mknod_dev(r, S_IFBLK, 7, 0);
}

static int new_file(char *path, size_t cap, const char *name, struct res *r) {
  if (in_tmp(path, cap, name) < 0) {
    no_tmp(r);
    return -1;
  }
  int fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0755);
  if (fd < 0) {
    r->err = errno;
    setd(r, "create %s: %s", path, strerror(errno));
  }
  return fd;
}

static void chmod_setuid(struct res *r) {
  char path[300];
  int fd = new_file(path, sizeof path, "escape-suid", r);
  if (fd < 0) return;
  close(fd);
  long rc = chmod(path, 04755);
  int e = errno;
  struct stat st;
  int isset = rc == 0 && stat(path, &st) == 0 && (st.st_mode & S_ISUID);
  r->ok = isset;
  r->err = rc < 0 ? e : 0;
  setd(r, "chmod 04755 %s: %s", path,
       rc < 0  ? strerror(e)
       : isset ? "the setuid bit is set"
               : "accepted, but the bit is not set");
  /* a nosuid mount keeps the bit from taking effect on exec: said, not judged */
  struct statvfs sv;
  if (isset && statvfs(path, &sv) == 0)
    addd(r, sv.f_flag & ST_NOSUID ? " (on a nosuid mount)" : " (on a mount without nosuid)");
  unlink(path);
}

static void chown_other(struct res *r) {
  char path[300];
  int fd = new_file(path, sizeof path, "escape-chown", r);
  if (fd < 0) return;
  long rc = fchown(fd, 12345, 12345);
  from_rc(r, rc, errno);
  setd(r, "fchown %s to 12345:12345 (uid %d)%s", path, (int)getuid(), rc == 0 ? " worked" : "");
  close(fd);
  unlink(path);
}

/* ---- /proc/sys, sysrq, /sys ---- */
/* Writes back the value it reads: if the write is accepted nothing changed, and the attempt says the door is open. */
static void write_back(struct res *r, const char *path) {
  char buf[512];
  if (read_file(path, buf, sizeof buf) < 0) {
    r->err = errno;
    if (errno == ENOENT) r->skipped = 1;
    setd(r, "read %s: %s", path, strerror(errno));
    return;
  }
  size_t n = strlen(buf);
  if (n == 0) buf[n++] = '\n';
  long rc = write_file(path, buf, n);
  from_rc(r, rc, errno);
  setd(r, rc == 0 ? "wrote %s (its own value back)" : "write %s", path);
}
static void proc_sys_hostname(struct res *r) {
  write_back(r, "/proc/sys/kernel/hostname");
}
static void proc_sys_core_pattern(struct res *r) {
  write_back(r, "/proc/sys/kernel/core_pattern");
}
static void proc_sys_drop_caches(struct res *r) {
  /* "1": drop clean page cache only; harmless even if it reached the host */
  long rc = write_file("/proc/sys/vm/drop_caches", "1", 1);
  from_rc(r, rc, errno);
  if (rc < 0 && errno == ENOENT) r->skipped = 1;
  setd(r, rc == 0 ? "wrote 1 to /proc/sys/vm/drop_caches" : "write /proc/sys/vm/drop_caches");
}

static void sysrq(struct res *r) {
  /* opening for writing is the door: nothing is written (a key could reboot the host) */
  int fd = open("/proc/sysrq-trigger", O_WRONLY | O_CLOEXEC);
  from_rc(r, fd, errno);
  if (fd < 0 && errno == ENOENT) r->skipped = 1; /* a kernel without magic sysrq */
  setd(r,
       fd >= 0 ? "/proc/sysrq-trigger opened for writing (nothing written)" : "open /proc/sysrq-trigger for writing");
  if (fd >= 0) close(fd);
}

static void sys_uevent_helper(struct res *r) {
  write_back(r, "/sys/kernel/uevent_helper");
}
/* present wherever sysfs is: the loopback's MTU (rootless, the host's /sys is bound in) */
static void sys_lo_mtu(struct res *r) {
  write_back(r, "/sys/class/net/lo/mtu");
}

static void sys_release_agent(struct res *r) {
  /* cgroup v1's release_agent (CVE-2022-0492): any hierarchy mounted here */
  DIR *d = opendir("/sys/fs/cgroup");
  char path[512] = "";
  if (d) {
    struct dirent *e;
    while ((e = readdir(d))) {
      if (e->d_name[0] == '.') continue;
      snprintf(path, sizeof path, "/sys/fs/cgroup/%s/release_agent", e->d_name);
      if (access(path, F_OK) == 0) break;
      path[0] = 0;
    }
    closedir(d);
  }
  if (!path[0] && access("/sys/fs/cgroup/release_agent", F_OK) == 0) strcpy(path, "/sys/fs/cgroup/release_agent");
  if (!path[0]) {
    r->skipped = 1;
    r->err = ENOENT;
    setd(r, "no release_agent under /sys/fs/cgroup");
    return;
  }
  write_back(r, path);
}

/* ---- sockets ---- */
static void raw_socket(struct res *r) {
  int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
  from_rc(r, fd, errno);
  setd(r, fd >= 0 ? "socket(AF_INET, SOCK_RAW, ICMP) worked" : "socket(AF_INET, SOCK_RAW, ICMP)");
  if (fd >= 0) close(fd);
}
static void packet_socket(struct res *r) {
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
  from_rc(r, fd, errno);
  setd(r, fd >= 0 ? "socket(AF_PACKET, SOCK_RAW, ETH_P_ALL) worked" : "socket(AF_PACKET, SOCK_RAW, ETH_P_ALL)");
  if (fd >= 0) close(fd);
}

static int addr_of(struct sockaddr_in *sa, const char *ip, int port) {
  memset(sa, 0, sizeof *sa);
  sa->sin_family = AF_INET;
  sa->sin_port = htons((uint16_t)port);
  return inet_pton(AF_INET, ip, &sa->sin_addr) == 1 ? 0 : -1;
}

static void tcp_connect(struct res *r) {
  struct sockaddr_in sa;
  if (addr_of(&sa, tcp_ip, tcp_port) < 0) {
    r->err = EINVAL;
    setd(r, "not an IPv4 address: %s", tcp_ip);
    return;
  }
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    r->err = errno;
    setd(r, "socket: %s", strerror(errno));
    return;
  }
  int rc = connect(fd, (struct sockaddr *)&sa, sizeof sa), e = errno;
  if (rc < 0 && e == EINPROGRESS) {
    struct pollfd pf = {.fd = fd, .events = POLLOUT};
    socklen_t len = sizeof e;
    if (poll(&pf, 1, 3000) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) == 0)
      rc = e == 0 ? 0 : -1;
    else
      e = ETIMEDOUT;
  }
  from_rc(r, rc, e);
  setd(r, "connect %s:%d%s", tcp_ip, tcp_port, rc == 0 ? " worked" : "");
  close(fd);
}

static void udp_send(struct res *r) {
  /* the test's listener echoes: an answer proves the datagram left the container */
  struct sockaddr_in sa;
  if (addr_of(&sa, udp_ip, udp_port) < 0) {
    r->err = EINVAL;
    setd(r, "not an IPv4 address: %s", udp_ip);
    return;
  }
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    r->err = errno;
    setd(r, "socket: %s", strerror(errno));
    return;
  }
  char msg[] = "escape-udp-probe", back[64];
  int rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
  if (rc == 0) rc = send(fd, msg, sizeof msg - 1, 0) == (ssize_t)(sizeof msg - 1) ? 0 : -1;
  if (rc < 0) {
    r->err = errno;
    setd(r, "send to %s:%d: %s", udp_ip, udp_port, strerror(errno));
    close(fd);
    return;
  }
  struct pollfd pf = {.fd = fd, .events = POLLIN};
  int got = poll(&pf, 1, 2000) == 1 ? (int)recv(fd, back, sizeof back, 0) : -2;
  r->ok = got > 0;
  r->err = got > 0 ? 0 : got == -2 ? ETIMEDOUT : errno;
  setd(r, got > 0 ? "sent to %s:%d, answered" : "sent to %s:%d, no answer", udp_ip, udp_port);
  close(fd);
}

/* ---- fork bomb, bounded ---- */
static void fork_bomb(struct res *r) {
  int made = 0, e = 0;
  for (; made < fork_n; made++) {
    pid_t p = track_fork();
    if (p == 0) {
      for (;;) pause();
    }
    if (p < 0) {
      e = errno;
      break;
    }
  }
  r->ok = made == fork_n;
  r->err = e;
  setd(r, "%d of %d sleeping children forked%s%s (all killed)", made, fork_n, e ? ": " : "", e ? strerror(e) : "");
}

/* ---- the runtime's fds and executable ---- */
static void scan_fds(struct res *r, const char *pid) {
  char dir[64];
  snprintf(dir, sizeof dir, "/proc/%s/fd", pid);
  DIR *d = opendir(dir);
  if (!d) {
    r->err = errno;
    setd(r, "opendir %s: %s", dir, strerror(errno));
    return;
  }
  /* a number alone says little; what it is (readlink) is what an attacker uses */
  int own = dirfd(d), reached = 0, hidden = 0, seen = 0, last_err = 0;
  setd(r, "%s:", dir);
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    int fd = atoi(e->d_name);
    seen++;
    /* our own listing's fd is expected, also when pid 1 is this program */
    if (fd <= 2 || ((strcmp(pid, "self") == 0 || atoi(pid) == getpid()) && fd == own)) continue;
    char link[384], target[256];
    snprintf(link, sizeof link, "%s/%s", dir, e->d_name);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n < 0) {
      hidden++;
      last_err = errno;
      continue;
    }
    target[n] = 0;
    reached++;
    addd(r, " %d -> %s;", fd, target);
  }
  closedir(d);
  r->ok = reached > 0;
  r->err = reached ? 0 : last_err;
  if (hidden) addd(r, " %d more fds beyond 0-2 listed but unreadable (%s);", hidden, strerror(last_err));
  if (!reached && !hidden) addd(r, " only 0, 1, 2 (%d listed)", seen);
}
static void fds_self(struct res *r) {
  scan_fds(r, "self");
}
static void fds_pid1(struct res *r) {
  scan_fds(r, "1");
  if (getpid() == 1) addd(r, " (pid 1 is this program)");
}

static void exe_write(struct res *r, const char *path) {
  char target[256] = "";
  ssize_t n = readlink(path, target, sizeof target - 1);
  if (n > 0)
    target[n] = 0;
  else
    snprintf(target, sizeof target, "(readlink: %s)", strerror(errno));
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  from_rc(r, fd, errno);
  setd(r, "%s -> %s: open for writing %s", path, target, fd >= 0 ? "worked (nothing written)" : "refused");
  if (fd >= 0) close(fd);
}
static void exe_pid1(struct res *r) {
  exe_write(r, "/proc/1/exe");
  if (getpid() == 1) addd(r, " (pid 1 is this program)");
}
static void exe_self(struct res *r) {
  exe_write(r, "/proc/self/exe");
}

/* ---- the list: state-changing attempts (umount) last ---- */
struct attempt {
  const char *name;
  void (*fn)(struct res *);
  int timeout_s;
};

static const struct attempt attempts[] = {
    {"mount.tmpfs", mount_tmpfs, 10},
    {"mount.in_new_userns", mount_in_new_userns, 10},
    {"pivot_root", do_pivot_root, 10},
    {"unshare.user", unshare_user, 10},
    {"unshare.mnt", unshare_mnt, 10},
    {"unshare.pid", unshare_pid, 10},
    {"unshare.net", unshare_net, 10},
    {"unshare.uts", unshare_uts, 10},
    {"unshare.ipc", unshare_ipc, 10},
    {"unshare.cgroup", unshare_cgroup, 10},
    {"unshare.time", unshare_time, 10},
    {"setns.user", setns_user, 10},
    {"setns.mnt", setns_mnt, 10},
    {"setns.pid", setns_pid, 10},
    {"setns.net", setns_net, 10},
    {"setns.uts", setns_uts, 10},
    {"setns.ipc", setns_ipc, 10},
    {"setns.cgroup", setns_cgroup, 10},
    {"setns.time", setns_time, 10},
    {"ptrace.attach", ptrace_attach, 10},
    {"ptrace.seize", ptrace_seize, 10},
    {"ptrace.traceme", ptrace_traceme, 10},
    {"bpf.prog_load", bpf_prog_load, 10},
    {"bpf.map_create", bpf_map_create, 10},
    {"perf_event_open.self", perf_self, 10},
    {"perf_event_open.cpu", perf_cpu, 10},
    {"keyctl.read_session", read_session, 10},
    {"keyctl.join_session", keyctl_join_session, 10},
    {"keyctl.add_key", keyctl_add_key, 10},
    {"module.init_module", init_module_probe, 10},
    {"module.finit_module", finit_module_probe, 10},
    {"kexec.kexec_load", kexec_load_probe, 10},
    {"kexec.kexec_file_load", kexec_file_load_probe, 10},
    {"open_by_handle_at", by_handle, 10},
    {"userfaultfd.kernel", uffd_kernel, 10},
    {"userfaultfd.user_mode", uffd_user, 10},
    {"io_uring", io_uring, 10},
    {"mknod.char", mknod_char, 10},
    {"mknod.block", mknod_block, 10},
    {"chmod_setuid", chmod_setuid, 10},
    {"chown", chown_other, 10},
    {"proc_sys.hostname", proc_sys_hostname, 10},
    {"proc_sys.core_pattern", proc_sys_core_pattern, 10},
    {"proc_sys.drop_caches", proc_sys_drop_caches, 10},
    {"sysrq_trigger", sysrq, 10},
    {"sys.uevent_helper", sys_uevent_helper, 10},
    {"sys.release_agent", sys_release_agent, 10},
    {"sys.lo_mtu", sys_lo_mtu, 10},
    {"raw_socket", raw_socket, 10},
    {"packet_socket", packet_socket, 10},
    {"tcp_connect", tcp_connect, 10},
    {"udp_send", udp_send, 10},
    {"fork_bomb", fork_bomb, 60},
    {"fds.self", fds_self, 10},
    {"fds.pid1", fds_pid1, 10},
    {"exe.pid1", exe_pid1, 10},
    {"exe.self", exe_self, 10},
    {"umount.masked", umount_masked, 10},
    {"umount.readonly", umount_readonly, 10},
};
#define NATTEMPTS (sizeof attempts / sizeof attempts[0])

/* ---- the alarm guard: an attempt that blocks is abandoned, the rest go on ---- */
static sigjmp_buf guard;
static void on_alarm(int sig) {
  (void)sig;
  siglongjmp(guard, 1);
}

static void run(const struct attempt *a) {
  struct res r;
  memset(&r, 0, sizeof r);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sigaction(SIGALRM, &sa, NULL);
  if (sigsetjmp(guard, 1) == 0) {
    alarm((unsigned)a->timeout_s);
    a->fn(&r);
    alarm(0);
  } else {
    r.ok = 0;
    r.err = ETIMEDOUT;
    setd(&r, "abandoned after %d s (alarm)", a->timeout_s);
  }
  reap_all();
  emit(a->name, &r);
}

/* A writable directory: --tmp, else the usual places a container may write. */
static void find_tmp(void) {
  const char *cand[] = {tmp_opt, "/tmp", "/dev/shm", "/dev", "/run", NULL};
  for (int i = 0; i < 5; i++) {
    if (!cand[i]) continue;
    char probe[300];
    snprintf(probe, sizeof probe, "%s/.escape-probe.%d", cand[i], (int)getpid());
    int fd = open(probe, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0) continue;
    close(fd);
    unlink(probe);
    snprintf(tmpdir, sizeof tmpdir, "%s", cand[i]);
    return;
  }
}

static int parse_addr(const char *v, char *ip, size_t cap, int *port) {
  const char *c = strrchr(v, ':');
  if (!c || (size_t)(c - v) >= cap) return -1;
  memcpy(ip, v, (size_t)(c - v));
  ip[c - v] = 0;
  *port = atoi(c + 1);
  return *port > 0 && *port < 65536 ? 0 : -1;
}

static int selected(const char *name, int argc, char **argv, int first) {
  for (int i = first; i < argc; i++) {
    if (strcmp(argv[i], "all") == 0 || strcmp(argv[i], name) == 0) return 1;
    size_t n = strlen(argv[i]);
    if (strncmp(name, argv[i], n) == 0 && name[n] == '.') return 1; /* a group */
  }
  return 0;
}

static int known(const char *word) {
  if (strcmp(word, "all") == 0) return 1;
  for (size_t i = 0; i < NATTEMPTS; i++) {
    const char *n = attempts[i].name;
    size_t l = strlen(word);
    if (strcmp(n, word) == 0 || (strncmp(n, word, l) == 0 && n[l] == '.')) return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  const char *env;
  if ((env = getenv("ESCAPE_TCP"))) parse_addr(env, tcp_ip, sizeof tcp_ip, &tcp_port);
  if ((env = getenv("ESCAPE_UDP"))) parse_addr(env, udp_ip, sizeof udp_ip, &udp_port);
  int first = 1;
  for (; first < argc && strncmp(argv[first], "--", 2) == 0; first++) {
    const char *a = argv[first];
    int bad = 0;
    if (strncmp(a, "--tcp=", 6) == 0)
      bad = parse_addr(a + 6, tcp_ip, sizeof tcp_ip, &tcp_port);
    else if (strncmp(a, "--udp=", 6) == 0)
      bad = parse_addr(a + 6, udp_ip, sizeof udp_ip, &udp_port);
    else if (strncmp(a, "--fork-n=", 9) == 0)
      bad = (fork_n = atoi(a + 9)) <= 0 || fork_n > MAX_KIDS - 8;
    else if (strncmp(a, "--tmp=", 6) == 0)
      tmp_opt = a + 6;
    else
      bad = 1;
    if (bad) {
      dprintf(2, "escape: bad option %s\n", a);
      return 2;
    }
  }
  if (first == argc) {
    dprintf(2, "usage: escape [--tcp=IP:PORT] [--udp=IP:PORT] [--fork-n=N] [--tmp=DIR] all | CLASS...\n");
    return 2;
  }
  for (int i = first; i < argc; i++)
    if (!known(argv[i])) {
      dprintf(2, "escape: no such class: %s\n", argv[i]);
      return 2;
    }
  signal(SIGPIPE, SIG_IGN);
  find_tmp();
  int n = 0;
  for (size_t i = 0; i < NATTEMPTS; i++) {
    if (!selected(attempts[i].name, argc, argv, first)) continue;
    run(&attempts[i]);
    n++;
  }
  char line[256];
  int len = snprintf(line, sizeof line, "{\"done\":true,\"attempts\":%d,\"pid\":%d,\"uid\":%d,\"tmp\":\"%s\"}\n", n,
                     (int)getpid(), (int)getuid(), tmpdir);
  put_all(line, (size_t)len);
  return 0;
}
