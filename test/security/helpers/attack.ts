// The attack tests' tools: the static attacker and bait programs (compiled once
// per run into the work dir), a rootfs with the attacker in it, a host marker
// file no container may read, and ways to see what the attacker reached.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { BUSYBOX_ROOTFS, CLI, REPO, TEST_USER, WORK } from '../../helpers/env.js';
import { beforeAll, afterAll } from 'vitest';
import { hako, scratchForThisFile, testUserIds, type Who } from '../../helpers/hako.js';
import { CAPABILITIES } from '../../../src/plan/capabilities.js';
import type { Config } from '../../../src/oci/config.js';

export const TOOLS = path.join(WORK, 'attack-tools');
/** busybox plus /bin/attacker and an empty /report (a bind-mount point), shared read-only. */
export const ATTACK_ROOTFS = path.join(WORK, 'attack-rootfs');
const SRC = path.join(REPO, 'test/security/helpers');

function newer(out: string, src: string): boolean {
  try {
    return fs.statSync(out).mtimeMs >= fs.statSync(src).mtimeMs;
  } catch {
    return false;
  }
}

/** Compiles attacker and bait (static; gcc -static -O2 -Wall -Werror) and makes ATTACK_ROOTFS. */
export function buildAttackTools(): { attacker: string; bait: string } {
  fs.mkdirSync(TOOLS, { recursive: true, mode: 0o755 });
  const made: Record<string, string> = {};
  for (const name of ['attacker', 'bait']) {
    const out = path.join(TOOLS, name);
    const src = path.join(SRC, `${name}.c`);
    if (!newer(out, src)) {
      const tmp = `${out}.${process.pid}.tmp`;
      execFileSync('gcc', ['-static', '-O2', '-Wall', '-Werror', '-o', tmp, src], { stdio: ['ignore', 'ignore', 'pipe'] });
      fs.chmodSync(tmp, 0o755);
      fs.renameSync(tmp, out);
    }
    made[name] = out;
  }
  const inRoot = path.join(ATTACK_ROOTFS, 'bin/attacker');
  if (!fs.existsSync(path.join(ATTACK_ROOTFS, 'report')) || !newer(inRoot, made.attacker!)) {
    const tmp = `${ATTACK_ROOTFS}.${process.pid}.tmp`;
    fs.rmSync(tmp, { recursive: true, force: true });
    execFileSync('cp', ['-a', BUSYBOX_ROOTFS, tmp]);
    fs.copyFileSync(made.attacker!, path.join(tmp, 'bin/attacker'));
    fs.chmodSync(path.join(tmp, 'bin/attacker'), 0o755);
    fs.mkdirSync(path.join(tmp, 'report'), { mode: 0o755 });
    fs.rmSync(ATTACK_ROOTFS, { recursive: true, force: true });
    fs.renameSync(tmp, ATTACK_ROOTFS);
  }
  return { attacker: made.attacker!, bait: made.bait! };
}

/** A small rootfs with busybox (a few applets) and the attacker, for tests that change the tree:
 *  files are hard links into ATTACK_ROOTFS (copies across file systems). */
export function copyRootfs(dest: string): string {
  for (const d of ['bin', 'proc', 'dev', 'sys', 'tmp', 'etc', 'root', 'report'])
    fs.mkdirSync(path.join(dest, d), { recursive: true, mode: 0o755 });
  fs.chmodSync(path.join(dest, 'tmp'), 0o1777);
  for (const f of ['bin/busybox', 'bin/attacker', 'etc/passwd', 'etc/group']) {
    try {
      fs.linkSync(path.join(ATTACK_ROOTFS, f), path.join(dest, f));
    } catch {
      fs.copyFileSync(path.join(ATTACK_ROOTFS, f), path.join(dest, f));
    }
  }
  for (const a of ['sh', 'ls', 'cat', 'stat', 'true', 'sleep', 'echo']) fs.symlinkSync('busybox', path.join(dest, 'bin', a));
  return dest;
}

export interface Marker {
  dir: string;
  file: string;
  secret: string;
}

