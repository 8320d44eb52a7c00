// The supervisor's two-phase decision for a call the kernel handed it (SCMP_ACT_NOTIFY): from
// the call's number and the phase only — never from the caller's memory, which it could change
// between the check and the use. A start-up-only call (a NOTIFY rule of the profile) runs until
// the server is ready; anything else is refused: EPERM for a call hako knows, ENOSYS for one
// newer than hako's table (so a caller falls back as on an older kernel). Never a kill: libuv,
// refused io_uring_setup, goes on with its thread pool.
import type { OciSeccomp, SeccompArch } from '../seccomp/types.js';
import { syscallName, syscallNumber } from './names.js';
import type { Phase } from './recording.js';

export const EPERM = 1;
export const ENOSYS = 38;

export interface PhasePolicy {
  architecture: SeccompArch;
  /** Numbers of the calls allowed only during start-up. */
  startup: ReadonlySet<number>;
}

/** Whether a profile hands calls to hako's supervisor (some action is SCMP_ACT_NOTIFY). */
export function notifies(seccomp: OciSeccomp | undefined): boolean {
  return !!seccomp && (seccomp.defaultAction === 'SCMP_ACT_NOTIFY' || !!seccomp.syscalls?.some((s) => s.action === 'SCMP_ACT_NOTIFY'));
}

export function phasePolicy(seccomp: OciSeccomp, architecture: SeccompArch): PhasePolicy {
  const startup = new Set<number>();
  for (const rule of seccomp.syscalls ?? []) {
    // A NOTIFY rule with argument conditions is still decided by number only: the kernel
    // already matched the arguments before handing the call over.
    if (rule.action !== 'SCMP_ACT_NOTIFY') continue;
    for (const name of rule.names) {
      const nr = syscallNumber(architecture, name);
      if (nr !== undefined) startup.add(nr);
    }
  }
  return { architecture, startup };
}

export type Decision = { allow: true } | { allow: false; errno: number };

export function decide(policy: PhasePolicy, nr: number, phase: Phase): Decision {
  if (phase === 'startup' && policy.startup.has(nr)) return { allow: true };
  return { allow: false, errno: syscallName(policy.architecture, nr) === undefined ? ENOSYS : EPERM };
}
