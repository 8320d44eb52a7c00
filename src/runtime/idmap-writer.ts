// Writes a user namespace's id maps for the child, between clone and its
// go-ahead: directly, or through newuidmap/newgidmap for subordinate ranges.
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import type { IdMapping } from '../oci/config.js';
import type { IdMapPlan } from '../plan/idmap.js';
import { HakoError } from '../errors.js';

const lines = (maps: IdMapping[]) => maps.map((m) => `${m.containerID} ${m.hostID} ${m.size}`).join('\n') + '\n';

function helper(tool: string, pid: number, maps: IdMapping[]): void {
  const args = [String(pid), ...maps.flatMap((m) => [String(m.containerID), String(m.hostID), String(m.size)])];
  const r = spawnSync(tool, args, { encoding: 'utf8' });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT')
    throw new HakoError(`${tool} is not installed (Debian package uidmap): it is needed to map a range of ids rootless`);
  if (r.status !== 0)
    throw new HakoError(`${tool} ${args.join(' ')} failed: ${(r.stderr || r.error?.message || `exit status ${r.status}`).trim()}`);
}

export function writeIdMaps(pid: number, plan: IdMapPlan): void {
  if (plan.useHelpers) {
    helper('newuidmap', pid, plan.uidMap);
    helper('newgidmap', pid, plan.gidMap);
    return;
  }
  try {
    if (plan.denySetgroups) fs.writeFileSync(`/proc/${pid}/setgroups`, 'deny');
    fs.writeFileSync(`/proc/${pid}/uid_map`, lines(plan.uidMap));
    fs.writeFileSync(`/proc/${pid}/gid_map`, lines(plan.gidMap));
  } catch (e) {
    throw new HakoError(`writing the user namespace id maps failed: ${(e as Error).message}`);
  }
}
