// The in-process harness: integration test suites start, exec into and tear
// down real containers from their own process, with no daemon and no CLI
// start-up per call. Output is captured through files mapped onto the
// container's fds 1 and 2.
//
//   const hako = new Hako();                       // rootless unless root
//   const c = hako.start({ bundle: 'bundles/fhir' });
//   const r = await c.exec(['/node', '-e', 'console.log(1)']);   // { code, stdout, stderr }
//   await hako.cleanup();                          // deletes every container it made
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino, { type Logger } from 'pino';
import {
  Store,
  defaultRoot,
  rootlessDefault,
  create,
  exec,
  kill,
  deleteContainer,
  startCreated,
  closeFd,
  Container,
  parseSignal,
  type RuntimeContext,
  type Config,
  type Process,
  type OciState,
} from '../runtime/index.js';
// Waiting for and reaping the init (we are its parent) are not on the runtime's face yet.
import { native } from '../sys/native.js';

export { HakoError } from '../errors.js';
export type { Config, Process, OciState };

export interface HakoOptions {
  /** State directory (default: hako's default root). */
  root?: string;
  /** Default: rootless unless running as root. */
  rootless?: boolean;
  log?: Logger;
}

export interface StartOptions {
  bundle: string;
  id?: string;
  /** A config to use instead of bundle/config.json (already valid). */
  config?: Config;
  /** Runtime fds to hand to the container: runtime fd -> container fd. */
  fds?: Array<{ from: number; to: number }>;
}

export interface Output {
  code: number;
  stdout: string;
  stderr: string;
}

/** Two temp files standing in for the container's stdout and stderr. */
class Capture {
  private readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-out-'));
  readonly out = fs.openSync(path.join(this.dir, 'out'), 'w+', 0o600);
  readonly err = fs.openSync(path.join(this.dir, 'err'), 'w+', 0o600);

  fds() {
    return [
      { from: this.out, to: 1 },
      { from: this.err, to: 2 },
    ];
  }
  read(): { stdout: string; stderr: string } {
    return { stdout: fs.readFileSync(path.join(this.dir, 'out'), 'utf8'), stderr: fs.readFileSync(path.join(this.dir, 'err'), 'utf8') };
  }
  dispose(): void {
    fs.closeSync(this.out);
    fs.closeSync(this.err);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

export class HarnessContainer {
  private exit?: Promise<number>;

  constructor(
    private readonly ctx: RuntimeContext,
    readonly id: string,
    readonly pid: number,
    private readonly capture: Capture,
  ) {}

  state(): OciState {
    return Container.load(this.ctx.store, this.id).ociState();
  }

  /** The init's output so far. */
  output(): { stdout: string; stderr: string } {
    return this.capture.read();
  }

  /** Resolves with the init's exit code (128+n for a signal). We are its parent. */
  wait(): Promise<number> {
    this.exit ??= native.waitPid(this.pid).then((s) => (s.signal ? 128 + s.signal : (s.code ?? 0)));
    return this.exit;
  }

  async exec(args: string[], opts: Partial<Process> = {}): Promise<Output> {
    const base = Container.load(this.ctx.store, this.id).config().process!;
    const cap = new Capture();
    try {
      const code = await exec(this.ctx, { id: this.id, process: { ...base, terminal: false, ...opts, args }, extraFds: cap.fds() });
      return { code, ...cap.read() };
    } finally {
      cap.dispose();
    }
  }

  kill(signal: string | number = 'SIGTERM', all = false): void {
    kill(this.ctx, this.id, parseSignal(String(signal)), all);
  }

  /** Kills what is left and removes the container. */
  async delete(): Promise<void> {
    deleteContainer(this.ctx, this.id, true);
    await this.wait().catch(() => 0);
    this.capture.dispose();
  }
}

let counter = 0;

export class Hako {
  readonly ctx: RuntimeContext;
  private readonly made = new Map<string, HarnessContainer>();

  constructor(o: HakoOptions = {}) {
    this.ctx = {
      store: new Store(o.root ?? defaultRoot()),
      rootless: o.rootless ?? rootlessDefault(),
      log: o.log ?? pino({ level: 'warn' }, pino.destination({ fd: 2, sync: true })),
    };
  }

  /** create + start, detached: the container runs until killed or deleted. A start that
   *  fails (start, or the exec after it) leaves nothing behind: no state dir, no zombie. */
  start(o: StartOptions): HarnessContainer {
    const id = o.id ?? `harness-${process.pid}-${++counter}`;
    const cap = new Capture();
    try {
      const created = create(this.ctx, { id, bundle: o.bundle, config: o.config, extraFds: [...cap.fds(), ...(o.fds ?? [])] });
      const launched = startCreated(this.ctx, created);
      closeFd(launched.pidfd);
      const c = new HarnessContainer(this.ctx, id, launched.pid, cap);
      this.made.set(id, c);
      return c;
    } catch (e) {
      cap.dispose();
      throw e;
    }
  }

  /** After a failed start: kill the init through its pidfd and reap it (we are its parent,
   *  unless a fork made it our grandchild), then delete --force what create left. */

  /** Runs a container to its end and returns its exit code and output. */
  async run(o: StartOptions): Promise<Output> {
    const c = this.start(o);
    const code = await c.wait();
    const out = c.output();
    await c.delete();
    this.made.delete(c.id);
    return { code, ...out };
  }

  list(): OciState[] {
    return this.ctx.store.ids().map((id) => Container.load(this.ctx.store, id).ociState());
  }

  /** Deletes every container this harness started. */
  async cleanup(): Promise<void> {
    for (const c of this.made.values()) await c.delete().catch(() => undefined);
    this.made.clear();
  }
}
