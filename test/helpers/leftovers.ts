// What a refused or finished container may not leave behind, as the bad-input suites check it.
import fs from 'node:fs';

/** State directories under a runtime root (dot files are the root's own lock and keys). */
export function stateDirs(root: string): string[] {
  return fs.readdirSync(root).filter((f) => !f.startsWith('.'));
}

/** Mounts in this process's mount table whose mount point is DIR or below it. */
export function mountsUnder(dir: string): string[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.split(' ')[4]?.startsWith(dir));
}
