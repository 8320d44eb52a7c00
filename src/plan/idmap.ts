// Decides how the user namespace's id maps get written: directly (root, or
// rootless with only the caller's own id) or through newuidmap/newgidmap with
// the ranges of /etc/subuid and /etc/subgid.
import fs from 'node:fs';
import type { Config, IdMapping } from '../oci/config.js';
import { HakoError } from '../errors.js';
import type { HostFacts } from '../host/facts.js';
import { rangesOf, type SubIdRange } from '../host/subids.js';

export interface IdMapPlan {
  uidMap: IdMapping[];
  gidMap: IdMapping[];
  /** Write "deny" to /proc/PID/setgroups first (unprivileged single-id maps). */
  denySetgroups: boolean;
  /** Use newuidmap/newgidmap (rootless with ranges). */
  useHelpers: boolean;
}

export type { SubIdRange } from '../host/subids.js';
/** A user's ranges in /etc/subuid-style text (the one parser: src/host/subids.ts). */
export { rangesOf as parseSubIds } from '../host/subids.js';

function covered(m: IdMapping, own: number, ranges: SubIdRange[]): boolean {
  if (m.size === 1 && m.hostID === own) return true;
  return ranges.some((r) => m.hostID >= r.start && m.hostID + m.size <= r.start + r.count);
}

export function planIdMaps(cfg: Config, host: HostFacts, rootless: boolean, readFile = fs.readFileSync): IdMapPlan | null {
  const userNs = cfg.linux?.namespaces?.find((n) => n.type === 'user');
  if (!userNs || userNs.path) return null;
  const uidMap = cfg.linux?.uidMappings?.length ? cfg.linux.uidMappings : [{ containerID: 0, hostID: host.uid, size: 1 }];
  const gidMap = cfg.linux?.gidMappings?.length ? cfg.linux.gidMappings : [{ containerID: 0, hostID: host.gid, size: 1 }];
  if (!rootless) return { uidMap, gidMap, denySetgroups: false, useHelpers: false };
  const single = (maps: IdMapping[], own: number) => maps.length === 1 && maps[0].size === 1 && maps[0].hostID === own;
  if (single(uidMap, host.uid) && single(gidMap, host.gid)) return { uidMap, gidMap, denySetgroups: true, useHelpers: false };
  for (const [maps, file, own, key] of [
    [uidMap, '/etc/subuid', host.uid, 'uidMappings'],
    [gidMap, '/etc/subgid', host.gid, 'gidMappings'],
  ] as const) {
    let text = '';
    try {
      text = readFile(file, 'utf8') as string;
    } catch {
      throw new HakoError(`config.json: linux.${key}: ${file} cannot be read, so no range can be mapped for user ${host.user}`);
    }
    const ranges = rangesOf(text, host.user, own);
    maps.forEach((m, i) => {
      if (!covered(m, own, ranges))
        throw new HakoError(
          `config.json: linux.${key}[${i}]: host ids ${m.hostID}-${m.hostID + m.size - 1} are not in user ${host.user}'s ranges in ${file}`,
        );
    });
  }
  return { uidMap, gidMap, denySetgroups: false, useHelpers: true };
}

/** The id inside the container that a host id maps to, if any. */
export function mapsInside(maps: IdMapping[], containerId: number): boolean {
  return maps.some((m) => containerId >= m.containerID && containerId < m.containerID + m.size);
}
