/*
 * A malloc/free-heavy microbenchmark for the preload shim (bench/shim/run.mjs
 * runs it with and without the shim): ITER rounds of allocating and freeing
 * blocks of mixed small sizes, with a window of live blocks so free is not
 * always of the last block. Prints nanoseconds per malloc+free pair.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WINDOW 256

int main(int argc, char **argv) {
  long iter = argc > 1 ? atol(argv[1]) : 20000000;
  void *live[WINDOW] = {0};
  unsigned x = 12345;
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (long i = 0; i < iter; i++) {
    x = x * 1103515245u + 12345u;
    unsigned slot = (x >> 8) % WINDOW;
    free(live[slot]);
    live[slot] = malloc(16 + (x >> 20) % 512);
    if (!live[slot]) return 1;
    ((char *)live[slot])[0] = (char)i;
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  for (int i = 0; i < WINDOW; i++) free(live[i]);
  double ns = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / (double)iter;
  printf("%.2f\n", ns);
  return 0;
}
