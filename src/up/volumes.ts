// The bundle's writable bind mounts (its data volumes) must exist and be writable by the
// container's user before `up` starts it: a clear sentence here beats a failed mount step
// or a server that exits at once and is restarted in a loop.
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../oci/config.js';
import { HakoError } from '../errors.js';
import { hostIdOf } from './subids.js';

export interface Volume {
  source: string;
  destination: string;
}

/** Bind mounts that are not read-only. */
export function dataVolumes(cfg: Config, bundle: string): Volume[] {
  return (cfg.mounts ?? [])
    .filter((m) => m.type === 'bind' || m.options?.some((o) => o === 'bind' || o === 'rbind'))
    .filter((m) => !m.options?.includes('ro') && m.source)
    .map((m) => ({ source: path.resolve(bundle, m.source!), destination: m.destination }));
}

/**
 * Whether uid/gid may write to a file with this owner and mode, by the mode bits alone:
 * the container holds no capabilities, so even a container root mapped to host root gets
 * no DAC override, and access(2) (which grants root everything) would say yes wrongly.
 */
export function writableByMode(st: { uid: number; gid: number; mode: number }, uid: number, gids: number[]): boolean {
  if (st.uid === uid) return (st.mode & 0o200) !== 0;
  if (gids.includes(st.gid)) return (st.mode & 0o020) !== 0;
  return (st.mode & 0o002) !== 0;
}

/**
 * The host uid and gids the container's process has: process.user through the config's id
 * maps; without maps, the runtime maps container root to the caller (rootless and root alike).
 */
export function hostUser(cfg: Config): { uid: number; gid: number; gids: number[] } {
  const user = cfg.process?.user ?? { uid: 0, gid: 0 };
  const uidMaps = cfg.linux?.uidMappings?.length ? cfg.linux.uidMappings : [{ containerID: 0, hostID: process.geteuid!(), size: 1 }];
  const gidMaps = cfg.linux?.gidMappings?.length ? cfg.linux.gidMappings : [{ containerID: 0, hostID: process.getegid!(), size: 1 }];
  const uid = hostIdOf(uidMaps, user.uid);
  if (uid === undefined) throw new HakoError(`config.json: process.user.uid: ${user.uid} is not mapped by the user namespace's uid map`);
  const gid = hostIdOf(gidMaps, user.gid);
  if (gid === undefined) throw new HakoError(`config.json: process.user.gid: ${user.gid} is not mapped by the user namespace's gid map`);
  const gids = [user.gid, ...(user.additionalGids ?? [])].map((g) => hostIdOf(gidMaps, g)).filter((g): g is number => g !== undefined);
  return { uid, gid, gids };
}

export function checkVolumes(cfg: Config, bundle: string): void {
  const { uid, gids } = hostUser(cfg);
  const caller = process.geteuid!() === uid;
  for (const v of dataVolumes(cfg, bundle)) {
    const what = `data volume ${v.source} (mounted at ${v.destination})`;
    const st = fs.statSync(v.source, { throwIfNoEntry: false });
    if (!st) throw new HakoError(`the ${what} does not exist: create it (mkdir -p ${v.source})`);
    let ok = writableByMode(st, uid, caller ? [process.getegid!(), ...process.getgroups!()] : gids);
    try {
      // Also catches a read-only filesystem, which the mode bits do not show. access(2)
      // answers for the caller: when the container's user is another id (root's
      // subordinate range), only its EROFS says anything about the container.
      fs.accessSync(v.source, fs.constants.W_OK);
    } catch (e) {
      if (caller || (e as NodeJS.ErrnoException).code === 'EROFS') ok = false;
    }
    if (!ok) throw new HakoError(`the ${what} is not writable by uid ${uid}, the container's user on the host`);
  }
}

/**
 * As root, with the container on a subordinate range: a data volume still owned by host
 * root (a fresh `mkdir`, the FHIR builder's `data`, or one written before up mapped a range)
 * is handed to the container's user. Everything in it owned by host root goes to the
 * range's root too, so an existing journal stays the server's. Volumes owned by anyone else
 * are left alone (checkVolumes then says whether the container can write them).
 *
 * Walked through file descriptors: every entry is opened with O_NOFOLLOW relative to its
 * parent's fd (through /proc/self/fd), so a symlink in the volume is never followed and
 * never chowned; files with more than one link are skipped (a hard link to a host file).
 */
export function adoptVolumes(cfg: Config, bundle: string, to: { uid: number; gid: number }, say: (sentence: string) => void): void {
  for (const v of dataVolumes(cfg, bundle)) {
    const st = fs.lstatSync(v.source, { throwIfNoEntry: false });
    if (!st || !st.isDirectory() || st.uid !== 0) continue;
    const fd = fs.openSync(v.source, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
    try {
      const n = adoptTree(fd, to);
      say(
        `data volume ${v.source} now belongs to uid ${to.uid} gid ${to.gid}, the container's user on the host${n ? ` (and ${n} entries in it that host root owned)` : ''}`,
      );
    } finally {
      fs.closeSync(fd);
    }
  }
}

function adoptOne(fd: number, to: { uid: number; gid: number }): fs.Stats {
  const st = fs.fstatSync(fd);
  if (st.uid === 0 || st.gid === 0) fs.fchownSync(fd, st.uid === 0 ? to.uid : -1, st.gid === 0 ? to.gid : -1);
  return st;
}

/** Chowns the directory at fd and, below it, what host root owns; returns how many entries below changed. */
function adoptTree(dirFd: number, to: { uid: number; gid: number }, depth = 0): number {
  adoptOne(dirFd, to);
  if (depth > 64) return 0;
  let changed = 0;
  const here = `/proc/self/fd/${dirFd}`;
  for (const name of fs.readdirSync(here)) {
    let fd: number;
    try {
      fd = fs.openSync(
        `${here}/${name}`,
        fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY,
      );
    } catch {
      continue; // a symlink (ELOOP), a socket (ENXIO), gone: left as it is
    }
    try {
      const st = fs.fstatSync(fd);
      if (st.uid !== 0 && st.gid !== 0 && !st.isDirectory()) continue;
      if (st.isDirectory()) changed += adoptTree(fd, to, depth + 1) + (st.uid === 0 || st.gid === 0 ? 1 : 0);
      else if ((st.isFile() || st.isFIFO()) && st.nlink === 1) {
        adoptOne(fd, to);
        changed++;
      }
    } finally {
      fs.closeSync(fd);
    }
  }
  return changed;
}
