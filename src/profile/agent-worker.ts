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
  /** [0] phase (0 start-up, 1 serving), [1] stop. */
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
  errno: number;
  time: string;
}

export type AgentMessage =
  | { type: 'listening' }
  | { type: 'attached'; pid: number }
  | { type: 'refused'; refusal: Refusal }
  | { type: 'detached'; pid: number; recording?: ReturnType<Recorder['result']> }
  | { type: 'error'; message: string };

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

function refusal(n: SeccompNotification, name: string | undefined, phase: Phase, errno: number): Refusal {
  return {
    pid: n.pid,
    command: command(n.pid),
    syscall: name ?? `syscall ${n.nr}`,
    nr: n.nr,
    args: n.args.map((a) => `0x${a.toString(16)}`),
    phase,
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

function serve(fd: number, initPid: number): Recorder | undefined {
  const recorder = data.mode === 'record' ? new Recorder(data.architecture) : undefined;
  let hakoInit = true; // the init runs hako-init until its execve
  while (!Atomics.load(flags, 1)) {
    const ready = native.notifPoll(fd, 250);
    if (ready < 0) break;
    if (ready === 0) continue;
    const n = native.notifRecv(fd);
    if (!n) continue;
    const arch = archOf(n.arch, n.nr) ?? data.architecture;
    const name = syscallName(arch, n.nr);
    if (hakoInit && n.pid === initPid) {
      if (name === 'execve' || name === 'execveat') hakoInit = false;
      native.notifRespond(fd, n.id, 0, true);
      continue;
    }
    const phase: Phase = Atomics.load(flags, 0) ? 'serving' : 'startup';
    if (data.mode === 'record') {
      recorder!.add(phase, name, n.nr, name ? argumentKey(name, n.args) : '');
      native.notifRespond(fd, n.id, 0, true);
    } else if (data.mode === 'trial') {
      const errno = trialVerdict(n, phase);
      native.notifRespond(fd, n.id, 0, true);
      if (errno > 0) post({ type: 'refused', refusal: refusal(n, name, phase, errno) });
    } else {
      const d = decide(policy, n.nr, phase);
      if (d.allow) {
        native.notifRespond(fd, n.id, 0, true);
      } else {
        native.notifRespond(fd, n.id, d.errno, false);
        post({ type: 'refused', refusal: refusal(n, name, phase, d.errno) });
      }
    }
  }
  return recorder;
}

async function main(): Promise<void> {
  const lfd = native.listenUnix(data.socketPath);
  post({ type: 'listening' });
  while (!Atomics.load(flags, 1)) {
    let got: { fd: number; data: string };
    try {
      got = await native.recvFd(lfd, 250);
    } catch (e) {
      if ((e as { errno?: number }).errno !== 110 /* ETIMEDOUT */)
        post({ type: 'error', message: `seccomp agent: ${(e as Error).message}` });
      continue;
    }
    let pid = 0;
    try {
      pid = Number((JSON.parse(got.data) as { pid?: number }).pid ?? 0);
    } catch {
      // Not the runtime-spec message: still serve the fd, with no hako-init to tell apart.
    }
    post({ type: 'attached', pid });
    const recorder = serve(got.fd, pid);
    fs.closeSync(got.fd);
    post({ type: 'detached', pid, recording: recorder?.result() });
  }
  fs.closeSync(lfd);
}

void main().catch((e: Error) => post({ type: 'error', message: `seccomp agent: ${e.message}` }));
