// Landlock access rights (linux/landlock.h) and the ABI version that introduced each.

export const FS = {
  EXECUTE: 1n << 0n,
  WRITE_FILE: 1n << 1n,
  READ_FILE: 1n << 2n,
  READ_DIR: 1n << 3n,
  REMOVE_DIR: 1n << 4n,
  REMOVE_FILE: 1n << 5n,
  MAKE_CHAR: 1n << 6n,
  MAKE_DIR: 1n << 7n,
  MAKE_REG: 1n << 8n,
  MAKE_SOCK: 1n << 9n,
  MAKE_FIFO: 1n << 10n,
  MAKE_BLOCK: 1n << 11n,
  MAKE_SYM: 1n << 12n,
  REFER: 1n << 13n, // ABI 2
  TRUNCATE: 1n << 14n, // ABI 3
  IOCTL_DEV: 1n << 15n, // ABI 5
} as const;

export const NET = {
  BIND_TCP: 1n << 0n, // ABI 4
  CONNECT_TCP: 1n << 1n, // ABI 4
} as const;

/** The 13 filesystem rights of ABI 1. */
const FS_V1 = (1n << 13n) - 1n;

/** Filesystem rights a kernel with this ABI can handle. */
export function fsRights(abi: number): bigint {
  if (abi < 1) return 0n;
  let r = FS_V1;
  if (abi >= 2) r |= FS.REFER;
  if (abi >= 3) r |= FS.TRUNCATE;
  if (abi >= 5) r |= FS.IOCTL_DEV;
  return r;
}

/** Network rights a kernel with this ABI can handle. */
export function netRights(abi: number): bigint {
  return abi >= 4 ? NET.BIND_TCP | NET.CONNECT_TCP : 0n;
}

/** Read and execute beneath a path. */
export const READ_ONLY = FS.EXECUTE | FS.READ_FILE | FS.READ_DIR;

/** Every filesystem right hako's rules are written for (the newest ABI's). */
export const ALL_FS = fsRights(Number.MAX_SAFE_INTEGER);

/** What each right newer than ABI 1 leaves unrestricted (or, for REFER, forbidden) without it. */
export const FS_LATER: ReadonlyArray<{ right: bigint; name: string; abi: number; without: string }> = [
  { right: FS.REFER, name: 'REFER', abi: 2, without: 'renaming or linking files into another directory is always denied' },
  { right: FS.TRUNCATE, name: 'TRUNCATE', abi: 3, without: 'truncating files is not restricted' },
  { right: FS.IOCTL_DEV, name: 'IOCTL_DEV', abi: 5, without: 'ioctl on device files is not restricted' },
];
