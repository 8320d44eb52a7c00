import { Command } from 'commander';
import { context } from '../app.js';
import { start } from '../../runtime/index.js';

export const startCommand = (): Command =>
  new Command('start')
    .description('start a created container')
    .argument('<id>', 'container id')
    .action(function (this: Command, id: string) {
      start(context(this), id);
    });
