// hako sign -b BUNDLE --key KEY: writes BUNDLE/hako.sig.json (docs/signing.md).
import { Command } from 'commander';
import { signing } from '../signed.js';

export const signCommand = new Command('sign')
  .description("sign a bundle's config.json and a manifest of its rootfs with an identity's Ed25519 key (writes BUNDLE/hako.sig.json)")
  .option('-b, --bundle <dir>', 'the bundle directory', '.')
  .requiredOption('--key <file>', 'the private key (NAME.key, from hako keys new)')
  .action(function (this: Command) {
    const o = this.opts();
    const r = signing().signBundle(o.bundle, o.key);
    process.stdout.write(
      `signed ${o.bundle} as ${r.signer.name} (fingerprint ${r.signer.fingerprint}): config.json and ${r.entries} rootfs paths in ${r.file}\n`,
    );
  });
