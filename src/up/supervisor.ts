// The foreground loop of `hako up`: run the container, restart it by the policy with
// backoff when it ends, and stop it cleanly on SIGINT/SIGTERM (SIGTERM, a grace period,
// then SIGKILL; delete; exit 0). The listening socket stays open on the host across
// restarts, so clients queue in its backlog instead of being refused.
import fs from 'node:fs';
import os from 'node:os';
import type { Config } from '../oci/config.js';
import { HakoError } from '../errors.js';
import { create, startCreated, deleteContainer, Container, exitCodeOf, listenerFds, type RuntimeContext } from '../runtime/index.js';
import { native } from '../sys/native.js';
import { decide, type RestartPolicy, type RunEnd } from './policy.js';
import { checkVolumes } from './volumes.js';
import { waitServing } from './ready.js';
import type { ListenAddress } from './listen.js';
import { superviseShim, withShimWhereNeeded, type ShimSupervision } from './shim-supervision.js';

export interface SuperviseOptions {
  id: string;
  bundle: string;
  /** The config to run (socket activation applied). */
  config: Config;
  listenerFd: number;
  address: ListenAddress;
  policy: RestartPolicy;
  /** Grace period between SIGTERM and SIGKILL when stopping. */
  stopTimeoutMs: number;
  /** Status sentences (stderr). */
  say: (sentence: string) => void;
  /** Called the first time the server answers. */
  onServing: () => void;
  /** Called before each run starts, and each time a run first answers (every restart). */
  onRunStart?: () => void;
  onReady?: () => void;
}

const STOP_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

function signalName(n: number): string {
  return Object.entries(os.constants.signals).find(([, v]) => v === n)?.[0] ?? `signal ${n}`;
}

export function describeEnd(end: RunEnd): string {
  const after = `after ${(end.ranMs / 1000).toFixed(1)} s`;
  return end.signal !== undefined ? `was killed by ${signalName(end.signal)} ${after}` : `exited with status ${end.code ?? 0} ${after}`;
}

/** Through the init's pidfd: never a process that reused its pid once it was reaped. */
function signal(pidfd: number, sig: NodeJS.Signals): void {
  native.pidfdSignal(pidfd, os.constants.signals[sig]);
}

/** A container with our id left over from an `up` that was killed: remove it, unless it runs. */
function clearLeftover(ctx: RuntimeContext, id: string): void {
  let c: Container;
  try {
    c = Container.load(ctx.store, id);
  } catch {
    return;
  }
  if (c.alive()) throw new HakoError(`container "${id}" is already running (another hako up?): stop it or pick another --id`);
  deleteContainer(ctx, id, true);
}

/** Whether a process catches SIGTERM (/proc/PID/status SigCgt); undefined when it is gone. */
function catchesSigterm(pid: number): boolean | undefined {
  try {
    const m = /^SigCgt:\s*([0-9a-f]+)$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? (BigInt(`0x${m[1]}`) & (1n << 14n)) !== 0n : undefined;
  } catch {
    return undefined;
  }
}

export class Supervisor {
  private stopping = false;
  private initPidfd: number | undefined;
  private initPid: number | undefined;
  private killTimer: NodeJS.Timeout | undefined;
  private termTimer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;
  private shim: ShimSupervision | undefined;

  constructor(
    private readonly ctx: RuntimeContext,
    private o: SuperviseOptions,
  ) {}

  /** Runs until stopped (resolves 0) or until the policy says no more (the last exit code). */
  async run(): Promise<number> {
    const onSignal = (sig: NodeJS.Signals) => this.stop(sig);
    for (const s of STOP_SIGNALS) process.on(s, onSignal);
    // The init is our child, unless the plan forks (joining a pid namespace): then it is
    // reparented to us only if we are a subreaper.
    native.setSubreaper();
    try {
      clearLeftover(this.ctx, this.o.id);
      // The preload shim's ceilings where no cgroup holds them, and its denials reported.
      const config = withShimWhereNeeded(this.ctx, this.o.config);
      this.o = { ...this.o, config };
      this.shim = superviseShim(this.ctx, this.o);
      return await this.loop();
    } finally {
      this.shim?.close();
      for (const s of STOP_SIGNALS) process.off(s, onSignal);
      clearTimeout(this.killTimer);
      clearInterval(this.termTimer);
    }
  }

  /** The running container's init pidfd, if one runs (for --on-violation). */
  get runningPidfd(): number | undefined {
    return this.initPidfd;
  }

