/*
 * Denials: one JSON line each, appended to the denials file the runtime made
 * next to the library (and reads, and logs with the container's id).
 *
 * This runs inside malloc, fork and connect wrappers, possibly in a signal
 * handler's malloc: no allocation, no stdio, no locks — a line is formatted on
 * the stack and written with one write(2) on an O_APPEND descriptor, so lines
 * from many processes never interleave. A process writes at most MAX_LINES
 * lines; after that one last line says the rest were dropped (a loop that hits
 * a ceiling must not fill the disk).
 */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_LINES      100
#define LINE_MAX_BYTES 2048

static int lines_written;
static char exe[256];

struct line {
  char buf[LINE_MAX_BYTES];
  size_t len;
};

static void put(struct line *l, const char *s, size_t n) {
  if (l->len + n >= sizeof l->buf - 2) n = sizeof l->buf - 2 - l->len; /* keep room for "}\n" */
  memcpy(l->buf + l->len, s, n);
  l->len += n;
}

static void put_str(struct line *l, const char *s) {
  static const char hex[] = "0123456789abcdef";
  put(l, "\"", 1);
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\') {
      char e[2] = {'\\', (char)ch};
      put(l, e, 2);
    } else if (ch < 0x20) {
      char e[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};
      put(l, e, 6);
    } else {
      put(l, (const char *)&ch, 1);
    }
  }
  put(l, "\"", 1);
}

static void put_num(struct line *l, long long v) {
  char d[24];
  int i = sizeof d;
  unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
  do d[--i] = (char)('0' + u % 10);
  while ((u /= 10) && i > 1);
  if (v < 0) d[--i] = '-';
  put(l, d + i, sizeof d - (size_t)i);
}

static void put_field(struct line *l, const char *key, const char *str, long long num) {
  put(l, ",", 1);
  put_str(l, key);
  put(l, ":", 1);
  if (str)
    put_str(l, str);
  else
    put_num(l, num);
}

/* Called once from the constructor: the executable's path names the process in each line. */
void shim_report_init(void) {
  long n = syscall(SYS_readlink, "/proc/self/exe", exe, sizeof exe - 1);
  exe[n > 0 ? n : 0] = 0;
}

static void write_line(struct line *l) {
  char path[SHIM_PATH_MAX + 16];
  size_t dl = strlen(shim_dir);
  if (dl + sizeof SHIM_DENIALS_NAME + 1 > sizeof path) return;
  memcpy(path, shim_dir, dl);
  path[dl] = '/';
  memcpy(path + dl + 1, SHIM_DENIALS_NAME, sizeof SHIM_DENIALS_NAME);
  l->buf[l->len++] = '}';
  l->buf[l->len++] = '\n';
  int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return;
  syscall(SYS_write, fd, l->buf, l->len);
  syscall(SYS_close, fd);
}

void shim_deny(const char *kind, const char *call, const struct shim_field *fields) {
  int saved = errno;
  int n = __atomic_add_fetch(&lines_written, 1, __ATOMIC_RELAXED);
  if (n > MAX_LINES + 1) goto out;
  struct line l;
  l.len = 0;
  put(&l, "{\"shim\":1", 9);
  if (n == MAX_LINES + 1) {
    put_field(&l, "kind", "dropped", 0);
    put_field(&l, "call", call, 0);
  } else {
    put_field(&l, "kind", kind, 0);
    put_field(&l, "call", call, 0);
    for (const struct shim_field *f = fields; f && f->key; f++) put_field(&l, f->key, f->str, f->num);
  }
  put_field(&l, "pid", NULL, (long long)syscall(SYS_getpid));
  if (exe[0]) put_field(&l, "exe", exe, 0);
  write_line(&l);
out:
  errno = saved;
}
