// Real clients on private sockets: containerd and dockerd started by a test,
// each with its own root/state dirs under /tmp (short paths: Podman refuses a runroot over
// 50 characters and unix sockets stop at 108, whatever the clone's path), and torn down to nothing
// (daemons and their shims killed by pid, mounts under the dir unmounted, dir removed).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync, execFileSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import { CLI } from '../../helpers/env.js';

export const IS_ROOT = process.geteuid!() === 0;

export function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Why a client suite cannot run here, or null. In CI (root) missing packages are a failure, not a skip. */
export function skipReason(cmds: string[]): string | null {
  const missing = cmds.filter((c) => !have(c));
  if (IS_ROOT && process.env.CI && missing.length)
    throw new Error(`CI: missing ${missing.join(', ')} (test/debian-packages.txt; run test/setup.sh)`);
  if (!IS_ROOT) return 'needs root (the daemons run as root)';
  if (missing.length) return `not installed: ${missing.join(', ')} (see test/debian-packages.txt)`;
  return null;
}

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes. */
export async function waitFor<T>(what: string, fn: () => T | undefined | null | false, timeoutMs = 20_000, everyMs = 50): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A shell script that runs hako (what the clients get as the runtime binary); it records each argv in calls.log. */
export function hakoWrapper(dir: string, name = 'hako', extraEnv: Record<string, string> = {}): string {
  const file = path.join(dir, name);
  // The suite's planner mode (npm run test:planner-off) reaches hako whatever the daemon passes on.
  const mode = process.env.HAKO_PLANNER ? { HAKO_PLANNER: process.env.HAKO_PLANNER } : {};
  const env = Object.entries({ ...mode, ...extraEnv })
    .map(([k, v]) => `export ${k}='${v}'\n`)
    .join('');
  fs.writeFileSync(file, `#!/bin/sh\n${env}printf '%s\\n' "$*" >> '${path.join(dir, `${name}-calls.log`)}'\nexec '${CLI}' "$@"\n`, {
    mode: 0o755,
  });
  return file;
}

