// Reading a file hako signs or checks: the exact bytes (config.json is hashed as it is, then
// parsed from those same bytes), a regular file only, bounded, never blocking on a FIFO.
import fs from 'node:fs';
import { HakoError } from '../errors.js';

// Loaded lazily beside the CLI's bundle (src/cli/signed.ts): the runtime's modules are not
// imported here, so --require-signed does not load them a second time.
const WHY: Record<string, string> = {
  ENOENT: 'no such file',
  EISDIR: 'it is a directory',
  ENOTDIR: 'a part of its path is not a directory',
  EACCES: 'permission denied',
  ELOOP: 'too many levels of symlinks',
};

export function readBytes(file: string, shown: string, max: number): Buffer {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (e) {
    throw new HakoError(`cannot read ${shown}: ${WHY[(e as NodeJS.ErrnoException).code ?? ''] ?? (e as Error).message}`);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new HakoError(`cannot read ${shown}: it is not a regular file`);
    if (st.size > max) throw new HakoError(`cannot read ${shown}: it is ${st.size} bytes, more than the ${max} hako reads`);
    return fs.readFileSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
