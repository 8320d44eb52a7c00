// What a test asks for (rootfs or bundle, args, env, cwd, user, mounts, limits, network,
// ports) turned into one OCI config, checked before anything is made: a wrong option is
// one sentence naming it (`start: args: ...`).
import fs from 'node:fs';
import path from 'node:path';
import { HakoError } from '../errors.js';
import { NO_CGROUP_ANNOTATION, defaultSpec, loadBundleConfig, validateConfig, type Config } from '../runtime/index.js';
import type { PortOption } from './ports.js';

/** Objects merged key by key, arrays and values replaced: the escape hatch's shape. */
export type DeepPartial<T> = T extends Array<unknown> ? T : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;

export interface ContainerOptions {
  /** A root filesystem directory, run with hako's default config (as `hako spec` writes it,
   *  rootless when hako runs rootless), read-only. One of rootfs, bundle or image. */
  rootfs?: string;
  /** An OCI bundle: a directory with config.json; the options below override it. */
  bundle?: string;
  /** OCI images are not supported: unpack one (umoci, skopeo) and pass its rootfs. */
  image?: string;
  /** The program and its arguments (default: the bundle's, or `sh`). */
  args?: string[];
  /** Added to (and overriding) the config's environment. */
  env?: Record<string, string>;
  cwd?: string;
  /** The process's user inside the container (a rootless container maps only uid/gid 0). */
  user?: number | { uid: number; gid?: number; additionalGids?: number[] };
  /** Bind mounts from the host; read-only unless readonly is false. */
  mounts?: Array<{ source: string; target: string; readonly?: boolean }>;
  /** cgroup limits (where this host can apply them) and the open files limit. Without cgroup
   *  limits (none here, in the bundle or in `config`) the container gets no cgroup of its own,
   *  as crun's --cgroup-manager=disabled (its processes still die with its pid namespace), and
   *  no /sys/fs/cgroup mount (it would show this process's cgroups); a v1 devices cgroup stays
   *  where it is what keeps a root container from the host's devices. */
  limits?: { memory?: number; pids?: number; cpus?: number; nofile?: number };
  /** 'loopback' (default): a network namespace of its own with lo up; 'none': not even lo. */
  network?: 'none' | 'loopback';
  /** Published ports: a host address each, served through a socket handed in (see ports.ts). */
  ports?: PortOption[];
  hostname?: string;
  /** The container's id (default: one made from this process's pid and a counter). */
  id?: string;
  /** The full OCI config as the escape hatch, merged over everything above. */
  config?: DeepPartial<Config>;
}

