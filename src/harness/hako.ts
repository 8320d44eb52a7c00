// The library's entry: `new Hako()` starts real containers from the caller's own process,
// with no daemon and no CLI per call. Every container it starts is closed by close() (or
// `await using hako = new Hako()`), by its own close(), or by the exit guard.
import pino from 'pino';
import { HakoError } from '../errors.js';
import { native } from '../sys/native.js';
import { Store, checkId, defaultRoot, rootlessDefault, type Log, type RuntimeContext } from '../runtime/index.js';
import { launcher } from './launcher.js';
import { buildConfig, type ContainerOptions } from './options.js';
import { HakoContainer, type Result } from './container.js';
import { nullInput, openPipes, collect, type Pipe } from './pipes.js';
import { publish, type PublishedPort } from './ports.js';
import { CREATOR_ANNOTATION, creatorMark, sweepStale } from './guard.js';
import { asHakoError } from './errors.js';

export interface HakoOptions {
  /** The state directory (default: hako's, /run/hako or $XDG_RUNTIME_DIR/hako). */
  root?: string;
  /** Default: rootless unless the process runs as root. */
  rootless?: boolean;
  /** Where the runtime's warnings go (default: stderr, warnings and worse). */
  log?: Log;
}

let counter = 0;

export class Hako implements AsyncDisposable {
  readonly ctx: RuntimeContext;
  private readonly open = new Set<HakoContainer>();
  private swept = false;

  constructor(o: HakoOptions = {}) {
    this.ctx = {
      store: new Store(o.root ?? defaultRoot()),
      rootless: o.rootless ?? rootlessDefault(),
      log: o.log ?? pino({ level: 'warn' }, pino.destination({ fd: 2, sync: true })),
    };
  }

  /** Starts a container and leaves it running: read its stdout/stderr streams (a pipe holds
   *  64 KiB; a writer blocks when it is full), wait(), exec(), kill(), close(). */
  async start(o: ContainerOptions): Promise<HakoContainer> {
    const { config, bundle } = buildConfig('start', o, this.ctx.rootless);
    const id = o.id ?? `hako-${process.pid}-${++counter}`;
    try {
      checkId(id);
    } catch (e) {
      throw new HakoError(`start: id: ${(e as Error).message}`, 1, { step: 'options' });
    }
    if (!this.swept) {
      this.swept = true;
      sweepStale(this.ctx);
    }
    // Exec'd processes are reparented to us when hako's intermediate exits: ours to reap.
    native.setSubreaper();
    config.annotations = { ...config.annotations, [CREATOR_ANNOTATION]: creatorMark() };
    const ports: PublishedPort[] = [];
    const pipes: Pipe[] = [];
    try {
      for (const p of o.ports ?? []) ports.push(await publish(p, 'start'));
      pipes.push(...openPipes());
      const extraFds = [
        { from: nullInput(), to: 0 },
        { from: pipes[0]!.writeFd, to: 1 },
        { from: pipes[1]!.writeFd, to: 2 },
        ...ports.map((p, i) => ({ from: p.fd, to: 3 + i })),
      ];
      let launched;
      try {
        // create + start on the launcher thread: this event loop keeps turning meanwhile.
        launched = (await launcher(
          { op: 'start', root: this.ctx.store.root, rootless: this.ctx.rootless, id, bundle, config, extraFds },
          this.ctx.log,
        ))!;
      } catch (e) {
        throw asHakoError(e, 'start');
      } finally {
        // The container has its copies: the streams end when its last writer exits.
        for (const p of pipes) native.closeFd(p.writeFd);
      }
      const c = new HakoContainer(this.ctx, id, launched.pid, launched.pidfd, pipes[0]!.readable, pipes[1]!.readable, ports, (x) =>
        this.open.delete(x),
      );
      this.open.add(c);
      return c;
    } catch (e) {
      for (const p of pipes) p.readable.destroy();
      for (const p of ports) native.closeFd(p.fd);
      throw e;
    }
  }

  /** Runs a container to its end and removes it: its exit and its whole output. */
  async run(o: ContainerOptions): Promise<Result> {
    const c = await this.start(o);
    try {
      const [stdout, stderr, exit] = await Promise.all([collect(c.stdout), collect(c.stderr), c.wait()]);
      return { ...exit, stdout, stderr };
    } finally {
      await c.close();
    }
  }

  /** The containers this Hako has started and not closed. */
  containers(): HakoContainer[] {
    return [...this.open];
  }

  /** Closes every container this Hako started. */
  async close(): Promise<void> {
    const results = await Promise.allSettled([...this.open].map((c) => c.close()));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
