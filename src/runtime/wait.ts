// Waiting for a process we are the parent (or subreaper) of, forwarding the
// signals a user sends to the runtime, and reporting an exec failure that
// happens after start.
import os from 'node:os';
import { MSG } from '../plan/ops.js';
import type { BuiltPlan } from '../plan/build.js';
import { HakoError } from '../errors.js';
import { native } from '../sys/native.js';
import { processParent } from '../sys/process-parent.js';
import { closeFd, stepFailure } from './launch.js';

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'];

/** The exit code a shell gives for a wait status: the code, or 128 + the signal. */
export function exitCodeOf(st: { code?: number; signal?: number }): number {
  return st.signal ? 128 + st.signal : (st.code ?? 0);
}

/** Resolves with the exit code a shell would give (128+n for a signal).
 *  Signals go through the pidfd (closed at the end): never to a reused pid. */
export async function waitAndForward(pid: number, pidfd: number): Promise<number> {
  const forward = (sig: NodeJS.Signals) => native.pidfdSignal(pidfd, os.constants.signals[sig]);
  for (const s of FORWARDED) process.on(s, forward);
  try {
    const st = await processParent().waitPid(pid);
    if (st.error) throw new HakoError(`waiting for process ${pid} failed: errno ${st.error}`);
    return exitCodeOf(st);
  } finally {
    for (const s of FORWARDED) process.off(s, forward);
    closeFd(pidfd);
  }
}

/** After start: EOF on the sync socket means execve succeeded (it is
 *  close-on-exec); an error message means it did not. */
export function checkExec(plan: BuiltPlan, syncFd: number): void {
  try {
    const m = native.recvMsg(syncFd, 60_000);
    if (m && m.type === MSG.ERROR) throw stepFailure(plan, m.step, m.err);
  } finally {
    closeFd(syncFd);
  }
}
