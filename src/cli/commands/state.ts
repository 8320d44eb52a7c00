import { Command } from 'commander';
import { context } from '../app.js';
import { state } from '../../runtime/index.js';

export const stateCommand = (): Command =>
  new Command('state')
    .description("print a container's state as the runtime spec defines it")
    .argument('<id>', 'container id')
    .action(function (this: Command, id: string) {
      process.stdout.write(JSON.stringify(state(context(this), id), null, 2) + '\n');
    });
