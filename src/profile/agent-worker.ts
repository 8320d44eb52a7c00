// hako's seccomp agent, in a worker thread of its own: the runtime's main thread blocks while it
// launches a container, and the container's first filtered calls must be answered meanwhile.
// It listens where linux.seccomp.listenerPath points, takes each container's listener fd
// (runtime-spec's seccomp agent protocol, so any runtime can hand it over), and answers every
// notification until nobody is left under the filter:
//   record: let the call run, note it (phase, name, the arguments that matter);
//   trial:  let it run, and report what the profile under trial would have refused;
//   enforce: the two-phase decision (policy.ts); refusals are reported.
// Until the container's init executes the workload, its calls are hako-init's, not the
// workload's: they run and are not recorded.
import fs from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { native, type SeccompNotification } from '../sys/native.js';
import { runBpf } from '../seccomp/bpf-interp.js';
import { argumentKey } from './arguments.js';
import { archOf, syscallName } from './names.js';
import { decide, EPERM, type PhasePolicy } from './policy.js';
import { Recorder, type Phase } from './recording.js';
import type { SeccompArch } from '../seccomp/types.js';

export type AgentMode = 'record' | 'enforce' | 'trial';

export interface AgentWorkerData {
  socketPath: string;
  mode: AgentMode;
  architecture: SeccompArch;
  /** enforce and trial: the start-up-only calls' numbers. */
  startup: number[];
  /** trial: the profile under trial, compiled. */
  program?: Uint8Array;
  /** [0] phase of the container's init (0 start-up, 1 serving), [1] stop, [2] run generation. */
  flags: SharedArrayBuffer;
}

/** A refused call (or, in trial, one that would have been). */
export interface Refusal {
  pid: number;
  command: string;
  syscall: string;
  nr: number;
  args: string[];
  phase: Phase;
  /** Made by a process `hako exec` started, not by the container's init and its threads. */
  exec: boolean;
  errno: number;
  time: string;
}

export type AgentMessage =
  | { type: 'listening' }
  | { type: 'attached'; pid: number }
  | { type: 'refused'; refusal: Refusal }
  | { type: 'detached'; pid: number; recording?: ReturnType<Recorder['result']> }
  | { type: 'error'; message: string };

const POLLIN = 0x1;
const POLLERR = 0x8;
const POLLHUP = 0x10;
const POLLNVAL = 0x20;
const SECCOMP_RET_ACTION_FULL = 0xffff0000;
const RET_ALLOW = 0x7fff0000;
const RET_ERRNO = 0x00050000;
const RET_USER_NOTIF = 0x7fc00000;

const data = workerData as AgentWorkerData;
const flags = new Int32Array(data.flags);
const policy: PhasePolicy = { architecture: data.architecture, startup: new Set(data.startup) };
const post = (m: AgentMessage) => parentPort!.postMessage(m);

