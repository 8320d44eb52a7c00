// A planner worker thread (dist/cli/planner-worker.cjs): accept a call (blocking
// this thread only), serve it, and go back to accepting, or end when two others
// are already waiting. `idle` (shared with the main thread) counts the waiting workers.
import { parentPort, workerData } from 'node:worker_threads';
import { native } from '../sys/native.js';
import { serveCall } from './call.js';

export interface WorkerData {
  listenFd: number;
  root: string;
  umask: number;
  /** [0]: how many workers wait in acceptCall (the main thread counts a starting one). */
  idle: Int32Array;
}

const MAX_IDLE = 2;

async function loop(d: WorkerData): Promise<void> {
  const baseEnv = { ...process.env } as Record<string, string>;
  for (;;) {
    let call;
    try {
      call = native.acceptCall(d.listenFd);
    } catch {
      call = null;
    }
    Atomics.sub(d.idle, 0, 1);
    if (!call) break;
    parentPort!.postMessage('busy');
    await serveCall(call, { root: d.root, umask: d.umask }, baseEnv);
    parentPort!.postMessage('done');
    // Waiting again, unless enough others already are.
    let n: number;
    do {
      n = Atomics.load(d.idle, 0);
      if (n >= MAX_IDLE) {
        parentPort!.postMessage('end');
        return;
      }
    } while (Atomics.compareExchange(d.idle, 0, n, n + 1) !== n);
  }
  parentPort!.postMessage('end');
}

void loop(workerData as WorkerData);
