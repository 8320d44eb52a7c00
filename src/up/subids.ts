// As root, `hako up` never runs the container as host root: container ids 0..65535 are
// mapped onto a subordinate id range of its own, the entries of the system user `hako` in
// /etc/subuid and /etc/subgid. When the user or its ranges are missing they are created
// (useradd --system, usermod --add-subuids/--add-subgids) with a range that overlaps no
// range already in either file. Rootless, nothing here runs: the caller's own id is mapped.
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import type { Config, IdMapping } from '../oci/config.js';
import { HakoError } from '../errors.js';
import { parseSubIdFile, entryFor, type SubIdEntry } from '../host/subids.js';

/** The user whose subordinate ranges `up` maps as root, created when missing. */
export const SUBID_USER = 'hako';
/** Container ids 0..65535, as podman and newuidmap's defaults (SUB_UID_COUNT) give. */
export const SUBID_COUNT = 65536;

export type { SubIdEntry } from '../host/subids.js';

export interface SubIdRanges {
  user: string;
  uid: SubIdEntry;
  gid: SubIdEntry;
  /** What was created this time (for the status sentence); empty when it all existed. */
  created: string[];
}

export { parseSubIdFile, entryFor };

/**
 * The lowest start >= min where count ids overlap no entry of any file given (so the same
 * numbers serve as uids and gids), ending at most at max (login.defs SUB_UID_MIN/MAX).
 */
export function freeRange(taken: SubIdEntry[], count: number, min = 100000, max = 600100000): number {
  const sorted = taken.filter((e) => e.count > 0).sort((a, b) => a.start - b.start);
  let start = min;
  for (const e of sorted) {
    if (e.start + e.count <= start) continue;
    if (e.start >= start + count) break;
    start = e.start + e.count;
  }
  if (start + count - 1 > max)
    throw new HakoError(
      `no free range of ${count} subordinate ids between ${min} and ${max} in /etc/subuid and /etc/subgid: add one for user ${SUBID_USER} by hand`,
    );
  return start;
}

/** Whether start..start+count-1 meets any entry. */
export function overlaps(entries: SubIdEntry[], start: number, count: number): boolean {
  return entries.some((e) => e.count > 0 && e.start < start + count && start < e.start + e.count);
}

/** SUB_UID_MIN/SUB_UID_MAX (or the gid pair) from login.defs text, with shadow's defaults. */
export function loginDefsLimits(text: string, kind: 'UID' | 'GID'): { min: number; max: number } {
  const get = (key: string, fallback: number) => {
    const m = new RegExp(`^\\s*${key}\\s+(\\d+)\\s*$`, 'm').exec(text);
    return m ? Number(m[1]) : fallback;
  };
  return { min: get(`SUB_${kind}_MIN`, 100000), max: get(`SUB_${kind}_MAX`, 600100000) };
}

/** Maps for container ids 0..n-1 onto the ranges (n = min(65536, each range's size)). */
export function rangeMappings(r: Pick<SubIdRanges, 'uid' | 'gid'>): { uidMappings: IdMapping[]; gidMappings: IdMapping[] } {
  return {
    uidMappings: [{ containerID: 0, hostID: r.uid.start, size: Math.min(SUBID_COUNT, r.uid.count) }],
    gidMappings: [{ containerID: 0, hostID: r.gid.start, size: Math.min(SUBID_COUNT, r.gid.count) }],
  };
}

/** The host id a container id maps to, or undefined when it is not mapped. */
export function hostIdOf(maps: IdMapping[], containerId: number): number | undefined {
  const m = maps.find((x) => containerId >= x.containerID && containerId < x.containerID + x.size);
  return m ? m.hostID + (containerId - m.containerID) : undefined;
}

function readText(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw new HakoError(`${file} cannot be read: ${(e as Error).message}`);
  }
}

function run(tool: string, args: string[]): void {
  const r = spawnSync(tool, args, { encoding: 'utf8' });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT')
    throw new HakoError(
      `${tool} is not installed (Debian package passwd): it is needed to create the subordinate id range of user ${SUBID_USER}`,
    );
  if (r.status !== 0)
    throw new HakoError(`${tool} ${args.join(' ')} failed: ${(r.stderr || r.error?.message || `exit status ${r.status}`).trim()}`);
}

function uidOf(user: string): number | undefined {
  const r = spawnSync('getent', ['passwd', user], { encoding: 'utf8' });
  const uid = r.status === 0 ? r.stdout.split(':')[2] : undefined;
  return uid !== undefined && /^\d+$/.test(uid) ? Number(uid) : undefined;
}

