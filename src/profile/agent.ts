// The main thread's handle on hako's seccomp agent (agent-worker.ts): where the runtime sends
// the listener (a socket in a private directory), the phase switch, the refusals as they come,
// and the recordings of finished runs.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { OciSeccomp, SeccompArch } from '../seccomp/types.js';
import { HakoError } from '../errors.js';
import type { Config } from '../oci/config.js';
import type { AgentMessage, AgentMode, AgentWorkerData, Refusal } from './agent-worker.js';
import { phasePolicy } from './policy.js';
import type { Recording } from './recording.js';

// The worker runs compiled JavaScript: dist/profile/agent-worker.js, found the same way from
// src/profile (tests), dist/profile and the CLI bundle in dist/cli (two levels below the repo).
const WORKER = new URL('../../dist/profile/agent-worker.js', import.meta.url);

export interface AgentOptions {
  mode: AgentMode;
  architecture: SeccompArch;
  /** enforce, trial: the profile whose NOTIFY rules are the start-up-only calls. */
  profile?: OciSeccomp;
  /** trial: the profile under trial, compiled. */
  program?: Uint8Array;
  onRefused?: (r: Refusal) => void;
  onError?: (message: string) => void;
}

export class SeccompAgent {
  readonly listenerPath: string;
  private readonly dir: string;
  private readonly worker: Worker;
  private readonly flags = new Int32Array(new SharedArrayBuffer(12));
  private readonly recordings: Recording[] = [];
  private readonly listening: Promise<void>;
  private detachWaiters: Array<() => void> = [];
  private detaches = 0;
  private exited = false;

  private constructor(o: AgentOptions) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-agent-'));
    fs.chmodSync(this.dir, 0o700);
    this.listenerPath = path.join(this.dir, 'seccomp.sock');
    const data: AgentWorkerData = {
      socketPath: this.listenerPath,
      mode: o.mode,
      architecture: o.architecture,
      startup: o.profile ? [...phasePolicy(o.profile, o.architecture).startup] : [],
      program: o.program,
      flags: this.flags.buffer as SharedArrayBuffer,
    };
    if (!fs.existsSync(WORKER)) throw new HakoError(`hako's seccomp agent is not built (${WORKER.pathname}): run npm run build`);
    this.worker = new Worker(WORKER, { workerData: data });
    this.listening = new Promise((resolve, reject) => {
      this.worker.on('message', (m: AgentMessage) => {
        if (m.type === 'listening') resolve();
        else if (m.type === 'refused') o.onRefused?.(m.refusal);
        else if (m.type === 'error') o.onError?.(m.message);
        else if (m.type === 'detached') {
          this.detaches++;
          if (m.recording) this.recordings.push(m.recording);
          for (const w of this.detachWaiters.splice(0)) w();
        }
      });
      this.worker.on('error', (e) => reject(new HakoError(`hako's seccomp agent failed: ${e.message}`)));
      this.worker.on('exit', () => {
        this.exited = true;
        for (const w of this.detachWaiters.splice(0)) w();
      });
    });
  }

  /** Starts the agent; resolves once it listens at listenerPath. */
  static async start(o: AgentOptions): Promise<SeccompAgent> {
    const a = new SeccompAgent(o);
    try {
      await a.listening;
    } catch (e) {
      await a.close();
      throw e;
    }
    return a;
  }

  /** The init's calls from now on are the serving phase's (true), or start-up's (false: a new
   *  run begins, whose first listener is its init). */
  setServing(serving: boolean): void {
    if (!serving) Atomics.add(this.flags, 2, 1);
    Atomics.store(this.flags, 0, serving ? 1 : 0);
  }

  /** Call before a run starts: resolves once the agent lets go of that run's filter (nobody is
   *  left under it), so its recording is in. */
  detachedAfter(): Promise<void> {
    const target = this.detaches + 1;
    return new Promise((resolve) => {
      const check = () => {
        if (this.detaches >= target || this.exited) resolve();
        else this.detachWaiters.push(check);
      };
      check();
    });
  }

  /** The recordings of the runs served so far (record mode). */
  takeRecordings(): Recording[] {
    return this.recordings.splice(0);
  }

  async close(): Promise<void> {
    Atomics.store(this.flags, 1, 1);
    if (!this.exited) await new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A config whose seccomp filter (SECCOMP, or its own) hands its listener to this agent. */
export function withAgent(cfg: Config, agent: SeccompAgent, seccomp?: OciSeccomp): Config {
  const base = seccomp ?? (cfg.linux?.seccomp as OciSeccomp | undefined);
  if (!base) return cfg;
  return { ...cfg, linux: { ...cfg.linux, seccomp: { ...base, listenerPath: agent.listenerPath } } };
}
