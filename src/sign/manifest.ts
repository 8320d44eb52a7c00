// The manifest of a root filesystem: every path with its type, mode, owner, and for a file its
// size and SHA-256, for a symlink its target. The walk never follows a symlink, and refuses
// what a manifest cannot pin down clearly (devices, FIFOs, sockets, names that are not UTF-8).
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { HakoError } from '../errors.js';

export type EntryType = 'dir' | 'file' | 'symlink';

export interface Entry {
  /** Relative to the rootfs, "/"-separated; the rootfs itself is ".". */
  path: string;
  type: EntryType;
  /** Permission and set-id/sticky bits, four octal digits ("0755", "1777", "4755"). */
  mode: string;
  uid: number;
  gid: number;
  /** Files only. */
  size?: number;
  /** Files only: lowercase hex. */
  sha256?: string;
  /** Symlinks only: the link's text, never resolved. */
  target?: string;
}

const CHUNK = 1 << 20;

export function modeString(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}

function kindOf(st: fs.Stats): EntryType | string {
  if (st.isDirectory()) return 'dir';
  if (st.isFile()) return 'file';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  return 'a file of an unknown type';
}

/** Hashes a regular file through an fd opened without following a symlink, and checks that the
 *  fd is the inode the walk saw (a swap during the walk would otherwise hash another file). */
function hashFile(abs: string, shown: string, seen: fs.Stats): { size: number; sha256: string } {
  let fd: number;
  try {
    fd = fs.openSync(abs, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (e) {
    throw new HakoError(`${shown}: cannot read it: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    const st = fs.fstatSync(fd);
    if (st.ino !== seen.ino || st.dev !== seen.dev || !st.isFile()) throw new HakoError(`${shown}: changed while hako read it`);
    const hash = createHash('sha256');
    const buf = Buffer.allocUnsafe(CHUNK);
    let size = 0;
    for (;;) {
      const n = fs.readSync(fd, buf, 0, CHUNK, null);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
      size += n;
    }
    if (size !== fs.fstatSync(fd).size) throw new HakoError(`${shown}: changed while hako read it`);
    return { size, sha256: hash.digest('hex') };
  } finally {
    fs.closeSync(fd);
  }
}

function lstatOrSay(abs: string, where: string): fs.Stats {
  try {
    return fs.lstatSync(abs);
  } catch (e) {
    throw new HakoError(`${where}: cannot read it: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** Byte order of the UTF-8 paths: the same on every machine and locale. */
function byPath(a: Entry, b: Entry): number {
  return Buffer.compare(Buffer.from(a.path), Buffer.from(b.path));
}

/** The manifest of `rootfs`; `shown` prefixes paths in sentences (config's root.path, e.g.
 *  "rootfs", so a refusal reads "rootfs/dev/null: ..."). */
export function buildManifest(rootfs: string, shown: string): Entry[] {
  const entries: Entry[] = [];
  const visit = (abs: string, rel: string): void => {
    const where = rel === '.' ? shown : `${shown}/${rel}`;
    const st = lstatOrSay(abs, where);
    const type = kindOf(st);
    if (type !== 'dir' && type !== 'file' && type !== 'symlink')
      throw new HakoError(
        `${where}: is ${type}; a signed rootfs holds only files, directories and symlinks (devices come from the runtime's /dev)`,
      );
    const entry: Entry = { path: rel, type, mode: modeString(st.mode), uid: st.uid, gid: st.gid };
    if (type === 'file') Object.assign(entry, hashFile(abs, where, st));
    if (type === 'symlink') {
      const raw = fs.readlinkSync(abs, 'buffer');
      entry.target = raw.toString('utf8');
      if (!Buffer.from(entry.target).equals(raw))
        throw new HakoError(`${where}: the symlink's target is not UTF-8; change it to sign the rootfs`);
    }
    entries.push(entry);
    if (type !== 'dir') return;
    let names: Buffer[];
    try {
      names = fs.readdirSync(abs, { encoding: 'buffer' });
    } catch (e) {
      throw new HakoError(`${where}: cannot list it: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    for (const name of names) {
      const text = name.toString('utf8');
      if (!Buffer.from(text).equals(name))
        throw new HakoError(`${where}: holds a name that is not UTF-8 (${JSON.stringify(text)}); rename it to sign the rootfs`);
      visit(path.join(abs, text), rel === '.' ? text : `${rel}/${text}`);
    }
  };
  let root: fs.Stats;
  try {
    root = fs.lstatSync(rootfs);
  } catch {
    throw new HakoError(`${shown}: the root filesystem does not exist`);
  }
  // The mount would follow a symlink here: the manifest names the directory itself.
  if (root.isSymbolicLink()) throw new HakoError(`${shown}: the root filesystem is a symlink; name its directory in root.path`);
  if (!root.isDirectory()) throw new HakoError(`${shown}: the root filesystem is not a directory`);
  visit(rootfs, '.');
  return entries.sort(byPath);
}