export interface EnsureOptions {
  /** Whose ranges to map; only the default user is ever created. */
  user?: string;
  subuid?: string;
  subgid?: string;
  loginDefs?: string;
  /** For tests: runs useradd/usermod (default: the real tools) and looks a user's uid up (getent). */
  run?: (tool: string, args: string[]) => void;
  uidOf?: (user: string) => number | undefined;
}

/**
 * The ranges `up` maps as root: the user's first entries in /etc/subuid and /etc/subgid.
 * For the default user, whatever is missing is created: the system user (no login, no
 * home) and a range of 65536 ids free in both files, the same numbers for uids and gids.
 */
export function ensureSubIds(o: EnsureOptions = {}): SubIdRanges {
  const user = o.user ?? SUBID_USER;
  const subuid = o.subuid ?? '/etc/subuid';
  const subgid = o.subgid ?? '/etc/subgid';
  const created: string[] = [];
  const exec = o.run ?? run;
  const lookUid = o.uidOf ?? uidOf;
  const look = () => {
    const uid = lookUid(user);
    return { uid, u: entryFor(parseSubIdFile(readText(subuid)), user, uid), g: entryFor(parseSubIdFile(readText(subgid)), user, uid) };
  };
  let found = look();
  if (found.u && found.g) return { user, uid: found.u, gid: found.g, created };
  if (user !== SUBID_USER)
    throw new HakoError(
      `--subids ${user}: user ${user} has no entry in ${found.u ? subgid : subuid}: add one (usermod --add-subuids/--add-subgids), or leave --subids out to use user ${SUBID_USER}'s, which hako creates`,
    );
  if (found.uid === undefined) {
    exec('useradd', [
      '--system',
      '--no-create-home',
      '--home-dir',
      '/nonexistent',
      '--shell',
      '/usr/sbin/nologin',
      '--comment',
      'hako container ids',
      user,
    ]);
    created.push(`system user ${user}`);
  }
  if (!found.u || !found.g) {
    const defs = readText(o.loginDefs ?? '/etc/login.defs');
    const lu = loginDefsLimits(defs, 'UID');
    const lg = loginDefsLimits(defs, 'GID');
    const uids = parseSubIdFile(readText(subuid));
    const gids = parseSubIdFile(readText(subgid));
    // The same numbers for uids and gids: the existing half's, when it is free in the other file.
    const have = found.u ?? found.g;
    const other = found.u ? gids : uids;
    const start =
      have && have.count >= SUBID_COUNT && !overlaps(other, have.start, SUBID_COUNT)
        ? have.start
        : freeRange([...uids, ...gids], SUBID_COUNT, Math.max(lu.min, lg.min), Math.min(lu.max, lg.max));
    const span = `${start}-${start + SUBID_COUNT - 1}`;
    const args: string[] = [];
    if (!found.u) args.push('--add-subuids', span);
    if (!found.g) args.push('--add-subgids', span);
    exec('usermod', [...args, user]);
    if (!found.u) created.push(`subordinate uids ${span} (${subuid})`);
    if (!found.g) created.push(`subordinate gids ${span} (${subgid})`);
  }
  // Read back what the files now say (another `up` may have raced us: its entry, if first, wins).
  found = look();
  if (!found.u || !found.g) throw new HakoError(`user ${user} still has no entry in ${found.u ? subgid : subuid} after usermod`);
  return { user, uid: found.u, gid: found.g, created };
}

/**
 * The config `up` runs as root: the bundle's, with container ids mapped onto the ranges.
 * A bundle's own mappings are kept unless they reach host id 0: up never runs as host root.
 */
export function withSubIdMappings(
  cfg: Config,
  ranges: Pick<SubIdRanges, 'uid' | 'gid'> | (() => Pick<SubIdRanges, 'uid' | 'gid'>),
): Config {
  const linux = cfg.linux ?? {};
  if (linux.uidMappings?.length || linux.gidMappings?.length) {
    for (const key of ['uidMappings', 'gidMappings'] as const) {
      const maps = linux[key] ?? [];
      if (!maps.length)
        throw new HakoError(
          `config.json: linux.${key}: missing while linux.${key === 'uidMappings' ? 'gidMappings' : 'uidMappings'} is set: give both, or neither (hako up then maps user ${SUBID_USER}'s subordinate range)`,
        );
      maps.forEach((m, i) => {
        if (m.hostID === 0 && m.size > 0)
          throw new HakoError(
            `config.json: linux.${key}[${i}]: maps host ${key === 'uidMappings' ? 'uid' : 'gid'} 0 into the container: hako up as root never runs a container as host root`,
          );
      });
    }
    return cfg;
  }
  const r = typeof ranges === 'function' ? ranges() : ranges;
  return { ...cfg, linux: { ...linux, ...rangeMappings(r) } };
}
