// events: runc's JSON events. A stats event every interval and an "oom" event when
// the memory controller reports one, until the container stops; or the stats once.
import { HakoError } from '../errors.js';
import { Container } from './container.js';
import { cgroupOp, containerCgroup, noCgroupReason } from './pause.js';
import type { RuntimeContext } from './context.js';

export interface EventsOptions {
  /** Print the statistics once and return. */
  once: boolean;
  intervalMs: number;
  emit: (event: unknown) => void;
}

export async function events(ctx: RuntimeContext, id: string, o: EventsOptions): Promise<void> {
  const c = Container.load(ctx.store, id);
  if (!c.alive()) throw new HakoError(`container "${id}" is not running`);
  const cg = containerCgroup(c);
  if (!cg)
    throw new HakoError(`cannot read events of container "${id}": statistics come from its cgroup and it has none (${noCgroupReason()})`);
  if (o.once) {
    o.emit(await cgroupOp('events --stats', () => cg.stats(id)));
    return;
  }
  const stopOom = cg.watchOom(() => o.emit({ type: 'oom', id }));
  try {
    while (c.alive()) {
      o.emit(await cgroupOp('events', () => cg.stats(id)));
      const end = Date.now() + o.intervalMs;
      while (c.alive() && Date.now() < end) await new Promise((r) => setTimeout(r, Math.min(200, o.intervalMs)));
    }
  } finally {
    stopOom();
  }
}
