// A recording → a two-phase OCI seccomp profile:
//   - the serving set is allowed in the kernel (no notification on the hot path);
//   - start-up-only calls are SCMP_ACT_NOTIFY rules: hako's supervisor lets them through until
//     the server is ready and refuses them after;
//   - everything else is the default action, SCMP_ACT_NOTIFY too, so the supervisor refuses it
//     (EPERM, ENOSYS for a call newer than hako's table) and reports it — never KILL;
//   - argument rules where they matter: clone without namespace flags, clone3 answered ENOSYS
//     in the kernel (glibc then falls back to clone, whose flags a filter can see), socket
//     limited to the families learned.
import type { OciSeccomp, OciSeccompSyscall } from '../seccomp/types.js';
import { CLONE_NAMESPACE_FLAGS, CLONE_THREAD, onlyThreadsCloned, socketDomains } from './arguments.js';
import type { Recording } from './recording.js';

/** Allowed whatever was recorded: the ends of every process (rarely reached while learning),
 *  calls that read the time or the caller's own ids or yield (harmless, and made on rare
 *  paths: a learned run may miss them while serving), and sendmsg, which hako-init uses to
 *  hand the listener over under the filter itself. */
export const ALWAYS_ALLOWED = [
  'exit',
  'exit_group',
  'rt_sigreturn',
  'restart_syscall',
  'getpid',
  'gettid',
  'clock_gettime',
  'gettimeofday',
  'sched_yield',
  'nanosleep',
  'clock_nanosleep',
  'sendmsg',
];

/** Calls with rules of their own (below), never in a plain list. */
const RULED = new Set(['clone', 'clone3', 'socket']);

const ENOSYS = 38;

export interface BuiltProfile {
  profile: OciSeccomp;
  serving: string[];
  startupOnly: string[];
  socketDomains: number[];
}

export function buildProfile(rec: Recording): BuiltProfile {
  const serving = new Set([...Object.keys(rec.calls.serving), ...ALWAYS_ALLOWED]);
  const startupOnly = Object.keys(rec.calls.startup).filter((n) => !serving.has(n));
  const domains = socketDomains([...(rec.calls.startup.socket ?? []), ...(rec.calls.serving.socket ?? [])]);
  const syscalls: OciSeccompSyscall[] = [];
  const plain = [...serving].filter((n) => !RULED.has(n)).sort();
  syscalls.push({ names: plain, action: 'SCMP_ACT_ALLOW' });
  const cloneSeen =
    'clone' in rec.calls.serving || 'clone' in rec.calls.startup || 'clone3' in rec.calls.serving || 'clone3' in rec.calls.startup;
  if (cloneSeen) {
    // (flags & namespace bits) == 0. Learned in either phase: threads start while serving too.
    // A workload that only ever started threads (a node server) gets threads only: a new
    // process (a fork bomb, a shell) is refused even where no cgroup or RLIMIT_NPROC bounds it.
    const threads = onlyThreadsCloned([...(rec.calls.startup.clone ?? []), ...(rec.calls.serving.clone ?? [])]);
    const mask = CLONE_NAMESPACE_FLAGS | (threads ? CLONE_THREAD : 0n);
    syscalls.push({
      names: ['clone'],
      action: 'SCMP_ACT_ALLOW',
      args: [{ index: 0, value: Number(mask), valueTwo: threads ? Number(CLONE_THREAD) : 0, op: 'SCMP_CMP_MASKED_EQ' }],
    });
    syscalls.push({ names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS });
  }
  for (const d of domains)
    syscalls.push({ names: ['socket'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: d, op: 'SCMP_CMP_EQ' }] });
  const startupPlain = startupOnly.filter((n) => !RULED.has(n)).sort();
  if (startupPlain.length) syscalls.push({ names: startupPlain, action: 'SCMP_ACT_NOTIFY' });
  return {
    profile: { defaultAction: 'SCMP_ACT_NOTIFY', architectures: [rec.architecture], syscalls },
    serving: plain,
    startupOnly: startupPlain,
    socketDomains: domains,
  };
}
