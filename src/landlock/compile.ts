// run.hako.landlock.* annotations -> a Landlock plan for the executor (docs/landlock.md).
// Paths are inside the container: the executor adds them after pivot_root.
import { posix } from 'node:path';
import { ALL_FS, FS_LATER, fsRights, NET, netRights, READ_ONLY } from './access.js';
import { LandlockError } from './errors.js';

export const PREFIX = 'run.hako.landlock.';

export interface LandlockPlan {
  /** Rights the ruleset handles (denied unless a rule allows them); only rights the ABI knows. */
  handledFs: bigint;
  handledNet: bigint;
  paths: Array<{ access: bigint; path: string }>;
  ports: Array<{ access: bigint; port: number }>;
  /** One sentence per right or rule dropped in best-effort mode. */
  warnings: string[];
}

export interface LandlockOptions {
  /** Whether a container path exists in the rootfs; missing paths are dropped (or refused in strict mode). */
  rootfsExists?: (path: string) => boolean;
}

const KEYS = ['fs.ro', 'fs.rw', 'net.bind', 'net.connect', 'strict'] as const;
type Key = (typeof KEYS)[number];

function paths(key: string, value: string): string[] {
  return value
    .split(':')
    .filter((p) => p !== '')
    .map((p) => {
      if (!p.startsWith('/') || p.includes('\0'))
        throw new LandlockError(`annotation ${key}: ${JSON.stringify(p)} is not an absolute path`);
      const n = posix.normalize(p);
      return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
    });
}

function ports(key: string, value: string): number[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s) => {
      const n = Number(s);
      if (!/^\d+$/.test(s) || n > 65535) throw new LandlockError(`annotation ${key}: ${JSON.stringify(s)} is not a TCP port (0..65535)`);
      return n;
    });
}

/**
 * The Landlock plan for a container, or null when no run.hako.landlock.* annotation is
 * set. `abi` is the running kernel's Landlock ABI (0 when Landlock is unavailable). In
 * best-effort mode (the default) what the ABI cannot enforce is dropped with a warning; if
 * nothing enforceable is left, handledFs and handledNet are both 0 and there is nothing to
 * enforce. In strict mode every drop is an error.
 */
export function compileLandlock(
  annotations: Record<string, string> | undefined,
  abi: number,
  opts: LandlockOptions = {},
): LandlockPlan | null {
  const set = new Map<Key, string>();
  for (const [k, v] of Object.entries(annotations ?? {})) {
    if (!k.startsWith(PREFIX)) continue;
    const key = k.slice(PREFIX.length);
    if (!(KEYS as readonly string[]).includes(key))
      throw new LandlockError(`annotation ${k}: unknown Landlock annotation (known: ${KEYS.map((x) => PREFIX + x).join(', ')})`);
    set.set(key as Key, v);
  }
  if (set.size === 0) return null;

  const strictValue = set.get('strict') ?? 'false';
  if (strictValue !== 'true' && strictValue !== 'false')
    throw new LandlockError(`annotation ${PREFIX}strict: must be "true" or "false", not ${JSON.stringify(strictValue)}`);
  const strict = strictValue === 'true';
  const warnings: string[] = [];
  const drop = (sentence: string): void => {
    if (strict) throw new LandlockError(`${sentence} (${PREFIX}strict is true)`);
    warnings.push(sentence);
  };

  const wantFs = set.has('fs.ro') || set.has('fs.rw');
  const wantNet = set.has('net.bind') || set.has('net.connect');
  const fsKnown = fsRights(abi);
  const netKnown = netRights(abi);

  let handledFs = 0n;
  const pathRules: LandlockPlan['paths'] = [];
  if (wantFs && abi < 1) {
    drop(`Landlock is not available (ABI ${abi}): the filesystem rules were not applied`);
  } else if (wantFs) {
    handledFs = ALL_FS & fsKnown;
    for (const r of FS_LATER) if (!(fsKnown & r.right)) drop(`Landlock ABI ${abi} lacks ${r.name} (ABI ${r.abi}): ${r.without}`);
    const rules: Array<[string, bigint]> = [
      ['fs.ro', READ_ONLY],
      ['fs.rw', ALL_FS],
    ];
    for (const [key, access] of rules) {
      for (const path of paths(PREFIX + key, set.get(key as Key) ?? '')) {
        if (opts.rootfsExists && !opts.rootfsExists(path)) {
          drop(`${PREFIX}${key}: ${path} does not exist in the container, its rule was dropped`);
          continue;
        }
        pathRules.push({ access: access & handledFs, path });
      }
    }
  }

  let handledNet = 0n;
  const portRules: LandlockPlan['ports'] = [];
  if (wantNet && !netKnown) {
    drop(
      `Landlock ABI ${abi} has no TCP rules (ABI 4): ${[...set.keys()]
        .filter((k) => k.startsWith('net.'))
        .map((k) => PREFIX + k)
        .join(' and ')} not applied`,
    );
  } else if (wantNet) {
    const rules: Array<[Key, bigint]> = [
      ['net.bind', NET.BIND_TCP],
      ['net.connect', NET.CONNECT_TCP],
    ];
    for (const [key, access] of rules) {
      if (!set.has(key)) continue;
      handledNet |= access;
      for (const port of ports(PREFIX + key, set.get(key)!)) portRules.push({ access, port });
    }
  }
  return { handledFs, handledNet, paths: pathRules, ports: portRules, warnings };
}
