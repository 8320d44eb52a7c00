// Waiting for many processes at once without blocking anything: a blocking waitpid per
// container would hold one of libuv's four pool threads each (50 containers, 46 waiting
// for a thread, fs calls starved). Instead every SIGCHLD, and a slow timer as a safety net,
// reaps with WNOHANG whichever waited-for pids have exited. We are each one's parent, or
// its subreaper (an exec'd process, reparented when hako's intermediate exits).
import { native, type ExitStatus } from '../sys/native.js';
import { procStat } from '../sys/proc.js';

const waiting = new Map<number, Array<(st: ExitStatus) => void>>();
let listening = false;
let timer: NodeJS.Timeout | undefined;

/** A missed SIGCHLD (two exits can make one signal, and it is checked per pid anyway) is
 *  caught by the timer; the timer also keeps the event loop alive while a wait is pending. */
const SAFETY_NET_MS = 200;

function reapReady(): void {
  for (const [pid, done] of waiting) {
    const st = native.reapNow(pid);
    // No status and no process: someone else reaped it (not ours to know how it ended).
    const result = st ?? (procStat(pid) ? null : { error: 10 /* ECHILD */ });
    if (!result) continue;
    waiting.delete(pid);
    for (const d of done) d(result);
  }
  if (waiting.size === 0 && timer) {
    clearInterval(timer);
    timer = undefined;
  }
}

/** Resolves with pid's wait status once it has exited, and reaps it. */
export function waitExit(pid: number): Promise<ExitStatus> {
  if (!listening) {
    process.on('SIGCHLD', reapReady);
    listening = true;
  }
  return new Promise((resolve) => {
    const list = waiting.get(pid);
    if (list) list.push(resolve);
    else waiting.set(pid, [resolve]);
    timer ??= setInterval(reapReady, SAFETY_NET_MS);
    // It may have exited before we listened.
    reapReady();
  });
}

/** Reaps pid now if it has exited (the exit guard, which cannot wait for the event loop). */
export function reapNowIfWaited(pid: number): boolean {
  const st = native.reapNow(pid);
  if (!st) return false;
  const done = waiting.get(pid);
  waiting.delete(pid);
  for (const d of done ?? []) d(st);
  return true;
}
