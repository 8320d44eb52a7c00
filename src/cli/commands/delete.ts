import { Command } from 'commander';
import { context } from '../app.js';
import { deleteContainer } from '../../runtime/index.js';

export const deleteCommand = (): Command =>
  new Command('delete')
    .description('delete a stopped container (--force kills it first)')
    .argument('<id>', 'container id')
    .option('-f, --force', 'kill the container if it is running')
    .action(function (this: Command, id: string) {
      // runc: `delete --force` of a container that does not exist succeeds (deleteContainer).
      deleteContainer(context(this), id, !!this.opts().force);
    });
