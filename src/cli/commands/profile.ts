// hako profile learn | trial | diff: seccomp profiles learned from a bundle's own behaviour.
import { Command } from 'commander';
import { context } from '../app.js';
import { SUBID_USER } from '../../up/subids.js';
import { learnProfile, trialProfile } from '../../profile/learn.js';
import { readProfile, writeProfile } from '../../profile/file.js';
import { diffProfiles } from '../../profile/diff.js';
import { HakoError } from '../../errors.js';

const say = (sentence: string) => process.stderr.write(`hako profile: ${sentence}\n`);

const runOptions = (c: Command) =>
  c
    .requiredOption('-b, --bundle <dir>', 'the bundle (served as `hako up` serves it)')
    .option('--driver <script>', 'run between ready and stop (argument and HAKO_URL: the server URL); .js/.mjs run with node')
    .option('--listen <host:port>', 'address to listen on, on the host', '127.0.0.1:0')
    .option('--subids <user>', `as root: whose subordinate ranges the container runs on`, SUBID_USER);

const learn = runOptions(
  new Command('learn').description(
    'run the bundle twice under a recording filter (start-up, the driver, SIGTERM; start-up again with its data, SIGTERM) and write a two-phase profile',
  ),
)
  .requiredOption('-o, --output <file>', 'where to write the profile (an OCI linux.seccomp object)')
  .action(async function (this: Command) {
    const o = this.opts();
    const learned = await learnProfile(context(this), { bundle: o.bundle, driver: o.driver, listen: o.listen, subids: o.subids, say });
    writeProfile(o.output, learned.profile);
    say(
      `${learned.serving.length} calls allowed while serving, ${learned.startupOnly.length} during start-up only (${learned.startupOnly.join(', ') || 'none'}); socket families ${learned.socketDomains.join(', ') || 'none'}; ${learned.recording.notifications} calls seen; wrote ${o.output}`,
    );
  });

const trial = runOptions(
  new Command('trial').description('run the bundle as learn does, under PROFILE in report-only mode, and list what it would have refused'),
)
  .requiredOption('--profile <file>', 'the profile to try')
  .action(async function (this: Command) {
    const o = this.opts();
    const profile = readProfile(o.profile);
    const refusals = await trialProfile(context(this), {
      bundle: o.bundle,
      driver: o.driver,
      listen: o.listen,
      subids: o.subids,
      say,
      profile,
    });
    const seen = new Map<string, number>();
    for (const r of refusals) seen.set(`${r.syscall} (${r.phase})`, (seen.get(`${r.syscall} (${r.phase})`) ?? 0) + 1);
    for (const [what, n] of seen) process.stdout.write(`would refuse ${what}${n > 1 ? ` ×${n}` : ''}\n`);
    if (seen.size) throw new HakoError(`${o.profile} would have refused ${refusals.length} calls (${seen.size} kinds): see the list above`);
    process.stdout.write(`${o.profile} refused nothing the workload did\n`);
  });

const diff = new Command('diff')
  .description('say in words how profile B differs from profile A')
  .argument('<a>', 'the old profile')
  .argument('<b>', 'the new profile')
  .action((a: string, b: string) => {
    for (const line of diffProfiles(readProfile(a), readProfile(b), { a, b })) process.stdout.write(`${line}\n`);
  });

export const profileCommand = new Command('profile')
  .description('learn, try and compare seccomp profiles made from a workload')
  .addCommand(learn)
  .addCommand(trial)
  .addCommand(diff);
