// The preload shim (native/preload, docs/limits.md): the run.hako.shim.* annotations parsed
// and checked, the configuration file the shim reads, and the plan steps that put it in the
// container's view — its directory bound read-only, its two shared files bound writable over
// themselves, and a generated /etc/ld.so.preload bound read-only over the rootfs's own, so
// unsetting LD_PRELOAD or `env -i` does not remove it.
//
// It is a second layer, not a sandbox: static binaries, raw system calls and io_uring go
// around it. seccomp, rlimits and cgroups are the backstop where they exist.
import net from 'node:net';
import path from 'node:path';
import type { Config } from '../oci/config.js';
import { HakoError } from '../errors.js';
import { MNT_OPT, type Step } from './ops.js';
import { MS } from './mount-options.js';

export const SHIM_PREFIX = 'run.hako.shim.';
const KEYS = ['memory', 'processes', 'files', 'connect', 'exec'] as const;
type Key = (typeof KEYS)[number];

export type ConnectRule = { family: 'inet' | 'inet6'; addr: string; prefix: number; port: number } | { family: 'unix'; path: string };

export interface ShimConfig {
  /** bytes a process may hold (heap blocks and committed anonymous mappings) */
  memory?: number;
  /** processes and threads in the whole container */
  processes?: number;
  /** open descriptors in a process */
  files?: number;
  /** connect() may reach only these; absent: anything */
  connect?: ConnectRule[];
  /** programs that may be executed (after the first); absent: any */
  exec?: string[];
}

/** The files of the shim's directory (the runtime's state dir holds it; the container sees it read-only). */
export const SHIM_FILES = { library: 'hako-shim.so', config: 'config', table: 'table', denials: 'denials', preload: 'ld.so.preload' };

/** The process table's layout (native/preload/shim.h struct shim_table). */
export const SHIM_TABLE = { MAGIC: 0x6b6f6861, VERSION: 1, HEADER: 64, SLOT: 8 } as const;

/** A shim memory ceiling may not be smaller than this: below it not even the loader's own
 *  allocations fit, and the program dies before main with no sentence to show for it. */
export const MIN_SHIM_MEMORY = 1 << 20;
/** The process table holds one slot per process; this many at most. */
export const MAX_SHIM_PROCESSES = 1 << 20;
const MAX_RULES = 64; // SHIM_MAX_CONNECT, SHIM_MAX_EXEC
const MAX_PATH = 4095;

const where = (key: Key) => `config.json: annotations["${SHIM_PREFIX}${key}"]`;

const UNITS: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 };

/** "512M" -> bytes. K, M and G are powers of 1024, as in docker's --memory. */
export function parseBytes(value: string, key: Key): number {
  const m = /^\s*(\d+)\s*([KMG]?)i?B?\s*$/i.exec(value);
  if (!m) throw new HakoError(`${where(key)}: "${value}" is not a size: write bytes, or a whole number with K, M or G (512M)`);
  const n = Number(m[1]) * UNITS[m[2]!.toUpperCase()]!;
  if (!Number.isSafeInteger(n)) throw new HakoError(`${where(key)}: "${value}" is too large`);
  if (n === 0) throw new HakoError(`${where(key)}: a ceiling of 0 would refuse every allocation: remove the annotation for none`);
  if (n < MIN_SHIM_MEMORY)
    throw new HakoError(`${where(key)}: "${value}" is below 1M, too little for any dynamically linked program to start`);
  return n;
}

function parseCount(value: string, key: Key, max: number): number {
  if (!/^\s*\d+\s*$/.test(value)) throw new HakoError(`${where(key)}: "${value}" is not a whole number`);
  const n = Number(value);
  if (n === 0) throw new HakoError(`${where(key)}: a ceiling of 0 would refuse everything: remove the annotation for none`);
  if (n > max) throw new HakoError(`${where(key)}: ${n} is more than the ${max} the shim can count`);
  return n;
}

