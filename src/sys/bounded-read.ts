// Reading a file a user names: only a regular file, only up to a size, never blocking on it.
// readFileSync alone reads /dev/zero until memory runs out and waits forever on a FIFO nobody
// writes. The bytes are returned as read, so a caller can hash exactly what it then parses.
import fs from 'node:fs';
import { HakoError } from '../errors.js';

const WHY: Record<string, string> = {
  ENOENT: 'no such file',
  EISDIR: 'it is a directory',
  ENOTDIR: 'a part of its path is not a directory',
  EACCES: 'permission denied',
  ELOOP: 'too many levels of symlinks',
  ENAMETOOLONG: 'the name is too long',
};

/** A file-system error as the end of a sentence. */
export function fileError(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  return (code && WHY[code]) ?? code ?? (e as Error).message;
}

/** The bytes of `file` (symlinks followed), or one sentence: `cannot read SHOWN: why`. */
export function readBounded(file: string, shown: string, max: number): Buffer {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (e) {
    throw new HakoError(`cannot read ${shown}: ${fileError(e)}`);
  }
  try {
    const st = fs.fstatSync(fd);
    if (st.isDirectory()) throw new HakoError(`cannot read ${shown}: it is a directory`);
    if (!st.isFile()) throw new HakoError(`cannot read ${shown}: it is not a regular file`);
    if (st.size > max) throw new HakoError(`cannot read ${shown}: it is ${st.size} bytes, more than the ${max} hako reads`);
    try {
      return fs.readFileSync(fd);
    } catch (e) {
      throw new HakoError(`cannot read ${shown}: ${fileError(e)}`);
    }
  } finally {
    fs.closeSync(fd);
  }
}
