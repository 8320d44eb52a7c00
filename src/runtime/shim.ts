// The preload shim at run time (docs/limits.md): its directory in the state dir filled before
// the container's init runs, the check after start that the container's first process loaded
// it (the loader skips an unreadable preload file without a word), and the denials it writes —
// one JSON line each — read back and logged with the container's id.
//
// Everything in the shim's table and denial files was written by the container: it is read
// through O_NOFOLLOW|O_NONBLOCK, only when it is a regular file, in bounded amounts, and parsed
// as untrusted JSON. The runtime never writes them after creating them.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { HakoError } from '../errors.js';
import type { Config } from '../oci/config.js';
import { FS } from '../landlock/access.js';
import type { LandlockRules } from '../plan/security.js';
import {
  parseShimAnnotations,
  SHIM_FILES,
  SHIM_TABLE,
  shimConfigText,
  shimContainerDir,
  shimTableSize,
  type ShimConfig,
} from '../plan/shim.js';
import { procStat, sleepMs } from '../sys/proc.js';
import type { Log } from './context.js';

/** The library the build makes (binding.gyp's hako-shim target). */
export const SHIM_LIBRARY = fileURLToPath(new URL('../../build/Release/hako-shim.so', import.meta.url));

/** The shim's directory inside a container's state dir. */
export const SHIM_DIR_NAME = 'shim';
/** How far the denials were read and logged (the state dir's, never mounted into the container). */
const OFFSET_FILE = 'shim-denials.offset';

const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK, O_WRONLY, O_CREAT, O_EXCL } = fs.constants;

