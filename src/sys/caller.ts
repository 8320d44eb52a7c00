// The caller of this command: its working directory and its stdio. The
// process's own by default; in a planner call (src/planner/) the front's,
// which the planner's threads cannot chdir to (the cwd is one per process).
import path from 'node:path';

let cwd: string | undefined;
let stdio: readonly number[] = [0, 1, 2];

/** p made absolute against the caller's working directory. */
export function fromCwd(p: string): string {
  return cwd === undefined ? path.resolve(p) : path.resolve(cwd, p);
}

/** The fd of the caller's stdin, stdout or stderr (`exec --process -` reads 0, the log writes 2). */
export function callerFd(n: 0 | 1 | 2): number {
  return stdio[n]!;
}

/** Sets the caller for the commands to come; undefined: this process again. */
export function useCaller(c: { cwd: string; stdio: readonly [number, number, number] } | undefined): void {
  cwd = c?.cwd;
  stdio = c?.stdio ?? [0, 1, 2];
}
