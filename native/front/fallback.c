/*
 * Today's path (node bin/hako.cjs, the whole CLI in one process), and the
 * start of a planner for the next calls. The call that starts a planner is
 * served by today's path: nothing waits for the planner.
 */
#include "front.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef HAKO_NODE
#error "HAKO_NODE: the node binary's path, defined by binding.gyp"
#endif
#ifndef HAKO_BIN_DIR
#error "HAKO_BIN_DIR: the package's bin/ at build time, defined by binding.gyp"
#endif

/* The verbs the planner serves (issue 20); the others never start one. */
static const char *const SERVED[] = {"create", "start", "run",  "exec", "delete",
                                     "kill",   "state", "list", "ps",   "features"};

static const char *node_path(void) {
  const char *n = getenv("HAKO_NODE");
  return n && *n ? n : HAKO_NODE;
}

/* bin/ of the package: this program's own directory when hako.cjs is beside it
 * (the repository, or a symlink to it), else the one it was built in (a copy
 * installed as /usr/local/bin/hako, as docs/clients.md suggests). */
int front_exe_dir(char *out, size_t size) {
  ssize_t n = readlink("/proc/self/exe", out, size);
  if (n > 0 && (size_t)n < size) {
    out[n] = 0;
    char *slash = strrchr(out, '/');
    if (slash) {
      *(slash == out ? slash + 1 : slash) = 0;
      char probe[PATH_MAX + 16];
      snprintf(probe, sizeof probe, "%s/hako.cjs", out);
      if (access(probe, R_OK) == 0) return 0;
    }
  }
  if (strlen(HAKO_BIN_DIR) >= size) return -1;
  strcpy(out, HAKO_BIN_DIR);
  return 0;
}

int front_serves(const char *verb) {
  if (!verb) return 0;
  for (size_t i = 0; i < sizeof SERVED / sizeof *SERVED; i++)
    if (strcmp(verb, SERVED[i]) == 0) return 1;
  return 0;
}

void front_fallback(const struct front_call *c, const char *why) {
  const char *mode = getenv("HAKO_PLANNER");
  if (mode && strcmp(mode, "require") == 0) {
    fprintf(stderr, "hako: no planner served this call (%s)\n", why);
    exit(125);
  }
  char dir[PATH_MAX], script[PATH_MAX + 16];
  if (front_exe_dir(dir, sizeof dir) < 0) {
    fprintf(stderr, "hako: cannot find the directory of this program (/proc/self/exe): %s\n", strerror(errno));
    exit(127);
  }
  snprintf(script, sizeof script, "%s/hako.cjs", dir);
  const char *node = node_path();
  char **av = calloc((size_t)c->argc + 3, sizeof *av); /* node, script, argv[1..], NULL */
  if (!av) {
    fputs("hako: out of memory\n", stderr);
    exit(127);
  }
  av[0] = (char *)node;
  av[1] = script;
  for (int i = 1; i < c->argc; i++) av[i + 1] = c->argv[i];
  execv(node, av);
  fprintf(stderr, "hako: cannot run %s %s: %s\n", node, script, strerror(errno));
  exit(127);
}

/* In the detached grandchild: wait until the call that started us has ended
 * (its node must not compete with the planner's start for the cores), or 1 s. */
static void wait_for(pid_t caller) {
  int pfd = (int)syscall(SYS_pidfd_open, caller, 0);
  if (pfd < 0) return;
  struct pollfd p = {pfd, POLLIN, 0};
  while (poll(&p, 1, 1000) < 0 && errno == EINTR) {}
  close(pfd);
}

void front_start_planner(const struct front_call *c, const char *root) {
  const char *mode = getenv("HAKO_PLANNER");
  if ((mode && strcmp(mode, "off") == 0) || !front_serves(c->verb)) return;
  char dir[PATH_MAX], planner[PATH_MAX + 32];
  if (front_exe_dir(dir, sizeof dir) < 0) return;
  snprintf(planner, sizeof planner, "%s/../dist/cli/planner.cjs", dir);
  if (access(planner, R_OK) < 0) return; /* not built: nothing to start */
  const char *node = node_path();
  /* The planner gets only what it needs of the caller's environment: each
   * call brings its own. */
  static const char *const KEEP[] = {"PATH", "HOME", "XDG_RUNTIME_DIR", "HAKO_PLANNER_IDLE_MS"};
  char *envp[sizeof KEEP / sizeof *KEEP + 1];
  int n = 0;
  for (size_t i = 0; i < sizeof KEEP / sizeof *KEEP; i++) {
    size_t k = strlen(KEEP[i]);
    for (char **e = c->envp; *e; e++)
      if (strncmp(*e, KEEP[i], k) == 0 && (*e)[k] == '=') {
        envp[n++] = *e;
        break;
      }
  }
  envp[n] = NULL;
  const char *argv[] = {node, planner, "--root", root, NULL};
  pid_t caller = getpid();
  pid_t child = fork();
  if (child < 0) return;
  if (child == 0) {
    /* A session of its own, and an orphan: no terminal, no caller's signals. */
    setsid();
    if (fork() != 0) _exit(0);
    /* First let go of the caller's stdio, so no one reading it waits for us. */
    int null = open("/dev/null", O_RDWR);
    if (null < 0) _exit(0);
    for (int fd = 0; fd < 3; fd++)
      if (dup2(null, fd) < 0) _exit(0);
    if (syscall(SYS_close_range, 3, ~0U, 0) < 0) _exit(0);
    /* Nor its working directory (a mount point someone may want to unmount). */
    if (chdir("/") < 0) _exit(0);
    wait_for(caller);
    /* Only for a root that is there (and still the caller's own) once the call
     * has ended: one removed meanwhile, or never made by the call, is not made
     * again by a planner nobody will call. */
    int root_fd = front_open_root(root);
    if (root_fd < 0) _exit(0);
    close(root_fd);
    execve(node, (char *const *)argv, envp);
    _exit(0);
  }
  while (waitpid(child, NULL, 0) < 0 && errno == EINTR) {}
}
