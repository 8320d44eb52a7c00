// hako verify -b BUNDLE --trust DIR: OK with the signer, or one sentence saying what changed.
import { Command } from 'commander';
import { signing } from '../signed.js';

export const verifyCommand = new Command('verify')
  .description('check that a bundle is what a trusted identity signed (config.json and every rootfs path)')
  .option('-b, --bundle <dir>', 'the bundle directory', '.')
  .requiredOption('--trust <dir>', 'the directory of trusted identities (*.id.json)')
  .action(function (this: Command) {
    const o = this.opts();
    const r = signing().verifyBundle(o.bundle, o.trust);
    process.stdout.write(
      `OK: ${o.bundle} is signed by ${r.signer.name} (fingerprint ${r.signer.fingerprint}); config.json and ${r.entries} rootfs paths unchanged\n`,
    );
  });