  /** First signal: SIGTERM to the container, SIGKILL after the grace period. Second: SIGKILL now. */
  stop(sig: NodeJS.Signals): void {
    const pid = this.initPidfd;
    if (this.stopping) {
      if (pid !== undefined) signal(pid, 'SIGKILL');
      return;
    }
    this.stopping = true;
    this.wake?.();
    if (pid === undefined) return;
    this.o.say(`${sig}: stopping container ${this.o.id} (SIGTERM, then SIGKILL after ${this.o.stopTimeoutMs / 1000} s)`);
    const caught = this.initPid === undefined ? undefined : catchesSigterm(this.initPid);
    signal(pid, 'SIGTERM');
    if (caught === false) this.resendOnceCaught(this.initPid!, pid);
    this.killTimer = setTimeout(() => {
      this.o.say(`container ${this.o.id} did not stop within ${this.o.stopTimeoutMs / 1000} s: SIGKILL`);
      signal(pid, 'SIGKILL');
    }, this.o.stopTimeoutMs);
  }

  /** The init of a pid namespace with no SIGTERM handler yet does not get the signal (the
   *  kernel drops it): a server stopped in its first moments would wait for SIGKILL. Once it
   *  catches SIGTERM, send it again. */
  private resendOnceCaught(pid: number, pidfd: number): void {
    this.termTimer = setInterval(() => {
      const now = catchesSigterm(pid);
      if (now === false) return;
      clearInterval(this.termTimer);
      if (now) signal(pidfd, 'SIGTERM');
    }, 100);
  }

  private async loop(): Promise<number> {
    let streak = 0;
    let served = false;
    while (!this.stopping) {
      const startedAt = Date.now();
      const { pid, pidfd } = this.launch();
      this.initPidfd = pidfd;
      this.initPid = pid;
      let ended = false;
      let runServed = false;
      const exited = native.waitPid(pid).finally(() => (ended = true));
      void waitServing(this.o.address, () => !ended && !this.stopping).then((ok) => {
        if (!ok) return;
        this.o.onReady?.();
        if (!served) this.o.onServing();
        else this.o.say(`container ${this.o.id} is serving again`);
        served = runServed = true;
      });
      const st = await exited;
      this.initPidfd = this.initPid = undefined;
      fs.closeSync(pidfd);
      clearTimeout(this.killTimer);
      clearInterval(this.termTimer);
      // Before delete: the state dir holds the shim's last denials of this run.
      const cannotRestart = this.shim?.runEnded(runServed);
      deleteContainer(this.ctx, this.o.id, true);
      if (st.error) throw new HakoError(`waiting for container ${this.o.id} (pid ${pid}) failed: errno ${st.error}`);
      if (this.stopping) {
        this.o.say(`container ${this.o.id} stopped`);
        return 0;
      }
      const end: RunEnd = { code: st.code, signal: st.signal, ranMs: Date.now() - startedAt };
      if (cannotRestart) throw new HakoError(`container ${this.o.id} ${describeEnd(end)}: ${cannotRestart}`);
      const d = decide(this.o.policy, end, streak);
      if (!d.restart) {
        if (d.reason === 'exhausted')
          throw new HakoError(
            `container ${this.o.id} ${describeEnd(end)}: giving up after ${d.streak} restarts in a row (--max-restarts ${this.o.policy.maxRestarts})`,
          );
        this.o.say(`container ${this.o.id} ${describeEnd(end)}; not restarting (--restart ${this.o.policy.mode})`);
        return exitCodeOf(end);
      }
      streak = d.streak;
      this.o.say(
        `container ${this.o.id} ${describeEnd(end)}; restarting in ${d.delayMs / 1000} s (restart ${streak} of at most ${this.o.policy.maxRestarts} in a row)`,
      );
      await this.sleep(d.delayMs);
    }
    return 0;
  }

  /** create + start; a setup or exec failure is not a crash: it is reported, not retried. */
  private launch(): { pid: number; pidfd: number } {
    const { ctx } = this;
    const { id, bundle, config } = this.o;
    checkVolumes(config, bundle);
    this.o.onRunStart?.();
    // The container dies with us, also when we are killed (SIGKILL): nothing else would stop it.
    const launched = startCreated(ctx, create(ctx, { id, bundle, config, extraFds: listenerFds(this.o.listenerFd), dieWithRuntime: true }));
    return { pid: launched.pid, pidfd: launched.pidfd };
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    }).finally(() => (this.wake = undefined));
  }
}
