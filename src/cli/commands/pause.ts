// pause: freeze every process of the container.
import { Command } from 'commander';
import { context } from '../app.js';
import { pause } from '../../runtime/index.js';

export const pauseCommand = new Command('pause')
  .description('suspend every process of the container (cgroup freezer)')
  .argument('<id>', 'container id')
  .action(async function (this: Command, id: string) {
    await pause(context(this), id);
  });
