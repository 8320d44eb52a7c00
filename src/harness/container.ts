// One running container as a test holds it: its output as streams, its exit as a promise,
// signals through its pidfd, exec'd processes, and close() (or `await using`) that always
// leaves nothing: processes, state dir, cgroup, pipes, published ports.
import os from 'node:os';
import type net from 'node:net';
import { HakoError } from '../errors.js';
import { native, type ExitStatus } from '../sys/native.js';
import { Container as StoredContainer, parseSignal, type OciState, type Process, type RuntimeContext } from '../runtime/index.js';
import { launcher, type LaunchError } from './launcher.js';
import { waitExit } from './reaper.js';
import { collect, nullInput, openPipes, type Pipe } from './pipes.js';
import { guard, unguard, type Guarded } from './guard.js';
import { asHakoError } from './errors.js';
import type { PublishedPort } from './ports.js';

export interface Exit {
  /** The exit code, or 128 + the signal's number when a signal ended it (as a shell says). */
  code: number;
  /** The signal that ended it, or null. */
  signal: NodeJS.Signals | null;
}

export interface Result extends Exit {
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  env?: Record<string, string>;
  cwd?: string;
  user?: number | { uid: number; gid?: number; additionalGids?: number[] };
}

const SIGNAL_NAMES = Object.fromEntries(Object.entries(os.constants.signals).map(([k, v]) => [v, k])) as Record<number, NodeJS.Signals>;

function toExit(st: ExitStatus): Exit {
  if (st.signal) return { code: 128 + st.signal, signal: SIGNAL_NAMES[st.signal] ?? null };
  return { code: st.code ?? 0, signal: null };
}

function sendSignal(pidfd: number, signal: string | number): boolean {
  return native.pidfdSignal(pidfd, typeof signal === 'number' ? signal : parseSignal(signal)) === 0;
}

/** A process started by exec: streamed like the container's own. */
export class ExecProcess {
  constructor(
    readonly pid: number,
    private readonly pidfd: number,
    readonly stdout: net.Socket,
    readonly stderr: net.Socket,
    private readonly exited: Promise<Exit>,
  ) {}

  wait(): Promise<Exit> {
    return this.exited;
  }

  /** true when the signal was sent, false when the process had exited already. */
  kill(signal: string | number = 'SIGTERM'): boolean {
    return sendSignal(this.pidfd, signal);
  }
}

export class HakoContainer implements AsyncDisposable {
  private readonly exited: Promise<Exit>;
  private readonly guarded: Guarded;
  private closing?: Promise<void>;

  constructor(
    private readonly ctx: RuntimeContext,
    readonly id: string,
    /** The init's pid, in this process's pid namespace. */
    readonly pid: number,
    private readonly pidfd: number,
    readonly stdout: net.Socket,
    readonly stderr: net.Socket,
    private readonly published: PublishedPort[],
    private readonly onClosed: (c: HakoContainer) => void,
  ) {
    this.guarded = { ctx, id, pids: new Set([pid]), pidfd };
    guard(this.guarded);
    this.exited = this.reap(pid);
  }

  /** Published ports: the container's port and the host address serving it. */
  get ports(): Array<{ container: number; host: string; port: number }> {
    return this.published.map(({ container, host, port }) => ({ container, host, port }));
  }

  /** "HOST:PORT" of a published container port. */
  address(containerPort: number): string {
    const p = this.published.find((x) => x.container === containerPort);
    if (!p) throw new HakoError(`container "${this.id}": port ${containerPort} is not published`, 1, { step: 'ports' });
    return `${p.host}:${p.port}`;
  }

  private reap(pid: number): Promise<Exit> {
    return waitExit(pid).then((st) => {
      this.guarded.pids.delete(pid);
      return toExit(st);
    });
  }

  /** Resolves when the container's process exits. */
  wait(): Promise<Exit> {
    return this.exited;
  }

  /** Signals the init (default SIGTERM); false when it had exited already. */
  kill(signal: string | number = 'SIGTERM'): boolean {
    if (this.closing) return false;
    return sendSignal(this.pidfd, signal);
  }

