// The bundle's writable bind mounts (its data volumes) must exist and be writable by the
// container's user before `up` starts it: a clear sentence here beats a failed mount step
// or a server that exits at once and is restarted in a loop.
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../spec/config.js';
import { HakoError } from '../errors.js';

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

export function checkVolumes(cfg: Config, bundle: string): void {
  const uid = process.geteuid!();
  const gids = [process.getegid!(), ...process.getgroups!()];
  for (const v of dataVolumes(cfg, bundle)) {
    const what = `data volume ${v.source} (mounted at ${v.destination})`;
    const st = fs.statSync(v.source, { throwIfNoEntry: false });
    if (!st) throw new HakoError(`the ${what} does not exist: create it (mkdir -p ${v.source})`);
    let ok = writableByMode(st, uid, gids);
    try {
      // Also catches a read-only filesystem, which the mode bits do not show.
      fs.accessSync(v.source, fs.constants.W_OK);
    } catch {
      ok = false;
    }
    if (!ok) throw new HakoError(`the ${what} is not writable by uid ${uid}, the container's user on the host`);
  }
}
