// The foreground loop of `hako up`: run the container, restart it by the policy with
// backoff when it ends, and stop it cleanly on SIGINT/SIGTERM (SIGTERM, a grace period,
// then SIGKILL; delete; exit 0). The listening socket stays open on the host across
// restarts, so clients queue in its backlog instead of being refused. SIGHUP and
// `hako rollout` replace the container by a new one on the same socket (rollout.ts); SIGHUP
// used to stop up like SIGTERM, it now rolls out (docs/rollout.md).
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
import { openControl, type Control } from './control.js';
import { rollOut, type RolloutHost, type RolloutRequest, type RolloutResult, type NextBundle } from './rollout.js';
import type { ExitStatus } from '../sys/native.js';

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
  /** For a rollout: verifies (when signed bundles are required) and builds the bundle given. */
  prepareNext?: (bundle: string) => Promise<NextBundle>;
}

/** What one container runs: its id, bundle and config. */
export interface RunSpec {
  id: string;
  bundle: string;
  config: Config;
}

/** One container started by up, until it is reaped (its state deleted). */
export interface Run {
  spec: RunSpec;
  pid: number;
  pidfd: number;
  startedAt: number;
  exited: Promise<ExitStatus>;
  ended: boolean;
  served: boolean;
  termTimer?: NodeJS.Timeout;
  reaped?: boolean;
  /** Read as it was reaped: why restarting cannot help (the shim refused it a ceiling before it served). */
  cannotRestart?: string;
}

const STOP_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];

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

/** The ids a rollout gives the containers of up's id: ID-r1, ID-r2, … */
export function rolloutId(id: string, n: number): string {
  return `${id}-r${n}`;
}

/** Containers of our id (and its rollouts') left over from an `up` that was killed: remove them, unless one runs. */
function clearLeftovers(ctx: RuntimeContext, id: string): void {
  const ours = new RegExp(`^${id.replace(/[.+]/g, '\\$&')}(-r\\d+)?$`);
  const ids = [id, ...(fs.existsSync(ctx.store.root) ? ctx.store.ids().filter((n) => n !== id && ours.test(n)) : [])];
  for (const one of ids) {
    let c: Container;
    try {
      c = Container.load(ctx.store, one);
    } catch {
      continue;
    }
    if (c.alive()) throw new HakoError(`container "${one}" is already running (another hako up?): stop it or pick another --id`);
    deleteContainer(ctx, one, true);
  }
}

export class Supervisor implements RolloutHost {
  private stopping = false;
  private killTimer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;
  private shim: ShimSupervision | undefined;
  private control: Control | undefined;
  /** What a restart runs: the last bundle rolled out. */
  private active: RunSpec;
  /** The run the loop waits on; a rollout replaces it. */
  private current: Run | undefined;
  private readonly live = new Set<Run>();
  private rolling: Promise<RolloutResult> | undefined;
  private generation = 0;

  constructor(
    private readonly ctx: RuntimeContext,
    private o: SuperviseOptions,
  ) {
    this.active = { id: o.id, bundle: o.bundle, config: o.config };
  }

  /** Runs until stopped (resolves 0) or until the policy says no more (the last exit code). */
  async run(): Promise<number> {
    const onSignal = (sig: NodeJS.Signals) => this.stop(sig);
    const onHup = () => {
      this.o.say('SIGHUP: rolling out the bundle again');
      void this.rollout({}).then((r) => this.o.say(r.ok ? `SIGHUP: ${r.sentence}` : `SIGHUP: rollout failed: ${r.error}`));
    };
    for (const s of STOP_SIGNALS) process.on(s, onSignal);
    process.on('SIGHUP', onHup);
    // The init is our child, unless the plan forks (joining a pid namespace): then it is
    // reparented to us only if we are a subreaper.
    native.setSubreaper();
    try {
      clearLeftovers(this.ctx, this.o.id);
      // The preload shim's ceilings where no cgroup holds them, and its denials reported.
      const config = withShimWhereNeeded(this.ctx, this.o.config);
      this.o = { ...this.o, config };
      this.active = { ...this.active, config };
      this.shim = superviseShim(this.ctx, this.o);
      this.control = await openControl(this.ctx.store.root, this.o.id, (req) => this.rollout(req), this.o.say);
      return await this.loop();
    } finally {
      this.control?.close();
      // A throw (setup error, giving up) must not leave a rollout's container behind.
      for (const r of this.live) if (!r.ended) signal(r.pidfd, 'SIGKILL');
      for (const r of [...this.live]) await this.reap(r);
      this.shim?.close();
      for (const s of STOP_SIGNALS) process.off(s, onSignal);
      process.off('SIGHUP', onHup);
      clearTimeout(this.killTimer);
    }
  }

