// hako rollout ID [--bundle DIR] [--timeout S]: asks the `hako up` of ID, through its control
// socket, to replace its container by one of DIR (or of its own bundle, rebuilt) on the same
// listening socket (docs/rollout.md); prints the old and new ids, the handover and the version.
import net from 'node:net';
import path from 'node:path';
import fs from 'node:fs';
import { Command } from 'commander';
import { context, intOption } from '../app.js';
import { HakoError } from '../../errors.js';
import { controlPath } from '../../up/control.js';
import { httpGet } from '../../up/ready.js';
import type { RolloutResult } from '../../up/rollout.js';
import type { ListenAddress } from '../../up/listen.js';

function ask(sock: string, line: string): Promise<RolloutResult> {
  return new Promise((resolve, reject) => {
    const c = net.createConnection(sock);
    let text = '';
    c.setEncoding('utf8');
    c.on('connect', () => c.write(`${line}\n`));
    c.on('data', (d: string) => (text += d));
    c.on('error', (e) => reject(new HakoError(`cannot reach the hako up at ${sock}: ${e.message}`)));
    c.on('end', () => {
      try {
        resolve(JSON.parse(text) as RolloutResult);
      } catch {
        reject(new HakoError(`the hako up at ${sock} gave no answer (did it stop?)`));
      }
    });
  });
}

/** The version a FHIR server reports (/metadata software.version); "unknown" for other servers. */
async function versionServed(addr: ListenAddress): Promise<string> {
  const answer = await httpGet(addr, '/metadata', 5_000, 'application/fhir+json');
  try {
    return String((JSON.parse(answer?.body ?? '') as { software?: { version?: unknown } }).software?.version ?? 'unknown');
  } catch {
    return 'unknown';
  }
}

export const rolloutCommand = new Command('rollout')
  .description('replace the container a hako up serves by one of a new bundle, on the same socket, without refusing a client')
  .argument('<id>', 'the id hako up was started with (its --id, or BUNDLE-PORT)')
  .option('--bundle <dir>', 'the bundle to roll out (default: the running one, rebuilt)')
  .option('--timeout <seconds>', 'how long the new container has to take over before the old one is restored', intOption, 60)
  .action(async function (this: Command, id: string) {
    const o = this.opts();
    const ctx = context(this);
    if (o.timeout < 1) throw new HakoError('--timeout: must be at least 1 second');
    const sock = controlPath(ctx.store.root, id);
    if (!fs.existsSync(sock)) throw new HakoError(`no hako up of "${id}" runs under ${ctx.store.root} (no control socket ${sock})`);
    let bundle: string | undefined;
    if (o.bundle !== undefined) {
      bundle = path.resolve(o.bundle);
      if (!fs.statSync(bundle, { throwIfNoEntry: false })?.isDirectory()) throw new HakoError(`--bundle: ${o.bundle} is not a directory`);
    }
    const r = await ask(sock, JSON.stringify({ bundle, timeoutMs: o.timeout * 1000 }));
    if (!r.ok) throw new HakoError(`rollout of ${id} failed: ${r.error}`);
    const version = await versionServed(r.address);
    process.stdout.write(
      `rolled out ${id}: container ${r.old} -> ${r.new} (${r.bundle}); handover ${r.handoverMs} ms (old one drained in ${r.drainMs} ms); version served ${version}\n`,
    );
  });
