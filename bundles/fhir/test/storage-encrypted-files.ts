// Shared by the encrypted-store suites: data keys on disk, the frames of an encrypted segment
// (to alter, drop, duplicate and move them the way an attacker with the disk would), and a
// search of a data directory for a marker.
import { randomBytes } from 'node:crypto';
import { chmodSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Writes a new data key file (64 hex digits), mode 0600 unless told. */
export function writeKey(path: string, mode = 0o600, text = `${randomBytes(32).toString('hex')}\n`): string {
  rmSync(path, { force: true });
  writeFileSync(path, text, { mode });
  chmodSync(path, mode); // the umask does not narrow what the test asks for
  return path;
}

export const SEGMENT_HEADER = 68;
const RECORD_HEADER = 32;

/** [start, end) of every record frame in an encrypted segment file. */
export function frames(file: string): [number, number][] {
  const data = readFileSync(file);
  const out: [number, number][] = [];
  for (let at = SEGMENT_HEADER; at + RECORD_HEADER <= data.length;) {
    const end = at + RECORD_HEADER + data.readUInt32LE(at);
    if (end > data.length) break;
    out.push([at, end]);
    at = end;
  }
  return out;
}

/** Replaces a file's bytes with the result of edit. */
export function edit(file: string, change: (data: Buffer) => Buffer): void {
  writeFileSync(file, change(readFileSync(file)));
}

/** Every file below dir (name → size) whose bytes contain marker. */
export function filesContaining(dir: string, marker: string): string[] {
  const hits: string[] = [];
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const p = join(dir, name);
    if (!statSync(p).isFile()) continue;
    if (readFileSync(p).includes(Buffer.from(marker))) hits.push(name);
  }
  return hits;
}
