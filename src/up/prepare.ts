// What `hako up` and `hako profile` do before a bundle's first run: the config with socket
// activation (and, as root, the subordinate range), the root filesystem built by the bundle's
// hook, the listening socket on the host, and the data volumes handed to the container's user.
import path from 'node:path';
import fs from 'node:fs';
import type { Config } from '../oci/config.js';
import { loadBundleConfig, withSocketActivation, type RuntimeContext } from '../runtime/index.js';
import { buildHookOf, ensureRootfs } from './rootfs.js';
import { requireSigned, type SignedOptions } from '../sign/index.js';
import { adoptVolumes, checkVolumes, dataVolumes, hostUser } from './volumes.js';
import { ensureSubIds, withSubIdMappings } from './subids.js';
import { openListener, parseListen, type ListenAddress } from './listen.js';

/** Processes and threads a container may have under `up` as root (a node server has about 12). */
export const ROOT_NPROC = 512;

export interface PrepareOptions {
  /** HOST:PORT (port 0 picks one). */
  listen: string;
  /** As root: whose subordinate ranges the container runs on. */
  subids: string;
  id?: string;
  /** --require-signed --trust DIR (docs/signing.md). */
  signed?: SignedOptions;
}

export interface Prepared {
  bundle: string;
  config: Config;
  /** The listening socket on the host (the caller closes it). */
  listenerFd: number;
  address: ListenAddress;
  id: string;
  /** What the bundle serves, for the "serving at" line. */
  serves: string;
  /** How the container runs, for the same line. */
  how: string;
}

/** The config to run and the built rootfs of a bundle (verified first when signed bundles are required). */
async function prepareConfig(
  ctx: RuntimeContext,
  bundleArg: string,
  o: Pick<PrepareOptions, 'subids' | 'signed'>,
  say: (s: string) => void,
): Promise<{ bundle: string; config: Config; serves: string; ranges?: ReturnType<typeof ensureSubIds> }> {
  const bundle = path.resolve(bundleArg);
  // A signed bundle is checked first, and its build hook never runs: the hook is the bundle's
  // own code, run outside any container, and what runs must be what was signed (the built
  // rootfs). The config used is the one verified, never config.json read again.
  const verified = requireSigned(bundleArg, o.signed ?? {});
  let cfg = withSocketActivation(verified ?? loadBundleConfig(bundle));
  // As root the container runs on a subordinate range, never as host root.
  let ranges: ReturnType<typeof ensureSubIds> | undefined;
  if (!ctx.rootless)
    cfg = withSubIdMappings(cfg, () => {
      ranges = ensureSubIds({ user: o.subids });
      if (ranges.created.length) say(`created ${ranges.created.join(', ')}: the container's ids on the host`);
      return ranges;
    });
  // On a range of its own, the container's host id runs nothing else: RLIMIT_NPROC then
  // bounds this container alone (rootless it would count all the caller's processes).
  if (!ctx.rootless && !cfg.process?.rlimits?.some((r) => r.type === 'RLIMIT_NPROC'))
    cfg = {
      ...cfg,
      process: {
        ...cfg.process!,
        rlimits: [...(cfg.process!.rlimits ?? []), { type: 'RLIMIT_NPROC', soft: ROOT_NPROC, hard: ROOT_NPROC }],
      },
    };
  const serves = verified ? (buildHookOf(bundle)?.serves ?? 'server') : await ensureRootfs(bundle, cfg, say);
  return { bundle, config: cfg, serves, ranges };
}

/**
 * A rollout's bundle (rollout.ts): prepared like the first, but it keeps the running
 * container's data: a writable bind mount at a destination the running config mounts too gets
 * the running one's source (a copy of the bundle elsewhere would otherwise bring its own).
 */
export async function prepareNextBundle(
  ctx: RuntimeContext,
  bundleArg: string,
  running: { bundle: string; config: Config },
  o: Pick<PrepareOptions, 'subids' | 'signed'>,
  say: (s: string) => void,
): Promise<{ bundle: string; config: Config }> {
  const p = await prepareConfig(ctx, bundleArg, o, say);
  const kept = new Map(dataVolumes(running.config, running.bundle).map((v) => [v.destination, v.source]));
  const writable = new Set(dataVolumes(p.config, p.bundle).map((v) => v.destination));
  const config: Config = {
    ...p.config,
    mounts: p.config.mounts?.map((m) =>
      writable.has(m.destination) && kept.has(m.destination) ? { ...m, source: kept.get(m.destination)! } : m,
    ),
  };
  if (!ctx.rootless) adoptVolumes(config, p.bundle, hostUser(config), say);
  checkVolumes(config, p.bundle);
  return { bundle: p.bundle, config };
}

export async function prepareBundle(
  ctx: RuntimeContext,
  bundleArg: string,
  o: PrepareOptions,
  say: (s: string) => void,
): Promise<Prepared> {
  const requested = parseListen(o.listen);
  const { bundle, config: cfg, serves, ranges } = await prepareConfig(ctx, bundleArg, o, say);
  const user = hostUser(cfg);
  // The port first: a refused `up` must not have handed the volume to the range already.
  const { fd, port } = await openListener(requested);
  try {
    if (!ctx.rootless) adoptVolumes(cfg, bundle, user, say);
    checkVolumes(cfg, bundle);
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
  const how = ctx.rootless
    ? 'rootless'
    : `as root, in a user namespace with no capabilities, as host uid ${user.uid}${ranges ? ` (user ${ranges.user}'s subordinate range)` : ''}`;
  return {
    bundle,
    config: cfg,
    listenerFd: fd,
    address: { host: requested.host, port },
    id: o.id ?? `${path.basename(bundle)}-${port}`,
    serves,
    how,
  };
}
