// `hako up` killed with SIGKILL left its container running: nothing stopped it, and the next
// `up` found it "already running". Now the init of a container `up` starts gets the parent-death
// signal SIGKILL (PARENT_DEATH_SIGNAL, set after the identity steps, which would clear it), so
// when up dies, however it dies, the kernel kills the init, and with it the container's pid
// namespace. Performed for real, as root and rootless: up serves a busybox bundle whose processes
// carry a unique number in their argv; up is SIGKILLed, and none of them may be left after a few
// seconds, also when the container runs as another user than root. The control kills a
// foreground `hako run` the same way (no parent-death signal, runc's behaviour): its container
// survives, so the test sees a survivor when there is one. The same for a plan that forks (a
// joined user namespace: the init is a grandchild, reparented when the intermediate exits),
// through the library; and the executor's step alone, against a parent that dies before and
// after it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hako, scratchForThisFile, testUserSubIds, testUserIds, WHO, type Who } from '../helpers/hako.js';
import { CLI, IS_ROOT, REPO, TEST_USER, WORK } from '../helpers/env.js';
import { encodeSteps } from '../../src/plan/encode.js';
import type { Step } from '../../src/plan/ops.js';
import { planNamespaces } from '../../src/plan/namespaces.js';
import { buildCreatePlan, buildExecPlan } from '../../src/plan/build.js';
import { defaultSpec } from '../../src/oci/default.js';
import { validateConfig } from '../../src/oci/validate.js';
import type { HostFacts } from '../../src/host/facts.js';
import type { Config } from '../../src/oci/config.js';

const { makeBundle, scratch } = scratchForThisFile();
const GONE_WITHIN_MS = 5_000;

/** A number no other process on the host has in its argv: the container's processes are found by it. */
const newMarker = () => String(800_000_000 + crypto.randomInt(99_999_999));

/** The container's processes: sh and two sleeps, all with the marker in their argv. */
const markerArgs = (m: string) => ['sh', '-c', `sleep ${m} & sleep ${m}; wait`];

interface Proc {
  pid: number;
  start: string;
}

