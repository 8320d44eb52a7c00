// pause: freeze every process of the container (cgroup.freeze). Also home of
// the helper the cgroup verbs (ps, pause, resume, update, events) share.
import { Command } from 'commander';
import { context } from '../app.js';
import { Container } from '../../runtime/container.js';
import { HakoError } from '../../errors.js';
import { CgroupError, CgroupManager, detect } from '../../cgroups/index.js';
import { cgroupOf } from '../../runtime/cgroup.js';

/** The container's cgroup, from its record, or null when it has none. */
export function containerCgroup(c: Container): CgroupManager | null {
  return cgroupOf(c.record.cgroup);
}

/** Why there is no cgroup to act on, as the end of a sentence. */
export function noCgroupReason(): string {
  const host = detect();
  return host.problem ?? 'the container was created without one';
}

/** Runs a cgroup operation, turning driver errors into hako's one-sentence errors. */
export async function cgroupOp<T>(what: string, fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof CgroupError) throw new HakoError(`${what}: ${e.message}`);
    throw e;
  }
}

export function freezerOf(c: Container, verb: string): CgroupManager {
  const cg = containerCgroup(c);
  if (!cg) throw new HakoError(`cannot ${verb} container "${c.id}": ${verb === 'pause' ? 'pausing' : 'resuming'} needs a cgroup v2 freezer; this host has none (${noCgroupReason()})`);
  return cg;
}

export const pauseCommand = new Command('pause')
  .description('suspend every process of the container (cgroup v2 freezer)')
  .argument('<id>', 'container id')
  .action(async function (this: Command, id: string) {
    const ctx = context(this);
    const c = Container.load(ctx.store, id);
    const status = c.status();
    if (status !== 'running') throw new HakoError(`cannot pause container "${id}": it is ${status}, not running`);
    const cg = freezerOf(c, 'pause');
    await cgroupOp(`pausing container "${id}"`, () => cg.freeze());
  });
