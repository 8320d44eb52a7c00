/*
 * hako's preload shim: limits and an audit trail where cgroups cannot reach.
 *
 * The runtime bind-mounts a generated /etc/ld.so.preload naming this library
 * (read-only) into the container, so every dynamically linked process loads it,
 * whatever its environment says. The library then counts memory, processes and
 * file descriptors and checks connect() and exec against allowlists, as the
 * annotations run.hako.shim.* asked (docs/limits.md).
 *
 * It is a second layer, not a sandbox: static binaries, raw system calls,
 * io_uring and the kernel's own memory go around it, and a process inside can
 * reset the shared process table it must be able to write. seccomp, rlimits
 * and cgroups are the backstop where they exist.
 *
 * One concern per file: config.c reads the limits, report.c writes denials,
 * memory.c / commit.c count memory, processes.c processes and threads, files.c
 * descriptors, connect.c and exec.c the allowlists, init.c ties them together.
 */
#ifndef HAKO_SHIM_H
#define HAKO_SHIM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SHIM_API __attribute__((visibility("default")))

/* The files next to the library (one read-only directory the runtime mounts). */
#define SHIM_CONFIG_NAME  "config"
#define SHIM_TABLE_NAME   "table"
#define SHIM_DENIALS_NAME "denials"

/* The shared process table: a header, then one 64-bit slot per process or
 * thread (tgid << 32 | tid; 0 is free). The runtime creates it with as many
 * slots as the process ceiling and reads first_pid to learn the shim loaded. */
#define SHIM_TABLE_MAGIC   0x6b6f6861u /* "ahok" */
#define SHIM_TABLE_VERSION 1u
struct shim_table {
  uint32_t magic;
  uint32_t version;
  int32_t first_pid; /* the pid (in the container) of the first process that loaded the shim */
  uint32_t nslots;
  uint8_t reserved[48];
  uint64_t slots[];
};

#define SHIM_MAX_CONNECT 64
#define SHIM_MAX_EXEC    64
#define SHIM_PATH_MAX    4096

struct shim_net_rule {
  int family; /* AF_INET, AF_INET6 or AF_UNIX */
  unsigned char addr[16];
  int prefix;     /* bits of addr that must match */
  int port;       /* 0: any port */
  char path[108]; /* AF_UNIX: the socket path ('@' first: abstract) */
};

struct shim_config {
  long long memory; /* bytes; 0: no ceiling */
  long processes;   /* processes and threads in the container; 0: none */
  long files;       /* open descriptors in a process; 0: none */
  int connect_set;  /* an allowlist was given (an empty one allows nothing) */
  int nconnect;
  struct shim_net_rule connect[SHIM_MAX_CONNECT];
  int exec_set;
  int nexec;
  char exec[SHIM_MAX_EXEC][SHIM_PATH_MAX];      /* as given */
  char exec_real[SHIM_MAX_EXEC][SHIM_PATH_MAX]; /* resolved (realpath) inside the container, or "" */
};

extern struct shim_config shim_cfg;
extern char shim_dir[SHIM_PATH_MAX];

/* init.c: the next definition of a libc function (the one this library hides). */
void *shim_real(const char *name);

/* config.c: parses the runtime's config file; 0, or -1 when it does not parse. */
int shim_parse_config(const char *text, size_t len, struct shim_config *cfg);

/* report.c: one JSON line per denial, appended to the denials file. Each field
 * is a key and either a string or a number; the list ends with a NULL key. */
struct shim_field {
  const char *key;
  const char *str; /* NULL: num is used */
  long long num;
};
void shim_deny(const char *kind, const char *call, const struct shim_field *fields);
void shim_report_init(void);

/* commit.c: the committed (writable, anonymous) ranges a process has mapped. */
void commit_lock(void);
void commit_unlock(void);
long long commit_overlap(uintptr_t start, uintptr_t end);
long long commit_remove(uintptr_t start, uintptr_t end);
long long commit_add(uintptr_t start, uintptr_t end);

/* memory.c: a thread hands its pending byte count to the process's. */
void shim_memory_thread_exit(void);

/* processes.c */
int shim_table_open(void);
void shim_table_mark_loaded(void);

/* files.c */
void shim_files_init(void);

/* exec.c */
void shim_exec_init(void);
/* 0 when path may be executed, else -1 with errno EACCES (and a denial written). */
int shim_exec_allowed(const char *call, const char *path);
/* The file execvp would run for `file` (searching PATH), into out; -1 when none is found. */
int shim_exec_search(const char *file, char out[SHIM_PATH_MAX]);

/* processes.c: claim a slot before creating a process or thread (-1: at the
 * ceiling, a denial written, errno EAGAIN), then fill or release it. */
long shim_slot_claim(const char *call);
void shim_slot_fill(long slot, pid_t tgid, pid_t tid);
void shim_slot_release(long slot);

#endif
