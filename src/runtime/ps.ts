// ps: the container's processes, as host pids (the init first when it has no cgroup).
import { Container } from './container.js';
import { containerPids } from './kill.js';
import type { RuntimeContext } from './context.js';

export function ps(ctx: RuntimeContext, id: string): number[] {
  return containerPids(Container.load(ctx.store, id));
}
