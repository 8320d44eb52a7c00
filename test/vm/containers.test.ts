// Issue 4 end to end: real containers through the hako CLI with linux.resources, on a real
// cgroup v2 kernel. Run by test/vm/run.sh inside the VM as root and as uid 1000 (rootless:
// the bundle has a user namespace, the cgroup goes under the delegated /user/1000).
// Every CLI call costs seconds under TCG, so each test makes only the calls it proves with.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { detect, type HostCgroups } from '../../src/cgroups/index.js';
import { defaultSpec } from '../../src/oci/default.js';
import type { Config } from '../../src/oci/config.js';
import { BUSYBOX_ROOTFS, CLI } from '../helpers/env.js';

const inVm = process.env.HAKO_VM === '1';
const rootless = process.getuid?.() !== 0;
const CG = '/sys/fs/cgroup';
const who = rootless ? 'u' : 'r';

let host: HostCgroups;
let stateRoot: string;
let scratch: string;
const started: string[] = [];
const background: ChildProcess[] = [];

interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** `hako --root STATE ARGS…` as the current user. Output goes through files: a detached
 *  container inherits the runtime's stdio and would hold pipes open. */
function hako(args: string[], input?: string): Result {
  const dir = mkdtempSync(path.join(scratch, 'o-'));
  const fdOut = openSync(path.join(dir, 'out'), 'w+');
  const fdErr = openSync(path.join(dir, 'err'), 'w+');
  try {
    const r = spawnSync(CLI, ['--root', stateRoot, ...args], {
      stdio: [input === undefined ? 'ignore' : 'pipe', fdOut, fdErr],
      input,
      timeout: 90_000,
      cwd: scratch,
    });
    return { status: r.status, stdout: readFileSync(path.join(dir, 'out'), 'utf8'), stderr: readFileSync(path.join(dir, 'err'), 'utf8') };
  } finally {
    closeSync(fdOut);
    closeSync(fdErr);
    rmSync(dir, { recursive: true, force: true });
  }
}