function prefixLength(s: string | undefined, max: number, item: string): number {
  if (s === undefined) return max;
  if (!/^\d+$/.test(s) || Number(s) > max) throw new HakoError(`${where('connect')}: "${item}": the prefix must be 0 to ${max}`);
  return Number(s);
}

function portOf(s: string, item: string): number {
  if (s === '*') return 0;
  if (!/^\d+$/.test(s) || Number(s) < 1 || Number(s) > 65535)
    throw new HakoError(`${where('connect')}: "${item}": the port must be 1 to 65535, or * for any`);
  return Number(s);
}

/** One connect rule: 10.0.0.0/8:5432, 127.0.0.1:8080, [::1]:443, [fd00::]/8:*, /run/db.sock, /data/lock.* (a prefix), @abstract. */
export function parseConnectRule(item: string): ConnectRule {
  if (item.startsWith('/') || item.startsWith('@')) {
    if (item.length > 107) throw new HakoError(`${where('connect')}: "${item}": a unix socket path has at most 107 bytes`);
    if (item.slice(0, -1).includes('*'))
      throw new HakoError(`${where('connect')}: "${item}": a * may only end a unix socket path (/data/lock.* for every path it begins)`);
    return { family: 'unix', path: item };
  }
  const v6 = /^\[([^\]]+)\](?:\/(\d+))?:([^:]+)$/.exec(item);
  if (v6) {
    if (!net.isIPv6(v6[1]!)) throw new HakoError(`${where('connect')}: "${item}": "${v6[1]}" is not an IPv6 address`);
    return { family: 'inet6', addr: v6[1]!, prefix: prefixLength(v6[2], 128, item), port: portOf(v6[3]!, item) };
  }
  const v4 = /^([^/:\s]+)(?:\/(\d+))?:([^:]+)$/.exec(item);
  if (v4) {
    if (!net.isIPv4(v4[1]!))
      throw new HakoError(`${where('connect')}: "${item}": "${v4[1]}" is not an IPv4 address (IPv6 goes in brackets: [::1]:443)`);
    return { family: 'inet', addr: v4[1]!, prefix: prefixLength(v4[2], 32, item), port: portOf(v4[3]!, item) };
  }
  throw new HakoError(`${where('connect')}: "${item}" is not ADDR[/PREFIX]:PORT, [IPv6][/PREFIX]:PORT or a unix socket path`);
}

function list(value: string, key: Key): string[] {
  const items = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (items.length > MAX_RULES) throw new HakoError(`${where(key)}: ${items.length} entries, more than the ${MAX_RULES} the shim takes`);
  return items;
}

function parseExecPath(item: string): string {
  if (!item.startsWith('/')) throw new HakoError(`${where('exec')}: "${item}" is not an absolute path`);
  if (item.length > MAX_PATH || /[\n\0]/.test(item)) throw new HakoError(`${where('exec')}: "${item.slice(0, 80)}" is not a usable path`);
  return path.posix.normalize(item);
}

/** The shim's configuration from the annotations, or null when none asks for it. An unknown
 *  run.hako.shim.* key is refused: a misspelt limit must not silently be no limit. */
export function parseShimAnnotations(annotations: Record<string, string> | undefined): ShimConfig | null {
  const mine = Object.entries(annotations ?? {}).filter(([k]) => k.startsWith(SHIM_PREFIX));
  if (!mine.length) return null;
  const cfg: ShimConfig = {};
  for (const [k, value] of mine) {
    const key = k.slice(SHIM_PREFIX.length) as Key;
    if (!KEYS.includes(key))
      throw new HakoError(
        `config.json: annotations["${k}"]: unknown shim setting; hako knows ${KEYS.map((x) => SHIM_PREFIX + x).join(', ')}`,
      );
    if (key === 'memory') cfg.memory = parseBytes(value, key);
    else if (key === 'processes') cfg.processes = parseCount(value, key, MAX_SHIM_PROCESSES);
    else if (key === 'files') cfg.files = parseCount(value, key, 1 << 20);
    else if (key === 'connect') cfg.connect = list(value, key).map(parseConnectRule);
    else cfg.exec = list(value, key).map(parseExecPath);
  }
  return cfg;
}