/** A host file with a random content outside every container: reading it is the escape. */
export function makeMarker(): Marker {
  const dir = fs.mkdtempSync(path.join(WORK, 'attack-marker-'));
  fs.chmodSync(dir, 0o755);
  const file = path.join(dir, `secret-${crypto.randomBytes(6).toString('hex')}`);
  const secret = `host-secret-${crypto.randomBytes(12).toString('hex')}`;
  fs.writeFileSync(file, `${secret}\n`, { mode: 0o644 });
  fs.chmodSync(file, 0o644);
  return { dir, file, secret };
}

/** A dir the container writes its report into (bind-mounted at /report), writable by whoever it runs as. */
export function reportDir(who: Who, scratch: (who: Who, prefix?: string) => string): string {
  const d = scratch(who, 'report-');
  fs.chmodSync(d, 0o777);
  return d;
}

export const reportMount = (dir: string) => ({ destination: '/report', type: 'bind', source: dir, options: ['rbind', 'rw'] });

export function jsonLines<T = Record<string, unknown>>(text: string): T[] {
  const out: T[] = [];
  for (const l of text.split('\n')) {
    if (!l.trim()) continue;
    try {
      out.push(JSON.parse(l) as T);
    } catch {
      // a line cut short by a kill: not evidence either way
    }
  }
  return out;
}

/** One probe of a process by the attacker (attacker.c). */
export interface Probe {
  pid: number;
  how: string;
  stopped: boolean;
  stopErrno: number;
  comm: string;
  exe: { link: string | null; linkErrno: number; open: boolean; openErrno: number };
  fdList: { ok: boolean; errno: number; fds: Array<{ fd: number; link: string | null; open: boolean; openErrno: number; dir: boolean }> };
  cwd: { link: string | null; open: boolean; errno: number };
  root: { link: string | null; open: boolean; errno: number };
  getfd: { pidfd: boolean; errno: number; got: Array<{ fd: number; type: string; link: string; forged: boolean }>; errnoFirst: number };
  marker: string | null;
  reached: boolean;
}

export const isProbe = (l: Record<string, unknown>): l is Probe & Record<string, unknown> => typeof l.pid === 'number' && 'reached' in l;

/** The container's own programs: what the attacker may reach (it is the container's, after execve). */
const CONTAINER_PROGRAMS = new Set(['/bin/busybox', '/bin/attacker']);

/** A probed process that is not a container program (its exe unreadable or something else): hako's. */
export const isRuntimeProcess = (p: Probe): boolean => !(p.exe.link !== null && CONTAINER_PROGRAMS.has(p.exe.link));

/** What a probe of one of hako's processes reached, in words (empty: nothing). */
export function reachedWhat(p: Probe): string[] {
  const r: string[] = [];
  if (p.exe.link !== null) r.push(`exe link ${p.exe.link}`);
  if (p.exe.open) r.push('exe opened (O_PATH)');
  // Listing the fd numbers is allowed to the owner of /proc/PID/fd (non-dumpable: root of the
  // mm's user namespace): numbers only. What they are, or opening them, is the breach.
  for (const f of p.fdList.fds) if (f.link !== null) r.push(`fd ${f.fd} -> ${f.link}`);
  for (const f of p.fdList.fds) if (f.open) r.push(`fd ${f.fd} opened (${f.link})`);
  if (p.cwd.open) r.push(`cwd opened (${p.cwd.link})`);
  if (p.root.open) r.push(`root opened (${p.root.link})`);
  for (const g of p.getfd.got) r.push(`pidfd_getfd ${g.fd} (${g.type} ${g.link}${g.forged ? ', forged messages sent' : ''})`);
  if (p.marker !== null) r.push(`HOST MARKER READ: ${p.marker}`);
  return r;
}

/** The breaches in a report: every runtime process that let the attacker reach something. */
export function breaches(probes: Probe[], except: number[] = []): string[] {
  return probes
    .filter((p) => !except.includes(p.pid) && isRuntimeProcess(p))
    .map((p) => ({ p, what: reachedWhat(p) }))
    .filter((x) => x.what.length > 0)
    .map((x) => `pid ${x.p.pid} (${x.p.comm}, found by ${x.p.how}): ${x.what.join('; ')}`);
}

