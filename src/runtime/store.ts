// The state store under --root: one directory per container holding
// state.json (written atomically) and the exec fifo; each id is locked with
// flock so concurrent commands cannot corrupt it.
import fs from 'node:fs';
import path from 'node:path';
import { HakoError } from '../errors.js';
import { native, LOCK_EX, LOCK_UN } from './native.js';
import { inUserNamespace } from '../plan/host.js';

/** runc's default roots: /run/hako as root, $XDG_RUNTIME_DIR/hako rootless (also as uid 0 of a user namespace, as runc does). */
export function defaultRoot(): string {
  if (process.geteuid!() === 0 && !(process.env.XDG_RUNTIME_DIR && inUserNamespace())) return '/run/hako';
  const xdg = process.env.XDG_RUNTIME_DIR;
  if (xdg) return path.join(xdg, 'hako');
  return path.join('/tmp', `hako-${process.geteuid!()}`);
}

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.+-]{0,1023}$/;

export function checkId(id: string | undefined): string {
  if (!id) throw new HakoError('a container id is required');
  if (!ID_RE.test(id) || id === '.' || id === '..')
    throw new HakoError(`invalid container id "${id}": use letters, digits and _ . + - (not starting with a symbol)`);
  return id;
}

export class Store {
  constructor(readonly root: string) {}

  dir(id: string): string {
    return path.join(this.root, checkId(id));
  }

  ensureRoot(): void {
    fs.mkdirSync(this.root, { recursive: true, mode: 0o700 });
  }

  /** Runs fn holding the id's lock (a lock file beside the container dirs, so
   *  it can be taken before the dir exists and outlive its removal). */
  withLock<T>(id: string, fn: () => T): T {
    this.ensureRoot();
    const lockPath = path.join(this.root, `.${checkId(id)}.lock`);
    const fd = fs.openSync(lockPath, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
    try {
      native.flock(fd, LOCK_EX);
      return fn();
    } finally {
      // Unlock explicitly: a child cloned meanwhile shares this open file
      // description, and closing our fd alone would leave it locked.
      native.flock(fd, LOCK_UN);
      fs.closeSync(fd);
    }
  }

  removeLock(id: string): void {
    fs.rmSync(path.join(this.root, `.${id}.lock`), { force: true });
  }

  ids(): string[] {
    try {
      return fs
        .readdirSync(this.root, { withFileTypes: true })
        .filter((d) => d.isDirectory() && fs.existsSync(path.join(this.root, d.name, 'state.json')))
        .map((d) => d.name)
        .sort();
    } catch {
      return [];
    }
  }
}

/** Writes a file so readers see the old or the new content, never half. */
export function writeAtomic(file: string, data: string, mode = 0o600): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, data, { mode });
  fs.renameSync(tmp, file);
}