/** Pids whose command line mentions `needle` (our own daemons' children: shims, conmon). */
export function pidsMentioning(needle: string): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      if (fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(needle)) out.push(Number(d));
    } catch {
      // gone
    }
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function stopPid(pid: number | undefined, graceMs = 10_000): Promise<void> {
  if (!pid || !alive(pid)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const end = Date.now() + graceMs;
  while (alive(pid) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  if (alive(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

/** Unmounts everything at or below `dir` (deepest first) and removes it. */
export function removeTree(dir: string): void {
  if (!fs.existsSync(dir)) return;
  for (let round = 0; round < 5; round++) {
    const mounts = fs
      .readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[4]?.replace(/\\040/g, ' '))
      .filter((m): m is string => !!m && (m === dir || m.startsWith(dir + '/')))
      .sort((a, b) => b.length - a.length);
    if (!mounts.length) break;
    for (const m of mounts) spawnSync('umount', ['-l', m], { stdio: 'ignore' });
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

/**
 * Host-wide directories some clients create whatever they are told (containerd 1.6's shim
 * sockets and ctr's fifos under /run/containerd, Podman's /run/containers): returns a
 * function that removes them again if they did not exist before and are empty now.
 */
export function hostDirsGuard(dirs: string[]): () => void {
  const fresh = dirs.filter((d) => !fs.existsSync(d));
  return () => {
    for (const top of fresh) {
      const walk = (d: string) => {
        let entries: fs.Dirent[];
        try {
          entries = fs.readdirSync(d, { withFileTypes: true });
        } catch {
          return;
        }
        for (const e of entries) if (e.isDirectory()) walk(path.join(d, e.name));
        try {
          fs.rmdirSync(d); // only when empty
        } catch {
          // not empty: someone else's
        }
      };
      walk(top);
    }
  };
}

export interface Daemon {
  dir: string;
  proc: ChildProcess;
  stop(): Promise<void>;
}

export interface Containerd extends Daemon {
  sock: string;
  ctr(args: string[], opts?: { input?: string; timeout?: number }): SpawnSyncReturns<string>;
}

/** Scratch dir for a client suite (removed by the daemon's stop()). */
export function clientDir(name: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `hako-${name}-`));
  fs.chmodSync(dir, 0o755);
  return dir;
}

function spawnDaemon(cmd: string, args: string[], logFile: string): ChildProcess {
  const out = fs.openSync(logFile, 'a');
  const p = spawn(cmd, args, { stdio: ['ignore', out, out], detached: true });
  fs.closeSync(out);
  p.unref();
  return p;
}

export async function startContainerd(dir: string): Promise<Containerd> {
  const sock = path.join(dir, 'ctd.sock');
  const cfg = path.join(dir, 'containerd.toml');
  fs.writeFileSync(
    cfg,
    [
      'version = 2',
      `root = "${dir}/ctd-root"`,
      `state = "${dir}/ctd-state"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper"]',
      '[grpc]',
      `  address = "${sock}"`,
      '[ttrpc]',
      `  address = "${sock}.ttrpc"`,
      '[debug]',
      '  address = ""',
      '[metrics]',
      '  address = ""',
      '[plugins."io.containerd.internal.v1.opt"]',
      `  path = "${dir}/ctd-opt"`,
      '',
    ].join('\n'),
  );
  const cleanHost = hostDirsGuard(['/run/containerd']);
  const proc = spawnDaemon('containerd', ['--config', cfg], path.join(dir, 'containerd.log'));
  const ctr = (args: string[], opts: { input?: string; timeout?: number } = {}) =>
    spawnSync('ctr', ['--address', sock, '--namespace', 'hakotest', ...args], {
      encoding: 'utf8',
      input: opts.input,
      timeout: opts.timeout ?? 60_000,
    });
  const d: Containerd = {
    dir,
    proc,
    sock,
    ctr,
    async stop() {
      // Tasks first (so shims exit on their own), then the daemon, then stragglers.
      const tasks = ctr(['tasks', 'ls', '-q']).stdout?.split('\n').filter(Boolean) ?? [];
      for (const t of tasks) ctr(['tasks', 'kill', '-a', '-s', 'SIGKILL', t], { timeout: 10_000 });
      for (const t of tasks) ctr(['tasks', 'delete', '-f', t], { timeout: 10_000 });
      await stopPid(proc.pid);
      for (const p of pidsMentioning(sock)) await stopPid(p, 2_000);
      cleanHost();
    },
  };
  await waitFor('containerd to answer', () => fs.existsSync(sock) && ctr(['version'], { timeout: 5_000 }).status === 0, 30_000, 100);
  return d;
}

export interface Dockerd extends Daemon {
  sock: string;
  docker(args: string[], opts?: { input?: string; timeout?: number }): SpawnSyncReturns<string>;
  /** Restarts dockerd with the same flags (containerd keeps running). */
  restart(): Promise<void>;
}

export async function startDockerd(
  dir: string,
  containerdSock: string,
  runtimes: Record<string, string>,
  extra: string[] = [],
  daemonJson: object = {},
): Promise<Dockerd> {
  const sock = path.join(dir, 'docker.sock');
  const args = [
    '--data-root',
    path.join(dir, 'docker-root'),
    '--exec-root',
    path.join(dir, 'docker-exec'),
    '-H',
    `unix://${sock}`,
    '--pidfile',
    path.join(dir, 'docker.pid'),
    '--iptables=false',
    '--ip-masq=false',
    '--bridge=none',
    '--containerd',
    containerdSock,
    '--config-file',
    path.join(dir, 'daemon.json'),
    ...Object.entries(runtimes).flatMap(([k, v]) => ['--add-runtime', `${k}=${v}`]),
    ...extra,
  ];
  fs.writeFileSync(path.join(dir, 'daemon.json'), JSON.stringify(daemonJson));
  const docker = (a: string[], opts: { input?: string; timeout?: number } = {}) =>
    spawnSync(DOCKER, ['-H', `unix://${sock}`, ...a], { encoding: 'utf8', input: opts.input, timeout: opts.timeout ?? 60_000 });
  const up = async () => {
    await waitFor('dockerd to answer', () => fs.existsSync(sock) && docker(['version'], { timeout: 5_000 }).status === 0, 60_000, 100);
  };
  const d: Dockerd = {
    dir,
    sock,
    docker,
    proc: spawnDaemon('dockerd', args, path.join(dir, 'dockerd.log')),
    async restart() {
      await stopPid(d.proc.pid, 20_000);
      d.proc = spawnDaemon('dockerd', args, path.join(dir, 'dockerd.log'));
      await up();
    },
    async stop() {
      const ids = docker(['ps', '-aq']).stdout?.split('\n').filter(Boolean) ?? [];
      if (ids.length) docker(['rm', '-f', ...ids], { timeout: 30_000 });
      await stopPid(d.proc.pid, 20_000);
    },
  };
  await up();
  return d;
}

/** Debian's docker client (the 20.10 one next to dockerd), not whatever else is first on PATH. */
export const DOCKER = fs.existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';

/** Reads a log written by hako with --log-format json strictly: every line must be one JSON object. */
export function parseJsonLog(file: string): Array<{ level: string; msg: string; time?: string }> {
  const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  return text
    .split('\n')
    .filter((l) => l.length)
    .map((l, i) => {
      const o = JSON.parse(l);
      if (typeof o !== 'object' || o === null || typeof o.level !== 'string' || typeof o.msg !== 'string')
        throw new Error(`${file}:${i + 1}: not a {level,msg} object`);
      if (o.time !== undefined && Number.isNaN(Date.parse(o.time))) throw new Error(`${file}:${i + 1}: time is not RFC 3339`);
      return o;
    });
}

export function sh(cmd: string): string {
  return execFileSync('sh', ['-c', cmd], { encoding: 'utf8' });
}
