// The caller of this command: its working directory, stdio and process. The
// process's own by default; in a planner call (src/planner/) the front's,
// which the planner's threads cannot chdir to (the cwd is one per process).
import path from 'node:path';

let cwd: string | undefined;
let stdio: readonly number[] = [0, 1, 2];
let pid: number | undefined;

/** p made absolute against the caller's working directory. */
export function fromCwd(p: string): string {
  return cwd === undefined ? path.resolve(p) : path.resolve(cwd, p);
}

/** The fd of the caller's stdin, stdout or stderr (`exec --process -` reads 0, the log writes 2). */
export function callerFd(n: 0 | 1 | 2): number {
  return stdio[n]!;
}

/** The caller's /proc directory: its cgroup, limits and oom_score_adj are what a container
 *  started for it inherits (the front, its own process, is the container's parent). */
export function callerProc(): string {
  return pid === undefined ? '/proc/self' : `/proc/${pid}`;
}

/** Sets the caller for the commands to come; undefined: this process again. */
export function useCaller(c: { cwd: string; stdio: readonly [number, number, number]; pid: number } | undefined): void {
  cwd = c?.cwd;
  stdio = c?.stdio ?? [0, 1, 2];
  pid = c?.pid;
}