function fail(where: string, what: string, msg: string, detail: { path?: string } = {}): never {
  throw new HakoError(`${where}: ${what}: ${msg}`, 1, { step: 'options', ...detail });
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function merge<T>(base: T, over: unknown): T {
  if (!isObject(base) || !isObject(over)) return (over === undefined ? base : over) as T;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = merge(out[k], v);
  return out as T;
}

function checkShape(where: string, o: ContainerOptions): void {
  if (!isObject(o as unknown)) fail(where, 'options', 'expected an object');
  const sources = (['rootfs', 'bundle', 'image'] as const).filter((k) => o[k] !== undefined);
  if (sources.length !== 1)
    fail(where, 'rootfs | bundle | image', `give exactly one (got ${sources.length ? sources.join(', ') : 'none'})`);
  for (const k of sources) if (typeof o[k] !== 'string' || !o[k]) fail(where, k, 'expected a path');
  if (o.image !== undefined)
    fail(where, 'image', 'OCI images are not supported; unpack the image (umoci unpack, skopeo) and pass its rootfs', { path: o.image });
  if (o.args !== undefined && (!isStringArray(o.args) || o.args.length === 0)) fail(where, 'args', 'expected a non-empty array of strings');
  if (o.env !== undefined && (!isObject(o.env) || !Object.values(o.env).every((v) => typeof v === 'string')))
    fail(where, 'env', 'expected an object of strings');
  if (o.env)
    for (const k of Object.keys(o.env)) if (!k || k.includes('=')) fail(where, `env.${k}`, 'a variable name has no "=" and is not empty');
  if (o.cwd !== undefined && (typeof o.cwd !== 'string' || !o.cwd.startsWith('/'))) fail(where, 'cwd', 'expected an absolute path');
  const isId = (n: unknown) => Number.isInteger(n) && (n as number) >= 0;
  if (o.user !== undefined && !(isId(o.user) || (isObject(o.user) && isId(o.user.uid) && (o.user.gid === undefined || isId(o.user.gid)))))
    fail(where, 'user', 'expected a uid, or { uid, gid }');
  if (o.mounts !== undefined && !Array.isArray(o.mounts)) fail(where, 'mounts', 'expected an array');
  o.mounts?.forEach((m, i) => {
    if (!isObject(m) || typeof m.source !== 'string' || typeof m.target !== 'string')
      fail(where, `mounts[${i}]`, 'expected { source, target }');
    if (!m.target.startsWith('/')) fail(where, `mounts[${i}].target`, `"${m.target}" must be an absolute path`);
    if (!fs.existsSync(m.source)) fail(where, `mounts[${i}].source`, `"${m.source}" does not exist`, { path: m.source });
  });
  if (o.limits !== undefined) {
    if (!isObject(o.limits)) fail(where, 'limits', 'expected an object');
    for (const [k, v] of Object.entries(o.limits)) {
      if (!['memory', 'pids', 'cpus', 'nofile'].includes(k)) fail(where, `limits.${k}`, 'unknown limit (memory, pids, cpus, nofile)');
      if (typeof v !== 'number' || !(v > 0) || (k !== 'cpus' && !Number.isInteger(v)))
        fail(where, `limits.${k}`, 'expected a positive number');
    }
  }
  if (o.network !== undefined && o.network !== 'none' && o.network !== 'loopback') fail(where, 'network', "expected 'none' or 'loopback'");
  if (o.ports !== undefined && !Array.isArray(o.ports)) fail(where, 'ports', 'expected an array');
  o.ports?.forEach((p, i) => {
    const port = (n: unknown) => Number.isInteger(n) && (n as number) >= 0 && (n as number) <= 65535;
    if (!isObject(p) || !port(p.container) || !p.container) fail(where, `ports[${i}].container`, 'expected a port number');
    if (p.host !== undefined && !port(p.host)) fail(where, `ports[${i}].host`, 'expected a port number (0: any)');
  });
  if (o.config !== undefined && !isObject(o.config)) fail(where, 'config', 'expected an object (a partial OCI config)');
}

/** A container asks for no cgroup when nothing needs one: no limits, no cgroupsPath, a pid
 *  namespace of its own (src/runtime/cgroup.ts checks the same), and no cgroup filesystem
 *  mounted through the escape hatch on purpose (a bundle's or the default one is dropped).
 *  Making and removing one costs more than the rest of a short container's life on a
 *  cgroup v1 host (docs/benchmarks.md). */
function needsNoCgroup(cfg: Config, o: ContainerOptions): boolean {
  if (cfg.annotations?.[NO_CGROUP_ANNOTATION] !== undefined) return false;
  const resources = (cfg.linux?.resources ?? {}) as Record<string, unknown>;
  if (Object.values(resources).some((v) => v !== undefined && v !== null) || cfg.linux?.cgroupsPath) return false;
  if (!cfg.linux?.namespaces?.some((n) => n.type === 'pid' && !n.path)) return false;
  return !o.config?.mounts?.some((m) => m?.type === 'cgroup' || m?.type === 'cgroup2');
}

/** The config for the options, and the bundle directory create records. */
export function buildConfig(where: string, o: ContainerOptions, rootless: boolean): { config: Config; bundle: string } {
  checkShape(where, o);
  let bundle: string;
  let cfg: Config;
  if (o.rootfs !== undefined) {
    const rootfs = path.resolve(o.rootfs);
    const st = fs.statSync(rootfs, { throwIfNoEntry: false });
    if (!st) throw new HakoError(`${where}: rootfs: "${rootfs}" does not exist`, 1, { step: 'rootfs', errno: 'ENOENT', path: rootfs });
    if (!st.isDirectory())
      throw new HakoError(`${where}: rootfs: "${rootfs}" is not a directory`, 1, { step: 'rootfs', errno: 'ENOTDIR', path: rootfs });
    cfg = defaultSpec(rootless);
    cfg.root = { path: rootfs, readonly: true };
    cfg.process!.terminal = false;
    bundle = path.dirname(rootfs);
  } else {
    bundle = path.resolve(o.bundle!);
    if (!fs.existsSync(path.join(bundle, 'config.json')))
      throw new HakoError(`${where}: bundle: "${bundle}" has no config.json`, 1, { step: 'bundle', errno: 'ENOENT', path: bundle });
    try {
      cfg = loadBundleConfig(bundle);
    } catch (e) {
      if (e instanceof HakoError) e.step ??= 'bundle';
      throw e;
    }
    // Output goes to the library's pipes, never a terminal.
    cfg.process = { ...cfg.process!, terminal: false };
  }
  const proc = cfg.process!;
  if (o.args) proc.args = o.args;
  if (o.env) {
    const names = new Set(Object.keys(o.env));
    proc.env = [...(proc.env ?? []).filter((e) => !names.has(e.split('=')[0]!)), ...Object.entries(o.env).map(([k, v]) => `${k}=${v}`)];
  }
  if (o.cwd) proc.cwd = o.cwd;
  if (o.user !== undefined) {
    const u = typeof o.user === 'number' ? { uid: o.user, gid: o.user } : o.user;
    proc.user = { uid: u.uid, gid: u.gid ?? u.uid, ...(u.additionalGids ? { additionalGids: u.additionalGids } : {}) };
  }
  if (o.hostname !== undefined) cfg.hostname = o.hostname;
  for (const m of o.mounts ?? [])
    cfg.mounts = [
      ...(cfg.mounts ?? []),
      { destination: m.target, type: 'bind', source: path.resolve(m.source), options: ['rbind', m.readonly === false ? 'rw' : 'ro'] },
    ];
  const lim = o.limits;
  if (lim) {
    const resources: Record<string, unknown> = { ...(cfg.linux?.resources ?? {}) };
    if (lim.memory) resources.memory = { limit: lim.memory };
    if (lim.pids) resources.pids = { limit: lim.pids };
    if (lim.cpus) resources.cpu = { quota: Math.round(lim.cpus * 100_000), period: 100_000 };
    cfg.linux = { ...cfg.linux, resources };
    if (lim.nofile)
      proc.rlimits = [
        ...(proc.rlimits ?? []).filter((r) => r.type !== 'RLIMIT_NOFILE'),
        { type: 'RLIMIT_NOFILE', hard: lim.nofile, soft: lim.nofile },
      ];
  }
  const namespaces = cfg.linux?.namespaces ?? [];
  if (o.network !== undefined || o.ports?.length) {
    // Both modes are a network namespace of the container's own: the host's is never shared.
    if (!namespaces.some((n) => n.type === 'network' && !n.path))
      cfg.linux = { ...cfg.linux, namespaces: [...namespaces.filter((n) => n.type !== 'network'), { type: 'network' }] };
    if (o.network === 'none') cfg.annotations = { ...cfg.annotations, 'run.hako.network': 'none' };
  }
  if (o.ports?.length) {
    if (!cfg.linux?.namespaces?.some((n) => n.type === 'pid' && !n.path))
      fail(where, 'ports', "socket activation needs a pid namespace of the container's own (LISTEN_PID=1)");
    const env = (proc.env ?? []).filter((e) => !/^LISTEN_(FDS|PID|FDNAMES)=/.test(e));
    proc.env = [...env, `LISTEN_FDS=${o.ports.length}`, 'LISTEN_PID=1', `LISTEN_FDNAMES=${o.ports.map((p) => p.container).join(':')}`];
  }
  const merged = o.config ? merge(cfg, o.config) : cfg;
  if (needsNoCgroup(merged, o)) {
    merged.annotations = { ...merged.annotations, [NO_CGROUP_ANNOTATION]: 'none' };
    merged.mounts = merged.mounts?.filter((m) => m.type !== 'cgroup' && m.type !== 'cgroup2');
  }
  try {
    return { config: validateConfig(merged), bundle };
  } catch (e) {
    if (e instanceof HakoError) {
      const err = new HakoError(e.message.replace(/^config\.json: /, `${where}: config: `), 1, { step: 'options' });
      throw err;
    }
    throw e;
  }
}
