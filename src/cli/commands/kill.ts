import { Command } from 'commander';
import { context } from '../app.js';
import { kill, parseSignal } from '../../runtime/index.js';

export const killCommand = (): Command =>
  new Command('kill')
    .description('send a signal (default SIGTERM) to the container')
    .argument('<id>', 'container id')
    .argument('[signal]', 'signal name or number', 'SIGTERM')
    .option('-a, --all', 'signal every process of the container')
    .action(function (this: Command, id: string, signal: string) {
      kill(context(this), id, parseSignal(signal), !!this.opts().all);
    });
