// The process: hostname, sysctls, rlimits, oom score, user and groups, the
// five capability sets, no_new_privs, the program to run.
import path from 'node:path';
import type { Process } from '../oci/config.js';
import { HakoError } from '../errors.js';
import type { Step } from './ops.js';
import { capSets, type CapSets } from './capabilities.js';
import { rlimitResource } from './rlimits.js';

/** runc's PATH when the process sets none. */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Where execve may find args[0]: itself when it has a slash, else every PATH entry. */
export function execCandidates(proc: Process): string[] {
  const arg0 = proc.args![0];
  if (arg0.includes('/')) return [path.posix.resolve(proc.cwd, arg0)];
  const pathVar = proc.env?.find((e) => e.startsWith('PATH='))?.slice(5) ?? DEFAULT_PATH;
  return pathVar
    .split(':')
    .filter(Boolean)
    .map((dir) => path.posix.join(path.posix.resolve(proc.cwd, dir), arg0));
}

export function limitSteps(proc: Process, where: string): Step[] {
  const steps: Step[] = [];
  proc.rlimits?.forEach((r, i) => {
    if (r.soft > r.hard) throw new HakoError(`${where}.rlimits[${i}]: soft limit ${r.soft} is above the hard limit ${r.hard}`);
    steps.push({ op: 'RLIMIT', args: [rlimitResource(r.type, `${where}.rlimits[${i}]`), r.soft, r.hard], what: `set ${r.type}` });
  });
  if (proc.oomScoreAdj !== undefined)
    steps.push({ op: 'OOM_SCORE_ADJ', args: [String(proc.oomScoreAdj)], what: `set oom_score_adj to ${proc.oomScoreAdj}` });
  return steps;
}

export interface IdentityOptions {
  /** setgroups(2) is denied in this user namespace. */
  setgroupsDenied: boolean;
  lastCap: number;
  where: string;
}

/** Drops to the process's user and capability sets. Order matters: the
 *  bounding set is trimmed while we still hold CAP_SETPCAP, and KEEPCAPS keeps
 *  the permitted set across setresuid so capset can pick from it. */
export function identitySteps(proc: Process, o: IdentityOptions): { steps: Step[]; caps: CapSets } {
  const caps = capSets(proc.capabilities as Record<string, string[]> | undefined, `${o.where}.capabilities`, o.lastCap);
  const { uid, gid } = proc.user;
  const groups = proc.user.additionalGids ?? [];
  if (o.setgroupsDenied && groups.length)
    throw new HakoError(`${o.where}.user.additionalGids: cannot be set when setgroups is denied (a rootless single-id mapping)`);
  const steps: Step[] = [
    { op: 'CAPBSET_KEEP', args: [caps.bounding, o.lastCap], what: 'trim the capability bounding set' },
    { op: 'KEEPCAPS', args: [1], what: 'keep capabilities across the user change' },
  ];
  if (!o.setgroupsDenied) {
    const buf = Buffer.alloc(groups.length * 4);
    groups.forEach((g, i) => buf.writeUInt32LE(g, i * 4));
    steps.push({ op: 'SETGROUPS', args: [buf], what: `set the supplementary groups to [${groups.join(', ')}]` });
  }
  steps.push(
    { op: 'SETRESGID', args: [gid], what: `switch to gid ${gid}` },
    { op: 'SETRESUID', args: [uid], what: `switch to uid ${uid}` },
    { op: 'KEEPCAPS', args: [0], what: 'stop keeping capabilities' },
    {
      op: 'CAPSET',
      args: [caps.effective, caps.permitted, caps.inheritable],
      what: 'set the effective, permitted and inheritable capabilities',
    },
  );
  // The kernel only lets a capability be ambient when it is permitted and
  // inheritable; runc skips the others, and so do we.
  const ambient = caps.ambient & caps.permitted & caps.inheritable;
  if (ambient) steps.push({ op: 'AMBIENT_RAISE', args: [ambient], what: 'raise the ambient capabilities' });
  if (proc.user.umask !== undefined)
    steps.push({ op: 'UMASK', args: [proc.user.umask], what: `set the umask to ${proc.user.umask.toString(8)}` });
  return { steps, caps };
}

export function execSteps(proc: Process): Step[] {
  return [
    { op: 'CHDIR', args: [proc.cwd], what: `change to the working directory ${proc.cwd}` },
    { op: 'FIND_EXEC', args: execCandidates(proc), what: `find the executable "${proc.args![0]}"` },
  ];
}

export function finalExec(proc: Process): Step {
  const env = proc.env ?? [];
  return { op: 'EXEC', args: [proc.args!.length, ...proc.args!, ...env], what: `execute ${proc.args![0]}` };
}
