/*
 * The process ceiling (run.hako.shim.processes): processes and threads,
 * counted across the whole container, not per process.
 *
 * The count lives in a table the runtime creates (one file next to the
 * library, bind-mounted writable over itself) and every process maps shared:
 * one 64-bit slot per live process or thread, tgid << 32 | tid. Creating one
 * claims a free slot first (compare-and-swap, no lock); when none is free, the
 * slots of tasks that are gone (tgkill(tgid, tid, 0) says ESRCH) are freed and
 * the claim tried again. Nothing has to run at exit, so a process killed by
 * SIGKILL frees its slot as surely as one that returns from main. A zombie
 * still holds one, as it does against RLIMIT_NPROC.
 *
 * While the new task is being made its slot names the creating thread, with
 * RESERVED set, so it is never freed as gone; then it names the new task.
 *
 * A process inside can write the table (it has to, to claim slots): it can
 * free slots and so go past the ceiling. It can also make processes with raw
 * clone(2). This layer stops runaway programs, not attackers (docs/limits.md).
 */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <spawn.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define RESERVED 0x80000000ull

extern void *__libc_malloc(size_t);
extern void __libc_free(void *);

static struct shim_table *table;

static uint64_t slot_value(pid_t tgid, pid_t tid) {
  return ((uint64_t)(uint32_t)tgid << 32) | (uint32_t)tid;
}

static pid_t my_tid(void) {
  return (pid_t)syscall(SYS_gettid);
}
static pid_t my_pid(void) {
  return (pid_t)syscall(SYS_getpid);
}

