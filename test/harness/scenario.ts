// Runs a scenario of scenarios.mjs in a node process of its own, as root or as the test
// user, and checks from outside what it left: state dirs, mounts, cgroups, processes.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync, execFileSync } from 'node:child_process';
import { REPO, TEST_USER, WORK } from '../helpers/env.js';
import type { Who } from '../helpers/hako.js';

const RUNNER = path.join(REPO, 'test/harness/run-scenario.mjs');

export interface ScenarioRun {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The node process's pid: the default container ids and the creator mark name it. */
  pid: number;
  /** The last JSON line it printed. */
  result: Record<string, unknown> & { pids?: number[] };
}

/** argv that runs node as root, or as the test user (setpriv --reset-env drops the
 *  environment: env(1) gives it `env`). */
export function nodeAs(who: Who, args: string[], env: Record<string, string> = {}): [string, string[]] {
  const vars = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  return who === 'root'
    ? [process.execPath, args]
    : [
        'setpriv',
        ['--reuid', TEST_USER, '--regid', TEST_USER, '--init-groups', '--reset-env', '/usr/bin/env', ...vars, process.execPath, ...args],
      ];
}

export function runScenario(who: Who, name: string, args: Record<string, unknown>, timeout = 120_000): ScenarioRun {
  const [cmd, argv] = nodeAs(who, [RUNNER, name, JSON.stringify(args)]);
  const r = spawnSync(cmd, argv, { encoding: 'utf8', timeout, cwd: '/', env: { PATH: process.env.PATH } });
  const last = r.stdout.trim().split('\n').filter(Boolean).pop() ?? '{}';
  let result: ScenarioRun['result'] = {};
  try {
    result = JSON.parse(last);
  } catch {
    // not JSON: the test shows stdout and stderr
  }
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, pid: r.pid ?? -1, result };
}

/** Mount lines that name our scratch tree (other helpers' mounts come and go meanwhile). */
export function ourMounts(): string[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.includes(WORK) || l.includes('/hako-pipe-') || l.includes('/hako-port-'));
}

/** cgroup directories (v1 hierarchies and v2) whose name holds the marker. */
export function cgroupsNamed(marker: string): string[] {
  try {
    return execFileSync('find', ['/sys/fs/cgroup', '-mindepth', '2', '-maxdepth', '4', '-type', 'd', '-name', `*${marker}*`], {
      encoding: 'utf8',
    })
      .split('\n')
      .filter(Boolean);
  } catch {
    return [];
  }
}

export function alive(pids: number[]): number[] {
  return pids.filter((p) => fs.existsSync(`/proc/${p}`));
}

/** The library's temporary dirs (a FIFO's, a port's), each removed as soon as it is used. */
function libraryTempDirs(): string[] {
  return fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith('hako-pipe-') || f.startsWith('hako-port-'));
}

export interface Before {
  mounts: string[];
  temp: string[];
}

/** What is there before a run: leftovers() reports only what is new since. */
export function snapshot(): Before {
  return { mounts: ourMounts(), temp: libraryTempDirs() };
}

/** Everything a run could have left: state dirs in root, cgroups whose name holds a marker
 *  (the ids, hako-PID-N by default), processes among pids, new mounts and temporary dirs. */
export function leftovers(root: string, markers: string[], pids: number[], before: Before) {
  return {
    stateDirs: fs.readdirSync(root).filter((f) => !f.startsWith('.')),
    cgroups: markers.flatMap((m) => cgroupsNamed(m)),
    processes: alive(pids),
    mounts: ourMounts().filter((l) => !before.mounts.includes(l)),
    tempDirs: libraryTempDirs().filter((f) => !before.temp.includes(f)),
  };
}

/** A rootfs that runs the host's node: empty but for the host's /usr bound in read-only
 *  (the library's `mounts`), and /bin, /lib… made as the host has them (merged /usr). */
export function hostToolsRootfs(dir: string): { rootfs: string; mounts: Array<{ source: string; target: string }> } {
  const rootfs = path.join(dir, 'host-tools');
  fs.mkdirSync(rootfs, { recursive: true });
  const mounts = [{ source: '/usr', target: '/usr' }];
  for (const d of ['usr', 'proc', 'dev', 'sys', 'tmp', 'etc']) fs.mkdirSync(path.join(rootfs, d), { recursive: true });
  for (const d of ['bin', 'lib', 'lib64', 'sbin']) {
    const st = fs.lstatSync(`/${d}`, { throwIfNoEntry: false });
    if (!st || fs.existsSync(path.join(rootfs, d))) continue;
    if (st.isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(`/${d}`), path.join(rootfs, d));
    else {
      fs.mkdirSync(path.join(rootfs, d));
      mounts.push({ source: `/${d}`, target: `/${d}` });
    }
  }
  fs.chmodSync(rootfs, 0o755);
  return { rootfs, mounts };
}

export const NOTHING_LEFT = { stateDirs: [], cgroups: [], processes: [], mounts: [], tempDirs: [] };
