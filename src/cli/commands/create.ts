import { Command } from 'commander';
import { callerPaths, context, intOption } from '../app.js';
import { checkSigned } from '../signed.js';
import { create, closeFd, activationFromEnvironment } from '../../runtime/index.js';

export const createCommand = (): Command =>
  new Command('create')
    .description('create a container from a bundle; its process waits for `start`')
    .argument('<id>', 'container id')
    .option('-b, --bundle <dir>', 'the bundle directory', '.')
    .option('--pid-file <file>', "write the init's host pid here")
    .option('--console-socket <path>', 'unix socket that receives the pty master')
    .option('--no-pivot', 'move the rootfs to / and chroot instead of pivot_root')
    .option('--no-new-keyring', "keep the caller's session keyring instead of joining the container's own (_ses.ID)")
    .option('--preserve-fds <n>', 'pass fds 3..3+n-1 to the container', intOption, 0)
    .option('--require-signed', 'refuse a bundle not signed by an identity in --trust, or changed since (docs/signing.md)')
    .option('--trust <dir>', 'with --require-signed: the directory of trusted identities (*.id.json)')
    .action(function (this: Command, id: string) {
      const o = callerPaths(this.opts());
      // Checked before anything is created; the config that runs is the one verified.
      const config = checkSigned(o.bundle, o);
      const { launched } = create(context(this), {
        id,
        bundle: o.bundle,
        config,
        pidFile: o.pidFile,
        consoleSocket: o.consoleSocket,
        noPivot: o.pivot === false,
        newKeyring: o.newKeyring !== false,
        preserveFds: o.preserveFds,
        ...activationFromEnvironment(o.bundle, o.preserveFds),
      });
      // Both, though the process ends here: a planner (src/planner/) serves the next call in this one.
      closeFd(launched.syncFd);
      closeFd(launched.pidfd);
    });