/** The text the shim parses (native/preload/config.c). */
export function shimConfigText(c: ShimConfig): string {
  const lines: string[] = [];
  if (c.memory) lines.push(`memory ${c.memory}`);
  if (c.processes) lines.push(`processes ${c.processes}`);
  if (c.files) lines.push(`files ${c.files}`);
  if (c.connect) {
    lines.push('connect-set');
    for (const r of c.connect)
      lines.push(r.family === 'unix' ? `connect unix ${r.path}` : `connect ${r.family} ${r.addr} ${r.prefix} ${r.port}`);
  }
  if (c.exec) {
    lines.push('exec-set');
    for (const p of c.exec) lines.push(`exec ${p}`);
  }
  return lines.join('\n') + '\n';
}

/** Slots in the process table: the ceiling, or none when processes are not limited. */
export function shimTableSize(c: ShimConfig): number {
  return SHIM_TABLE.HEADER + SHIM_TABLE.SLOT * (c.processes ?? 0);
}

/** Where the container sees the shim's directory: in /dev when the config mounts a tmpfs
 *  there (nothing is created in the rootfs), else at the rootfs's top. */
export function shimContainerDir(cfg: Config): string {
  const devTmpfs = (cfg.mounts ?? []).some((m) => path.posix.normalize(m.destination) === '/dev' && m.type === 'tmpfs');
  return devTmpfs ? '/dev/.hako-shim' : '/.hako-shim';
}

const IN_ROOT = MNT_OPT.TARGET_IN_ROOT;

function bind(source: string, dest: string, extra: number, what: string): Step[] {
  return [
    { op: 'MOUNT', args: [source, dest, '', MS.BIND, '', IN_ROOT | MNT_OPT.NO_SYMLINKS], what },
    {
      op: 'MOUNT',
      args: ['', dest, '', MS.REMOUNT | MS.BIND | MS.NOSUID | MS.NODEV | extra, '', IN_ROOT | MNT_OPT.KEEP_LOCKED],
      what: `remount ${dest} ${extra & MS.RDONLY ? 'read-only' : 'writable'}`,
    },
  ];
}

/** Mounts, after the config's own (the /dev tmpfs is there by then), before pivot_root. */
export function shimMountSteps(hostDir: string, containerDir: string): Step[] {
  const f = SHIM_FILES;
  const inside = (n: string) => path.posix.join(containerDir, n);
  return [
    { op: 'MKDIR_IN_ROOT', args: [containerDir, 0o755], what: `create the mount point ${containerDir}` },
    ...bind(hostDir, containerDir, MS.RDONLY, `bind the preload shim's directory on ${containerDir}`),
    // Shared by every process of the container: writable, yet neither removable nor replaceable.
    ...bind(path.join(hostDir, f.table), inside(f.table), MS.NOEXEC, `bind the shim's process table on ${inside(f.table)}`),
    ...bind(path.join(hostDir, f.denials), inside(f.denials), MS.NOEXEC, `bind the shim's denial log on ${inside(f.denials)}`),
    { op: 'MKFILE_IN_ROOT', args: ['/etc/ld.so.preload', 0o644], what: 'create the mount point /etc/ld.so.preload' },
    ...bind(path.join(hostDir, f.preload), '/etc/ld.so.preload', MS.RDONLY | MS.NOEXEC, 'bind the generated /etc/ld.so.preload'),
  ];
}

/** The last check before the container is reported created: as the container's process, with
 *  its final identity, Landlock and seccomp, the loader could read the preload list and map the
 *  library. The loader skips a preload file it cannot read without a word: hako refuses instead. */
export function shimCheckStep(containerDir: string): Step {
  const lib = path.posix.join(containerDir, SHIM_FILES.library);
  return { op: 'CHECK_PRELOAD', args: ['/etc/ld.so.preload', lib], what: `check the container's process can load the preload shim ${lib}` };
}
