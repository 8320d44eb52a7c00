// Which namespaces the child creates (clone flags), which it joins (setns by
// path) and which the parent thread joins around clone (pid, time: they apply
// to children only).
import type { Config, NamespaceType } from '../oci/config.js';
import { HakoError } from '../errors.js';
import type { ParentNamespaceType, Step } from './ops.js';

export const CLONE = {
  NEWNS: 0x00020000,
  NEWCGROUP: 0x02000000,
  NEWUTS: 0x04000000,
  NEWIPC: 0x08000000,
  NEWUSER: 0x10000000,
  NEWPID: 0x20000000,
  NEWNET: 0x40000000,
  NEWTIME: 0x00000080,
} as const;

const FLAG: Record<NamespaceType, number> = {
  mount: CLONE.NEWNS,
  cgroup: CLONE.NEWCGROUP,
  uts: CLONE.NEWUTS,
  ipc: CLONE.NEWIPC,
  user: CLONE.NEWUSER,
  pid: CLONE.NEWPID,
  network: CLONE.NEWNET,
  time: CLONE.NEWTIME,
};

export interface NamespacePlan {
  cloneFlags: number;
  parentNamespaces: string[];
  /** parentNamespaces' types, index for index. */
  parentNamespaceTypes: ParentNamespaceType[];
  /** Steps right after the parent's go-ahead: joins and late unshares. */
  steps: Step[];
  has: (t: NamespaceType) => boolean;
  isNew: (t: NamespaceType) => boolean;
}

function timeOffsets(cfg: Config): string {
  const lines: string[] = [];
  for (const [clock, off] of Object.entries(cfg.linux?.timeOffsets ?? {})) {
    if (clock !== 'monotonic' && clock !== 'boottime')
      throw new HakoError(`config.json: linux.timeOffsets.${clock}: only "monotonic" and "boottime" can be offset`);
    lines.push(`${clock} ${off.secs ?? 0} ${off.nanosecs ?? 0}`);
  }
  return lines.join('\n');
}

export function planNamespaces(cfg: Config): NamespacePlan {
  const list = cfg.linux?.namespaces ?? [];
  const byType = new Map(list.map((n) => [n.type, n]));
  const isNew = (t: NamespaceType) => byType.has(t) && !byType.get(t)!.path;
  const joined = (t: NamespaceType) => byType.get(t)?.path;
  let cloneFlags = 0;
  const parentNamespaces: string[] = [];
  const parentNamespaceTypes: ParentNamespaceType[] = [];
  const steps: Step[] = [];
  // The cgroup namespace is unshared after the parent put the child in its
  // cgroup, so that cgroup becomes the namespace's root; time, because clone
  // cannot create it.
  for (const t of ['user', 'mount', 'uts', 'ipc', 'pid', 'network'] as NamespaceType[]) if (isNew(t)) cloneFlags |= FLAG[t];
  const userPath = joined('user');
  if (userPath) steps.push({ op: 'SETNS', args: [userPath, CLONE.NEWUSER], what: `join user namespace ${userPath}` });
  for (const t of ['pid', 'time'] as const) {
    const p = joined(t);
    if (!p) continue;
    if (isNew('user')) {
      parentNamespaces.push(p);
      parentNamespaceTypes.push(t);
    } else steps.push({ op: 'SETNS', args: [p, FLAG[t]], what: `join ${t} namespace ${p}` });
  }
  // Mount last: joining it changes what later /proc paths resolve to.
  for (const t of ['ipc', 'uts', 'network', 'cgroup', 'mount'] as NamespaceType[]) {
    const p = joined(t);
    if (p) steps.push({ op: 'SETNS', args: [p, FLAG[t]], what: `join ${t} namespace ${p}` });
  }
  if (isNew('cgroup')) steps.push({ op: 'UNSHARE', args: [CLONE.NEWCGROUP], what: 'create the cgroup namespace' });
  if (isNew('time')) {
    steps.push({ op: 'UNSHARE', args: [CLONE.NEWTIME], what: 'create the time namespace' });
    const offsets = timeOffsets(cfg);
    if (offsets) steps.push({ op: 'WRITE_FILE', args: ['/proc/self/timens_offsets', offsets], what: 'set the time namespace offsets' });
  } else if (cfg.linux?.timeOffsets && Object.keys(cfg.linux.timeOffsets).length) {
    throw new HakoError('config.json: linux.timeOffsets: needs a new time namespace in linux.namespaces');
  }
  // A pid namespace joined from inside a joined user namespace only applies to
  // children: fork once more.
  const needsFork = (!isNew('user') && !!joined('pid')) || (!!userPath && isNew('pid'));
  if (userPath && isNew('pid')) steps.push({ op: 'UNSHARE', args: [CLONE.NEWPID], what: 'create the pid namespace' });
  if (needsFork) steps.push({ op: 'FORK', args: [], what: 'fork into the pid namespace' });
  if (userPath) {
    // Created after joining the user namespace, so they belong to it.
    let late = 0;
    for (const t of ['mount', 'uts', 'ipc', 'network'] as NamespaceType[]) if (isNew(t)) late |= FLAG[t];
    cloneFlags &= ~(late | CLONE.NEWPID);
    if (late) steps.splice(1, 0, { op: 'UNSHARE', args: [late], what: 'create the namespaces inside the joined user namespace' });
  }
  return { cloneFlags, parentNamespaces, parentNamespaceTypes, steps, has: (t) => byType.has(t), isNew };
}
