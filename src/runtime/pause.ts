// pause and resume: freeze and thaw every process of the container (the cgroup v2
// freezer, or v1's freezer.state as root on a hybrid host). Also home of what the
// cgroup verbs (ps, pause, resume, update, events) share: the container's cgroup,
// and why there is none.
import { HakoError } from '../errors.js';
import { CgroupError, CgroupManager, detect } from '../cgroups/index.js';
import { Container } from './container.js';
import { cgroupOf } from './cgroup.js';
import type { RuntimeContext } from './context.js';

/** The container's cgroup, from its record, or null when it has none. */
export function containerCgroup(c: Container): CgroupManager | null {
  return cgroupOf(c.record.cgroup);
}

/** Why there is no cgroup to act on, as the end of a sentence. */
export function noCgroupReason(): string {
  return detect().problem ?? 'the container was created without one';
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

function freezerOf(c: Container, verb: 'pause' | 'resume'): CgroupManager {
  const cg = containerCgroup(c);
  if (!cg)
    throw new HakoError(
      `cannot ${verb} container "${c.id}": ${verb === 'pause' ? 'pausing' : 'resuming'} needs a cgroup freezer; this container has none (${noCgroupReason()})`,
    );
  return cg;
}

export async function pause(ctx: RuntimeContext, id: string): Promise<void> {
  const c = Container.load(ctx.store, id);
  const status = c.status();
  if (status !== 'running') throw new HakoError(`cannot pause container "${id}": it is ${status}, not running`);
  const cg = freezerOf(c, 'pause');
  await cgroupOp(`pausing container "${id}"`, () => cg.freeze());
}

export async function resume(ctx: RuntimeContext, id: string): Promise<void> {
  const c = Container.load(ctx.store, id);
  if (!c.alive()) throw new HakoError(`cannot resume container "${id}": it is stopped`);
  const cg = freezerOf(c, 'resume');
  if (!cg.frozen()) throw new HakoError(`cannot resume container "${id}": it is not paused`);
  await cgroupOp(`resuming container "${id}"`, () => cg.thaw());
}
