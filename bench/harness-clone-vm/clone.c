/*
 * A measurement only (docs/benchmarks.md, "The library as a test harness"): what the clone of
 * the node process costs a container's start, against a CLONE_VM clone on a stack of its own
 * (posix_spawn's way), with the namespaces hako's plan asks (mnt, uts, ipc, pid, net). The child
 * waits for one byte, as hako's waits for GO, then executes a static program that exits. Not
 * hako's code: hako's clone is native/spawn.c. Built and run by run.sh.
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
struct ca {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};
static char path[256];
static char *argv_[] = {path, 0};
static char *envp_[] = {0};
static int go[2];
static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}
/* The child: wait for one byte (as hako's child waits for GO), then exec. Raw syscalls only. */
static long child(void) {
  char b;
  syscall(SYS_read, go[0], &b, 1);
  syscall(SYS_execve, path, argv_, envp_);
  syscall(SYS_exit_group, 127);
  return 0;
}
static napi_value Spawn(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value a[3];
  napi_get_cb_info(env, info, &argc, a, 0, 0);
  int32_t vm;
  uint32_t flags;
  size_t n;
  napi_get_value_int32(env, a[0], &vm);
  napi_get_value_uint32(env, a[1], &flags);
  napi_get_value_string_utf8(env, a[2], path, sizeof path, &n);
  pipe2(go, O_CLOEXEC);
  struct ca c;
  memset(&c, 0, sizeof c);
  c.flags = flags;
  c.exit_signal = SIGCHLD;
  void *stack = 0;
  size_t ss = 64 * 1024;
  if (vm) {
    stack = mmap(0, ss, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    c.flags |= CLONE_VM;
    c.stack = (uint64_t)(uintptr_t)stack;
    c.stack_size = ss;
  }
  double t0 = now();
  long pid;
  if (vm) {
    /* With its own stack the child must not return through our frame: a tiny asm-free trick is
       not possible with the syscall() wrapper, so do it inline. */
    register long rax __asm__("rax") = SYS_clone3;
    register long rdi __asm__("rdi") = (long)&c;
    register long rsi __asm__("rsi") = sizeof c;
    __asm__ volatile("syscall\n\ttest %%rax,%%rax\n\tjnz 1f\n\tcall *%3\n\t1:"
                     : "+r"(rax)
                     : "r"(rdi), "r"(rsi), "r"(child)
                     : "rcx", "r11", "memory");
    pid = rax;
  } else {
    pid = syscall(SYS_clone3, &c, sizeof c);
    if (pid == 0) {
      child();
    }
  }
  double t1 = now();
  close(go[0]);
  char b = 1;
  write(go[1], &b, 1);
  close(go[1]);
  int st;
  waitpid(pid, &st, 0);
  double t2 = now();
  if (stack) munmap(stack, ss);
  napi_value o, v;
  napi_create_object(env, &o);
  napi_create_double(env, t1 - t0, &v);
  napi_set_named_property(env, o, "clone", v);
  napi_create_double(env, t2 - t0, &v);
  napi_set_named_property(env, o, "total", v);
  napi_create_int32(env, WIFEXITED(st) ? WEXITSTATUS(st) : -1, &v);
  napi_set_named_property(env, o, "code", v);
  return o;
}
NAPI_MODULE_INIT() {
  napi_value f;
  napi_create_function(env, "spawn", NAPI_AUTO_LENGTH, Spawn, 0, &f);
  napi_set_named_property(env, exports, "spawn", f);
  return exports;
}
