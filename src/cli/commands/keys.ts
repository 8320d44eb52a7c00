// keys new NAME: a new identity, NAME.key (private, 0600) and NAME.id.json (public, to share).
import { Command } from 'commander';
import { newKeys } from '../../seal/keys.js';

const newCommand = new Command('new')
  .description('make an identity: NAME.key (X25519 + Ed25519 private keys, mode 0600) and NAME.id.json (public, to share)')
  .argument('<name>', 'the identity name (letters, digits, . _ -)')
  .option('-d, --dir <dir>', 'where to write the two files', '.')
  .action(function (this: Command, name: string) {
    const { keyPath, idPath, key } = newKeys(name, this.opts().dir);
    process.stdout.write(`${keyPath}\n${idPath}\nfingerprint: ${key.fingerprint}\n`);
  });

export const keysCommand = new Command('keys').description('identities for sealed envelopes and signed bundles').addCommand(newCommand);
