// System call numbers ↔ names for the architecture a notification came from (its AUDIT_ARCH).
import { ARCH_INFO, X32_SYSCALL_BIT, nativeArch } from '../seccomp/arch.js';
import type { SeccompArch } from '../seccomp/types.js';

const reverse = new Map<SeccompArch, Map<number, string>>();

function byNumber(arch: SeccompArch): Map<number, string> {
  let m = reverse.get(arch);
  if (!m) {
    m = new Map(Object.entries(ARCH_INFO[arch].table).map(([name, nr]) => [nr, name]));
    reverse.set(arch, m);
  }
  return m;
}

/** The architecture of a notification's AUDIT_ARCH and number (x32 shares x86_64's AUDIT_ARCH). */
export function archOf(audit: number, nr: number): SeccompArch | undefined {
  const matches = Object.values(ARCH_INFO).filter((a) => a.audit === audit >>> 0);
  if (matches.length > 1) return nr & X32_SYSCALL_BIT ? 'SCMP_ARCH_X32' : 'SCMP_ARCH_X86_64';
  return matches[0]?.name;
}

/** The call's name, or undefined for a number hako's table does not know (newer than hako). */
export function syscallName(arch: SeccompArch, nr: number): string | undefined {
  return byNumber(arch).get(nr);
}

export function syscallNumber(arch: SeccompArch, name: string): number | undefined {
  return ARCH_INFO[arch].table[name];
}

/** This machine's architecture, the one a learned profile is for. */
export function hostArch(): SeccompArch {
  const a = nativeArch(process.arch);
  if (!a) throw new Error(`hako profile: no seccomp table for this machine's architecture (${process.arch})`);
  return a;
}
