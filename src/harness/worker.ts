// The library's launcher thread: create + start, exec and delete wait on the container's
// setup (the sync socket, the fifo, a cgroup's removal) for milliseconds each; here they
// block this thread, never the test's event loop. One thread for the process, kept for its
// whole life: a container's init dies (PR_SET_PDEATHSIG) when the thread that cloned it ends.
import { parentPort } from 'node:worker_threads';
import {
  Store,
  checkExec,
  create,
  deleteContainer,
  launchExec,
  startCreated,
  type Config,
  type Log,
  type Process,
  type RuntimeContext,
} from '../runtime/index.js';
import { HakoError } from '../errors.js';

export interface Fd {
  from: number;
  to: number;
}
type Level = 'debug' | 'info' | 'warn' | 'error';
interface Common {
  seq: number;
  root: string;
  rootless: boolean;
  id: string;
  /** The levels the caller's log takes: the others are not sent across at all. */
  levels: Level[];
}
export type Request =
  | (Common & { op: 'start'; bundle: string; config: Config; extraFds: Fd[] })
  | (Common & { op: 'exec'; process: Process; extraFds: Fd[] })
  | (Common & { op: 'delete' });

export interface Launched {
  pid: number;
  pidfd: number;
}
export type Reply = { seq: number; ok: Launched | null } | { seq: number; error: WorkerError } | { seq: number; log: Level; msg: string };

export interface WorkerError {
  message: string;
  exitCode: number;
  step?: string;
  errno?: string;
  path?: string;
  /** A process that was started and is not wanted (a failed exec check): the caller's to kill and reap. */
  pid?: number;
  pidfd?: number;
}

const port = parentPort!;
/** The request being handled (one at a time): its log lines go to its Hako's log. */
let current = 0;
let levels = new Set<Level>();
// A message to the main thread wakes it: a debug line nobody reads cost as much as a container's
// whole start on a busy machine (docs/benchmarks.md).
const send = (level: Level, msg: string) => {
  if (levels.has(level)) port.postMessage({ seq: current, log: level, msg } satisfies Reply);
};
const log: Log = {
  debug: (msg) => send('debug', msg),
  info: (msg) => send('info', msg),
  warn: (msg) => send('warn', msg),
  error: (msg) => send('error', msg),
};

function handle(r: Request): Launched | null {
  const ctx: RuntimeContext = { store: new Store(r.root), rootless: r.rootless, log };
  if (r.op === 'start') {
    // dieWithRuntime: if the process is SIGKILLed, its containers die with it.
    const created = create(ctx, { id: r.id, bundle: r.bundle, config: r.config, extraFds: r.extraFds, dieWithRuntime: true });
    const l = startCreated(ctx, created);
    return { pid: l.pid, pidfd: l.pidfd };
  }
  if (r.op === 'exec') {
    const { plan, launched } = launchExec(ctx, { id: r.id, process: r.process, extraFds: r.extraFds });
    try {
      checkExec(plan, launched.syncFd);
    } catch (e) {
      // Its pidfd goes back with the error: the caller kills and reaps it.
      (e as { pidfd?: number; pid?: number }).pidfd = launched.pidfd;
      (e as { pidfd?: number; pid?: number }).pid = launched.pid;
      throw e;
    }
    return { pid: launched.pid, pidfd: launched.pidfd };
  }
  deleteContainer(ctx, r.id, true);
  return null;
}

port.on('message', (r: Request) => {
  current = r.seq;
  levels = new Set(r.levels);
  try {
    port.postMessage({ seq: r.seq, ok: handle(r) } satisfies Reply);
  } catch (e) {
    const err = e as HakoError & NodeJS.ErrnoException & { pidfd?: number; pid?: number };
    port.postMessage({
      seq: r.seq,
      error: {
        message: err.message,
        exitCode: err instanceof HakoError ? err.exitCode : 1,
        step: err.step,
        errno: err instanceof HakoError ? err.errno : (e as NodeJS.ErrnoException).code,
        path: err.path,
        ...(err.pidfd !== undefined ? { pidfd: err.pidfd, pid: err.pid } : {}),
      },
    });
  }
});
