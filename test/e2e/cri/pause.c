// The pod sandbox's process (what the CRI calls the pause container): it holds the pod's
// namespaces open while the app containers come and go, reaps the orphans a shared pid
// namespace hands it, and exits cleanly on SIGTERM or SIGINT (StopPodSandbox). Built static
// by the CRI suite (test/e2e/cri/images.ts), so its image needs no libc.
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void quit(int sig) {
  (void)sig;
  _exit(0);
}

static void reap(int sig) {
  (void)sig;
  while (waitpid(-1, NULL, WNOHANG) > 0) {}
}

int main(void) {
  struct sigaction sa = {0};
  sa.sa_handler = quit;
  if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0) return 1;
  sa.sa_handler = reap;
  sa.sa_flags = SA_NOCLDSTOP | SA_RESTART;
  if (sigaction(SIGCHLD, &sa, NULL) != 0) return 1;
  for (;;) pause();
}
