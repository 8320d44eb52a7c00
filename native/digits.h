/* Decimal digits without libc, for code that may only make raw system calls
 * (the runtime's clone, hako-init). */
#ifndef HAKO_DIGITS_H
#define HAKO_DIGITS_H
#include <stddef.h>

/* Writes v in decimal and a NUL into out (at least 11 bytes); returns out. */
static inline char *hako_utoa(char *out, unsigned v) {
  char d[16];
  int n = 0;
  size_t i = 0;
  do {
    d[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v && n < 15);
  while (n) out[i++] = d[--n];
  out[i] = 0;
  return out;
}
#endif
