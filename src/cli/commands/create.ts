import { Command } from 'commander';
import { context, intOption } from '../app.js';
import { activationFor } from './exec.js';
import { create } from '../../runtime/create.js';
import { closeFd } from '../../runtime/launch.js';

export const createCommand = new Command('create')
  .description('create a container from a bundle; its process waits for `start`')
  .argument('<id>', 'container id')
  .option('-b, --bundle <dir>', 'the bundle directory', '.')
  .option('--pid-file <file>', "write the init's host pid here")
  .option('--console-socket <path>', 'unix socket that receives the pty master')
  .option('--no-pivot', 'move the rootfs to / and chroot instead of pivot_root')
  .option('--no-new-keyring', 'accepted for compatibility (hako never creates a session keyring)')
  .option('--preserve-fds <n>', 'pass fds 3..3+n-1 to the container', intOption, 0)
  .action(function (this: Command, id: string) {
    const o = this.opts();
    const { launched } = create(context(this), {
      id, bundle: o.bundle, pidFile: o.pidFile, consoleSocket: o.consoleSocket, noPivot: o.pivot === false, preserveFds: o.preserveFds,
      ...activationFor(o.bundle, o.preserveFds),
    });
    closeFd(launched.syncFd);
  });
