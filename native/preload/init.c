/*
 * The constructor: find the directory the library was loaded from (the
 * runtime's read-only mount), read the configuration there, open the shared
 * process table, take stock of the descriptors the process inherited, and
 * resolve the exec allowlist. Then mark the table: the runtime checks that the
 * container's first process loaded the shim, and refuses to start otherwise.
 *
 * It runs before main (priority 101, before other constructors of the program
 * that could allocate or fork), once per executed program image.
 */
#include "shim.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

struct shim_config shim_cfg;
char shim_dir[SHIM_PATH_MAX];

static void die_missing(const char *name) {
  syscall(SYS_write, 2, "hako shim: libc has no ", 23);
  syscall(SYS_write, 2, name, strlen(name));
  syscall(SYS_write, 2, "\n", 1);
  syscall(SYS_exit_group, 127);
}

void *shim_real(const char *name) {
  void *p = dlsym(RTLD_NEXT, name);
  if (!p) die_missing(name);
  return p;
}

static void die(const char *why) {
  static const char pre[] = "hako shim: ";
  syscall(SYS_write, 2, pre, sizeof pre - 1);
  syscall(SYS_write, 2, why, strlen(why));
  syscall(SYS_write, 2, "\n", 1);
  syscall(SYS_exit_group, 127);
}

/* The directory holding this library, from the loader's own record of it. */
static int find_dir(void) {
  Dl_info info;
  if (!dladdr((void *)find_dir, &info) || !info.dli_fname || info.dli_fname[0] != '/') return -1;
  const char *slash = strrchr(info.dli_fname, '/');
  size_t n = (size_t)(slash - info.dli_fname);
  if (n == 0 || n >= sizeof shim_dir) return -1;
  memcpy(shim_dir, info.dli_fname, n);
  shim_dir[n] = 0;
  return 0;
}

static int read_config(void) {
  static char text[64 * 1024];
  char path[SHIM_PATH_MAX + 16];
  size_t dl = strlen(shim_dir);
  memcpy(path, shim_dir, dl);
  path[dl] = '/';
  memcpy(path + dl + 1, SHIM_CONFIG_NAME, sizeof SHIM_CONFIG_NAME);
  int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return -1;
  size_t len = 0;
  for (;;) {
    long r = syscall(SYS_read, fd, text + len, sizeof text - len);
    if (r < 0) {
      syscall(SYS_close, fd);
      return -1;
    }
    if (r == 0) break;
    len += (size_t)r;
    if (len == sizeof text) {
      syscall(SYS_close, fd);
      return -1;
    }
  }
  syscall(SYS_close, fd);
  return shim_parse_config(text, len, &shim_cfg);
}

__attribute__((constructor(101))) static void shim_init(void) {
  if (find_dir()) die("cannot tell where it was loaded from");
  if (read_config()) die("its configuration is missing or does not parse; the container's limits cannot be kept");
  shim_report_init();
  if (shim_table_open()) die("cannot open the container's process table");
  shim_files_init();
  shim_exec_init();
  shim_table_mark_loaded();
}