/** Waits (polling) until pred holds or ms pass; returns whether it held. */
export async function until(pred: () => boolean, ms: number, every = 20): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (pred()) return true;
    await new Promise((r) => setTimeout(r, every));
  }
  return pred();
}

export function readText(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** The pid of hostPid in the innermost pid namespace it is in (NSpid's last field). */
export function nsPidOf(hostPid: number): number {
  const m = /^NSpid:\s+(.*)$/m.exec(fs.readFileSync(`/proc/${hostPid}/status`, 'utf8'));
  const f = m ? m[1]!.trim().split(/\s+/) : [];
  return Number(f[f.length - 1]);
}

/** The host pids of the processes in the pid namespace of hostPid, with their pid there. */
export function pidsInNamespaceOf(hostPid: number): Map<number, number> {
  const ns = fs.readlinkSync(`/proc/${hostPid}/ns/pid`);
  const out = new Map<number, number>(); // ns pid -> host pid
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (fs.readlinkSync(`/proc/${e}/ns/pid`) !== ns) continue;
      out.set(nsPidOf(Number(e)), Number(e));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Alive and not a zombie. */
export function isAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function userArgv(who: Who, argv: string[]): [string, string[]] {
  return who === 'root'
    ? [argv[0]!, argv.slice(1)]
    : ['setpriv', ['--reuid', TEST_USER, '--regid', TEST_USER, '--init-groups', '--reset-env', ...argv]];
}

/** A host process (a `sleep 600`) the attack tries to have hako kill; owned by whoever runs hako. */
export function sacrificialProcess(who: Who): { pid: number; kill: () => void } {
  const [cmd, args] = userArgv(who, ['/bin/sleep', '600']);
  const c = spawn(cmd, args, { stdio: 'ignore', detached: true });
  c.unref();
  const pid = c.pid!;
  return { pid, kill: () => killQuietly(pid) };
}

export function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone already
  }
}

export interface Bait {
  hostPid: number;
  nsPid: number;
  kill: () => void;
}

/** Starts the bait (bait.c) in the user and pid namespaces of targetPid, holding dir. */
export async function startBait(who: Who, bait: string, targetPid: number, dir: string): Promise<Bait> {
  const [cmd, args] = userArgv(who, [bait, String(targetPid), dir]);
  const c: ChildProcess = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: os.tmpdir() });
  let out = '';
  let err = '';
  c.stdout!.on('data', (d) => (out += d));
  c.stderr!.on('data', (d) => (err += d));
  const ok = await until(() => /\{"(hostPid|error)".*\}/.test(out) || c.exitCode !== null, 10_000);
  const m = /\{"(hostPid|error)".*\}/.exec(out);
  const line = m ? (JSON.parse(m[0]) as { hostPid?: number; nsPid?: number; error?: string; errno?: number }) : undefined;
  if (!ok || !line || line.hostPid === undefined) {
    c.kill('SIGKILL');
    throw new Error(`bait did not start: ${out}${err}`);
  }
  const hostPid = line.hostPid;
  return {
    hostPid,
    nsPid: line.nsPid!,
    kill: () => {
      killQuietly(hostPid);
      c.kill('SIGKILL');
    },
  };
}

/** `hako` without blocking the event loop (a test can watch the host meanwhile). */
export function hakoAsync(
  who: Who,
  root: string,
  args: string[],
  timeoutMs = 30_000,
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const [cmd, argv] = userArgv(who, [CLI, '--root', root, ...args]);
  return new Promise((resolve) => {
    const c = spawn(cmd, argv, {
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: os.tmpdir(),
      env: who === 'root' ? process.env : { PATH: process.env.PATH },
    });
    let stdout = '';
    let stderr = '';
    c.stdout!.on('data', (d) => (stdout += d));
    c.stderr!.on('data', (d) => (stderr += d));
    const t = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.on('close', (status) => {
      clearTimeout(t);
      resolve({ status, stdout, stderr });
    });
  });
}

/** hako's own failure: a non-zero exit and one sentence on stderr, no stack trace. */
export function oneSentence(stderr: string): boolean {
  const lines = stderr.trim().split('\n');
  return lines.length === 1 && lines[0]!.length > 0 && !/^\s+at /m.test(stderr) && !/Error: .*\n/.test(stderr);
}

export { testUserIds };