int shim_table_open(void) {
  char path[SHIM_PATH_MAX + 16];
  size_t dl = strlen(shim_dir);
  memcpy(path, shim_dir, dl);
  path[dl] = '/';
  memcpy(path + dl + 1, SHIM_TABLE_NAME, sizeof SHIM_TABLE_NAME);
  int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return -1;
  struct stat st;
  if (syscall(SYS_fstat, fd, &st) || !S_ISREG(st.st_mode) || (size_t)st.st_size < sizeof(struct shim_table)) {
    syscall(SYS_close, fd);
    return -1;
  }
  void *p = (void *)syscall(SYS_mmap, NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  syscall(SYS_close, fd);
  if (p == MAP_FAILED) return -1;
  table = p;
  /* The runtime sized the file; a table that says otherwise was tampered with. */
  if (table->magic != SHIM_TABLE_MAGIC || table->version != SHIM_TABLE_VERSION ||
      sizeof(struct shim_table) + table->nslots * sizeof(uint64_t) > (size_t)st.st_size)
    return -1;
  return 0;
}

static int live(uint64_t v) {
  pid_t tgid = (pid_t)(v >> 32), tid = (pid_t)(v & 0x7fffffffu);
  return syscall(SYS_tgkill, tgid, tid, 0) == 0 || errno == EPERM;
}

static long find_free(uint64_t v) {
  for (uint32_t i = 0; i < table->nslots; i++) {
    uint64_t expected = 0;
    if (__atomic_load_n(&table->slots[i], __ATOMIC_RELAXED) == 0 &&
        __atomic_compare_exchange_n(&table->slots[i], &expected, v, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
      return i;
  }
  return -1;
}

/* Frees the slots of tasks that are gone. */
static void reclaim(void) {
  int saved = errno;
  for (uint32_t i = 0; i < table->nslots; i++) {
    uint64_t v = __atomic_load_n(&table->slots[i], __ATOMIC_RELAXED);
    if (v && !live(v)) __atomic_compare_exchange_n(&table->slots[i], &v, 0, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
  }
  errno = saved;
}

static long claim(uint64_t v) {
  long s = find_free(v);
  if (s < 0) {
    reclaim();
    s = find_free(v);
  }
  return s;
}

/* The first process that loads the shim says so (the runtime waits for it),
 * and every process makes sure it holds a slot (after exec it does already:
 * its parent filled one). */
void shim_table_mark_loaded(void) {
  int32_t zero = 0;
  pid_t pid = my_pid();
  __atomic_compare_exchange_n(&table->first_pid, &zero, pid, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
  if (!shim_cfg.processes) return;
  uint64_t me = slot_value(pid, pid);
  for (uint32_t i = 0; i < table->nslots; i++)
    if (__atomic_load_n(&table->slots[i], __ATOMIC_RELAXED) == me) return;
  claim(me); /* full: it exists anyway, and cannot be refused now */
}

long shim_slot_claim(const char *call) {
  if (!shim_cfg.processes) return -2;
  long s = claim(slot_value(my_pid(), my_tid()) | RESERVED);
  if (s >= 0) return s;
  struct shim_field f[] = {{"limit", NULL, shim_cfg.processes}, {NULL, NULL, 0}};
  shim_deny("processes", call, f);
  errno = EAGAIN;
  return -1;
}

void shim_slot_fill(long slot, pid_t tgid, pid_t tid) {
  if (slot >= 0) __atomic_store_n(&table->slots[slot], slot_value(tgid, tid), __ATOMIC_RELEASE);
}

void shim_slot_release(long slot) {
  if (slot >= 0) __atomic_store_n(&table->slots[slot], 0, __ATOMIC_RELEASE);
}

/* ---- the calls that make processes and threads ---- */

SHIM_API pid_t fork(void) {
  static pid_t (*real)(void);
  if (!real) real = (pid_t(*)(void))shim_real("fork");
  long slot = shim_slot_claim("fork");
  if (slot == -1) return -1;
  /* The child must not inherit the committed-ranges lock held by another thread. */
  commit_lock();
  pid_t p = real();
  commit_unlock();
  if (p > 0)
    shim_slot_fill(slot, p, p);
  else if (p < 0)
    shim_slot_release(slot);
  return p;
}

/* vfork's child may only exec or _exit, which a forked child may do as well. */
SHIM_API pid_t vfork(void) {
  return fork();
}

SHIM_API int clone(int (*fn)(void *), void *stack, int flags, void *arg, ...) {
  static int (*real)(int (*)(void *), void *, int, void *, ...);
  if (!real) real = (int (*)(int (*)(void *), void *, int, void *, ...))shim_real("clone");
  va_list ap;
  va_start(ap, arg);
  pid_t *ptid = va_arg(ap, pid_t *);
  void *tls = va_arg(ap, void *);
  pid_t *ctid = va_arg(ap, pid_t *);
  va_end(ap);
  long slot = shim_slot_claim("clone");
  if (slot == -1) return -1;
  int tid = real(fn, stack, flags, arg, ptid, tls, ctid);
  if (tid > 0)
    shim_slot_fill(slot, (flags & CLONE_THREAD) ? my_pid() : tid, tid);
  else
    shim_slot_release(slot);
  return tid;
}

struct start {
  void *(*fn)(void *);
  void *arg;
  long slot;
};

static void *thread_start(void *p) {
  struct start s = *(struct start *)p;
  __libc_free(p);
  shim_slot_fill(s.slot, my_pid(), my_tid());
  void *r = s.fn(s.arg);
  shim_memory_thread_exit(); /* not reached after pthread_exit: up to BATCH bytes stay unseen */
  return r;
}

SHIM_API int pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg) {
  static int (*real)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
  if (!real)
    real = (int (*)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *))shim_real("pthread_create");
  if (!shim_cfg.processes) return real(t, attr, fn, arg);
  int saved = errno;
  long slot = shim_slot_claim("pthread_create");
  if (slot == -1) return errno = saved, EAGAIN;
  struct start *s = __libc_malloc(sizeof *s);
  if (!s) return shim_slot_release(slot), EAGAIN;
  s->fn = fn;
  s->arg = arg;
  s->slot = slot;
  int r = real(t, attr, thread_start, s);
  if (r) {
    __libc_free(s);
    shim_slot_release(slot);
  }
  return r;
}

typedef int spawn_fn(pid_t *, const char *, const posix_spawn_file_actions_t *, const posix_spawnattr_t *,
                     char *const[], char *const[]);

static int spawn(spawn_fn *real, const char *call, const char *resolved, pid_t *pid, const char *path,
                 const posix_spawn_file_actions_t *fa, const posix_spawnattr_t *attr, char *const argv[],
                 char *const envp[]) {
  int saved = errno;
  if (shim_exec_allowed(call, resolved)) return errno = saved, EACCES;
  long slot = shim_slot_claim(call);
  if (slot == -1) return errno = saved, EAGAIN;
  pid_t child = 0;
  int r = real(&child, path, fa, attr, argv, envp);
  if (r == 0) {
    shim_slot_fill(slot, child, child);
    if (pid) *pid = child;
  } else {
    shim_slot_release(slot);
  }
  return r;
}

SHIM_API int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
                         const posix_spawnattr_t *attr, char *const argv[], char *const envp[]) {
  static spawn_fn *real;
  if (!real) real = (spawn_fn *)shim_real("posix_spawn");
  return spawn(real, "posix_spawn", path, pid, path, fa, attr, argv, envp);
}

SHIM_API int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
                          const posix_spawnattr_t *attr, char *const argv[], char *const envp[]) {
  static spawn_fn *real;
  if (!real) real = (spawn_fn *)shim_real("posix_spawnp");
  char found[SHIM_PATH_MAX];
  const char *resolved = shim_exec_search(file, found) ? file : found;
  return spawn(real, "posix_spawnp", resolved, pid, file, fa, attr, argv, envp);
}
