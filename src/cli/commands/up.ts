// hako up BUNDLE --listen HOST:PORT: build the rootfs if needed, open the socket on the
// host, run the container in the foreground with socket activation and restarts.
import path from 'node:path';
import fs from 'node:fs';
import { Command } from 'commander';
import { context, intOption } from '../app.js';
import { loadBundleConfig, withSocketActivation } from '../../runtime/index.js';
import { ensureRootfs } from '../../up/rootfs.js';
import { adoptVolumes, checkVolumes, hostUser } from '../../up/volumes.js';
import { ensureSubIds, SUBID_USER, withSubIdMappings } from '../../up/subids.js';
import { formatAddress, openListener, parseListen } from '../../up/listen.js';
import { DEFAULT_POLICY, parseRestartMode } from '../../up/policy.js';
import { Supervisor } from '../../up/supervisor.js';

const say = (sentence: string) => process.stderr.write(`hako up: ${sentence}\n`);

export const upCommand = new Command('up')
  .description('serve a bundle in the foreground: build its rootfs if needed, hand it a listening socket (fd 3), restart it when it crashes')
  .argument('<bundle>', 'the bundle directory')
  .requiredOption('--listen <host:port>', 'address to listen on, on the host (port 0 picks one)')
  .option('--id <id>', 'container id (default: the bundle name and the port)')
  .option('--restart <mode>', 'no, on-failure or always', parseRestartMode, DEFAULT_POLICY.mode)
  .option('--max-restarts <n>', 'restarts in a row before giving up (a run of 10 s resets the count)', intOption, DEFAULT_POLICY.maxRestarts)
  .option('--stop-timeout <seconds>', 'grace period between SIGTERM and SIGKILL when stopping', intOption, 10)
  .option('--subids <user>', `as root: map the container onto this user's ranges in /etc/subuid and /etc/subgid (user ${SUBID_USER}'s are created when missing)`, SUBID_USER)
  .action(async function (this: Command, bundleArg: string) {
    const o = this.opts();
    const ctx = context(this);
    const bundle = path.resolve(bundleArg);
    const requested = parseListen(o.listen);
    let cfg = withSocketActivation(loadBundleConfig(bundle));
    // As root the container runs on a subordinate range, never as host root.
    let ranges: ReturnType<typeof ensureSubIds> | undefined;
    if (!ctx.rootless)
      cfg = withSubIdMappings(cfg, () => {
        ranges = ensureSubIds({ user: o.subids });
        if (ranges.created.length) say(`created ${ranges.created.join(', ')}: the container's ids on the host`);
        return ranges;
      });
    const label = await ensureRootfs(bundle, cfg, say);
    const user = hostUser(cfg);
    // The port first: a refused `up` must not have handed the volume to the range already.
    const { fd, port } = await openListener(requested);
    try {
      if (!ctx.rootless) adoptVolumes(cfg, bundle, user, say);
      checkVolumes(cfg, bundle);
      const address = { host: requested.host, port };
      const id = o.id ?? `${path.basename(bundle)}-${port}`;
      const how = ctx.rootless
        ? 'rootless'
        : `as root, in a user namespace with no capabilities, as host uid ${user.uid}${ranges ? ` (user ${ranges.user}'s subordinate range)` : ''}`;
      process.exitCode = await new Supervisor(ctx, {
        id, bundle, config: cfg, listenerFd: fd, address,
        policy: { ...DEFAULT_POLICY, mode: o.restart, maxRestarts: o.maxRestarts },
        stopTimeoutMs: o.stopTimeout * 1000,
        say,
        onServing: () => process.stdout.write(`${label} at http://${formatAddress(address)}/ (hako container ${id}, ${how})\n`),
      }).run();
    } finally {
      fs.closeSync(fd);
    }
  });