function writeNew(file: string, data: string | Uint8Array, mode: number): void {
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  const fd = fs.openSync(file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
  try {
    fs.writeSync(fd, bytes);
    fs.fchmodSync(fd, mode); // the umask does not decide who in the container may read it
  } finally {
    fs.closeSync(fd);
  }
}

/** Fills the shim's directory: the library (a copy: the container never sees the build tree),
 *  its configuration, the process table and the denial log (writable by every uid of the
 *  container: they are bound over themselves in it), and the one-line /etc/ld.so.preload. */
export function prepareShimDir(dir: string, c: ShimConfig, containerDir: string): void {
  let lib: Buffer;
  try {
    lib = fs.readFileSync(SHIM_LIBRARY);
  } catch (e) {
    throw new HakoError(
      `the run.hako.shim.* annotations need the preload shim ${SHIM_LIBRARY}, which cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): run \`npm run build\``,
    );
  }
  fs.mkdirSync(dir, { mode: 0o755 });
  fs.chmodSync(dir, 0o755);
  writeNew(path.join(dir, SHIM_FILES.library), lib, 0o644);
  writeNew(path.join(dir, SHIM_FILES.config), shimConfigText(c), 0o644);
  const table = Buffer.alloc(shimTableSize(c));
  table.writeUInt32LE(SHIM_TABLE.MAGIC, 0);
  table.writeUInt32LE(SHIM_TABLE.VERSION, 4);
  table.writeUInt32LE(c.processes ?? 0, 12);
  writeNew(path.join(dir, SHIM_FILES.table), table, 0o666);
  writeNew(path.join(dir, SHIM_FILES.denials), '', 0o666);
  writeNew(path.join(dir, SHIM_FILES.preload), `${path.posix.join(containerDir, SHIM_FILES.library)}\n`, 0o644);
}

/** Landlock rules for the shim's two shared files: every process of the container claims
 *  process slots in the table and appends its denials to the log, so a ruleset that handles
 *  file access (a read-only / in the FHIR bundle) must let it read and write those two files,
 *  and nothing else there. Without them the shim cannot keep its limits and stops the program. */
export function withShimLandlock(cfg: Config, landlock: LandlockRules): LandlockRules {
  if (!landlock.handledFs || !parseShimAnnotations(cfg.annotations)) return landlock;
  const dir = shimContainerDir(cfg);
  const access = (FS.READ_FILE | FS.WRITE_FILE) & landlock.handledFs;
  const files = [SHIM_FILES.table, SHIM_FILES.denials].map((f) => ({ access, path: path.posix.join(dir, f) }));
  return { ...landlock, paths: [...landlock.paths, ...files] };
}

/** Opens a file the container can write, only as the regular file it must be. */
function openUntrusted(file: string): number | null {
  let fd: number;
  try {
    fd = fs.openSync(file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch {
    return null;
  }
  if (!fs.fstatSync(fd).isFile()) {
    fs.closeSync(fd);
    return null;
  }
  return fd;
}

/** The pid (in the container) of the first process that loaded the shim, 0 for none yet. */
export function shimLoadedBy(dir: string): number {
  const fd = openUntrusted(path.join(dir, SHIM_FILES.table));
  if (fd === null) return 0;
  try {
    const b = Buffer.alloc(16);
    return fs.readSync(fd, b, 0, 16, 0) === 16 && b.readUInt32LE(0) === SHIM_TABLE.MAGIC ? b.readInt32LE(8) : 0;
  } finally {
    fs.closeSync(fd);
  }
}

/** A process's pid in its own (innermost) pid namespace: what getpid() returns there. */
function innermostPid(hostPid: number): number | null {
  try {
    const m = /^NSpid:\s*(.+)$/m.exec(fs.readFileSync(`/proc/${hostPid}/status`, 'utf8'));
    return m ? Number(m[1]!.trim().split(/\s+/).at(-1)) : hostPid;
  } catch {
    return null;
  }
}

export type ShimLoad = { loaded: true } | { loaded: false; why: string } | { gone: true };

/** Waits (after start) until the container's first process says the shim loaded in it. A
 *  process that is gone already ran: nothing is left to refuse, its exit status speaks. */
export function waitShimLoaded(dir: string, hostPid: number, timeoutMs = 5000): ShimLoad | { gone: true; loaded?: undefined } {
  const expected = innermostPid(hostPid);
  for (let t = 0; ; t += 2) {
    const by = shimLoadedBy(dir);
    if (by !== 0) {
      if (by === expected) return { loaded: true };
      return { loaded: false, why: `it loaded in process ${by} of the container, not in its first process (${expected})` };
    }
    const st = procStat(hostPid);
    if (!st || st.state === 'Z' || st.state === 'X') return { gone: true };
    if (t >= timeoutMs) break;
    sleepMs(2);
  }
  let exe = 'its program';
  try {
    exe = fs.readlinkSync(`/proc/${hostPid}/exe`);
  } catch {
    // not ours to read
  }
  return {
    loaded: false,
    why: `${exe} did not load it within ${timeoutMs / 1000} s: a statically linked program, or a loader that ignores /etc/ld.so.preload`,
  };
}

/** One denial as the shim writes it (native/preload/report.c); only `kind` and `call` are sure. */
export interface ShimDenial {
  kind: 'memory' | 'processes' | 'files' | 'connect' | 'exec' | 'dropped' | string;
  call: string;
  pid?: number;
  exe?: string;
  limit?: number;
  requested?: number;
  used?: number;
  open?: number;
  target?: string;
  path?: string;
}

/** Parses one line of the denial log; null for anything else (it is the container's writing). */
export function parseDenial(line: string): ShimDenial | null {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return null;
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) return null;
  const o = v as Record<string, unknown>;
  if (o.shim !== 1 || typeof o.kind !== 'string' || typeof o.call !== 'string') return null;
  const d: ShimDenial = { kind: o.kind.slice(0, 32), call: o.call.slice(0, 64) };
  for (const k of ['pid', 'limit', 'requested', 'used', 'open'] as const) if (typeof o[k] === 'number') d[k] = o[k];
  for (const k of ['exe', 'target', 'path'] as const) if (typeof o[k] === 'string') d[k] = o[k].slice(0, 512);
  return d;
}

/** One sentence for the log. */
export function describeDenial(id: string, d: ShimDenial): string {
  const who = `${d.exe ?? 'a process'}${d.pid !== undefined ? ` (pid ${d.pid})` : ''}`;
  const head = `container ${id}: the preload shim refused ${d.call} to ${who}`;
  switch (d.kind) {
    case 'memory':
      return `${head}: ${d.requested ?? '?'} more bytes would pass its memory ceiling of ${d.limit ?? '?'} (${d.used ?? '?'} held)`;
    case 'processes':
      return `${head}: the container is at its ceiling of ${d.limit ?? '?'} processes and threads`;
    case 'files':
      return `${head}: it holds ${d.open ?? '?'} descriptors, its ceiling is ${d.limit ?? '?'}`;
    case 'connect':
      return `${head}: ${d.target ?? '?'} is not in run.hako.shim.connect`;
    case 'exec':
      return `${head}: ${d.path ?? '?'} is not in run.hako.shim.exec`;
    case 'dropped':
      return `container ${id}: ${who} was refused more often than the shim reports; later denials of that process are not logged`;
    default:
      return `${head}: ${d.kind}`;
  }
}

const READ_MAX = 1 << 20; // per call: a container cannot make the runtime read without end

/** Reads the denials written since the last call (the offset lives in the state dir) and
 *  hands each to onDenial; returns how many. Lines that do not parse are skipped. */
export function readNewDenials(stateDir: string, onDenial: (d: ShimDenial) => void): number {
  const fd = openUntrusted(path.join(stateDir, SHIM_DIR_NAME, SHIM_FILES.denials));
  if (fd === null) return 0;
  const offsetFile = path.join(stateDir, OFFSET_FILE);
  let offset = 0;
  try {
    offset = Number(fs.readFileSync(offsetFile, 'utf8')) || 0;
  } catch {
    // first read
  }
  let n = 0;
  try {
    const size = fs.fstatSync(fd).size;
    if (size < offset) offset = 0; // truncated from inside: start again
    const len = Math.min(size - offset, READ_MAX);
    if (len <= 0) return 0;
    const buf = Buffer.alloc(len);
    const got = fs.readSync(fd, buf, 0, len, offset);
    const text = buf.subarray(0, got).toString('utf8');
    const end = text.lastIndexOf('\n');
    if (end < 0) return 0; // half a line: next time
    for (const line of text.slice(0, end).split('\n')) {
      const d = parseDenial(line);
      if (d) {
        n++;
        onDenial(d);
      }
    }
    offset += Buffer.byteLength(text.slice(0, end + 1));
    fs.writeFileSync(offsetFile, String(offset), { mode: 0o600 });
  } finally {
    fs.closeSync(fd);
  }
  return n;
}

/** Logs the denials written since the last call, one warning each. */
export function logNewDenials(log: Log, id: string, stateDir: string, onDenial?: (d: ShimDenial) => void): number {
  return readNewDenials(stateDir, (d) => {
    log.warn(describeDenial(id, d));
    onDenial?.(d);
  });
}

export interface DenialWatch {
  /** Reads what is left and stops. */
  stop(): void;
}

/** Polls the denial log while the container runs (`hako run`, `hako up`): each denial is
 *  logged, and handed to onDenial (`hako up` posts a FHIR AuditEvent for it). */
export function watchShimDenials(log: Log, id: string, stateDir: string, onDenial?: (d: ShimDenial) => void, everyMs = 250): DenialWatch {
  const poll = () => {
    try {
      logNewDenials(log, id, stateDir, onDenial);
    } catch (e) {
      log.debug(`reading the shim's denials of ${id}: ${(e as Error).message}`);
    }
  };
  const timer = setInterval(poll, everyMs);
  timer.unref();
  return {
    stop: () => {
      clearInterval(timer);
      poll();
    },
  };
}

/** Whether a container's state dir holds a shim directory (it was created with one). */
export function hasShim(stateDir: string): boolean {
  return fs.existsSync(path.join(stateDir, SHIM_DIR_NAME));
}