  /** The running container's init pidfd, if one runs (for --on-violation). */
  get runningPidfd(): number | undefined {
    return this.current && !this.current.ended ? this.current.pidfd : undefined;
  }

  /** First signal: SIGTERM to the container(s), SIGKILL after the grace period. Second: SIGKILL now. */
  stop(sig: NodeJS.Signals): void {
    const runs = [...this.live].filter((r) => !r.ended);
    if (this.stopping) {
      for (const r of runs) signal(r.pidfd, 'SIGKILL');
      return;
    }
    this.stopping = true;
    this.wake?.();
    if (!runs.length) return;
    const ids = runs.map((r) => r.spec.id).join(' and ');
    this.o.say(`${sig}: stopping container ${ids} (SIGTERM, then SIGKILL after ${this.o.stopTimeoutMs / 1000} s)`);
    for (const r of runs) this.terminate(r);
    this.killTimer = setTimeout(() => {
      for (const r of runs.filter((r) => !r.ended)) {
        this.o.say(`container ${r.spec.id} did not stop within ${this.o.stopTimeoutMs / 1000} s: SIGKILL`);
        signal(r.pidfd, 'SIGKILL');
      }
    }, this.o.stopTimeoutMs);
  }

  // --- RolloutHost: what rollout.ts drives ---

  get isStopping(): boolean {
    return this.stopping;
  }
  get address(): ListenAddress {
    return this.o.address;
  }
  get upId(): string {
    return this.o.id;
  }
  get serving(): Run | undefined {
    return this.current && !this.current.ended && this.current.served ? this.current : undefined;
  }
  get activeSpec(): RunSpec {
    return this.active;
  }
  say(sentence: string): void {
    this.o.say(sentence);
  }
  nextId(): string {
    return rolloutId(this.o.id, ++this.generation);
  }
  async prepare(bundle: string): Promise<NextBundle> {
    if (!this.o.prepareNext) throw new HakoError('this hako up cannot roll out another bundle');
    const next = await this.o.prepareNext(bundle);
    return { ...next, config: withShimWhereNeeded(this.ctx, next.config) };
  }
  /** Makes a run the one restarts and the loop follow. */
  adopt(run: Run): void {
    this.active = run.spec;
    this.current = run;
  }

  /**
   * SIGTERM through the pidfd; to a server that has not answered yet, again every 200 ms until it
   * ends. A starting server can lose it: pid 1 ignores a signal it has no handler for, and node's
   * own first handler (before the server's code has run) re-raises it with the default action,
   * which pid 1 ignores as well. A caught-signal mask cannot tell those handlers apart, so a
   * server still starting gets the signal until it is gone; one that serves gets it once.
   */
  terminate(run: Run): void {
    if (run.ended) return;
    signal(run.pidfd, 'SIGTERM');
    if (run.served) return;
    run.termTimer = setInterval(() => {
      if (run.ended) return clearInterval(run.termTimer);
      try {
        signal(run.pidfd, 'SIGTERM');
      } catch {
        clearInterval(run.termTimer); // gone between the check and the signal
      }
    }, 200);
  }

  kill(run: Run): void {
    if (!run.ended) signal(run.pidfd, 'SIGKILL');
  }

  /** Once it has exited: its pidfd closed, its state deleted (once). */
  async reap(run: Run): Promise<ExitStatus> {
    const st = await run.exited;
    if (!run.reaped) {
      run.reaped = true;
      this.live.delete(run);
      fs.closeSync(run.pidfd);
      clearInterval(run.termTimer);
      // Before delete: the state dir holds the shim's last denials of this run.
      run.cannotRestart = this.shim?.runEnded(run.spec.id, run.served);
      deleteContainer(this.ctx, run.spec.id, true);
    }
    return st;
  }

