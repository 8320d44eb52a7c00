// resume: thaw a paused container (cgroup.freeze = 0).
import { Command } from 'commander';
import { context } from '../app.js';
import { Container } from '../../runtime/container.js';
import { HakoError } from '../../errors.js';
import { cgroupOp, freezerOf } from './pause.js';

export const resumeCommand = new Command('resume')
  .description('resume a paused container')
  .argument('<id>', 'container id')
  .action(async function (this: Command, id: string) {
    const ctx = context(this);
    const c = Container.load(ctx.store, id);
    if (!c.alive()) throw new HakoError(`cannot resume container "${id}": it is stopped`);
    const cg = freezerOf(c, 'resume');
    if (!cg.frozen()) throw new HakoError(`cannot resume container "${id}": it is not paused`);
    await cgroupOp(`resuming container "${id}"`, () => cg.thaw());
  });
