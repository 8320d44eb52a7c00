// The state store under --root: one directory per container holding
// state.json (written atomically) and the exec fifo; each id is locked with
// flock so concurrent commands cannot corrupt it.
//
// Whoever can write the state root decides which hooks hako runs and which
// processes it signals, so a root is used only when it is the caller's own:
// owned by the effective uid, not writable by group or others, not a symlink.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { HakoError } from '../errors.js';
import { native, LOCK_EX, LOCK_UN } from '../sys/native.js';
import { fromCwd } from '../sys/caller.js';
import { inUserNamespace } from '../host/facts.js';
import { fileError } from './input-file.js';

const { O_RDWR, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_RDONLY } = fs.constants; // libuv adds O_CLOEXEC itself

function code(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? (e as Error).message;
}

function ownedDir(dir: string, uid: number): boolean {
  const st = fs.lstatSync(dir, { throwIfNoEntry: false });
  return !!st && st.isDirectory() && st.uid === uid && (st.mode & 0o022) === 0;
}

/**
 * runc's default roots: /run/hako as root, $XDG_RUNTIME_DIR/hako rootless (also as uid 0
 * of a user namespace, as runc does). Rootless without XDG_RUNTIME_DIR: /run/user/UID/hako
 * when logind made that directory for us, else ~/.local/state/hako (the passwd home, not
 * $HOME, so every invocation of one user agrees on it). Never /tmp: anyone can squat there.
 */
export function defaultRoot(): string {
  const uid = process.geteuid!();
  const xdg = process.env.XDG_RUNTIME_DIR;
  if (uid === 0 && !(xdg && inUserNamespace())) return '/run/hako';
  // The XDG spec: a relative path is invalid and ignored.
  if (xdg && path.isAbsolute(xdg)) {
    const st = fs.statSync(xdg, { throwIfNoEntry: false });
    if (!st?.isDirectory())
      throw new HakoError(
        `XDG_RUNTIME_DIR=${xdg} ${st ? 'is not a directory' : 'does not exist'}: create it (mode 0700, owned by you), unset it, or choose a state root with --root`,
      );
    try {
      fs.accessSync(xdg, fs.constants.W_OK | fs.constants.X_OK);
    } catch {
      throw new HakoError(
        `XDG_RUNTIME_DIR=${xdg} is not writable by uid ${uid}: fix its owner or mode, unset it, or choose a state root with --root`,
      );
    }
    return path.join(xdg, 'hako');
  }
  const runUser = `/run/user/${uid}`;
  if (ownedDir(runUser, uid)) return path.join(runUser, 'hako');
  let home: string;
  try {
    home = os.userInfo().homedir;
  } catch {
    home = '';
  }
  if (!home || home === '/' || !ownedDir(home, uid))
    throw new HakoError(
      `no private place for hako's state: uid ${uid} has no XDG_RUNTIME_DIR, no ${runUser} and no home directory of its own; set XDG_RUNTIME_DIR or choose a state root with --root`,
    );
  return path.join(home, '.local/state/hako');
}

/** Why `dir` may not hold (or be the parent of) a state root, or null when it may. */
function untrusted(dir: string, st: fs.Stats, uid: number, what: string): string | null {
  if (st.isSymbolicLink()) return `${what} ${dir} is a symlink; name the real directory (${safeRealpath(dir)}) instead`;
  if (!st.isDirectory()) return `${what} ${dir} is not a directory`;
  if (st.uid !== uid)
    return `${what} ${dir} is owned by uid ${st.uid}, not by you (uid ${uid}): another user may have planted it; remove it or choose another with --root`;
  const by = [st.mode & 0o020 ? 'its group' : '', st.mode & 0o002 ? 'others' : ''].filter(Boolean).join(' and ');
  if (by)
    return `${what} ${dir} is writable by ${by} (mode ${(st.mode & 0o7777).toString(8)}): chmod go-w ${dir}, or choose another with --root`;
  return null;
}

function safeRealpath(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return p;
  }
}

