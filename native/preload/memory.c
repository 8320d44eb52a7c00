/*
 * The memory ceiling (run.hako.shim.memory): a process may hold at most that
 * many bytes of heap blocks (malloc and friends, counted by their usable size)
 * plus committed anonymous mappings (commit.c) plus what it grew brk by.
 * Past it, the call fails as a real allocator does: NULL with ENOMEM,
 * MAP_FAILED with ENOMEM, -1 with ENOMEM.
 *
 * The hot path, an allowed malloc or free, takes no lock and makes no system
 * call, and does not even write shared memory: glibc's own allocator
 * (__libc_malloc, which never comes back through these wrappers),
 * malloc_usable_size, and a thread-local running total that is added to the
 * process's count (one atomic add) only once it has moved by BATCH bytes. The
 * ceiling is so held to within BATCH bytes per thread: a locked add on every
 * malloc and free tripled the cost of a malloc/free pair (bench/shim).
 *
 * glibc's allocator maps and grows its own arenas through internal calls, not
 * through mmap or sbrk here, so nothing is counted twice.
 */
#include "shim.h"

#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);
extern void *__libc_pvalloc(size_t);
extern void __libc_free(void *);

static long long used; /* bytes; may dip below 0 by blocks allocated before the constructor */

/* This thread's bytes not yet in `used`. initial-exec TLS: a plain %fs-relative access. */
#define BATCH (256 * 1024)
static __thread long long pending __attribute__((tls_model("initial-exec")));

static inline void count(long long n) {
  long long p = pending + n;
  if (p > BATCH || p < -BATCH) {
    __atomic_add_fetch(&used, p, __ATOMIC_RELAXED);
    p = 0;
  }
  pending = p;
}

/* What this process holds, as far as this thread can tell. */
static inline long long held(void) {
  return __atomic_load_n(&used, __ATOMIC_RELAXED) + pending;
}

/* A thread that ends hands its running total over (the shim's pthread_create start routine calls it). */
void shim_memory_thread_exit(void) {
  __atomic_add_fetch(&used, pending, __ATOMIC_RELAXED);
  pending = 0;
}

static long long page_round(size_t n) {
  long long page = 4096;
  return (long long)((n + (size_t)page - 1) & ~((size_t)page - 1));
}

static void deny(const char *call, long long requested) {
  struct shim_field f[] = {
      {"requested", NULL, requested}, {"used", NULL, held()}, {"limit", NULL, shim_cfg.memory}, {NULL, NULL, 0}};
  shim_deny("memory", call, f);
  errno = ENOMEM;
}

/* Whether `more` bytes would pass the ceiling (a check before the call, so no
 * huge block is made only to be freed). */
static int over(long long more) {
  return shim_cfg.memory && more > 0 && held() + more > shim_cfg.memory;
}

/* Counts a new block; gives it back and fails when a concurrent allocation
 * took the room first. */
static void *account(void *p, const char *call, size_t requested) {
  if (!p) return NULL;
  long long n = (long long)malloc_usable_size(p);
  if (shim_cfg.memory && held() + n > shim_cfg.memory) {
    __libc_free(p);
    deny(call, (long long)requested);
    return NULL;
  }
  count(n);
  return p;
}

SHIM_API void *malloc(size_t n) {
  if (over((long long)n)) return deny("malloc", (long long)n), NULL;
  return account(__libc_malloc(n), "malloc", n);
}

SHIM_API void free(void *p) {
  if (!p) return;
  long long n = (long long)malloc_usable_size(p);
  __libc_free(p);
  count(-n);
}

SHIM_API void *calloc(size_t n, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(n, size, &total)) return errno = ENOMEM, NULL;
  if (over((long long)total)) return deny("calloc", (long long)total), NULL;
  return account(__libc_calloc(n, size), "calloc", total);
}

SHIM_API void *realloc(void *p, size_t n) {
  if (!p) return malloc(n);
  if (n == 0) return free(p), NULL; /* glibc frees and returns NULL */
  long long old = (long long)malloc_usable_size(p);
  if (over((long long)n - old)) return deny("realloc", (long long)n), NULL;
  void *q = __libc_realloc(p, n);
  if (!q) return NULL; /* p is untouched and still counted */
  count((long long)malloc_usable_size(q) - old);
  return q;
}

SHIM_API void *reallocarray(void *p, size_t n, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(n, size, &total)) return errno = ENOMEM, NULL;
  return realloc(p, total);
}

SHIM_API void *memalign(size_t align, size_t n) {
  if (over((long long)n)) return deny("memalign", (long long)n), NULL;
  return account(__libc_memalign(align, n), "memalign", n);
}

SHIM_API void *aligned_alloc(size_t align, size_t n) {
  if (over((long long)n)) return deny("aligned_alloc", (long long)n), NULL;
  return account(__libc_memalign(align, n), "aligned_alloc", n);
}

SHIM_API int posix_memalign(void **out, size_t align, size_t n) {
  if (align < sizeof(void *) || (align & (align - 1))) return EINVAL;
  int saved = errno;
  if (over((long long)n)) {
    deny("posix_memalign", (long long)n);
    errno = saved;
    return ENOMEM;
  }
  void *p = account(__libc_memalign(align, n), "posix_memalign", n);
  if (!p) {
    errno = saved;
    return ENOMEM;
  }
  *out = p;
  return 0;
}

