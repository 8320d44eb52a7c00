/* A raw system call from inside a container, and what came back:
 *   probe NR [ARG...]     ARG: a number (decimal or 0x hex), or s:TEXT for a pointer to TEXT
 * prints "ret=R errno=E" (E is 0 when R >= 0). Static, so any rootfs can hold it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: probe NR [ARG...]\n");
    return 2;
  }
  long nr = strtol(argv[1], NULL, 0);
  long a[6] = {0};
  for (int i = 2; i < argc && i < 8; i++)
    a[i - 2] = strncmp(argv[i], "s:", 2) == 0 ? (long)(argv[i] + 2) : (long)strtoull(argv[i], NULL, 0);
  errno = 0;
  long r = syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
  printf("ret=%ld errno=%d\n", r, r < 0 ? errno : 0);
  fflush(stdout);
  return 0;
}
