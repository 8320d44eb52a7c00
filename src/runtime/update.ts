// update: change a running container's limits.
import { HakoError } from '../errors.js';
import { CgroupManager, type LinuxResources } from '../cgroups/index.js';
import { Container } from './container.js';
import { cgroupOp, containerCgroup, noCgroupReason } from './pause.js';
import type { RuntimeContext } from './context.js';

export async function update(ctx: RuntimeContext, id: string, resources: LinuxResources): Promise<void> {
  const c = Container.load(ctx.store, id);
  if (!c.alive()) throw new HakoError(`cannot update container "${id}": it is stopped`);
  const cg = containerCgroup(c);
  if (!cg)
    throw new HakoError(
      `cannot update container "${id}": updating resources needs a cgroup and the container has none (${noCgroupReason()})`,
    );
  // An update asks for these limits now, on a running container: a limit this host
  // cannot apply is refused (strict), not dropped with a warning as at create, where
  // the choice is between running without it and not running at all.
  const strict = new CgroupManager({ ...cg.toJSON(), strict: true });
  const warnings = await cgroupOp(`cannot update container "${id}"`, () => strict.apply(resources));
  for (const w of warnings) ctx.log.warn(w);
}
