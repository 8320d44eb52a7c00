import { Command } from 'commander';
import { context, intOption } from '../app.js';
import { run, activationFromEnvironment } from '../../runtime/index.js';

export const runCommand = new Command('run')
  .description('create and start a container, wait for it and return its exit code')
  .argument('<id>', 'container id')
  .option('-b, --bundle <dir>', 'the bundle directory', '.')
  .option('--pid-file <file>', "write the init's host pid here")
  .option('--console-socket <path>', 'unix socket that receives the pty master')
  .option('-d, --detach', 'do not wait for the container')
  .option('--keep', 'do not delete the container when it exits')
  .option('--no-pivot', 'move the rootfs to / and chroot instead of pivot_root')
  .option('--no-new-keyring', "keep the caller's session keyring instead of joining the container's own (_ses.ID)")
  .option('--preserve-fds <n>', 'pass fds 3..3+n-1 to the container', intOption, 0)
  .action(async function (this: Command, id: string) {
    const o = this.opts();
    process.exitCode = await run(context(this), {
      id,
      bundle: o.bundle,
      pidFile: o.pidFile,
      consoleSocket: o.consoleSocket,
      noPivot: o.pivot === false,
      newKeyring: o.newKeyring !== false,
      preserveFds: o.preserveFds,
      detach: o.detach,
      keep: o.keep,
      ...activationFromEnvironment(o.bundle, o.preserveFds),
    });
  });
