import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { context } from '../app.js';
import { deleteContainer } from '../../runtime/delete.js';

export const deleteCommand = new Command('delete')
  .description('delete a stopped container (--force kills it first)')
  .argument('<id>', 'container id')
  .option('-f, --force', 'kill the container if it is running')
  .action(function (this: Command, id: string) {
    const ctx = context(this);
    // runc: `delete --force` of a container that does not exist succeeds (Podman calls it after a failed create).
    if (this.opts().force && !fs.existsSync(path.join(ctx.store.dir(id), 'state.json'))) {
      fs.rmSync(ctx.store.dir(id), { recursive: true, force: true });
      return;
    }
    deleteContainer(ctx, id, !!this.opts().force);
  });
