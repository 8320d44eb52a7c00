// OCI action names -> the 32-bit value a seccomp filter returns (SECCOMP_RET_*).
import { SeccompError } from './errors.js';

export const RET_KILL_PROCESS = 0x80000000;
export const RET_KILL_THREAD = 0x00000000;
export const RET_TRAP = 0x00030000;
export const RET_ERRNO = 0x00050000;
export const RET_USER_NOTIF = 0x7fc00000;
export const RET_TRACE = 0x7ff00000;
export const RET_LOG = 0x7ffc0000;
export const RET_ALLOW = 0x7fff0000;

const EPERM = 1;
const MAX_ERRNO = 4095;
const MAX_TRACE = 0xffff;

const BASE: Readonly<Record<string, number>> = {
  SCMP_ACT_KILL: RET_KILL_THREAD, // libseccomp's SCMP_ACT_KILL is kill-thread
  SCMP_ACT_KILL_THREAD: RET_KILL_THREAD,
  SCMP_ACT_KILL_PROCESS: RET_KILL_PROCESS,
  SCMP_ACT_TRAP: RET_TRAP,
  SCMP_ACT_ERRNO: RET_ERRNO,
  SCMP_ACT_TRACE: RET_TRACE,
  SCMP_ACT_LOG: RET_LOG,
  SCMP_ACT_ALLOW: RET_ALLOW,
  SCMP_ACT_NOTIFY: RET_USER_NOTIF,
};

/**
 * The filter return value for an action. `ret` is errnoRet (ERRNO's errno, TRACE's message
 * number); like runc, it defaults to EPERM and is refused on other actions.
 */
export function actionValue(action: unknown, ret: unknown, path: string, retPath: string): number {
  const base = typeof action === 'string' ? BASE[action] : undefined;
  if (base === undefined) throw new SeccompError(`${path}: unknown action ${JSON.stringify(action)}`);
  if (base !== RET_ERRNO && base !== RET_TRACE) {
    if (ret !== undefined) throw new SeccompError(`${retPath}: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take a return value, not ${action}`);
    return base;
  }
  const max = base === RET_ERRNO ? MAX_ERRNO : MAX_TRACE;
  const value = ret ?? EPERM;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    throw new SeccompError(`${retPath}: ${JSON.stringify(value)} is out of range (0..${max})`);
  }
  return (base | value) >>> 0;
}