/** A container whose init is the attacker watching its pid namespace. */
export interface Watch {
  who: Who;
  id: string;
  root: string;
  report: string;
  initPid: number;
  out: string;
}

/**
 * Everything one attack test file needs, set up before its tests and torn down after them: the
 * tools, a marker, scratch dirs, and cleanups (containers deleted, baits and sacrificial
 * processes killed) that run whatever happened.
 */
export function attackKit() {
  const sc = scratchForThisFile();
  const cleanups: Array<() => void> = [];
  let tools: { attacker: string; bait: string } | undefined;
  let marker: Marker | undefined;
  beforeAll(() => {
    tools = buildAttackTools();
    marker = makeMarker();
  });
  afterAll(() => {
    for (const c of cleanups.splice(0).reverse()) {
      try {
        c();
      } catch {
        // best effort: the next cleanup still runs
      }
    }
  });
  const kit = {
    ...sc,
    cleanups,
    get tools() {
      return tools!;
    },
    get marker() {
      return marker!;
    },
    /** Runs a container detached and deletes it after the file. */
    runDetached(who: Who, id: string, edit: (c: Config) => void): { root: string; initPid: number } {
      const { bundle, root } = sc.makeBundle(who, edit);
      const r = hako(who, root, ['run', '-d', '-b', bundle, id], { detached: true });
      if (r.status !== 0) throw new Error(`hako run -d ${id} failed (${r.status}): ${r.stderr}`);
      cleanups.push(() => hako(who, root, ['delete', '--force', id]));
      return { root, initPid: JSON.parse(hako(who, root, ['state', id]).stdout).pid as number };
    },
    /** A container whose init is `attacker watch` (60 s at most), reporting into a bind-mounted dir. */
    async startWatcher(who: Who, id: string, o: { extra?: string[]; allCaps?: boolean } = {}): Promise<Watch> {
      const report = reportDir(who, sc.scratch);
      const { root, initPid } = kit.runDetached(who, id, (c) => {
        c.root = { path: ATTACK_ROOTFS, readonly: true };
        if (o.allCaps)
          c.process!.capabilities = { bounding: [...CAPABILITIES], effective: [...CAPABILITIES], permitted: [...CAPABILITIES] };
        c.process!.args = ['/bin/attacker', 'watch', marker!.file, '/report/watch.jsonl', '60000', ...(o.extra ?? [])];
        c.mounts!.push(reportMount(report));
      });
      const out = path.join(report, 'watch.jsonl');
      if (!(await until(() => readText(out).includes('"watching":true'), 10_000)))
        throw new Error(`the watcher in ${id} did not start: ${readText(out)}`);
      return { who, id, root, report, initPid, out };
    },
    /** Stops the watcher and returns every probe it made. */
    async finish(w: Watch): Promise<Probe[]> {
      fs.writeFileSync(`${w.out}.stop`, '');
      await until(() => readText(w.out).includes('"done":true'), 10_000);
      return jsonLines(readText(w.out)).filter(isProbe) as Probe[];
    },
    /** The bait in the namespaces of a container's process (killed after the file). */
    async bait(who: Who, targetPid: number): Promise<Bait> {
      const b = await startBait(who, tools!.bait, targetPid, marker!.dir);
      cleanups.push(b.kill);
      return b;
    },
    /** `attacker probe` of some pids, from inside container id. */
    probeFrom(who: Who, root: string, id: string, pids: number[], forgePid?: number): Probe[] {
      const args = ['exec', id, '/bin/attacker', 'probe', marker!.file, ...(forgePid ? [`--forge=${forgePid}`] : []), ...pids.map(String)];
      return jsonLines(hako(who, root, args).stdout).filter(isProbe) as Probe[];
    },
  };
  return kit;
}

/** Host pids whose mount table mentions path (a container's root bind shows its host path). */
export function processesWithMountsOf(p: string): number[] {
  const out: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (fs.readFileSync(`/proc/${e}/mountinfo`, 'utf8').includes(p)) out.push(Number(e));
    } catch {
      // gone, or not ours to read
    }
  }
  return out;
}

/** Mounts in our own mount table under (or of) path. */
export function ownMountsOf(p: string): string[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.includes(p));
}
