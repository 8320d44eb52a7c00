/* Test oracle: builds a filter with libseccomp from a line format on stdin and writes the
 * BPF program libseccomp would load (seccomp_export_bpf) to stdout. Lines:
 *   default ACTION RET      (first line; ACTION is an OCI name such as SCMP_ACT_ERRNO, RET its
 *                           errno/trace value, ignored by other actions)
 *   badarch ACTION RET
 *   optimize LEVEL          (SCMP_FLTATR_CTL_OPTIMIZE: 1 = libseccomp's default, 2 = binary tree)
 *   arch NAME               (libseccomp's arch name: x86_64, x86, x32, aarch64, arm)
 *   rule ACTION RET SYSCALL N [INDEX OP VALUE VALUETWO]*N   (OP: an OCI name, SCMP_CMP_EQ)
 * Names are translated here with libseccomp's own macros, so the oracle shares no code
 * with hako.
 * With argv[1] = "resolve" it instead reads "ARCH NAME" lines and prints each number
 * (or "none"), so the test can compare syscall tables. */
#include <errno.h>
#include <inttypes.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(const char *what, int rc) {
  fprintf(stderr, "export: %s: %s\n", what, strerror(rc < 0 ? -rc : rc));
  exit(1);
}

static uint32_t action(const char *name, uint32_t ret) {
  if (!strcmp(name, "SCMP_ACT_KILL") || !strcmp(name, "SCMP_ACT_KILL_THREAD")) return SCMP_ACT_KILL_THREAD;
  if (!strcmp(name, "SCMP_ACT_KILL_PROCESS")) return SCMP_ACT_KILL_PROCESS;
  if (!strcmp(name, "SCMP_ACT_TRAP")) return SCMP_ACT_TRAP;
  if (!strcmp(name, "SCMP_ACT_ERRNO")) return SCMP_ACT_ERRNO(ret);
  if (!strcmp(name, "SCMP_ACT_TRACE")) return SCMP_ACT_TRACE(ret);
  if (!strcmp(name, "SCMP_ACT_LOG")) return SCMP_ACT_LOG;
  if (!strcmp(name, "SCMP_ACT_ALLOW")) return SCMP_ACT_ALLOW;
  if (!strcmp(name, "SCMP_ACT_NOTIFY")) return SCMP_ACT_NOTIFY;
  die(name, EINVAL);
  return 0;
}

static enum scmp_compare op(const char *name) {
  static const char *names[] = {"",
                                "SCMP_CMP_NE",
                                "SCMP_CMP_LT",
                                "SCMP_CMP_LE",
                                "SCMP_CMP_EQ",
                                "SCMP_CMP_GE",
                                "SCMP_CMP_GT",
                                "SCMP_CMP_MASKED_EQ"};
  static const enum scmp_compare ops[] = {0,           SCMP_CMP_NE, SCMP_CMP_LT, SCMP_CMP_LE,
                                          SCMP_CMP_EQ, SCMP_CMP_GE, SCMP_CMP_GT, SCMP_CMP_MASKED_EQ};
  for (unsigned i = 1; i < sizeof(ops) / sizeof(ops[0]); i++)
    if (!strcmp(name, names[i])) return ops[i];
  die(name, EINVAL);
  return 0;
}

static uint32_t read_action(void) {
  char name[32];
  uint32_t ret;
  if (scanf("%31s %" SCNu32, name, &ret) != 2) die("action", EINVAL);
  return action(name, ret);
}

static int resolve(void) {
  char arch[32], name[128];
  while (scanf("%31s %127s", arch, name) == 2) {
    uint32_t token = seccomp_arch_resolve_name(arch);
    int nr = token ? seccomp_syscall_resolve_name_arch(token, name) : __NR_SCMP_ERROR;
    if (nr < 0)
      printf("%s %s none\n", arch, name);
    else
      printf("%s %s %d\n", arch, name, nr);
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "resolve") == 0) return resolve();
  char word[32];
  if (scanf("%31s", word) != 1 || strcmp(word, "default") != 0) die("first line must be default", EINVAL);
  scmp_filter_ctx ctx = seccomp_init(read_action());
  if (!ctx) die("seccomp_init", EINVAL);
  int rc;
  while (scanf("%31s", word) == 1) {
    if (strcmp(word, "badarch") == 0) {
      rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, read_action());
      if (rc) die(word, rc);
    } else if (strcmp(word, "optimize") == 0) {
      uint32_t v;
      if (scanf("%" SCNu32, &v) != 1) die(word, EINVAL);
      rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, v);
      if (rc) die(word, rc);
    } else if (strcmp(word, "arch") == 0) {
      char name[32];
      if (scanf("%31s", name) != 1) die("arch", EINVAL);
      uint32_t token = seccomp_arch_resolve_name(name);
      if (!token) die(name, EINVAL);
      rc = seccomp_arch_add(ctx, token);
      if (rc && rc != -EEXIST) die("seccomp_arch_add", rc);
    } else if (strcmp(word, "rule") == 0) {
      uint32_t act = read_action();
      char name[128], opname[32];
      unsigned n;
      struct scmp_arg_cmp cmp[6];
      if (scanf("%127s %u", name, &n) != 2 || n > 6) die("rule", EINVAL);
      for (unsigned i = 0; i < n; i++) {
        unsigned idx;
        if (scanf("%u %31s %" SCNu64 " %" SCNu64, &idx, opname, &cmp[i].datum_a, &cmp[i].datum_b) != 4)
          die("rule arg", EINVAL);
        cmp[i].arg = idx;
        cmp[i].op = op(opname);
      }
      int nr = seccomp_syscall_resolve_name(name);
      if (nr == __NR_SCMP_ERROR) {
        fprintf(stderr, "export: unknown syscall %s skipped\n", name);
        continue;
      }
      rc = seccomp_rule_add_array(ctx, act, nr, n, cmp);
      /* Like runc: a rule whose action is the default action changes nothing. */
      if (rc == -EACCES) continue;
      if (rc) {
        fprintf(stderr, "export: rule %s: %s\n", name, strerror(-rc));
        return 2;
      }
    } else {
      die(word, EINVAL);
    }
  }
  rc = seccomp_export_bpf(ctx, 1);
  if (rc) die("seccomp_export_bpf", rc);
  seccomp_release(ctx);
  return 0;
}
