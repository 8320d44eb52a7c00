// A profile on disk: an OCI `linux.seccomp` object as JSON. Reading one checks it the way
// create would (the seccomp compiler), so a file that is not a profile is one sentence.
import fs from 'node:fs';
import { HakoError } from '../errors.js';
import { compileSeccomp } from '../seccomp/index.js';
import type { OciSeccomp } from '../seccomp/types.js';

export function readProfile(file: string): OciSeccomp {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new HakoError(`${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new HakoError(`${file}: not a seccomp profile: not JSON (${(e as Error).message})`);
  }
  // A whole config.json holds its profile at linux.seccomp: take that.
  const inConfig = (json as { linux?: { seccomp?: unknown } } | null)?.linux?.seccomp;
  const profile = (inConfig ?? json) as OciSeccomp;
  try {
    if (typeof profile?.defaultAction !== 'string') throw new Error('linux.seccomp.defaultAction: missing');
    compileSeccomp(profile);
  } catch (e) {
    throw new HakoError(`${file}: not a seccomp profile: ${(e as Error).message.replace(/^linux\.seccomp\.?/, '') || 'invalid'}`);
  }
  return profile;
}

export function writeProfile(file: string, profile: OciSeccomp): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(profile, null, 2)}\n`, { flag: 'wx', mode: 0o644 });
  fs.renameSync(tmp, file);
}
