import { Command } from 'commander';
import { context } from '../app.js';
import { Container } from '../../runtime/container.js';

export const stateCommand = new Command('state')
  .description("print a container's state as the runtime spec defines it")
  .argument('<id>', 'container id')
  .action(function (this: Command, id: string) {
    const ctx = context(this);
    process.stdout.write(JSON.stringify(Container.load(ctx.store, id).ociState(), null, 2) + '\n');
  });
