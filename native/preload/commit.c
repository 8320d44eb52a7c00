/*
 * The committed ranges of a process: address ranges it mapped anonymous and
 * writable (mmap), or made writable (mprotect), and has not unmapped or turned
 * PROT_NONE since. V8 reserves gigabytes of PROT_NONE address space and makes
 * pieces of it writable as its heap grows: only those pieces count.
 *
 * A sorted array of disjoint [start, end) ranges, grown with raw mmap (never
 * malloc: this is called from inside mmap and realloc paths). Callers hold the
 * lock (a spinlock: mmap, munmap and mprotect are rare next to malloc, and
 * never called from a signal handler by a sane program). fork takes it around
 * the fork so the child never inherits it held.
 */
#include "shim.h"

#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

struct range {
  uintptr_t start, end;
};

static struct range *ranges;
static size_t nranges, capacity;
static int lock_word;

void commit_lock(void) {
  while (__atomic_exchange_n(&lock_word, 1, __ATOMIC_ACQUIRE)) __builtin_ia32_pause();
}

void commit_unlock(void) {
  __atomic_store_n(&lock_word, 0, __ATOMIC_RELEASE);
}

static int grow(void) {
  size_t cap = capacity ? capacity * 2 : 1024;
  void *p =
      (void *)syscall(SYS_mmap, NULL, cap * sizeof *ranges, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return -1;
  if (ranges) {
    memcpy(p, ranges, nranges * sizeof *ranges);
    syscall(SYS_munmap, ranges, capacity * sizeof *ranges);
  }
  ranges = p;
  capacity = cap;
  return 0;
}

/* The first range that ends after start. */
static size_t first_after(uintptr_t start) {
  size_t lo = 0, hi = nranges;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (ranges[mid].end <= start)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

long long commit_overlap(uintptr_t start, uintptr_t end) {
  long long n = 0;
  for (size_t i = first_after(start); i < nranges && ranges[i].start < end; i++) {
    uintptr_t s = ranges[i].start > start ? ranges[i].start : start;
    uintptr_t e = ranges[i].end < end ? ranges[i].end : end;
    n += (long long)(e - s);
  }
  return n;
}

static int insert_at(size_t i, uintptr_t start, uintptr_t end) {
  if (nranges == capacity && grow()) return -1;
  memmove(ranges + i + 1, ranges + i, (nranges - i) * sizeof *ranges);
  ranges[i].start = start;
  ranges[i].end = end;
  nranges++;
  return 0;
}

long long commit_remove(uintptr_t start, uintptr_t end) {
  long long removed = 0;
  size_t i = first_after(start);
  while (i < nranges && ranges[i].start < end) {
    struct range r = ranges[i];
    uintptr_t s = r.start > start ? r.start : start;
    uintptr_t e = r.end < end ? r.end : end;
    removed += (long long)(e - s);
    if (r.start < start && r.end > end) {
      /* A hole in the middle: split in two (if that cannot grow, keep it counted). */
      ranges[i].end = start;
      if (insert_at(i + 1, end, r.end)) {
        ranges[i].end = r.end;
        return removed - (long long)(e - s);
      }
      return removed;
    }
    if (r.start < start) {
      ranges[i].end = start;
      i++;
    } else if (r.end > end) {
      ranges[i].start = end;
      i++;
    } else {
      memmove(ranges + i, ranges + i + 1, (nranges - i - 1) * sizeof *ranges);
      nranges--;
    }
  }
  return removed;
}

long long commit_add(uintptr_t start, uintptr_t end) {
  long long already = commit_remove(start, end);
  size_t i = first_after(start);
  /* Merge with a neighbour that touches, so adjacent mprotect calls do not pile up. */
  if (i > 0 && ranges[i - 1].end == start) {
    ranges[i - 1].end = end;
    if (i < nranges && ranges[i].start == end) {
      ranges[i - 1].end = ranges[i].end;
      memmove(ranges + i, ranges + i + 1, (nranges - i - 1) * sizeof *ranges);
      nranges--;
    }
  } else if (i < nranges && ranges[i].start == end) {
    ranges[i].start = start;
  } else if (insert_at(i, start, end)) {
    return 0 - already; /* not recorded: counted as nothing, as before */
  }
  return (long long)(end - start) - already;
}
