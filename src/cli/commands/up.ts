// hako up BUNDLE --listen HOST:PORT: build the rootfs if needed, open the socket on the
// host, run the container in the foreground with socket activation and restarts.
import fs from 'node:fs';
import { Command } from 'commander';
import { context, intOption } from '../app.js';
import { prepareBundle, prepareNextBundle } from '../../up/prepare.js';
import { SUBID_USER } from '../../up/subids.js';
import { formatAddress } from '../../up/listen.js';
import { DEFAULT_POLICY, parseRestartMode } from '../../up/policy.js';
import { Supervisor } from '../../up/supervisor.js';
import { withAgent } from '../../profile/agent.js';
import { parseOnViolation, superviseSeccomp, type Supervision } from '../../up/seccomp-supervision.js';

const say = (sentence: string) => process.stderr.write(`hako up: ${sentence}\n`);

export const upCommand = new Command('up')
  .description(
    'serve a bundle in the foreground: build its rootfs if needed, hand it a listening socket (fd 3), restart it when it crashes',
  )
  .argument('<bundle>', 'the bundle directory')
  .requiredOption('--listen <host:port>', 'address to listen on, on the host (port 0 picks one)')
  .option('--id <id>', 'container id (default: the bundle name and the port)')
  .option('--restart <mode>', 'no, on-failure or always', parseRestartMode, DEFAULT_POLICY.mode)
  .option(
    '--max-restarts <n>',
    'restarts in a row before giving up (a run of 10 s resets the count)',
    intOption,
    DEFAULT_POLICY.maxRestarts,
  )
  .option('--stop-timeout <seconds>', 'grace period between SIGTERM and SIGKILL when stopping', intOption, 10)
  .option(
    '--subids <user>',
    `as root: map the container onto this user's ranges in /etc/subuid and /etc/subgid (user ${SUBID_USER}'s are created when missing)`,
    SUBID_USER,
  )
  .option(
    '--on-violation <what>',
    'when the two-phase profile refuses a call: report, stop or freeze (beside the report)',
    parseOnViolation,
    'report',
  )
  .option(
    '--require-signed',
    'refuse a bundle not signed by an identity in --trust, or changed since; its build hook is not run (docs/signing.md)',
  )
  .option('--trust <dir>', 'with --require-signed: the directory of trusted identities (*.id.json)')
  .action(async function (this: Command, bundleArg: string) {
    const o = this.opts();
    const ctx = context(this);
    const signed = { requireSigned: o.requireSigned, trust: o.trust };
    const p = await prepareBundle(
      ctx,
      bundleArg,
      {
        listen: o.listen,
        subids: o.subids,
        id: o.id,
        signed,
      },
      say,
    );
    let supervisor: Supervisor | undefined;
    let supervision: Supervision | undefined;
    try {
      supervision = await superviseSeccomp(ctx, p, { onViolation: o.onViolation, say, stop: () => supervisor?.stop('SIGTERM') });
      supervisor = new Supervisor(ctx, {
        id: p.id,
        bundle: p.bundle,
        config: p.config,
        listenerFd: p.listenerFd,
        address: p.address,
        policy: { ...DEFAULT_POLICY, mode: o.restart, maxRestarts: o.maxRestarts },
        stopTimeoutMs: o.stopTimeout * 1000,
        say,
        onServing: () => process.stdout.write(`${p.serves} at http://${formatAddress(p.address)}/ (hako container ${p.id}, ${p.how})\n`),
        onRunStart: supervision?.onRunStart,
        onReady: supervision?.onReady,
        // A rollout's bundle: verified by the same rule, built, keeping the running data volumes.
        // Its NOTIFY calls go to the same agent, which judges them by the profile up started with.
        prepareNext: async (bundle) => {
          const next = await prepareNextBundle(ctx, bundle, supervisor!.activeSpec, { subids: o.subids, signed }, say);
          return supervision ? { ...next, config: withAgent(next.config, supervision.agent) } : next;
        },
      });
      process.exitCode = await supervisor.run();
    } finally {
      await supervision?.close();
      fs.closeSync(p.listenerFd);
    }
  });
