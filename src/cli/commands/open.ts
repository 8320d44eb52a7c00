// open --key KEY [--from ID.id.json] FILE: checks a sealed envelope's signature (and its
// sender, with --from), decrypts it with your key, writes the resource to stdout or -o.
import { Command } from 'commander';
import { HakoError } from '../../errors.js';
import { describeSender, openEnvelope } from '../../seal/envelope.js';
import { loadIdentity, loadPrivateKey } from '../../seal/keys.js';
import { unwrapBinary } from '../../seal/relay.js';
import { readInput, writeOutput } from '../../seal/files.js';

export const openCommand = new Command('open')
  .description("open a sealed envelope addressed to you: the sender's signature is checked first")
  .argument('<file>', 'the envelope (from hako seal), or a FHIR Binary carrying one (from a FHIR server)')
  .requiredOption('--key <key>', 'your private key (NAME.key)')
  .option('--from <id>', "the sender's identity (NAME.id.json): refuse an envelope anyone else sealed")
  .option('-o, --output <file>', 'where to write the resource (default stdout; a file is made mode 0600)')
  .option('-q, --quiet', 'do not print who sealed it (on stderr)')
  .action(async function (this: Command, file: string) {
    const o = this.opts() as { key: string; from?: string; output?: string; quiet?: boolean };
    const key = loadPrivateKey(o.key);
    const from = o.from === undefined ? undefined : loadIdentity(o.from);
    const text = readInput('open', file).toString('utf8');
    let opened;
    try {
      opened = await openEnvelope(unwrapBinary(text), key, from);
    } catch (e) {
      if (e instanceof HakoError) throw new HakoError(`open: ${file}: ${e.message}`);
      throw e;
    }
    writeOutput('open', o.output, opened.plaintext, 0o600);
    if (!o.quiet) process.stderr.write(`hako: ${describeSender(opened)}\n`);
  });
