// Landlock and seccomp as plan steps: Landlock first (it needs syscalls the
// seccomp filter may deny), seccomp last before exec; AppArmor and SELinux labels.
import type { Process } from '../oci/config.js';
import type { HostFacts } from '../host/facts.js';
import { HakoError } from '../errors.js';
import type { Step } from './ops.js';

export interface CompiledSeccomp {
  program: Uint8Array;
  flags: number;
  listener: boolean;
}

export interface LandlockRules {
  handledFs: bigint;
  handledNet: bigint;
  paths: Array<{ access: bigint; path: string }>;
  ports: Array<{ access: bigint; port: number }>;
}

export function securitySteps(landlock: LandlockRules | null, seccomp: CompiledSeccomp | null): Step[] {
  const steps: Step[] = [];
  // Handled masks of 0 mean the kernel has no Landlock: nothing to enforce.
  if (landlock && (landlock.handledFs || landlock.handledNet)) {
    steps.push({ op: 'LANDLOCK_CREATE', args: [landlock.handledFs, landlock.handledNet], what: 'create the Landlock ruleset' });
    for (const r of landlock.paths)
      steps.push({ op: 'LANDLOCK_PATH', args: [r.access, r.path], what: `allow Landlock access beneath ${r.path}` });
    for (const r of landlock.ports)
      steps.push({ op: 'LANDLOCK_PORT', args: [r.access, r.port], what: `allow Landlock TCP port ${r.port}` });
    steps.push({ op: 'LANDLOCK_ENFORCE', args: [], what: 'enforce the Landlock ruleset' });
  }
  if (seccomp)
    steps.push({
      op: 'SECCOMP',
      args: [seccomp.flags, seccomp.program, seccomp.listener ? 1 : 0],
      what: `load the seccomp filter (${seccomp.program.length / 8} instructions)`,
    });
  return steps;
}

/** AppArmor profile and SELinux label for the process: written to /proc/self/attr before the
 *  seccomp filter, effective at execve (runc's order). Asked for where the LSM is not enabled,
 *  they are refused, as runc refuses them: silently running unconfined is worse. */
export function lsmSteps(proc: Process, where: string, lsm: HostFacts['lsm']): Step[] {
  const steps: Step[] = [];
  if (proc.apparmorProfile) {
    if (!lsm?.apparmor)
      throw new HakoError(`${where}.apparmorProfile: AppArmor is not enabled on this host: remove the profile or enable AppArmor`);
    steps.push({
      op: 'WRITE_FILE',
      args: ['/proc/self/attr/apparmor/exec', `exec ${proc.apparmorProfile}`],
      what: `set the AppArmor profile ${proc.apparmorProfile}`,
    });
  }
  if (proc.selinuxLabel) {
    if (!lsm?.selinux)
      throw new HakoError(`${where}.selinuxLabel: SELinux is not enabled on this host: remove the label or enable SELinux`);
    steps.push({ op: 'WRITE_FILE', args: ['/proc/self/attr/exec', proc.selinuxLabel], what: `set the SELinux label ${proc.selinuxLabel}` });
  }
  return steps;
}
