#define _GNU_SOURCE
/*
 * The program the shim's integration tests run in containers (dynamically
 * linked, so the loader preloads the shim): one subcommand per proof, each
 * printing what it saw on stdout and exiting 0 when it could still print.
 *
 *   alloc STEP       malloc and touch STEP bytes at a time until it fails
 *   mmap STEP        the same with anonymous mmap
 *   reserve          8 GiB of PROT_NONE, then 1 MiB of it made writable
 *   fork             fork children that wait, until fork fails
 *   threads          start threads that wait, until pthread_create fails
 *   files            open /dev/null until it fails
 *   connect PORT...  listen on each port of 127.0.0.1, then connect to each
 *   exec PATH ARG... execv, printing the error when it fails
 *   loaded           whether the shim is mapped, and what LD_PRELOAD says
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *err(int e) {
  return e ? strerrorname_np(e) : "0";
}

static int alloc(size_t step) {
  size_t n = 0;
  for (;;) {
    char *p = malloc(step);
    if (!p) break;
    memset(p, 1, step);
    n++;
  }
  int e = errno;
  printf("malloc stopped after %zu MiB: %s\n", n * step >> 20, err(e));
  printf("still alive\n");
  return 0;
}

static int map(size_t step) {
  size_t n = 0;
  for (;;) {
    char *p = mmap(NULL, step, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) break;
    memset(p, 1, step);
    n++;
  }
  int e = errno;
  printf("mmap stopped after %zu MiB: %s\n", n * step >> 20, err(e));
  printf("still alive\n");
  return 0;
}

static int reserve(void) {
  size_t big = (size_t)8 << 30;
  char *p = mmap(NULL, big, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return printf("reserve failed: %s\n", err(errno)), 1;
  if (mprotect(p, 1 << 20, PROT_READ | PROT_WRITE)) return printf("commit failed: %s\n", err(errno)), 1;
  memset(p, 1, 1 << 20);
  int e = mprotect(p + (1 << 20), (size_t)1 << 30, PROT_READ | PROT_WRITE) ? errno : 0;
  printf("reserved 8 GiB, committed 1 MiB; committing 1 GiB more: %s\n", err(e));
  return 0;
}

static int forks(void) {
  int pipefd[2];
  if (pipe(pipefd)) return 1;
  int n = 0;
  for (;;) {
    pid_t p = fork();
    if (p < 0) break;
    if (p == 0) {
      char c;
      close(pipefd[1]);
      while (read(pipefd[0], &c, 1) > 0) {}
      _exit(0);
    }
    n++;
    if (n > 10000) break;
  }
  int e = errno;
  printf("fork stopped after %d children: %s\n", n, err(e));
  close(pipefd[1]);
  while (wait(NULL) > 0) {}
  printf("still alive\n");
  return 0;
}

static int gate[2];
static void *waiter(void *arg) {
  char c;
  (void)arg;
  while (read(gate[0], &c, 1) > 0) {}
  return NULL;
}

static int threads(void) {
  if (pipe(gate)) return 1;
  pthread_t t[10000];
  int n = 0, r = 0;
  while (n < 10000 && (r = pthread_create(&t[n], NULL, waiter, NULL)) == 0) n++;
  printf("pthread_create stopped after %d threads: %s\n", n, err(r));
  close(gate[1]);
  for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
  printf("still alive\n");
  return 0;
}

static int files(void) {
  int n = 0;
  while (open("/dev/null", O_RDONLY) >= 0) n++;
  int e = errno;
  printf("open stopped after %d more descriptors: %s\n", n, err(e));
  printf("still alive\n");
  return 0;
}

static int connects(int argc, char **argv) {
  for (int i = 0; i < argc; i++) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[i]))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 1)) return printf("listen failed\n"), 1;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int e = connect(s, (struct sockaddr *)&a, sizeof a) ? errno : 0;
    printf("connect 127.0.0.1:%s: %s\n", argv[i], e ? err(e) : "ok");
    close(s);
    close(l);
  }
  return 0;
}

static int loaded(void) {
  FILE *f = fopen("/proc/self/maps", "r");
  char line[512];
  int found = 0;
  while (f && fgets(line, sizeof line, f))
    if (strstr(line, "hako-shim.so")) found = 1;
  if (f) fclose(f);
  const char *pre = getenv("LD_PRELOAD");
  printf("shim %s, LD_PRELOAD %s\n", found ? "loaded" : "absent", pre ? pre : "unset");
  return 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 2) return 2;
  const char *cmd = argv[1];
  if (!strcmp(cmd, "alloc") && argc > 2) return alloc(strtoul(argv[2], NULL, 0));
  if (!strcmp(cmd, "mmap") && argc > 2) return map(strtoul(argv[2], NULL, 0));
  if (!strcmp(cmd, "reserve")) return reserve();
  if (!strcmp(cmd, "fork")) return forks();
  if (!strcmp(cmd, "threads")) return threads();
  if (!strcmp(cmd, "files")) return files();
  if (!strcmp(cmd, "connect")) return connects(argc - 2, argv + 2);
  if (!strcmp(cmd, "loaded")) return loaded();
  if (!strcmp(cmd, "exec") && argc > 2) {
    execv(argv[2], argv + 2);
    printf("exec %s failed: %s\n", argv[2], err(errno));
    return 0;
  }
  return 2;
}
