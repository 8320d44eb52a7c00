// File input and output shared by seal and open: size-checked reads, and writes that leave
// nothing behind when they fail (a temporary file renamed into place).
import fs from 'node:fs';
import path from 'node:path';
import { HakoError } from '../errors.js';

/** Sealing holds the whole file in memory (twice, as base64): a bound says so in a sentence. */
export const MAX_SEAL_BYTES = 256 * 1024 * 1024;

export function readInput(verb: string, file: string): Buffer {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (e) {
    throw new HakoError(`${verb}: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (!st.isFile()) throw new HakoError(`${verb}: ${file} is not a regular file`);
  if (st.size > MAX_SEAL_BYTES) throw new HakoError(`${verb}: ${file} is ${st.size} bytes, more than the ${MAX_SEAL_BYTES} hako seals`);
  return fs.readFileSync(file);
}

/** Writes to `out` (or stdout when absent or "-"); a file is written beside and renamed. */
export function writeOutput(verb: string, out: string | undefined, data: Uint8Array, mode: number): void {
  if (out === undefined || out === '-') {
    fs.writeSync(1, data);
    return;
  }
  const tmp = path.join(path.dirname(out), `.${path.basename(out)}.${process.pid}.tmp`);
  try {
    const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, mode);
    try {
      fs.writeSync(fd, data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, out);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw new HakoError(`${verb}: cannot write ${out}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}
