// resume: thaw a paused container.
import { Command } from 'commander';
import { context } from '../app.js';
import { resume } from '../../runtime/index.js';

export const resumeCommand = new Command('resume')
  .description('resume a paused container')
  .argument('<id>', 'container id')
  .action(async function (this: Command, id: string) {
    await resume(context(this), id);
  });