/** The problem with using `root` as a state root, without creating anything; null when fine. */
export function rootProblem(root: string): string | null {
  const uid = process.geteuid!();
  let dir = fromCwd(root);
  let what = 'the state root';
  for (;;) {
    let st: fs.Stats | undefined;
    try {
      st = fs.lstatSync(dir, { throwIfNoEntry: false });
    } catch (e) {
      return `cannot inspect ${dir}: ${code(e)}`;
    }
    if (st) return untrusted(dir, st, uid, what);
    const up = path.dirname(dir);
    if (up === dir) return `${root} cannot be created`;
    dir = up;
    what = `${fromCwd(root)} does not exist yet and would be created in`;
  }
}

const MAX_ID = 200;
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.+-]*$/;

export function checkId(id: string | undefined): string {
  if (!id) throw new HakoError('a container id is required');
  // Lock file, cgroup and scope names must fit in NAME_MAX (255).
  if (id.length > MAX_ID) throw new HakoError(`invalid container id: it is ${id.length} characters long, at most ${MAX_ID} are allowed`);
  if (!ID_RE.test(id) || id === '.' || id === '..')
    throw new HakoError(`invalid container id "${id}": use letters, digits and _ . + - (not starting with a symbol)`);
  return id;
}

export class Store {
  private resolved: string | undefined;
  private checked = false;
  /** Locks this process holds, by id: removeLock() inside withLock() defers to its end. */
  private readonly held = new Set<string>();

  /** root: --root, or undefined for the default (decided when first needed, so verbs
   *  that never touch the store do not fail on a bad XDG_RUNTIME_DIR). */
  constructor(root?: string) {
    this.resolved = root === undefined ? undefined : fromCwd(root);
  }

  get root(): string {
    return (this.resolved ??= defaultRoot());
  }

  dir(id: string): string {
    return path.join(this.root, checkId(id));
  }

  private lockPath(id: string): string {
    return path.join(this.root, `.${checkId(id)}.lock`);
  }

  /** Refuses a root that is not the caller's own; false when it does not exist yet. */
  checkRoot(): boolean {
    if (this.checked) return true;
    let st: fs.Stats | undefined;
    try {
      st = fs.lstatSync(this.root, { throwIfNoEntry: false });
    } catch (e) {
      // ENOTDIR (a file on the way), EACCES (a directory we cannot search), ENAMETOOLONG
      throw new HakoError(`cannot use the state root ${this.root}: ${fileError(e)}`);
    }
    if (!st) return false;
    const why = untrusted(this.root, st, process.geteuid!(), 'the state root');
    if (why) throw new HakoError(why);
    this.checked = true;
    return true;
  }

  /** Creates the root (and missing parents) 0700, checking the directory it is created in
   *  and each level made, so nothing another user planted is used. */
  ensureRoot(): void {
    if (this.checkRoot()) return;
    const why = rootProblem(this.root);
    if (why) throw new HakoError(why);
    const missing: string[] = [];
    for (let d = this.root; !fs.lstatSync(d, { throwIfNoEntry: false }); d = path.dirname(d)) missing.unshift(d);
    const uid = process.geteuid!();
    for (const d of missing) {
      try {
        fs.mkdirSync(d, { mode: 0o700 });
      } catch (e) {
        if (code(e) !== 'EEXIST') throw new HakoError(`cannot create the state root ${this.root}: ${d}: ${code(e)}`);
      }
      // mkdir does not follow a symlink at d; one raced in (EEXIST) is caught here.
      const bad = untrusted(d, fs.lstatSync(d), uid, d === this.root ? 'the state root' : "the state root's parent");
      if (bad) throw new HakoError(bad);
    }
    this.checked = true;
  }

  /** Whether a container directory for id exists (no lock, nothing created). */
  has(id: string): boolean {
    const dir = this.dir(id);
    if (!this.checkRoot()) return false;
    return !!fs.lstatSync(dir, { throwIfNoEntry: false })?.isDirectory();
  }

