// kill: signal the init, or with --all every process of the container.
// Every signal goes through a pidfd (src/runtime/proc.ts): the recorded init only while
// its start time still matches, so a reused pid is never hit.
import fs from 'node:fs';
import { HakoError } from '../errors.js';
import { Container } from './container.js';
import { pidsInNamespace, signalProcess, signalPid } from '../sys/proc.js';
import type { RuntimeContext } from './context.js';
import { cgroupOf } from './cgroup.js';
import { parseProcCgroup } from '../cgroups/index.js';

/** Every host pid of the container: its pid namespace's members (the init
 *  first), or just the init when it shares the host's pid namespace. */
export function containerPids(c: Container): number[] {
  const cg = cgroupOf(c.record.cgroup);
  if (cg) return cg.pids();
  if (!c.alive()) return [];
  const pid = c.record.pid;
  try {
    const ns = fs.readlinkSync(`/proc/${pid}/ns/pid`);
    if (ns !== fs.readlinkSync('/proc/self/ns/pid')) return [pid, ...pidsInNamespace(ns).filter((p) => p !== pid)];
  } catch {
    // the init went away between the checks
  }
  return [pid];
}

/** The recorded init is in the container's (v2) cgroup, or below it: a pid in state.json
 *  that names some other process is not signalled even with a matching start time. */
function initInCgroup(c: Container): boolean {
  const st = c.record.cgroup;
  if (!st || (st as { legacy?: boolean }).legacy || !cgroupOf(st)) return true;
  try {
    const p = parseProcCgroup(fs.readFileSync(`/proc/${c.record.pid}/cgroup`, 'utf8'));
    return p === st.path || p.startsWith(`${st.path}/`);
  } catch {
    return true; // gone: signalProcess finds nothing to signal
  }
}

export function signalContainer(c: Container, signal: number, all: boolean): void {
  const status = c.status();
  if (all) {
    // runc: --all succeeds on a stopped container (there is nothing to signal).
    const cg = cgroupOf(c.record.cgroup);
    if (cg) return cg.killAll(signal);
    for (const p of containerPids(c)) {
      try {
        signalPid(p, signal);
      } catch {
        // not ours to signal (EPERM), as before: the others still get it
      }
    }
    return;
  }
  if (status === 'stopped') throw new HakoError(`container "${c.id}" is not running`);
  if (!initInCgroup(c))
    throw new HakoError(`container "${c.id}": process ${c.record.pid} is not in the container's cgroup; hako does not signal it`);
  if (!signalProcess(c.record.pid, c.record.startTime, signal)) throw new HakoError(`container "${c.id}" is not running: no such process`);
}

export function kill(ctx: RuntimeContext, id: string, signal: number, all: boolean): void {
  ctx.store.withLock(id, () => signalContainer(Container.load(ctx.store, id), signal, all));
}