function ok(args: string[], input?: string): string {
  const r = hako(args, input);
  if (r.status !== 0) throw new Error(`hako ${args.join(' ')} exited ${r.status}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** A bundle on the guest's tmpfs whose rootfs is the shared (read-only) busybox tree. */
function bundle(edit: (c: Config) => void): string {
  const dir = mkdtempSync(path.join(scratch, 'b-'));
  const cfg = defaultSpec(rootless); // rootless: user namespace, uid/gid 0 → ours
  cfg.root = { path: BUSYBOX_ROOTFS, readonly: true };
  cfg.process!.terminal = false;
  cfg.process!.args = ['true'];
  edit(cfg);
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg));
  return dir;
}

const sh = (script: string) => (c: Config) => void (c.process!.args = ['sh', '-c', script]);
const withResources = (resources: object, script: string) => (c: Config) => {
  sh(script)(c);
  c.linux!.resources = resources as never;
};

/** The container's cgroup directory, from its state.json record. */
function cgroupDir(id: string): string {
  const rec = JSON.parse(readFileSync(path.join(stateRoot, id, 'state.json'), 'utf8'));
  expect(rec.cgroup, 'state.json records a cgroup').toBeTruthy();
  return `${rec.cgroup.mount}${rec.cgroup.path}`;
}

/** Where hako puts a container's cgroup by default (docs/cgroups.md). */
const defaultDir = (id: string) => `${CG}${rootless ? '/user/1000' : ''}/hako/${id}`;

const cat = (dir: string, file: string) => readFileSync(`${dir}/${file}`, 'utf8').trim();
const kv = (dir: string, file: string, key: string) => {
  const line = cat(dir, file)
    .split('\n')
    .find((l) => l.startsWith(`${key} `));
  return Number(line?.split(' ')[1]);
};

async function until(cond: () => boolean, what: string, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

function runDetached(id: string, b: string): string {
  ok(['run', '-d', '-b', b, id]);
  started.push(id);
  return cgroupDir(id);
}

/** Nothing of `id` left: no state dir, no cgroup. */
function nothingLeft(id: string, dir = defaultDir(id)): void {
  expect(existsSync(path.join(stateRoot, id)), `state dir of ${id}`).toBe(false);
  expect(existsSync(dir), `cgroup ${dir}`).toBe(false);
}

/** A refused create: non-zero, one sentence on stderr, nothing created. */
function refused(id: string, b: string, pattern: RegExp): string {
  const r = hako(['create', '-b', b, id]);
  expect(r.status).not.toBe(0);
  const lines = r.stderr.trim().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  nothingLeft(id);
  return lines[0];
}

describe.runIf(inVm)(`containers through the hako CLI as ${rootless ? 'uid 1000 (rootless, delegated subtree)' : 'root'}`, () => {
  beforeAll(() => {
    host = detect();
    scratch = mkdtempSync(`/tmp/hako-vm-${who}-`);
    stateRoot = path.join(scratch, 'state');
    if (!existsSync(path.join(BUSYBOX_ROOTFS, 'bin/sh')))
      throw new Error(`no busybox rootfs at ${BUSYBOX_ROOTFS}: run.sh builds it on the host before boot`);
  });

  afterEach(() => {
    for (const p of background.splice(0)) p.kill('SIGKILL');
    for (const id of started.splice(0)) hako(['delete', '--force', id]);
  });

  afterAll(() => {
    rmSync(scratch, { recursive: true, force: true });
  });

  it('finds the cgroup this user may write, and hako doctor says limits are enforced', () => {
    expect(host.mode).toBe('unified');
    expect(host.problem).toBeNull();
    expect(host.base).toBe(rootless ? '/user/1000' : '/');
    const r = hako(['doctor']);
    expect(r.stdout).toMatch(/^ok +cgroups: cgroup v2 at \/sys\/fs\/cgroup \(unified mode\)$/m);
    expect(r.stdout).toMatch(new RegExp(`^ok +cgroups: writable subtree ${rootless ? '/user/1000 \\(delegated\\)' : '/'},`, 'm'));
    expect(r.stdout).toMatch(/^ok +cgroups: memory, pids and cpu limits are enforced$/m);
  });

  it('memory.max: an allocation past the limit is OOM-killed, counted, and reported by events', async () => {
    const id = `${who}-oom`;
    const limit = 24 << 20;
    // The init starts the hog itself and lives on, so events can still read the cgroup.
    const b = bundle(withResources({ memory: { limit, swap: limit } }, 'tail /dev/zero; echo hog-died; exec sleep 600'));
    ok(['create', '-b', b, id]);
    started.push(id);
    const dir = cgroupDir(id);
    expect(dir).toBe(defaultDir(id));
    expect(cat(dir, 'memory.max')).toBe(String(limit));
    expect(cat(dir, 'memory.swap.max')).toBe('0');
    expect(kv(dir, 'memory.events', 'oom_kill')).toBe(0);

    // `events` watches memory.events from before the process runs.
    let out = '';
    const ev = spawn(CLI, ['--root', stateRoot, 'events', '--interval', '1s', id], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    background.push(ev);
    ev.stdout!.on('data', (d) => (out += d));
    await until(() => out.includes('"type":"stats"'), 'the first stats event');
    ok(['start', id]);

    await until(() => kv(dir, 'memory.events', 'oom_kill') >= 1, 'memory.events oom_kill');
    await until(() => out.includes('"type":"oom"'), 'an oom event from hako events');
    const oom = out
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l))
      .find((e) => e.type === 'oom');
    expect(oom).toEqual({ type: 'oom', id });

    const stats = JSON.parse(ok(['events', '--stats', id]));
    expect(stats).toMatchObject({ type: 'stats', id });
    expect(stats.data.memory.usage.limit).toBe(limit);
    expect(stats.data.memory.usage.failcnt).toBeGreaterThanOrEqual(1); // memory.events max
    expect(stats.data.memory.usage.max).toBeGreaterThan(limit * 0.9); // memory.peak reached the limit
    expect(stats.data.memory.usage.usage).toBeLessThan(limit);

    ok(['delete', '--force', id]);
    started.splice(started.indexOf(id), 1);
    nothingLeft(id, dir);
  });

  it('pids.max: a fork loop inside the container stops at the limit', async () => {
    const id = `${who}-pids`;
    // The loop runs in a child shell (ash exits when a fork fails); the init stays.
    const loop = `sh -c 'i=0; while [ $i -lt 20 ]; do sleep 600 & i=$((i+1)); done; wait'; exec sleep 600`;
    const dir = runDetached(id, bundle(withResources({ pids: { limit: 6 } }, loop)));
    expect(cat(dir, 'pids.max')).toBe('6');
    await until(() => kv(dir, 'pids.events', 'max') > 0, 'pids.events max');
    // Let the loop finish its tries: the shell ends in `exec sleep` either way.
    await sleep(500);
    expect(Number(cat(dir, 'pids.current'))).toBeLessThanOrEqual(6);
    const ps = JSON.parse(ok(['ps', '--format', 'json', id])) as number[];
    expect(ps.length).toBeGreaterThanOrEqual(2);
    expect(ps.length).toBeLessThanOrEqual(6);
  });

  it('cpu.max: a busy loop is throttled', async () => {
    const id = `${who}-cpu`;
    const dir = runDetached(id, bundle(withResources({ cpu: { quota: 10000, period: 100000 } }, 'while :; do :; done')));
    expect(cat(dir, 'cpu.max')).toBe('10000 100000');
    await until(() => kv(dir, 'cpu.stat', 'nr_throttled') > 0, 'cpu.stat nr_throttled');
    const t0 = Date.now();
    const [thr0, use0] = [kv(dir, 'cpu.stat', 'nr_throttled'), kv(dir, 'cpu.stat', 'usage_usec')];
    await sleep(1500);
    const [thr1, use1] = [kv(dir, 'cpu.stat', 'nr_throttled'), kv(dir, 'cpu.stat', 'usage_usec')];
    expect(thr1).toBeGreaterThan(thr0);
    // 10% of a CPU; an unthrottled loop would use close to all of the wall time.
    expect(use1 - use0).toBeLessThan((Date.now() - t0) * 1000 * 0.3);
  });

  it('pause/resume freeze and thaw every process; update changes limits of the running container', async () => {
    const id = `${who}-pause`;
    const dir = runDetached(
      id,
      bundle(
        withResources(
          { memory: { limit: 64 << 20 }, cpu: { quota: 20000, period: 100000 } },
          'sleep 600 & sleep 600 & while :; do :; done',
        ),
      ),
    );
    await until(() => cat(dir, 'cgroup.procs').split('\n').length === 3, 'the init and its children', 10_000).catch(() => {});
    const pids = cat(dir, 'cgroup.procs').split('\n').map(Number);
    expect(pids.length).toBeGreaterThanOrEqual(3);

    ok(['pause', id]);
    expect(JSON.parse(ok(['state', id])).status).toBe('paused');
    expect(kv(dir, 'cgroup.events', 'frozen')).toBe(1);
    expect(cat(dir, 'cgroup.freeze')).toBe('1');
    const use0 = kv(dir, 'cpu.stat', 'usage_usec');
    await sleep(600);
    expect(kv(dir, 'cpu.stat', 'usage_usec')).toBe(use0); // nothing runs, the busy loop included

    ok(['resume', id]);
    expect(kv(dir, 'cgroup.events', 'frozen')).toBe(0);
    await until(() => kv(dir, 'cpu.stat', 'usage_usec') > use0, 'the busy loop to run again', 10_000);
    expect(cat(dir, 'cgroup.procs').split('\n').map(Number)).toEqual(pids);

    // runc's single-value flag on top of an OCI resources object from stdin (as containerd sends it).
    ok(
      ['update', '--memory', '32m', '--resources', '-', id],
      JSON.stringify({ memory: { limit: 48 << 20 }, pids: { limit: 50 }, cpu: { quota: 30000, period: 100000 } }),
    );
    expect(cat(dir, 'memory.max')).toBe(String(32 << 20)); // the flag wins over the object
    expect(cat(dir, 'pids.max')).toBe('50');
    expect(cat(dir, 'cpu.max')).toBe('30000 100000');

    ok(['delete', '--force', id]);
    started.splice(started.indexOf(id), 1);
    nothingLeft(id, dir);
    for (const p of pids) expect(existsSync(`/proc/${p}`)).toBe(false);
  });

  it("init and exec'd processes are born in the container's cgroup; its limits count them and delete --force kills them", () => {
    const id = `${who}-exec`;
    // --debug says how each process got into the cgroup: born there (clone3 CLONE_INTO_CGROUP), not moved.
    const created = hako(['--debug', 'run', '-d', '-b', bundle(withResources({ pids: { limit: 10 } }, 'exec sleep 600')), id]);
    expect(created.status, created.stderr).toBe(0);
    started.push(id);
    const dir = cgroupDir(id);
    expect(created.stderr).toMatch(new RegExp(`process \\d+ started in ${dir} \\(clone3 CLONE_INTO_CGROUP\\)`));
    const pidFile = path.join(scratch, `${id}.pid`);
    const exec = hako(['--debug', 'exec', '-d', '--pid-file', pidFile, id, 'sleep', '600']);
    expect(exec.status, exec.stderr).toBe(0);
    expect(exec.stderr).toMatch(new RegExp(`process \\d+ started in ${dir} \\(clone3 CLONE_INTO_CGROUP\\)`));
    const pid = Number(readFileSync(pidFile, 'utf8'));
    expect(cat(dir, 'cgroup.procs').split('\n').map(Number)).toContain(pid);
    expect(Number(cat(dir, 'pids.current'))).toBe(2);
    // A process that waits for its output: also in the cgroup while it runs.
    expect(ok(['exec', id, 'cat', '/proc/self/cgroup']).trim()).toBe('0::/');
    ok(['delete', '--force', id]);
    started.splice(started.indexOf(id), 1);
    nothingLeft(id, dir);
    expect(existsSync(`/proc/${pid}`)).toBe(false);
  });

  it("exec into a container whose init moved below its cgroup (controllers enabled there): the process joins the init's cgroup", () => {
    const id = `${who}-nested`;
    const dir = runDetached(id, bundle(sh('exec sleep 600')));
    const init = Number(JSON.parse(ok(['state', id])).pid);
    // What systemd in a container does: processes into a leaf, controllers for the children.
    mkdirSync(`${dir}/leaf`);
    writeFileSync(`${dir}/leaf/cgroup.procs`, String(init));
    writeFileSync(`${dir}/cgroup.subtree_control`, '+pids');
    // The container's own cgroup now takes no process (EBUSY): exec goes where the init is.
    expect(ok(['exec', id, 'cat', '/proc/self/cgroup']).trim()).toBe('0::/leaf');
    ok(['delete', '--force', id]);
    started.splice(started.indexOf(id), 1);
    nothingLeft(id, dir);
  });

  it('inside the container, /sys/fs/cgroup is its own cgroup, seen as the root', () => {
    const limit = 40 << 20;
    const b = bundle((c) => {
      withResources({ memory: { limit } }, 'cat /proc/self/cgroup; cat /sys/fs/cgroup/memory.max')(c);
      // The rootless default spec drops the cgroup mount; the plan mounts cgroup2 for a new cgroup namespace.
      if (!c.mounts!.some((m) => m.destination === '/sys/fs/cgroup'))
        c.mounts!.push({
          destination: '/sys/fs/cgroup',
          type: 'cgroup',
          source: 'cgroup',
          options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'],
        });
    });
    const id = `${who}-ns`;
    const out = ok(['run', '-b', b, id]).trim().split('\n');
    // The real root has no memory.max: this is the container's cgroup.
    expect(out).toEqual(['0::/', String(limit)]);
    nothingLeft(id);
  });

  it('a failed create leaves no cgroup: missing executable, and a value the kernel refuses', () => {
    const missing = refused(
      `${who}-noexec`,
      bundle((c) => {
        c.process!.args = ['/bin/no-such-program'];
        c.linux!.resources = { memory: { limit: 32 << 20 }, pids: { limit: 10 } } as never;
      }),
      /no-such-program/,
    );
    expect(missing).toMatch(/not found|no such file/i);
    // Valid JSON the converter passes on verbatim; the kernel's EINVAL comes after mkdir.
    refused(`${who}-einval`, bundle(withResources({ unified: { 'memory.high': 'lots' } }, 'true')), /memory\.high/);
  });

  it('bad input: one sentence, non-zero exit, nothing created', () => {
    refused(`${who}-neg`, bundle(withResources({ memory: { limit: -5 } }, 'true')), /linux\.resources\.memory\.limit: -5 /);
    refused(`${who}-nan`, bundle(withResources({ pids: { limit: 'many' } }, 'true')), /linux\.resources\.pids\.limit/);
    refused(`${who}-ctl`, bundle(withResources({ unified: { 'blkio.weight': '100' } }, 'true')), /unified\["blkio\.weight"\].*blkio/);
    refused(
      `${who}-esc`,
      bundle((c) => void (c.linux!.cgroupsPath = '../../../escape')),
      /cgroupsPath/,
    );
    if (rootless) {
      refused(
        `${who}-out`,
        bundle((c) => void (c.linux!.cgroupsPath = '/elsewhere/c1')),
        /cgroupsPath/,
      );
      expect(existsSync(`${CG}/elsewhere`)).toBe(false);
    }
    expect(readdirSync(stateRoot).filter((f) => !f.startsWith('.'))).toEqual([]);
  });
});