  /** Runs fn holding the id's lock: a file beside the container dirs, so it can be taken
   *  before the dir exists. It lives only as long as the container: once fn leaves no
   *  directory for the id (an id that does not exist, a delete, a failed create), the lock
   *  file is removed before it is released. Whoever waited on a removed lock file sees that
   *  the path no longer names it, and takes the lock again. */
  withLock<T>(id: string, fn: () => T): T {
    checkId(id);
    this.ensureRoot();
    const lockPath = this.lockPath(id);
    let fd: number;
    for (;;) {
      try {
        fd = fs.openSync(lockPath, O_RDWR | O_CREAT | O_NOFOLLOW, 0o600);
      } catch (e) {
        if (code(e) === 'ELOOP') throw new HakoError(`${lockPath} is a symlink: hako does not follow it; remove it`);
        if (code(e) === 'ENAMETOOLONG') throw new HakoError(`container id "${id}" is too long for the state root ${this.root}`);
        throw new HakoError(`cannot open the lock ${lockPath}: ${code(e)}`);
      }
      native.flock(fd, LOCK_EX);
      const held = fs.fstatSync(fd);
      const now = fs.lstatSync(lockPath, { throwIfNoEntry: false });
      if (now && now.ino === held.ino && now.dev === held.dev) {
        if (!held.isFile()) {
          this.release(fd);
          throw new HakoError(`${lockPath} is not a regular file; remove it`);
        }
        break;
      }
      this.release(fd); // removed (or replaced) while we waited: not the lock any more
    }
    this.held.add(id);
    try {
      return fn();
    } finally {
      this.held.delete(id);
      try {
        if (!fs.lstatSync(this.dir(id), { throwIfNoEntry: false })) fs.unlinkSync(lockPath);
      } catch {
        // already gone
      }
      this.release(fd);
    }
  }

  private release(fd: number): void {
    // Unlock explicitly: a child cloned meanwhile shares this open file
    // description, and closing our fd alone would leave it locked.
    native.flock(fd, LOCK_UN);
    fs.closeSync(fd);
  }

  /** The lock goes with its container: inside withLock() that happens as the lock is released. */
  removeLock(id: string): void {
    if (this.held.has(id)) return;
    fs.rmSync(this.lockPath(id), { force: true });
  }

  ids(): string[] {
    try {
      if (!this.checkRoot()) return [];
      return fs
        .readdirSync(this.root, { withFileTypes: true })
        .filter((d) => d.isDirectory() && fs.existsSync(path.join(this.root, d.name, 'state.json')))
        .map((d) => d.name)
        .sort();
    } catch (e) {
      if (e instanceof HakoError) throw e;
      return [];
    }
  }
}

/** Writes a file so readers see the old or the new content, never half. The temp file is
 *  created beside it under an unpredictable name with O_EXCL|O_NOFOLLOW, so a symlink
 *  planted in a shared directory (a --pid-file in /tmp) is never written through; the
 *  rename then replaces whatever is at `file` (a symlink included) instead of following it. */
export function writeAtomic(file: string, data: string, mode = 0o600): void {
  const dir = path.dirname(file);
  const base = path.basename(file);
  let tmp = '';
  let fd = -1;
  for (let tries = 0; fd < 0; tries++) {
    tmp = path.join(dir, `.${base}.${randomBytes(8).toString('hex')}.tmp`);
    try {
      fd = fs.openSync(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
    } catch (e) {
      if (code(e) === 'EEXIST' && tries < 16) continue;
      throw new HakoError(`cannot write ${file}: ${code(e) === 'ENOENT' ? `${dir} does not exist` : code(e)}`);
    }
  }
  try {
    try {
      fs.writeFileSync(fd, data);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw new HakoError(`cannot write ${file}: ${code(e)}`);
  }
}

/** Reads a file hako wrote into its own state dir: never through a symlink, and only a
 *  regular file of sane size. Throws the errno code (ENOENT, ELOOP…) as a plain Error. */
export function readOwnFile(file: string, maxBytes = 16 << 20): string {
  const fd = fs.openSync(file, O_RDONLY | O_NOFOLLOW);
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw Object.assign(new Error(`${file} is not a regular file`), { code: 'EINVAL' });
    if (st.size > maxBytes) throw Object.assign(new Error(`${file} is too large`), { code: 'EFBIG' });
    return fs.readFileSync(fd, 'utf8');
  } finally {
    fs.closeSync(fd);
  }
}