  /** create + start; a setup or exec failure is not a crash: it is reported, not retried. */
  launch(spec: RunSpec, env: string[] = []): Run {
    const { ctx } = this;
    const { id, bundle } = spec;
    const config = env.length
      ? { ...spec.config, process: { ...spec.config.process!, env: [...(spec.config.process!.env ?? []), ...env] } }
      : spec.config;
    checkVolumes(config, bundle);
    this.o.onRunStart?.();
    // The container dies with us, also when we are killed (SIGKILL): nothing else would stop it.
    const launched = startCreated(ctx, create(ctx, { id, bundle, config, extraFds: listenerFds(this.o.listenerFd), dieWithRuntime: true }));
    const run: Run = {
      spec,
      pid: launched.pid,
      pidfd: launched.pidfd,
      startedAt: Date.now(),
      exited: undefined!,
      ended: false,
      served: false,
    };
    run.exited = native.waitPid(launched.pid).finally(() => (run.ended = true));
    this.live.add(run);
    // Every run's denials, a rollout's too, under its own id.
    this.shim?.watch(spec);
    return run;
  }

  markServing(run: Run): void {
    run.served = true;
    this.o.onReady?.();
  }

  /** One rollout at a time: a second one asked meanwhile is refused with a sentence. */
  rollout(req: RolloutRequest): Promise<RolloutResult> {
    if (this.rolling)
      return Promise.resolve({ ok: false, error: `a rollout of ${this.o.id} is already in progress: try again when it has ended` });
    this.rolling = rollOut(this, req).finally(() => (this.rolling = undefined));
    return this.rolling;
  }

  private async loop(): Promise<number> {
    let streak = 0;
    let served = false;
    // Stopping with a run still current (a rollout's), that run's end is awaited too.
    while (!this.stopping || this.current) {
      const run = (this.current ??= this.launch(this.active));
      void waitServing(this.o.address, () => !run.ended && !this.stopping && this.current === run).then((ok) => {
        if (!ok || run.served) return;
        this.markServing(run);
        if (!served) this.o.onServing();
        else this.o.say(`container ${run.spec.id} is serving again`);
        served = true;
      });
      const st = await run.exited;
      // A rollout in progress decides what this exit means: the handover, or its rollback.
      while (this.rolling) await this.rolling;
      if (this.current !== run) {
        served ||= !!this.current?.served;
        continue;
      }
      this.current = undefined;
      await this.reap(run);
      const { cannotRestart } = run;
      clearTimeout(this.killTimer);
      if (st.error) throw new HakoError(`waiting for container ${run.spec.id} (pid ${run.pid}) failed: errno ${st.error}`);
      if (this.stopping) {
        for (const other of [...this.live]) await this.reap(other);
        this.o.say(`container ${run.spec.id} stopped`);
        return 0;
      }
      const end: RunEnd = { code: st.code, signal: st.signal, ranMs: Date.now() - run.startedAt };
      if (cannotRestart) throw new HakoError(`container ${run.spec.id} ${describeEnd(end)}: ${cannotRestart}`);
      const d = decide(this.o.policy, end, streak);
      if (!d.restart) {
        if (d.reason === 'exhausted')
          throw new HakoError(
            `container ${run.spec.id} ${describeEnd(end)}: giving up after ${d.streak} restarts in a row (--max-restarts ${this.o.policy.maxRestarts})`,
          );
        this.o.say(`container ${run.spec.id} ${describeEnd(end)}; not restarting (--restart ${this.o.policy.mode})`);
        return exitCodeOf(end);
      }
      streak = d.streak;
      this.o.say(
        `container ${run.spec.id} ${describeEnd(end)}; restarting in ${d.delayMs / 1000} s (restart ${streak} of at most ${this.o.policy.maxRestarts} in a row)`,
      );
      await this.sleep(d.delayMs);
    }
    return 0;
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