/** /proc/PID/stat's start time (field 22), or null when the process is gone. */
function startTime(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

function withMarker(marker: string): Proc[] {
  const out: Proc[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (!fs.readFileSync(`/proc/${e}/cmdline`, 'utf8').includes(marker)) continue;
      const start = startTime(Number(e));
      if (start) out.push({ pid: Number(e), start });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Still the same process (not a reused pid), and not a zombie. */
function alive(p: Proc): boolean {
  if (startTime(p.pid) !== p.start) return false;
  try {
    return !/^State:\s+Z/m.test(fs.readFileSync(`/proc/${p.pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Left-overs of a failed test: processes killed by their pids (never by name), containers deleted. */
const strays: Proc[] = [];
const running: ChildProcess[] = [];
const containers: Array<[Who, string, string]> = [];
afterEach(() => {
  for (const c of running.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const p of strays.splice(0)) if (alive(p)) process.kill(p.pid, 'SIGKILL');
  for (const [who, root, id] of containers.splice(0)) hako(who, root, ['delete', '--force', id]);
});

/** Spawns argv as root or as the test user; output is kept. */
function start(who: Who, argv: string[]) {
  const child =
    who === 'root'
      ? spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], cwd: os.tmpdir() })
      : spawn('setpriv', ['--reuid', TEST_USER, '--regid', TEST_USER, '--init-groups', '--reset-env', ...argv], {
          stdio: ['ignore', 'pipe', 'pipe'],
          env: { PATH: process.env.PATH },
          cwd: os.tmpdir(),
        });
  running.push(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d));
  child.stderr!.on('data', (d: Buffer) => (err += d));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return { child, exited, output: () => `stdout: ${out}\nstderr: ${err}` };
}

/** Waits for the container's three processes; fails with the runtime's output if it ends first. */
async function containerOf(marker: string, runtime: ReturnType<typeof start>, ms = 60_000): Promise<Proc[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const procs = withMarker(marker);
    if (procs.length === 3) {
      strays.push(...procs);
      return procs;
    }
    if (runtime.child.exitCode !== null || runtime.child.signalCode !== null || Date.now() > deadline)
      throw new Error(`the container's processes did not all appear (found ${procs.length}); ${runtime.output()}`);
    await sleep(50);
  }
}

/** SIGKILL to the runtime process, and how long its container outlives it (at most `ms`). */
async function killRuntime(runtime: ReturnType<typeof start>, procs: Proc[], ms = GONE_WITHIN_MS) {
  runtime.child.kill('SIGKILL');
  await runtime.exited;
  const deadline = Date.now() + ms;
  while (procs.some(alive) && Date.now() < deadline) await sleep(50);
  return procs.filter(alive);
}

/** A user namespace as up's, for runs without up: as root, a range of ids (one id would leave
 *  devpts's gid=5 unmapped); rootless, makeBundle's. */
function inUserNs(who: Who, c: Config): void {
  if (!c.linux!.namespaces!.some((n) => n.type === 'user')) c.linux!.namespaces!.push({ type: 'user' });
  if (who === 'root') {
    c.linux!.uidMappings = [{ containerID: 0, hostID: 3_000_000, size: 65536 }];
    c.linux!.gidMappings = [{ containerID: 0, hostID: 3_000_000, size: 65536 }];
  }
}

/** hako up's config needs a new user namespace (up maps it, as root); rootless, makeBundle gives
 *  one. As another user than root (uid 1000) the identity steps change the uids: the signal must
 *  survive that. */
function upBundle(who: Who, marker: string, asUser: boolean, withoutUp = false) {
  return makeBundle(who, (c) => {
    if (withoutUp) inUserNs(who, c);
    else if (!c.linux!.namespaces!.some((n) => n.type === 'user')) c.linux!.namespaces!.push({ type: 'user' });
    c.process!.args = markerArgs(marker);
    if (!asUser) return;
    c.process!.user = { uid: 1000, gid: 1000 };
    if (who === 'rootless') {
      // Rootless, uid 1000 needs a mapped range (newuidmap); as root, up maps its own.
      const ids = testUserIds();
      const [su, sg] = [testUserSubIds('/etc/subuid'), testUserSubIds('/etc/subgid')];
      c.linux!.uidMappings = [
        { containerID: 0, hostID: ids.uid, size: 1 },
        { containerID: 1, hostID: su.start, size: 2000 },
      ];
      c.linux!.gidMappings = [
        { containerID: 0, hostID: ids.gid, size: 1 },
        { containerID: 1, hostID: sg.start, size: 2000 },
      ];
    }
  });
}

describe.each(WHO)('hako up killed with SIGKILL (%s)', (who) => {
  const run = it.skipIf(who === 'root' && !IS_ROOT);

  for (const asUser of [false, true]) {
    run(`its container dies with it${asUser ? ' (the container runs as uid 1000)' : ''}`, async () => {
      const marker = newMarker();
      const { bundle, root } = upBundle(who, marker, asUser);
      const id = `die-up-${asUser ? 'user' : 'root'}`;
      containers.push([who, root, id]);
      const up = start(who, [CLI, '--root', root, 'up', bundle, '--listen', '127.0.0.1:0', '--id', id]);
      const procs = await containerOf(marker, up);
      if (asUser) expect(fs.readFileSync(`/proc/${procs[0]!.pid}/status`, 'utf8')).not.toMatch(/^Uid:\s+0\s/m);
      // The signal did not fire on its own meanwhile: the container runs on while up does.
      await sleep(500);
      expect(procs.filter(alive)).toHaveLength(3);
      const left = await killRuntime(up, procs);
      expect(left, `still running ${GONE_WITHIN_MS} ms after up was killed: ${JSON.stringify(left)}`).toEqual([]);
      // What up left in its state root goes (the container is stopped now).
      expect(hako(who, root, ['delete', '--force', id]).status).toBe(0);
    });
  }

  run('control: a foreground `hako run` killed the same way leaves its container running (as runc does)', async () => {
    const marker = newMarker();
    const { bundle, root } = upBundle(who, marker, false, true);
    containers.push([who, root, 'die-run']);
    const r = start(who, [CLI, '--root', root, 'run', '-b', bundle, 'die-run']);
    const procs = await containerOf(marker, r);
    const left = await killRuntime(r, procs, 2_000);
    expect(left).toHaveLength(3);
    expect(hako(who, root, ['delete', '--force', 'die-run']).status).toBe(0);
    const deadline = Date.now() + GONE_WITHIN_MS;
    while (procs.some(alive) && Date.now() < deadline) await sleep(50);
    expect(procs.filter(alive)).toEqual([]);
  });
});

/** The library's create + start with or without dieWithRuntime, in a node process of its own
 *  (a subreaper, as up is), which then idles until killed. */
const LIBRARY_SCRIPT = `
const [root, bundle, id, die] = process.argv.slice(1);
const rt = await import(${JSON.stringify(path.join(REPO, 'dist/runtime/index.js'))});
const { native } = await import(${JSON.stringify(path.join(REPO, 'dist/sys/native.js'))});
native.setSubreaper();
const log = { debug() {}, info() {}, warn: (m) => console.error(m), error: (m) => console.error(m) };
const ctx = { store: rt.makeStore(root), rootless: rt.rootlessDefault(), log };
const launched = rt.startCreated(ctx, rt.create(ctx, { id, bundle, dieWithRuntime: die === '1' }));
console.log('started ' + launched.pid);
setInterval(() => {}, 1 << 30);
`;

describe.each(WHO)('a plan that forks: the init is a grandchild of the runtime (%s)', (who) => {
  const run = it.skipIf(who === 'root' && !IS_ROOT);

  run('dies with the runtime only once the intermediate is gone; without the option it survives', async () => {
    // A holds the user namespace B joins; B makes a pid namespace in it, so its plan forks.
    const a = makeBundle(who, (c) => {
      inUserNs(who, c);
      // B's runtime joins as it is: as root, host root must be mapped there (0 on itself).
      if (who === 'root')
        for (const key of ['uidMappings', 'gidMappings'] as const)
          c.linux![key] = [
            { containerID: 0, hostID: 0, size: 1 },
            { containerID: 1, hostID: 3_000_001, size: 65535 },
          ];
      c.process!.args = ['sleep', '120'];
    });
    expect(hako(who, a.root, ['run', '-d', '-b', a.bundle, 'holder'], { detached: true }).status).toBe(0);
    try {
      const holder = Number(JSON.parse(hako(who, a.root, ['state', 'holder']).stdout).pid);
      for (const die of [true, false]) {
        const marker = newMarker();
        const b = makeBundle(who, (c: Config) => {
          c.linux!.namespaces = c.linux!.namespaces!.filter((n) => n.type !== 'user');
          c.linux!.namespaces.push({ type: 'user', path: `/proc/${holder}/ns/user` });
          delete c.linux!.uidMappings;
          delete c.linux!.gidMappings;
          c.process!.args = markerArgs(marker);
        });
        const cfg = JSON.parse(fs.readFileSync(path.join(b.bundle, 'config.json'), 'utf8')) as Config;
        expect(planNamespaces(cfg).steps.map((s) => s.op)).toContain('FORK');
        containers.push([who, b.root, 'forked']);
        const lib = start(who, [
          process.execPath,
          '--input-type=module',
          '-e',
          LIBRARY_SCRIPT,
          b.root,
          b.bundle,
          'forked',
          die ? '1' : '0',
        ]);
        const procs = await containerOf(marker, lib);
        await sleep(500);
        expect(procs.filter(alive), lib.output()).toHaveLength(3);
        const left = await killRuntime(lib, procs, die ? GONE_WITHIN_MS : 2_000);
        if (die) expect(left, `still running after the runtime was killed: ${JSON.stringify(left)}`).toEqual([]);
        else expect(left).toHaveLength(3); // the control
        expect(hako(who, b.root, ['delete', '--force', 'forked']).status).toBe(0);
      }
    } finally {
      hako(who, a.root, ['delete', '--force', 'holder']);
    }
  });
});

describe('the executor’s PARENT_DEATH_SIGNAL step, against a parent that dies', () => {
  const dir = path.join(WORK, 'pdeathsig-tools');
  const bin = path.join(dir, 'pdeathsig');
  beforeAll(() => {
    fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
    fs.chmodSync(dir, 0o755);
    execFileSync('cc', [
      '-std=gnu11',
      '-D_GNU_SOURCE',
      '-O2',
      '-Wall',
      '-Wextra',
      '-Werror',
      '-o',
      bin,
      path.join(REPO, 'test/security/helpers/pdeathsig.c'),
      path.join(REPO, 'native/executor.c'),
      path.join(REPO, 'native/fdpass.c'),
    ]);
    fs.chmodSync(bin, 0o755);
  });

  const SIGKILL = 9;
  const die: Step = { op: 'PARENT_DEATH_SIGNAL', args: [SIGKILL], what: 'die with the runtime' };
  const ready: Step = { op: 'REPORT_READY', args: [], what: 'report ready' };
  const exec: Step = { op: 'EXEC', args: [2, '/bin/sleep', '30'], what: 'execute sleep' };
  const nobody: Step[] = [
    { op: 'SETRESGID', args: [65534], what: 'switch to gid 65534' },
    { op: 'SETRESUID', args: [65534], what: 'switch to uid 65534' },
  ];

  function outcome(who: Who, steps: Step[], mode: 'dead-before' | 'dies-after'): string {
    const planDir = scratch(who, 'pdeathsig-');
    const file = path.join(planDir, 'plan');
    fs.writeFileSync(file, encodeSteps(steps));
    fs.chmodSync(file, 0o644);
    const argv = [bin, file, mode];
    const r =
      who === 'root'
        ? spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 20_000 })
        : spawnSync('setpriv', ['--reuid', TEST_USER, '--regid', TEST_USER, '--init-groups', '--reset-env', ...argv], {
            encoding: 'utf8',
            timeout: 20_000,
            env: { PATH: process.env.PATH },
          });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    return r.stdout.trim();
  }

  describe.each(WHO)('(%s)', (who) => {
    const run = it.skipIf(who === 'root' && !IS_ROOT);
    run('the runtime dies after the step: the kernel kills the process', () => {
      expect(outcome(who, [die, ready, exec], 'dies-after')).toBe(`signal ${SIGKILL}`);
    });
    run('the runtime died before the step: the step sees its end of the sync socket closed and fails', () => {
      expect(outcome(who, [die, exec], 'dead-before')).toBe('exit 125');
      // Control: without the step the same process goes on, as nothing tells it.
      expect(outcome(who, [exec], 'dead-before')).toBe('alive');
    });
  });

  it.skipIf(!IS_ROOT)('after a change of uid and gid it still fires; set before that change it would not (the kernel clears it)', () => {
    expect(outcome('root', [...nobody, die, ready, exec], 'dies-after')).toBe(`signal ${SIGKILL}`);
    // Control, the kernel fact the plan's order answers: the signal set before setresuid is gone.
    expect(outcome('root', [die, ...nobody, ready, exec], 'dies-after')).toBe('alive');
  });
});

describe('the plan: where the parent-death signal is set', () => {
  const host: HostFacts = { uid: 1000, gid: 1000, user: 'alice', lastCap: 40, landlockAbi: 7, cgroup2Unified: true };
  const seccomp = { program: new Uint8Array(8), flags: 0, listener: false };
  const cfg = (nnp: boolean) => {
    const c = defaultSpec(true);
    c.root = { path: '/nonexistent-rootfs', readonly: true };
    c.process!.terminal = false;
    c.process!.noNewPrivileges = nnp;
    c.process!.user = { uid: 1000, gid: 1000 };
    if (c.linux!.namespaces!.some((n) => n.type === 'user')) {
      c.linux!.uidMappings = [{ containerID: 0, hostID: host.uid, size: 1 }];
      c.linux!.gidMappings = [{ containerID: 0, hostID: host.gid, size: 1 }];
    }
    return validateConfig(JSON.parse(JSON.stringify(c)));
  };
  const ops = (steps: Array<{ op: string }>) => steps.map((s) => s.op);

  it('only when asked (up), for the init: after every identity step, before no_new_privs’ filter and REPORT_READY', () => {
    for (const nnp of [true, false]) {
      const o = ops(buildCreatePlan({ cfg: cfg(nnp), bundle: '/b', rootless: true, host, seccomp, dieWithRuntime: true }).steps);
      const d = o.indexOf('PARENT_DEATH_SIGNAL');
      expect(o.filter((op) => op === 'PARENT_DEATH_SIGNAL')).toHaveLength(1);
      for (const id of ['SETGROUPS', 'SETRESGID', 'SETRESUID', 'CAPSET', 'KEEPCAPS']) expect(o.lastIndexOf(id)).toBeLessThan(d);
      expect(d).toBeLessThan(o.indexOf('REPORT_READY'));
      expect(d).toBeLessThan(o.indexOf('EXEC'));
      if (nnp) expect(d).toBeLessThan(o.indexOf('SECCOMP'));
    }
    // create and run (the option's default), and exec: never.
    expect(ops(buildCreatePlan({ cfg: cfg(true), bundle: '/b', rootless: true, host }).steps)).not.toContain('PARENT_DEATH_SIGNAL');
    const c = cfg(true);
    const exec = buildExecPlan(
      { cfg: c, bundle: '/b', rootless: true, host, initPid: 42, process: c.process!, setgroupsDenied: true },
      () => true,
    );
    expect(ops(exec.steps)).not.toContain('PARENT_DEATH_SIGNAL');
  });

  it.skipIf(!IS_ROOT)('`hako plan` (what create runs) has none', () => {
    const { bundle, root } = makeBundle('rootless');
    const r = hako('rootless', root, ['plan', '-b', bundle]);
    expect(r.status).toBe(0);
    const steps = (JSON.parse(r.stdout) as { steps: Array<{ op: string; args: unknown[] }> }).steps;
    expect(ops(steps)).not.toContain('PARENT_DEATH_SIGNAL');
    expect(steps.find((s) => s.op === 'JOIN_SESSION_KEYRING')?.args[0]).toBe('_ses.<container id>');
  });
});
