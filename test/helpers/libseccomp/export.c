/* Test oracle: builds a filter with libseccomp from a line format on stdin and writes the
 * BPF program libseccomp would load (seccomp_export_bpf) to stdout. Lines:
 *   default ACTION          (SCMP_ACT_* value, decimal; first line)
 *   badarch ACTION
 *   optimize LEVEL          (SCMP_FLTATR_CTL_OPTIMIZE: 1 = libseccomp's default, 2 = binary tree)
 *   arch NAME               (libseccomp's arch name: x86_64, x86, x32, aarch64, arm)
 *   rule ACTION NAME N [INDEX OP VALUE VALUETWO]*N
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

static int resolve(void) {
  char arch[32], name[128];
  while (scanf("%31s %127s", arch, name) == 2) {
    uint32_t token = seccomp_arch_resolve_name(arch);
    int nr = token ? seccomp_syscall_resolve_name_arch(token, name) : __NR_SCMP_ERROR;
    if (nr < 0) printf("%s %s none\n", arch, name);
    else printf("%s %s %d\n", arch, name, nr);
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "resolve") == 0) return resolve();
  char word[32];
  uint32_t def;
  if (scanf("%31s %" SCNu32, word, &def) != 2 || strcmp(word, "default") != 0) die("first line must be default", EINVAL);
  scmp_filter_ctx ctx = seccomp_init(def);
  if (!ctx) die("seccomp_init", EINVAL);
  int rc;
  while (scanf("%31s", word) == 1) {
    if (strcmp(word, "badarch") == 0 || strcmp(word, "optimize") == 0) {
      uint32_t v;
      if (scanf("%" SCNu32, &v) != 1) die(word, EINVAL);
      rc = seccomp_attr_set(ctx, word[0] == 'b' ? SCMP_FLTATR_ACT_BADARCH : SCMP_FLTATR_CTL_OPTIMIZE, v);
      if (rc) die(word, rc);
    } else if (strcmp(word, "arch") == 0) {
      char name[32];
      if (scanf("%31s", name) != 1) die("arch", EINVAL);
      uint32_t token = seccomp_arch_resolve_name(name);
      if (!token) die(name, EINVAL);
      rc = seccomp_arch_add(ctx, token);
      if (rc && rc != -EEXIST) die("seccomp_arch_add", rc);
    } else if (strcmp(word, "rule") == 0) {
      uint32_t action;
      char name[128];
      unsigned n;
      struct scmp_arg_cmp cmp[6];
      if (scanf("%" SCNu32 " %127s %u", &action, name, &n) != 3 || n > 6) die("rule", EINVAL);
      for (unsigned i = 0; i < n; i++) {
        unsigned idx, op;
        if (scanf("%u %u %" SCNu64 " %" SCNu64, &idx, &op, &cmp[i].datum_a, &cmp[i].datum_b) != 4) die("rule arg", EINVAL);
        cmp[i].arg = idx;
        cmp[i].op = (enum scmp_compare)op;
      }
      int nr = seccomp_syscall_resolve_name(name);
      if (nr == __NR_SCMP_ERROR) {
        fprintf(stderr, "export: unknown syscall %s skipped\n", name);
        continue;
      }
      rc = seccomp_rule_add_array(ctx, action, nr, n, cmp);
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