SHIM_API void *valloc(size_t n) {
  if (over((long long)n)) return deny("valloc", (long long)n), NULL;
  return account(__libc_valloc(n), "valloc", n);
}

SHIM_API void *pvalloc(size_t n) {
  if (over(page_round(n))) return deny("pvalloc", (long long)n), NULL;
  return account(__libc_pvalloc(n), "pvalloc", n);
}

/* ---- mappings: only anonymous writable memory commits; PROT_NONE reserves ---- */

static void *raw_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

static int commits(int prot, int flags) {
  return (flags & MAP_ANONYMOUS) && (prot & PROT_WRITE);
}

SHIM_API void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  if (!commits(prot, flags) && !(flags & MAP_FIXED)) return raw_mmap(addr, len, prot, flags, fd, off);
  commit_lock();
  uintptr_t a = (uintptr_t)addr;
  long long replaced = (flags & MAP_FIXED) ? commit_overlap(a, a + (uintptr_t)page_round(len)) : 0;
  long long need = commits(prot, flags) ? page_round(len) : 0;
  if (over(need - replaced)) {
    commit_unlock();
    deny("mmap", need);
    return MAP_FAILED;
  }
  void *p = raw_mmap(addr, len, prot, flags, fd, off);
  if (p != MAP_FAILED) {
    uintptr_t s = (uintptr_t)p, e = s + (uintptr_t)page_round(len);
    long long delta = need ? commit_add(s, e) : -commit_remove(s, e);
    __atomic_add_fetch(&used, delta, __ATOMIC_RELAXED);
  }
  commit_unlock();
  return p;
}

SHIM_API void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  return mmap(addr, len, prot, flags, fd, off);
}

SHIM_API int munmap(void *addr, size_t len) {
  commit_lock();
  long r = syscall(SYS_munmap, addr, len);
  if (r == 0) {
    uintptr_t s = (uintptr_t)addr;
    __atomic_sub_fetch(&used, commit_remove(s, s + (uintptr_t)page_round(len)), __ATOMIC_RELAXED);
  }
  commit_unlock();
  return (int)r;
}

/* Made writable: the range commits. Made PROT_NONE: it is given back (V8
 * decommits that way). Made read-only or executable: still committed, as the
 * kernel's own accounting keeps it (the pages stay). */
SHIM_API int mprotect(void *addr, size_t len, int prot) {
  uintptr_t s = (uintptr_t)addr, e = s + (uintptr_t)page_round(len);
  commit_lock();
  if ((prot & PROT_WRITE) && over(page_round(len) - commit_overlap(s, e))) {
    commit_unlock();
    deny("mprotect", page_round(len));
    return -1;
  }
  long r = syscall(SYS_mprotect, addr, len, prot);
  if (r == 0) {
    long long delta = (prot & PROT_WRITE) ? commit_add(s, e) : prot == PROT_NONE ? -commit_remove(s, e) : 0;
    __atomic_add_fetch(&used, delta, __ATOMIC_RELAXED);
  }
  commit_unlock();
  return (int)r;
}

/* A committed range moves (and may grow): it stays committed at its new place. */
SHIM_API void *mremap(void *old, size_t oldlen, size_t newlen, int flags, ...) {
  void *want = NULL;
  if (flags & MREMAP_FIXED) {
    __builtin_va_list ap;
    __builtin_va_start(ap, flags);
    want = __builtin_va_arg(ap, void *);
    __builtin_va_end(ap);
  }
  uintptr_t s = (uintptr_t)old;
  commit_lock();
  long long was = commit_overlap(s, s + (uintptr_t)page_round(oldlen));
  if (was && over(page_round(newlen) - was)) {
    commit_unlock();
    deny("mremap", page_round(newlen));
    return MAP_FAILED;
  }
  void *p = (void *)syscall(SYS_mremap, old, oldlen, newlen, flags, want);
  if (p != MAP_FAILED && was) {
    long long delta = -commit_remove(s, s + (uintptr_t)page_round(oldlen));
    uintptr_t n = (uintptr_t)p;
    delta += commit_add(n, n + (uintptr_t)page_round(newlen));
    __atomic_add_fetch(&used, delta, __ATOMIC_RELAXED);
  }
  commit_unlock();
  return p;
}

/* ---- the program break (glibc's malloc moves it through internal calls, not these) ---- */

SHIM_API int brk(void *addr) {
  static int (*real)(void *);
  if (!real) real = (int (*)(void *))shim_real("brk");
  long long more = (long long)((uintptr_t)addr - (uintptr_t)syscall(SYS_brk, 0));
  if (over(more)) return deny("brk", more), -1;
  int r = real(addr);
  if (r == 0) __atomic_add_fetch(&used, more, __ATOMIC_RELAXED);
  return r;
}

SHIM_API void *sbrk(intptr_t inc) {
  static void *(*real)(intptr_t);
  if (!real) real = (void *(*)(intptr_t))shim_real("sbrk");
  if (over((long long)inc)) return deny("sbrk", (long long)inc), (void *)-1;
  void *r = real(inc);
  if (r != (void *)-1) __atomic_add_fetch(&used, (long long)inc, __ATOMIC_RELAXED);
  return r;
}
