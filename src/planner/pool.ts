// The planner's workers: at least one waiting for a call, at most 32 in all. A
// worker blocks in acceptCall (its thread only); when one takes a call and none
// is left waiting, another is started, so calls never wait for each other.
import { Worker } from 'node:worker_threads';
import type { WorkerData } from './worker.js';

const MAX_WORKERS = 32;

type State = 'idle' | 'busy' | 'ended';

export class Pool {
  private readonly workers = new Map<Worker, State>();
  private readonly idle = new Int32Array(new SharedArrayBuffer(4));
  private stopping = false;
  /** When the last call ended (or the pool started). */
  lastActivity = Date.now();
  inFlight = 0;

  constructor(
    private readonly file: URL,
    private readonly data: Omit<WorkerData, 'idle'>,
    private readonly onEmpty: () => void,
  ) {
    this.start();
  }

  private start(): void {
    Atomics.add(this.idle, 0, 1);
    const w = new Worker(this.file, { workerData: { ...this.data, idle: this.idle }, execArgv: ['--no-warnings'] });
    this.workers.set(w, 'idle');
    w.on('message', (m: string) => {
      if (m === 'busy') {
        this.workers.set(w, 'busy');
        this.inFlight++;
        if (!this.stopping && Atomics.load(this.idle, 0) === 0 && this.workers.size < MAX_WORKERS) this.start();
      } else if (m === 'done') {
        this.workers.set(w, 'idle');
        this.inFlight--;
        this.lastActivity = Date.now();
      } else if (m === 'end') {
        this.workers.set(w, 'ended');
      }
    });
    w.on('error', () => {
      // A bug in a call: the worker is gone; its front sees the end of the connection.
    });
    w.on('exit', () => {
      const was = this.workers.get(w);
      this.workers.delete(w);
      if (was === 'busy') {
        this.inFlight--;
        this.lastActivity = Date.now();
      } else if (was === 'idle') Atomics.sub(this.idle, 0, 1); // it died waiting
      if (this.stopping) {
        if (this.workers.size === 0) this.onEmpty();
      } else if (Atomics.load(this.idle, 0) === 0) this.start();
    });
  }

  /** No new workers; onEmpty runs once every worker has ended (after the socket's shutdown). */
  stop(): void {
    this.stopping = true;
    if (this.workers.size === 0) this.onEmpty();
  }
}
