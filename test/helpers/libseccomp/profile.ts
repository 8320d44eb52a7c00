// Turns a containers/common seccomp profile (archMap, includes/excludes by arch and
// capability) into the OCI linux.seccomp object an engine would write into config.json.
import { readFileSync } from 'node:fs';
import type { OciSeccomp, OciSeccompSyscall } from '../../../src/seccomp/index.js';

export const CONTAINERS_PROFILE = '/usr/share/containers/seccomp.json';

/** containers/common's default capability set. */
export const DEFAULT_CAPS = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_NET_BIND_SERVICE',
  'CAP_SETFCAP',
  'CAP_SETGID',
  'CAP_SETPCAP',
  'CAP_SETUID',
  'CAP_SYS_CHROOT',
];

interface Filter {
  arches?: string[];
  caps?: string[];
}
interface ProfileSyscall extends OciSeccompSyscall {
  includes?: Filter;
  excludes?: Filter;
}
interface Profile {
  defaultAction: string;
  defaultErrnoRet?: number;
  archMap?: Array<{ architecture: string; subArchitectures?: string[] }>;
  syscalls: ProfileSyscall[];
}

/** `goArch` is the engine's name (amd64, arm64); `caps` the container's capabilities. */
export function ociFromProfile(path: string, goArch: string, caps: string[], seccompArch: string): OciSeccomp {
  const p = JSON.parse(readFileSync(path, 'utf8')) as Profile;
  const entry = p.archMap?.find((a) => a.architecture === seccompArch);
  const applies = (s: ProfileSyscall): boolean => {
    const inc = s.includes ?? {};
    const exc = s.excludes ?? {};
    if (inc.arches?.length && !inc.arches.includes(goArch)) return false;
    if (inc.caps?.length && !inc.caps.every((c) => caps.includes(c))) return false;
    if (exc.arches?.includes(goArch)) return false;
    if (exc.caps?.some((c) => caps.includes(c))) return false;
    return true;
  };
  return {
    defaultAction: p.defaultAction,
    defaultErrnoRet: p.defaultErrnoRet,
    architectures: entry ? [entry.architecture, ...(entry.subArchitectures ?? [])] : [],
    syscalls: p.syscalls.filter(applies).map((s) => ({
      names: s.names,
      action: s.action,
      ...(s.errnoRet !== undefined ? { errnoRet: s.errnoRet } : {}),
      ...(s.args?.length ? { args: s.args } : {}),
    })),
  };
}

/** Every name the profile mentions. */
export function profileNames(path: string): string[] {
  const p = JSON.parse(readFileSync(path, 'utf8')) as Profile;
  return [...new Set(p.syscalls.flatMap((s) => s.names))];
}
