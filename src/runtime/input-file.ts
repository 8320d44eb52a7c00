// Reading a file a user names (a bundle's config.json, exec's --process, update's
// --resources): only a regular file, only up to a size a config can have, and never
// blocking on it. readFileSync alone reads /dev/zero until memory runs out and waits
// forever on a FIFO nobody writes.
import fs from 'node:fs';
import { HakoError } from '../errors.js';

/** Far above any real config.json (runc has no limit; a 10 MiB config is already absurd). */
export const MAX_INPUT_BYTES = 16 * 1024 * 1024;

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

/** The text of `file` (symlinks followed, as runc does), or one sentence: `cannot read FILE: why`.
 *  `what` names it in that sentence (default the path). */
export function readInputFile(file: string, what = file): string {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (e) {
    throw new HakoError(`cannot read ${what}: ${fileError(e)}`);
  }
  try {
    const st = fs.fstatSync(fd);
    if (st.isDirectory()) throw new HakoError(`cannot read ${what}: it is a directory`);
    if (!st.isFile()) throw new HakoError(`cannot read ${what}: it is not a regular file`);
    if (st.size > MAX_INPUT_BYTES)
      throw new HakoError(`cannot read ${what}: it is ${st.size} bytes, more than the ${MAX_INPUT_BYTES} hako reads`);
    try {
      return fs.readFileSync(fd, 'utf8');
    } catch (e) {
      throw new HakoError(`cannot read ${what}: ${fileError(e)}`);
    }
  } finally {
    fs.closeSync(fd);
  }
}