  state(): OciState {
    if (this.closing) throw new HakoError(`container "${this.id}" is closed`, 1, { step: 'state' });
    return StoredContainer.load(this.ctx.store, this.id).ociState();
  }

  /** A new process in the container, streamed; wait() for its exit. */
  async spawn(args: string[], opts: ExecOptions = {}): Promise<ExecProcess> {
    const where = `exec into container "${this.id}"`;
    if (this.closing) throw new HakoError(`${where}: it is closed`, 1, { step: 'exec' });
    if (!Array.isArray(args) || !args.length || !args.every((a) => typeof a === 'string'))
      throw new HakoError(`${where}: args: expected a non-empty array of strings`, 1, { step: 'options' });
    const pipes: Pipe[] = [];
    let launched;
    try {
      const base = StoredContainer.load(this.ctx.store, this.id).config().process!;
      const env = opts.env
        ? [
            ...(base.env ?? []).filter((e) => !Object.hasOwn(opts.env!, e.split('=')[0]!)),
            ...Object.entries(opts.env).map(([k, v]) => `${k}=${v}`),
          ]
        : base.env;
      const user =
        opts.user === undefined
          ? base.user
          : typeof opts.user === 'number'
            ? { uid: opts.user, gid: opts.user }
            : { gid: opts.user.uid, ...opts.user };
      const process: Process = { ...base, terminal: false, args, env, cwd: opts.cwd ?? base.cwd, user };
      pipes.push(...openPipes());
      const extraFds = [
        { from: nullInput(), to: 0 },
        { from: pipes[0]!.writeFd, to: 1 },
        { from: pipes[1]!.writeFd, to: 2 },
      ];
      launched = (await launcher(
        { op: 'exec', root: this.ctx.store.root, rootless: this.ctx.rootless, id: this.id, process, extraFds },
        this.ctx.log,
      ))!;
    } catch (e) {
      for (const p of pipes) p.readable.destroy();
      // Started, then its exec failed: ours to kill and reap.
      const held = e as LaunchError;
      if (held.pidfd !== undefined && held.pid !== undefined) {
        this.guarded.pids.add(held.pid);
        native.pidfdSignal(held.pidfd, 9);
        await this.reap(held.pid);
        native.closeFd(held.pidfd);
      }
      throw asHakoError(e, 'exec');
    } finally {
      for (const p of pipes) native.closeFd(p.writeFd);
    }
    const { pid, pidfd } = launched;
    this.guarded.pids.add(pid);
    const exited = this.reap(pid);
    void exited.then(() => native.closeFd(pidfd));
    return new ExecProcess(pid, pidfd, pipes[0]!.readable, pipes[1]!.readable, exited);
  }

  /** Runs a process in the container to its end: its exit and its whole output. */
  async exec(args: string[], opts: ExecOptions = {}): Promise<Result> {
    const p = await this.spawn(args, opts);
    const [stdout, stderr, exit] = await Promise.all([collect(p.stdout), collect(p.stderr), p.wait()]);
    return { ...exit, stdout, stderr };
  }

  /** Kills what is left and removes the container: safe to call again (and from `await using`). */
  close(): Promise<void> {
    this.closing ??= this.remove();
    return this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private async remove(): Promise<void> {
    try {
      native.pidfdSignal(this.pidfd, 9);
      await this.exited;
      // Exec'd processes die with the pid namespace; they are ours to reap (the init waits for it).
      await Promise.all([...this.guarded.pids].map((pid) => waitExit(pid)));
      await launcher({ op: 'delete', root: this.ctx.store.root, rootless: this.ctx.rootless, id: this.id }, this.ctx.log);
    } catch (e) {
      throw asHakoError(e, 'close');
    } finally {
      unguard(this.id);
      native.closeFd(this.pidfd);
      for (const p of this.published) native.closeFd(p.fd);
      // Drained or not, our ends go: nothing else will read them now.
      this.stdout.destroy();
      this.stderr.destroy();
      this.onClosed(this);
    }
  }
}
