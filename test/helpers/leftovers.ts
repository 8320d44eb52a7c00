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

/** A state root's entries, but for the planner's socket and lock (issue 20): a warm planner
 *  keeps them while it lives, and they hold no container's state. */
export function rootEntries(root: string): string[] {
  return fs.readdirSync(root).filter((f) => f !== '.planner.sock' && f !== '.planner.lock');
}
