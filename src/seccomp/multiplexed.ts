// On 32-bit x86 the socket and System V IPC calls have a second way in: the
// socketcall(2) and ipc(2) multiplexers, whose first argument names the call
// (some, such as accept and semop, have no other way in). A rule on connect that
// did not also cover socketcall(SYS_CONNECT, …) could be walked around by any
// i386 binary, so, as libseccomp does, each such rule also becomes a rule on the
// multiplexer with argument 0 equal to the call's number.
//
// The real arguments sit in memory behind socketcall's second argument, where
// no filter can read them, so a rule's own argument comparisons cannot follow
// it. libseccomp drops them, which turns "allow socket(AF_UNIX)" into "allow
// every socket()". hako drops them only where that can refuse more, never allow
// more: for rules that kill, trap or fail the call. A conditional rule that
// allows, logs, traces or notifies gets no multiplexer rule (and one debug line).
import { RET_ERRNO, RET_KILL_PROCESS, RET_KILL_THREAD, RET_TRAP } from './actions.js';
import type { Rule, RuleSpec } from './rules.js';

/** The calls behind socketcall(2) (SYS_* in linux/net.h) and ipc(2) (linux/ipc.h). */
export const X86_MULTIPLEXED: Readonly<Record<string, { via: 'socketcall' | 'ipc'; call: number }>> = {
  socket: { via: 'socketcall', call: 1 },
  bind: { via: 'socketcall', call: 2 },
  connect: { via: 'socketcall', call: 3 },
  listen: { via: 'socketcall', call: 4 },
  accept: { via: 'socketcall', call: 5 },
  getsockname: { via: 'socketcall', call: 6 },
  getpeername: { via: 'socketcall', call: 7 },
  socketpair: { via: 'socketcall', call: 8 },
  send: { via: 'socketcall', call: 9 },
  recv: { via: 'socketcall', call: 10 },
  sendto: { via: 'socketcall', call: 11 },
  recvfrom: { via: 'socketcall', call: 12 },
  shutdown: { via: 'socketcall', call: 13 },
  setsockopt: { via: 'socketcall', call: 14 },
  getsockopt: { via: 'socketcall', call: 15 },
  sendmsg: { via: 'socketcall', call: 16 },
  recvmsg: { via: 'socketcall', call: 17 },
  accept4: { via: 'socketcall', call: 18 },
  recvmmsg: { via: 'socketcall', call: 19 },
  sendmmsg: { via: 'socketcall', call: 20 },
  semop: { via: 'ipc', call: 1 },
  semget: { via: 'ipc', call: 2 },
  semctl: { via: 'ipc', call: 3 },
  semtimedop: { via: 'ipc', call: 4 },
  msgsnd: { via: 'ipc', call: 11 },
  msgrcv: { via: 'ipc', call: 12 },
  msgget: { via: 'ipc', call: 13 },
  msgctl: { via: 'ipc', call: 14 },
  shmat: { via: 'ipc', call: 21 },
  shmdt: { via: 'ipc', call: 22 },
  shmget: { via: 'ipc', call: 23 },
  shmctl: { via: 'ipc', call: 24 },
};

/** Actions that only ever refuse the call: widening their match refuses more, allows nothing more. */
export function refuses(action: number): boolean {
  const kind = action & 0xffff0000;
  return action === RET_KILL_PROCESS || kind === RET_KILL_THREAD || kind === RET_TRAP || kind === RET_ERRNO;
}

/**
 * The multiplexer rules a profile implies on x86, by multiplexer name, in profile order
 * (they come after the profile's own rules on socketcall and ipc).
 */
export function multiplexerRules(specs: RuleSpec[], log: (msg: string) => void): Map<'socketcall' | 'ipc', Rule[]> {
  const out = new Map<'socketcall' | 'ipc', Rule[]>([
    ['socketcall', []],
    ['ipc', []],
  ]);
  for (const spec of specs) {
    for (const name of spec.names) {
      const m = Object.hasOwn(X86_MULTIPLEXED, name) ? X86_MULTIPLEXED[name] : undefined;
      if (!m) continue;
      if (spec.args.length > 0 && !refuses(spec.action)) {
        log(
          `seccomp: ${spec.path}: ${name} on SCMP_ARCH_X86 through ${m.via}(2): its argument conditions cannot be checked there, so that way in keeps the default action`,
        );
        continue;
      }
      out.get(m.via)!.push({ action: spec.action, args: [{ index: 0, op: 'SCMP_CMP_EQ', value: BigInt(m.call), valueTwo: 0n }] });
    }
  }
  return out;
}
