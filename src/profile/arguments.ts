// The arguments that matter when learning a workload's system calls: the ones a profile can
// restrict, or a reviewer wants to see (which clone flags, which socket families, which ioctl
// requests). Registers only: pointers are never followed (clone3's flags sit in user memory).

/** Bits of clone's flags that make a namespace (CLONE_NEWNS .. CLONE_NEWTIME). */
export const CLONE_NAMESPACE_FLAGS =
  0x00020000n | 0x02000000n | 0x04000000n | 0x08000000n | 0x10000000n | 0x20000000n | 0x40000000n | 0x00000080n;

/** clone's flag for a thread of the caller's process (no new process). */
export const CLONE_THREAD = 0x00010000n;

const SOCK_TYPE_MASK = 0xfn; // SOCK_NONBLOCK and SOCK_CLOEXEC are not the type
const CSIGNAL = 0xffn; // clone's low byte is the exit signal, not a flag

const hex = (v: bigint) => `0x${v.toString(16)}`;

/** For each call whose arguments matter: the recorded key, from its registers. */
const KEYS: Record<string, (a: readonly bigint[]) => string> = {
  clone: (a) => `flags=${hex(a[0]! & ~CSIGNAL)}`,
  socket: (a) => `domain=${a[0]} type=${a[1]! & SOCK_TYPE_MASK}`,
  socketpair: (a) => `domain=${a[0]} type=${a[1]! & SOCK_TYPE_MASK}`,
  ioctl: (a) => `request=${hex(a[1]! & 0xffffffffn)}`,
  prctl: (a) => `option=${a[0]}`,
  fcntl: (a) => `cmd=${a[1]}`,
  mmap: (a) => `prot=${hex(a[2]!)}`,
  mprotect: (a) => `prot=${hex(a[2]!)}`,
  pkey_mprotect: (a) => `prot=${hex(a[2]!)}`,
  personality: (a) => `persona=${hex(a[0]!)}`,
};

/** The key recorded for one call, or '' when its arguments do not matter. */
export function argumentKey(name: string, args: readonly bigint[]): string {
  return KEYS[name]?.(args) ?? '';
}

/** The socket domains a set of recorded socket keys names. */
export function socketDomains(keys: Iterable<string>): number[] {
  const out = new Set<number>();
  for (const k of keys) {
    const m = /^domain=(\d+)/.exec(k);
    if (m) out.add(Number(m[1]));
  }
  return [...out].sort((a, b) => a - b);
}

/** Whether every recorded clone started a thread (none made a process). */
export function onlyThreadsCloned(keys: Iterable<string>): boolean {
  for (const k of keys) {
    const m = /^flags=0x([0-9a-f]+)/.exec(k);
    if (!m || (BigInt(`0x${m[1]}`) & CLONE_THREAD) === 0n) return false;
  }
  return true;
}
