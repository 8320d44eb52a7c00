// Capability names -> bits, and the five sets as 64-bit masks.
import { HakoError } from '../errors.js';

export const CAPABILITIES = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_DAC_READ_SEARCH',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETPCAP',
  'CAP_LINUX_IMMUTABLE',
  'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST',
  'CAP_NET_ADMIN',
  'CAP_NET_RAW',
  'CAP_IPC_LOCK',
  'CAP_IPC_OWNER',
  'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO',
  'CAP_SYS_CHROOT',
  'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN',
  'CAP_SYS_BOOT',
  'CAP_SYS_NICE',
  'CAP_SYS_RESOURCE',
  'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG',
  'CAP_MKNOD',
  'CAP_LEASE',
  'CAP_AUDIT_WRITE',
  'CAP_AUDIT_CONTROL',
  'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE',
  'CAP_MAC_ADMIN',
  'CAP_SYSLOG',
  'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND',
  'CAP_AUDIT_READ',
  'CAP_PERFMON',
  'CAP_BPF',
  'CAP_CHECKPOINT_RESTORE',
] as const;

export interface CapSets {
  bounding: bigint;
  effective: bigint;
  permitted: bigint;
  inheritable: bigint;
  ambient: bigint;
}

/** Turns a list of names into a mask. Names the host kernel lacks are skipped, as runc does. */
export function capMask(names: string[] | undefined, where: string, lastCap: number): bigint {
  let mask = 0n;
  (names ?? []).forEach((name, i) => {
    const bit = CAPABILITIES.indexOf(name.toUpperCase() as (typeof CAPABILITIES)[number]);
    if (bit < 0) throw new HakoError(`config.json: ${where}[${i}]: unknown capability "${name}"`);
    if (bit <= lastCap) mask |= 1n << BigInt(bit);
  });
  return mask;
}

export function capSets(caps: Record<string, string[] | undefined> | undefined, where: string, lastCap: number): CapSets {
  const m = (k: string) => capMask(caps?.[k], `${where}.${k}`, lastCap);
  return {
    bounding: m('bounding'),
    effective: m('effective'),
    permitted: m('permitted'),
    inheritable: m('inheritable'),
    ambient: m('ambient'),
  };
}

export function capNames(mask: bigint): string[] {
  return CAPABILITIES.filter((_, i) => mask & (1n << BigInt(i)));
}