function command(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

/** Made before the answer: once answered, the caller may be gone, and its name with it. */
function refusal(n: SeccompNotification, l: Listener, name: string | undefined, phase: Phase, errno: number): Refusal {
  return {
    pid: n.pid,
    command: command(n.pid),
    syscall: name ?? `syscall ${n.nr}`,
    nr: n.nr,
    args: n.args.map((a) => `0x${a.toString(16)}`),
    phase,
    exec: !l.init,
    errno,
    time: new Date().toISOString(),
  };
}

/** trial: what the profile under trial does with this call (errno 0: it runs). */
function trialVerdict(n: SeccompNotification, phase: Phase): number {
  const action = (runBpf(data.program!, { nr: n.nr, arch: n.arch, args: n.args }).action & SECCOMP_RET_ACTION_FULL) >>> 0;
  if (action === RET_ALLOW) return 0;
  if (action === RET_ERRNO) return -1; // an answer the profile gives on purpose (clone3 → ENOSYS)
  if (action === RET_USER_NOTIF) {
    const d = decide(policy, n.nr, phase);
    return d.allow ? 0 : d.errno;
  }
  return EPERM;
}

/** One container process's filter: its listener, and whether its process still runs hako-init. */
interface Listener {
  fd: number;
  pid: number;
  hakoInit: boolean;
  /** The run's init (its first listener): it loses the start-up set once the server answers.
   *  Later ones are `hako exec`s by the host's operator: they keep it (the workload cannot
   *  exec: execve is not in a serving set). */
  init: boolean;
  recorder?: Recorder;
}

function answer(l: Listener): void {
  const n = native.notifRecv(l.fd);
  if (!n) return;
  const arch = archOf(n.arch, n.nr) ?? data.architecture;
  const name = syscallName(arch, n.nr);
  // Until its execve, the process the filter was loaded for runs hako-init: hako's own calls.
  if (l.hakoInit && n.pid === l.pid) {
    if (name === 'execve' || name === 'execveat') l.hakoInit = false;
    native.notifRespond(l.fd, n.id, 0, true);
    return;
  }
  const phase: Phase = l.init && Atomics.load(flags, 0) ? 'serving' : 'startup';
  if (data.mode === 'record') {
    l.recorder!.add(phase, name, n.nr, name ? argumentKey(name, n.args) : '');
    native.notifRespond(l.fd, n.id, 0, true);
  } else if (data.mode === 'trial') {
    const errno = trialVerdict(n, phase);
    const r = errno > 0 ? refusal(n, l, name, phase, errno) : undefined;
    native.notifRespond(l.fd, n.id, 0, true);
    if (r) post({ type: 'refused', refusal: r });
  } else {
    const d = decide(policy, n.nr, phase);
    if (d.allow) {
      native.notifRespond(l.fd, n.id, 0, true);
    } else {
      const r = refusal(n, l, name, phase, d.errno);
      native.notifRespond(l.fd, n.id, d.errno, false);
      post({ type: 'refused', refusal: r });
    }
  }
}

let initGeneration = -1;

function attach(lfd: number): Listener {
  const got = native.acceptFd(lfd);
  let pid = 0;
  try {
    pid = Number((JSON.parse(got.data) as { pid?: number }).pid ?? 0);
  } catch {
    // Not the runtime-spec message: still served, with no hako-init to tell apart.
  }
  post({ type: 'attached', pid });
  const generation = Atomics.load(flags, 2);
  const init = generation !== initGeneration;
  initGeneration = generation;
  return { fd: got.fd, pid, hakoInit: true, init, recorder: data.mode === 'record' ? new Recorder(data.architecture) : undefined };
}

function detach(l: Listener): void {
  native.closeFd(l.fd);
  post({ type: 'detached', pid: l.pid, recording: l.recorder?.result() });
}

function main(): void {
  const lfd = native.listenUnix(data.socketPath);
  post({ type: 'listening' });
  const listeners: Listener[] = [];
  while (!Atomics.load(flags, 1)) {
    const ready = native.pollIn([lfd, ...listeners.map((l) => l.fd)], 250);
    if (!ready) continue;
    // Answer before attaching: a waiting call blocks a container, a new listener does not yet.
    for (let i = listeners.length - 1; i >= 0; i--) {
      const ev = ready[i + 1]!;
      if (ev & POLLIN) answer(listeners[i]!);
      // Nobody is left under the filter: that process and its children are gone.
      else if (ev & (POLLHUP | POLLERR | POLLNVAL)) detach(listeners.splice(i, 1)[0]!);
    }
    if (ready[0]! & POLLIN) {
      try {
        listeners.push(attach(lfd));
      } catch (e) {
        post({ type: 'error', message: `seccomp agent: ${(e as Error).message}` });
      }
    }
  }
  for (const l of listeners) detach(l);
  native.closeFd(lfd);
}

try {
  main();
} catch (e) {
  post({ type: 'error', message: `seccomp agent: ${(e as Error).message}` });
}
