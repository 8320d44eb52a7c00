// Reading /proc about a process: alive, zombie, start time (pid reuse guard).
import fs from 'node:fs';
import { native } from './native.js';
import { HakoError } from '../errors.js';
import { errnoName } from './errno.js';

export interface ProcStat {
  state: string;
  startTime: string;
}

export function procStat(pid: number): ProcStat | null {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0], startTime: rest[19] };
  } catch {
    return null;
  }
}

/** Is the process with this pid and start time still running (not a zombie)? */
export function isAlive(pid: number, startTime: string): boolean {
  if (!pid) return false;
  const st = procStat(pid);
  return !!st && st.startTime === startTime && st.state !== 'Z' && st.state !== 'X';
}

/** Host pids whose pid namespace is the given one (for kill --all without a cgroup). */
export function pidsInNamespace(nsLink: string): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (fs.readlinkSync(`/proc/${d}/ns/pid`) === nsLink) out.push(Number(d));
    } catch {
      // gone, or not ours to read
    }
  }
  return out;
}

export function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Signals the process recorded as (pid, startTime) through a pidfd: the pidfd is
 *  opened first and the start time checked after, so the signal cannot reach a
 *  process that reused the pid. Returns false when that process is gone. */
export function signalProcess(pid: number, startTime: string, signal: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  let fd: number;
  try {
    fd = native.pidfdOpen(pid);
  } catch {
    return false;
  }
  try {
    if (procStat(pid)?.startTime !== startTime) return false;
    const err = native.pidfdSignal(fd, signal);
    if (err === 0) return true;
    if (err === ESRCH) return false;
    throw new HakoError(`signalling process ${pid} failed: ${errnoName(err)}`);
  } finally {
    fs.closeSync(fd);
  }
}

/** Signals a pid we have no start time for (one we read from the cgroup or /proc just now) through a pidfd. */
export function signalPid(pid: number, signal: number): boolean {
  const st = procStat(pid);
  return !!st && signalProcess(pid, st.startTime, signal);
}

const ESRCH = 3;
