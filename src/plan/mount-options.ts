// mount(8)-style option words -> mount(2) flags, propagation and data.
export const MS = {
  RDONLY: 1,
  NOSUID: 2,
  NODEV: 4,
  NOEXEC: 8,
  SYNCHRONOUS: 16,
  REMOUNT: 32,
  MANDLOCK: 64,
  DIRSYNC: 128,
  NOSYMFOLLOW: 256,
  NOATIME: 1024,
  NODIRATIME: 2048,
  BIND: 4096,
  MOVE: 8192,
  REC: 16384,
  SILENT: 32768,
  UNBINDABLE: 1 << 17,
  PRIVATE: 1 << 18,
  SLAVE: 1 << 19,
  SHARED: 1 << 20,
  RELATIME: 1 << 21,
  STRICTATIME: 1 << 24,
  LAZYTIME: 1 << 25,
} as const;

/** word -> [flag, set (true) or clear (false)] */
const FLAGS: Record<string, [number, boolean]> = {
  ro: [MS.RDONLY, true],
  rw: [MS.RDONLY, false],
  nosuid: [MS.NOSUID, true],
  suid: [MS.NOSUID, false],
  nodev: [MS.NODEV, true],
  dev: [MS.NODEV, false],
  noexec: [MS.NOEXEC, true],
  exec: [MS.NOEXEC, false],
  sync: [MS.SYNCHRONOUS, true],
  async: [MS.SYNCHRONOUS, false],
  dirsync: [MS.DIRSYNC, true],
  mand: [MS.MANDLOCK, true],
  nomand: [MS.MANDLOCK, false],
  noatime: [MS.NOATIME, true],
  atime: [MS.NOATIME, false],
  nodiratime: [MS.NODIRATIME, true],
  diratime: [MS.NODIRATIME, false],
  relatime: [MS.RELATIME, true],
  norelatime: [MS.RELATIME, false],
  strictatime: [MS.STRICTATIME, true],
  nostrictatime: [MS.STRICTATIME, false],
  lazytime: [MS.LAZYTIME, true],
  nolazytime: [MS.LAZYTIME, false],
  nosymfollow: [MS.NOSYMFOLLOW, true],
  symfollow: [MS.NOSYMFOLLOW, false],
  bind: [MS.BIND, true],
  rbind: [MS.BIND | MS.REC, true],
  remount: [MS.REMOUNT, true],
  silent: [MS.SILENT, true],
  loud: [MS.SILENT, false],
};

const PROPAGATION: Record<string, number> = {
  private: MS.PRIVATE,
  rprivate: MS.PRIVATE | MS.REC,
  shared: MS.SHARED,
  rshared: MS.SHARED | MS.REC,
  slave: MS.SLAVE,
  rslave: MS.SLAVE | MS.REC,
  unbindable: MS.UNBINDABLE,
  runbindable: MS.UNBINDABLE | MS.REC,
};

/** Options a runtime understands but that are not mount(2) flags; ignored here as runc does. */
const IGNORED = new Set(['defaults', 'auto', 'noauto', 'user', 'nouser', 'rro', 'tmpcopyup', 'idmap', 'ridmap']);

export interface ParsedOptions {
  flags: number;
  propagation: number[];
  data: string[];
}

export function parseMountOptions(options: string[] | undefined): ParsedOptions {
  let flags = 0;
  const propagation: number[] = [];
  const data: string[] = [];
  for (const o of options ?? []) {
    if (o in FLAGS) {
      const [f, set] = FLAGS[o];
      flags = set ? flags | f : flags & ~f;
    } else if (o in PROPAGATION) {
      propagation.push(PROPAGATION[o]);
    } else if (!IGNORED.has(o)) {
      data.push(o);
    }
  }
  return { flags, propagation, data };
}
