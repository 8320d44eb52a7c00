// The main thread's side of worker.ts: each request a promise, answered when the launcher
// thread is done with it. The thread is unref'd: it never keeps the process alive by itself.
import fs from 'node:fs';
import { Worker } from 'node:worker_threads';
import { HakoError } from '../errors.js';
import type { Log } from '../runtime/index.js';
import type { Launched, Reply, Request } from './worker.js';

// From src/harness (the tests) and dist/harness alike: the built worker.
const WORKER = new URL('../../dist/harness/worker.js', import.meta.url);

type Pending = { resolve: (l: Launched | null) => void; reject: (e: Error) => void; log: Log };
let worker: Worker | undefined;
const pending = new Map<number, Pending>();
let seq = 0;

/** An error from the launcher that still holds a started process (a failed exec check). */
export interface LaunchError extends HakoError {
  pid?: number;
  pidfd?: number;
}

function thread(): Worker {
  if (worker) return worker;
  if (!fs.existsSync(WORKER)) throw new HakoError(`hako's launcher thread is not built (${WORKER.pathname}): run npm run build`);
  // Fds cross threads here (the launcher closes sockets the addon opened): no per-thread fd tracking.
  const w = new Worker(WORKER, { trackUnmanagedFds: false });
  w.unref();
  w.on('message', (m: Reply) => {
    const p = pending.get(m.seq);
    if (!p) return;
    if ('log' in m) return p.log[m.log](m.msg);
    pending.delete(m.seq);
    if (pending.size === 0) w.unref();
    if ('ok' in m) return p.resolve(m.ok);
    const e = m.error;
    const err: LaunchError = new HakoError(e.message, e.exitCode, { step: e.step, errno: e.errno, path: e.path });
    if (e.pidfd !== undefined) Object.assign(err, { pid: e.pid, pidfd: e.pidfd });
    p.reject(err);
  });
  w.on('error', (e) => {
    for (const p of pending.values()) p.reject(e);
    pending.clear();
    worker = undefined;
  });
  worker = w;
  return w;
}

type Body = Request extends infer R ? (R extends Request ? Omit<R, 'seq' | 'levels'> : never) : never;

const ALL = ['debug', 'info', 'warn', 'error'] as const;
/** The levels a log takes: a pino logger says; any other log gets every line. */
function levelsOf(log: Log): Request['levels'] {
  const pinoLike = log as Log & { isLevelEnabled?: (l: string) => boolean };
  return typeof pinoLike.isLevelEnabled === 'function' ? ALL.filter((l) => pinoLike.isLevelEnabled!(l)) : [...ALL];
}

export function launcher(r: Body, log: Log): Promise<Launched | null> {
  const w = thread();
  return new Promise((resolve, reject) => {
    const n = ++seq;
    pending.set(n, { resolve, reject, log });
    // Held while it works: a pending start keeps the process alive, as a timer would.
    w.ref();
    w.postMessage({ ...r, seq: n, levels: levelsOf(log) } as Request);
  });
}
