// kill: signal the init, or with --all every process of the container.
import fs from 'node:fs';
import { HakoError } from '../errors.js';
import { Container } from './container.js';
import { pidsInNamespace } from './proc.js';
import type { RuntimeContext } from './context.js';
import { cgroupOf } from './cgroup.js';

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

export function signalContainer(c: Container, signal: number, all: boolean): void {
  const status = c.status();
  if (all) {
    // runc: --all succeeds on a stopped container (there is nothing to signal).
    const cg = cgroupOf(c.record.cgroup);
    if (cg) return cg.killAll(signal);
    for (const p of containerPids(c)) {
      try {
        process.kill(p, signal);
      } catch {
        // exited meanwhile
      }
    }
    return;
  }
  if (status === 'stopped') throw new HakoError(`container "${c.id}" is not running`);
  try {
    process.kill(c.record.pid, signal);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') throw new HakoError(`container "${c.id}" is not running: no such process`);
    throw new HakoError(`signalling container "${c.id}" failed: ${(e as Error).message}`);
  }
}

export function kill(ctx: RuntimeContext, id: string, signal: number, all: boolean): void {
  ctx.store.withLock(id, () => signalContainer(Container.load(ctx.store, id), signal, all));
}
