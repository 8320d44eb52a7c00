// seal --from KEY --to ID.id.json... FILE: a FHIR resource sealed to one or more recipients
// (a signed JWE, src/seal/envelope.ts), written to stdout or -o.
import { Command } from 'commander';
import { HakoError } from '../../errors.js';
import { sealEnvelope } from '../../seal/envelope.js';
import { loadIdentity, loadPrivateKey } from '../../seal/keys.js';
import { binaryOf } from '../../seal/relay.js';
import { readInput, writeOutput } from '../../seal/files.js';

export const sealCommand = new Command('seal')
  .description('seal a FHIR resource (JSON) to recipients: a JWE only they can open, signed by you')
  .argument('[file]', 'the FHIR resource, e.g. a Bundle (it may follow the --to list)')
  .requiredOption('--from <key>', 'your private key (NAME.key), which signs the envelope')
  .requiredOption('--to <id...>', "each recipient's identity (NAME.id.json)")
  .option('-o, --output <file>', 'where to write the envelope (default stdout)')
  .option('--binary', 'write it as a FHIR Binary (application/jose+json, recipients in meta.tag) to POST to a FHIR server')
  .action(async function (this: Command, fileArg: string | undefined) {
    const o = this.opts() as { from: string; to: string[]; output?: string; binary?: boolean };
    // `--to A.id.json B.id.json FILE`: the variadic --to took FILE too; the last word is the file.
    const file = fileArg ?? (o.to.length > 1 ? o.to.pop()! : undefined);
    if (file === undefined) throw new HakoError('seal: no file to seal (hako seal --from KEY --to ID.id.json... FILE)');
    const from = loadPrivateKey(o.from);
    const to = o.to.map((p) => loadIdentity(p));
    const plaintext = readInput('seal', file);
    checkFhirJson(file, plaintext);
    const env = await sealEnvelope(plaintext, from, to);
    const text = JSON.stringify(env, null, 2) + '\n';
    const out = o.binary ? JSON.stringify(binaryOf(env, text)) + '\n' : text;
    writeOutput('seal', o.output, Buffer.from(out), 0o644);
  });

/** The envelope says cty application/fhir+json: hold the sender to it. */
function checkFhirJson(file: string, bytes: Buffer): void {
  let v: unknown;
  try {
    v = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new HakoError(`seal: ${file} is not JSON (a FHIR resource in JSON is sealed)`);
  }
  if (typeof v !== 'object' || v === null || typeof (v as { resourceType?: unknown }).resourceType !== 'string')
    throw new HakoError(`seal: ${file} is not a FHIR resource: no resourceType`);
}
