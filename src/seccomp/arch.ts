// Architectures: the AUDIT_ARCH_* value the kernel puts in seccomp_data.arch, the word size
// of syscall arguments, and the syscall table.
import type { NodeArch, SeccompArch } from './types.js';
import { X86_64 } from './tables/x86_64.js';
import { X86 } from './tables/x86.js';
import { X32 } from './tables/x32.js';
import { AARCH64 } from './tables/aarch64.js';
import { ARM } from './tables/arm.js';

/** x32 system calls are x86_64 calls with this bit set in the number. */
export const X32_SYSCALL_BIT = 0x40000000;

export interface ArchInfo {
  name: SeccompArch;
  /** AUDIT_ARCH_* (linux/audit.h): machine | 64BIT (0x80000000) | LE (0x40000000). */
  audit: number;
  /** 32-bit arches: the kernel zero-extends arguments, so the high word is always 0. */
  bits: 32 | 64;
  table: Readonly<Record<string, number>>;
}

export const ARCH_INFO: Readonly<Record<SeccompArch, ArchInfo>> = {
  SCMP_ARCH_X86_64: { name: 'SCMP_ARCH_X86_64', audit: 0xc000003e, bits: 64, table: X86_64 },
  SCMP_ARCH_X86: { name: 'SCMP_ARCH_X86', audit: 0x40000003, bits: 32, table: X86 },
  SCMP_ARCH_X32: { name: 'SCMP_ARCH_X32', audit: 0xc000003e, bits: 64, table: X32 },
  SCMP_ARCH_AARCH64: { name: 'SCMP_ARCH_AARCH64', audit: 0xc00000b7, bits: 64, table: AARCH64 },
  SCMP_ARCH_ARM: { name: 'SCMP_ARCH_ARM', audit: 0x40000028, bits: 32, table: ARM },
};

const NODE_ARCH: Readonly<Record<NodeArch, SeccompArch>> = {
  x64: 'SCMP_ARCH_X86_64',
  ia32: 'SCMP_ARCH_X86',
  arm64: 'SCMP_ARCH_AARCH64',
  arm: 'SCMP_ARCH_ARM',
};

export function nativeArch(arch: string): SeccompArch | undefined {
  return (NODE_ARCH as Record<string, SeccompArch>)[arch];
}
