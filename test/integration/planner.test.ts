// The warm planner (issue 20) behind the C front (bin/hako), rootless and as root: calls it
// serves run real containers (HAKO_PLANNER=require: a silent fallback fails the test); one
// call's environment, working directory and umask do not reach the next; another uid's
// connection is refused by the peer check (with a control the same client is served in);
// SIGKILL of the planner at random points under load corrupts no state and leaves nothing
// running; an idle planner ends and removes its socket; a removed root ends its planner.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { describe, it, expect, afterAll } from 'vitest';
import { scratchForThisFile, WHO, type Who } from '../helpers/hako.js';
import { CLI, IS_ROOT, TEST_USER } from '../helpers/env.js';
import { mountsUnder, stateDirs } from '../helpers/leftovers.js';

// These tests choose the planner's mode call by call: the suite's own (npm run test:planner-off) does not apply.
delete process.env.HAKO_PLANNER;

const { makeBundle, scratch } = scratchForThisFile();
const UMASK = process.umask().toString(8).padStart(4, '0');
const LONG_IDLE = '600000';

interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

interface CallOptions {
  cwd?: string;
  env?: Record<string, string>;
  umask?: string;
  /** HAKO_PLANNER=require (default): the call fails (125) unless a planner serves it. */
  mode?: 'require' | 'auto';
  /** A program the call runs under (unshare …). */
  wrap?: string[];
}

/** The program and arguments for `sh -c 'umask U; exec hako ARGS'` as who, with env. */
function commandFor(
  who: Who,
  args: string[],
  env: Record<string, string>,
  umask: string,
  wrap: string[] = [],
): [string, string[], NodeJS.ProcessEnv] {
  const sh = [...wrap, '/bin/sh', '-c', `umask ${umask}; exec "$0" "$@"`, CLI, ...args];
  if (who === 'root') return [sh[0]!, sh.slice(1), { ...process.env, ...env }];
  const vars = Object.entries({ PATH: process.env.PATH!, ...env }).map(([k, v]) => `${k}=${v}`);
  return ['setpriv', ['--reuid', TEST_USER, '--regid', TEST_USER, '--init-groups', '--reset-env', '/usr/bin/env', ...vars, ...sh], {}];
}

/** One hako call; output through files (a created container holds the caller's stdio). */
function call(who: Who, root: string, args: string[], o: CallOptions = {}): Promise<Result> {
  const env: Record<string, string> = { HAKO_PLANNER_IDLE_MS: LONG_IDLE, HAKO_PLANNER_DEBUG: '1', ...o.env };
  if ((o.mode ?? 'require') === 'require') env.HAKO_PLANNER = 'require';
  const [prog, argv, penv] = commandFor(who, ['--root', root, ...args], env, o.umask ?? UMASK, o.wrap);
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-planner-out-'));
  const fdOut = fs.openSync(path.join(out, 'stdout'), 'w+');
  const fdErr = fs.openSync(path.join(out, 'stderr'), 'w+');
  return new Promise<Result>((resolve) => {
    const child = spawn(prog, argv, { stdio: ['ignore', fdOut, fdErr], cwd: o.cwd ?? os.tmpdir(), env: penv, timeout: 60_000 });
    child.once('exit', (status) => {
      fs.closeSync(fdOut);
      fs.closeSync(fdErr);
      const r = {
        status,
        stdout: fs.readFileSync(path.join(out, 'stdout'), 'utf8'),
        stderr: fs.readFileSync(path.join(out, 'stderr'), 'utf8'),
      };
      fs.rmSync(out, { recursive: true, force: true });
      resolve(r);
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(pred: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await pred()) return true;
    await sleep(50);
  }
  return pred();
}

/** The pids of the planners serving root (their command line names it). */
function plannersOf(root: string): number[] {
  const pids: number[] = [];
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    let argv: string[];
    try {
      argv = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    const i = argv.indexOf('--root');
    if (argv.some((a) => a.endsWith('/planner.cjs')) && i >= 0 && argv[i + 1] === root) pids.push(Number(p));
  }
  return pids;
}

/** Processes whose command line holds marker (a container's own argument). */
function processesWith(marker: string): number[] {
  return fs
    .readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').includes(marker);
      } catch {
        return false;
      }
    })
    .map(Number);
}

const started: string[] = [];
afterAll(() => {
  for (const root of started) for (const pid of plannersOf(root)) process.kill(pid, 'SIGKILL');
});

/** Starts the planner of root the way a user does (a first call, served by today's path) and
 *  waits until it serves. */
async function warm(who: Who, root: string, env: Record<string, string> = {}): Promise<void> {
  started.push(root);
  const first = await call(who, root, ['list'], { mode: 'auto', env });
  expect(first.status, first.stderr).toBe(0);
  const up = await until(
    async () => fs.existsSync(path.join(root, '.planner.sock')) && (await call(who, root, ['list'], { env })).status === 0,
    15_000,
  );
  expect(up, `no planner serves ${root}`).toBe(true);
}

const skip = (who: Who) => who === 'root' && !IS_ROOT;

describe.each(WHO)('planner (%s)', (who) => {
  it.skipIf(skip(who))('serves run, create/start/state/kill/delete, exec and list', async () => {
    const { bundle, root } = makeBundle(who, (c) => {
      c.process!.args = ['sh', '-c', 'echo served by the front; exit 7'];
    });
    await warm(who, root);
    const run = await call(who, root, ['run', '-b', bundle, 'pl-run']);
    expect(run.stderr).toBe('');
    expect(run.stdout).toBe('served by the front\n');
    expect(run.status).toBe(7);
    expect(stateDirs(root)).toEqual([]);

    const cfg = JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8'));
    cfg.process.args = ['sleep', '1000'];
    fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(cfg));
    const pidFile = path.join(bundle, 'init.pid');
    const create = await call(who, root, ['create', '-b', bundle, '--pid-file', pidFile, 'pl-life']);
    expect(create.stderr).toBe('');
    expect(create.status).toBe(0);
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    const state = async () => JSON.parse((await call(who, root, ['state', 'pl-life'])).stdout) as { status: string; pid: number };
    expect(await state()).toMatchObject({ status: 'created', pid });
    // The init is the caller's descendant: the front cloned it, not the planner.
    expect((await call(who, root, ['start', 'pl-life'])).status).toBe(0);
    expect((await state()).status).toBe('running');
    const exec = await call(who, root, ['exec', 'pl-life', 'sh', '-c', 'echo exec in $(hostname); exit 4']);
    expect(exec.stdout).toBe('exec in hako\n');
    expect(exec.status).toBe(4);
    const list = await call(who, root, ['list', '--format', 'json']);
    expect(JSON.parse(list.stdout)).toMatchObject([{ id: 'pl-life', status: 'running', pid }]);
    expect((await call(who, root, ['kill', 'pl-life', 'KILL'])).status).toBe(0);
    expect(await until(async () => (await state()).status === 'stopped', 5000)).toBe(true);
    const del = await call(who, root, ['delete', 'pl-life']);
    expect(del.stderr).toBe('');
    expect(del.status).toBe(0);
    expect(stateDirs(root)).toEqual([]);
    expect(processesWith('1000').filter((p) => p === pid)).toEqual([]);

    // Calls do not wait for each other: a list is served while a run waits for its container.
    cfg.process.args = ['sleep', '3'];
    fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(cfg));
    const long = call(who, root, ['run', '-b', bundle, 'pl-long']);
    expect(await until(async () => (await call(who, root, ['state', 'pl-long'])).status === 0, 5000)).toBe(true);
    const t0 = Date.now();
    const during = await call(who, root, ['list', '-q']);
    expect(during.stdout).toBe('pl-long\n');
    expect(Date.now() - t0).toBeLessThan(1500);
    expect((await long).status).toBe(0);
    expect(stateDirs(root)).toEqual([]);

    // No fd of a call stays in the planner: the same fds after a batch of calls, failures too.
    // (Event loops' own fds come and go with the workers: only the kinds a call brings or makes count.)
    const [planner] = plannersOf(root);
    const fds = () =>
      fs
        .readdirSync(`/proc/${planner}/fd`)
        .map((fd) => {
          try {
            return fs.readlinkSync(`/proc/${planner}/fd/${fd}`);
          } catch {
            return 'gone';
          }
        })
        .filter((l) => !/^(anon_inode:\[(eventfd|eventpoll)\]|pipe:\[\d+\]|gone)$/.test(l))
        .sort();
    const before = fds();
    cfg.process.args = ['sleep', '1000'];
    fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(cfg));
    for (const args of [
      ['create', '-b', bundle, 'pl-fd'],
      ['start', 'pl-fd'],
      ['exec', 'pl-fd', 'true'],
      ['state', 'pl-fd'],
      ['ps', 'pl-fd'],
      ['create', '-b', path.join(bundle, 'nowhere'), 'pl-none'],
      ['start', 'pl-none'],
      ['delete', '--force', 'pl-fd'],
    ])
      await call(who, root, args);
    // The worker closes them right after EXIT, which may be a moment after the front has gone.
    await until(() => JSON.stringify(fds()) === JSON.stringify(before), 3000);
    expect(fds()).toEqual(before);

    // Bad input in a served call: one sentence, non-zero, nothing left behind.
    const bad = await call(who, root, ['create', '-b', path.join(bundle, 'nowhere'), 'pl-bad']);
    expect(bad.stderr).toMatch(/^hako: cannot read .*nowhere\/config\.json: .*\n$/);
    expect(bad.status).not.toBe(0);
    expect(stateDirs(root)).toEqual([]);
  });

  it.skipIf(skip(who))("a call's cwd, environment and umask do not reach the next", async () => {
    const root = scratch(who, 'r-');
    const a = makeBundle(who, (c) => (c.process!.args = ['sleep', '1001'])).bundle;
    const b = makeBundle(who, (c) => (c.process!.args = ['sleep', '1001'])).bundle;
    await warm(who, root);
    // Relative -b and --pid-file: each against its own call's cwd.
    expect((await call(who, root, ['create', '-b', '.', '--pid-file', 'init.pid', 'pl-a'], { cwd: a })).status).toBe(0);
    expect((await call(who, root, ['create', '--bundle', '.', '--pid-file', 'init.pid', 'pl-b'], { cwd: b })).status).toBe(0);
    const st = async (id: string) => JSON.parse((await call(who, root, ['state', id])).stdout) as { bundle: string; pid: number };
    expect((await st('pl-a')).bundle).toBe(a);
    expect((await st('pl-b')).bundle).toBe(b);
    expect(Number(fs.readFileSync(path.join(a, 'init.pid'), 'utf8'))).toBe((await st('pl-a')).pid);
    expect(Number(fs.readFileSync(path.join(b, 'init.pid'), 'utf8'))).toBe((await st('pl-b')).pid);
    expect((await call(who, root, ['start', 'pl-a'])).status).toBe(0);

    // The environment: `ps` runs the ps its call's PATH finds. A fake one first, then the
    // real one, then the fake again: each call sees only its own PATH.
    const fake = scratch(who, 'ps-');
    const pid = (await st('pl-a')).pid;
    fs.writeFileSync(path.join(fake, 'ps'), `#!/bin/sh\necho "UID PID CMD"\necho "u ${pid} fake-ps-of-this-call"\n`, { mode: 0o755 });
    const withFake = { PATH: `${fake}:${process.env.PATH}` };
    const ps1 = await call(who, root, ['ps', 'pl-a'], { env: withFake });
    expect(ps1.stdout).toContain('fake-ps-of-this-call');
    const ps2 = await call(who, root, ['ps', 'pl-a']);
    expect(ps2.status).toBe(0);
    expect(ps2.stdout).not.toContain('fake-ps-of-this-call');
    expect(ps2.stdout).toContain('sleep 1001');
    expect((await call(who, root, ['ps', 'pl-a'], { env: withFake })).stdout).toContain('fake-ps-of-this-call');

    // Another umask is not the planner's: that call goes back to today's path, the next is served.
    const other = await call(who, root, ['state', 'pl-a'], { umask: '0077' });
    expect(other.status).toBe(125);
    expect(other.stderr).toContain('umask 77');
    expect(other.stderr).toContain('hako: no planner served this call (the planner sent it back)');
    expect((await call(who, root, ['state', 'pl-a'], { umask: '0077', mode: 'auto' })).status).toBe(0);
    expect((await call(who, root, ['state', 'pl-a'])).status).toBe(0);

    for (const id of ['pl-a', 'pl-b']) expect((await call(who, root, ['delete', '--force', id])).status).toBe(0);
    expect(stateDirs(root)).toEqual([]);
  });

  it.skipIf(skip(who))("hands back to the front what only today's path can do, before doing anything", async () => {
    const { bundle, root } = makeBundle(who, (c) => (c.process!.terminal = true));
    await warm(who, root);
    const cases: Array<[string[], Record<string, string>, string]> = [
      [['run', '-b', bundle, 'pl-tty'], {}, 'a terminal'],
      [['exec', '-t', 'pl-x', 'sh'], {}, 'exec --tty'],
      [['exec', '--process', '-', 'pl-x'], {}, 'exec --process -'],
      [['create', '--preserve-fds', '1', '-b', bundle, 'pl-fds'], {}, '--preserve-fds'],
      [['create', '-b', bundle, 'pl-act'], { LISTEN_FDS: '1', LISTEN_PID: '1' }, 'LISTEN_FDS'],
    ];
    for (const [args, env, why] of cases) {
      const r = await call(who, root, args, { env });
      expect(r.status, args.join(' ')).toBe(125);
      expect(r.stderr).toContain(`hako: the planner falls back: `);
      expect(r.stderr).toContain(why);
      expect(r.stderr).toContain('hako: no planner served this call (the planner sent it back)');
    }
    // A caller in a mount namespace of its own sees other paths (and cgroups): today's path serves it.
    const ns = await call(who, root, ['list'], { wrap: who === 'root' ? ['unshare', '-m'] : ['unshare', '-r', '-m'] });
    expect(ns.status).toBe(125);
    expect(ns.stderr).toMatch(/hako: the planner falls back: the caller's ns\/(mnt|user) is not the planner's/);
    expect((await call(who, root, ['list'])).status).toBe(0); // the control: the same call, in our namespaces
    expect(stateDirs(root)).toEqual([]);
    // And the same call without HAKO_PLANNER=require runs today's path (which refuses the terminal here).
    const today = await call(who, root, ['run', '-b', bundle, 'pl-tty'], { mode: 'auto' });
    expect(today.stderr).toMatch(/process\.terminal: hako has no terminal to give the container/);
    expect(stateDirs(root)).toEqual([]);
  });

  it.skipIf(skip(who))('an idle planner ends and removes its socket; a removed root ends its planner', async () => {
    const idle = scratch(who, 'r-');
    await warm(who, idle, { HAKO_PLANNER_IDLE_MS: '700' });
    const [pid] = plannersOf(idle);
    expect(pid).toBeGreaterThan(0);
    expect(await until(() => !fs.existsSync(path.join(idle, '.planner.sock')) && plannersOf(idle).length === 0, 10_000)).toBe(true);
    // The next call starts another and is served by today's path meanwhile.
    const next = await call(who, idle, ['list'], { mode: 'auto' });
    expect(next.status).toBe(0);

    const removed = scratch(who, 'r-');
    await warm(who, removed);
    expect(plannersOf(removed).length).toBe(1);
    fs.rmSync(removed, { recursive: true, force: true });
    expect(await until(() => plannersOf(removed).length === 0, 10_000)).toBe(true);
  });

  it.skipIf(skip(who))('SIGKILL of the planner under create/start/delete loses no state and leaves nothing behind', async () => {
    const marker = who === 'root' ? '1002' : '1003';
    const { bundle, root } = makeBundle(who, (c) => (c.process!.args = ['sleep', marker]));
    await warm(who, root);
    let kills = 0;
    let stop = false;
    const killer = (async () => {
      while (!stop) {
        await sleep(30 + Math.floor(Math.random() * 400));
        for (const p of plannersOf(root)) {
          process.kill(p, 'SIGKILL');
          kills++;
        }
      }
    })();
    const failures: string[] = [];
    for (let i = 0; i < 12; i++) {
      const id = `pl-k${i}`;
      for (const args of [
        ['create', '-b', bundle, id],
        ['start', id],
        ['delete', '--force', id],
      ]) {
        const r = await call(who, root, args, { mode: 'auto' });
        if (r.status !== 0) failures.push(`${args.join(' ')}: ${r.status} ${r.stderr.trim()}`);
      }
    }
    stop = true;
    await killer;
    expect(kills, 'the planner was never killed: the test proves nothing').toBeGreaterThan(0);
    // A call cut short says so in one sentence; any other failure is a defect. A planner killed
    // before its SPAWN makes the front run today's path for that call, which may find what
    // the planner had begun (as after a killed `hako create`): "already exists", cleaned below.
    for (const f of failures)
      expect(f).toMatch(
        /the planner ended during the call; nothing it started is left running|does not exist|already exists|cannot start container "pl-k\d+": (it is \w+, not created|its init is not waiting any more)/,
      );
    for (const id of stateDirs(root)) {
      const file = path.join(root, id, 'state.json');
      if (fs.existsSync(file)) expect(() => JSON.parse(fs.readFileSync(file, 'utf8'))).not.toThrow();
    }
    const list = await call(who, root, ['list', '--format', 'json'], { mode: 'auto' });
    expect(list.status, list.stderr).toBe(0);
    expect(() => JSON.parse(list.stdout)).not.toThrow();
    for (const id of stateDirs(root)) expect((await call(who, root, ['delete', '--force', id], { mode: 'auto' })).status).toBe(0);
    expect(stateDirs(root)).toEqual([]);
    expect(await until(() => processesWith(marker).length === 0, 5000)).toBe(true);
    expect(mountsUnder(root)).toEqual([]);
    expect(mountsUnder(bundle)).toEqual([]);
    // The next call works, served by a planner again.
    await warm(who, root);
    const cfg = JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8'));
    cfg.process.args = ['true'];
    fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(cfg));
    const run = await call(who, root, ['run', '-b', bundle, 'pl-after']);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
  });
});

// A front's request, written by hand (native/front/protocol.h), from any uid: the first
// answer's type (17 SPAWN, 21 EXIT), or EOF/ERROR/CLOSED when the planner closed the connection.
const CLIENT = String.raw`
import array, os, socket, struct, sys

path, argv = sys.argv[1], sys.argv[2:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(path)
env = [b'PATH=/usr/bin:/bin']
payload = b''.join(a.encode() + b'\0' for a in argv) + b''.join(e + b'\0' for e in env)
bad = os.environ.get('BAD', '')
hdr = lambda t, n: struct.pack('=IIII', 0x4c4c4144 if bad == 'magic' else 0x4c4c4143, 1, t, n)
mask = os.umask(0); os.umask(mask)
cwd = os.open('.', os.O_PATH | os.O_DIRECTORY)
argc = len(argv) + (5 if bad == 'count' else 0)
size = (5 << 20) if bad == 'size' else len(payload)
try:
    s.sendmsg([hdr(1, 16) + struct.pack('=IIII', mask, argc, len(env), size)],
              [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array('i', [cwd, 0, 1, 2]))])
    s.sendmsg([hdr(2, len(payload)) + payload])
except OSError as e:
    print('CLOSED %d' % e.errno)
    sys.exit(0)
s.settimeout(10)
try:
    data = s.recv(70000)
    # TAKEN (22) comes first and wants no answer: the first request after it is what counts.
    while data and struct.unpack('=IIII', data[:16])[2] == 22:
        data = s.recv(70000)
    print('EOF' if not data else 'TYPE %d' % struct.unpack('=IIII', data[:16])[2])
except socket.timeout:
    print('TIMEOUT')
except OSError as e:
    print('ERROR %d' % e.errno)
`;

describe.skipIf(!IS_ROOT)("two users' planners", () => {
  function client(as: Who, sock: string, argv: string[], bad = ''): { answer: string; stderr: string } {
    const cmd = ['python3', '-c', CLIENT, sock, ...argv];
    const r =
      as === 'root'
        ? spawnSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8', cwd: os.tmpdir(), timeout: 30_000, env: { ...process.env, BAD: bad } })
        : spawnSync('setpriv', ['--reuid', TEST_USER, '--regid', TEST_USER, '--init-groups', '--reset-env', ...cmd], {
            encoding: 'utf8',
            cwd: os.tmpdir(),
            timeout: 30_000,
          });
    return { answer: r.stdout.trim(), stderr: r.stderr };
  }

  it.each([
    ['root', 'rootless'],
    ['rootless', 'root'],
  ] as Array<[Who, Who]>)('the %s planner refuses a %s caller (the peer check), and serves its own', async (owner, other) => {
    const { bundle, root } = makeBundle(owner);
    await warm(owner, root);
    const sock = path.join(root, '.planner.sock');
    // Reachable on purpose: only the peer check stands between the other user and the planner.
    fs.chmodSync(root, 0o711);
    fs.chmodSync(sock, 0o666);
    const argv = ['hako', '--root', root, 'create', '-b', bundle, 'pl-peer'];
    const refused = client(other, sock, argv);
    expect(refused.answer).toMatch(/^(EOF|ERROR \d+|CLOSED \d+)$/);
    expect(refused.stderr).toBe(''); // not a word from the planner on the caller's stderr either
    expect(stateDirs(root)).toEqual([]);
    // The control: the same client as the planner's own user gets its answer (SPAWN), then
    // leaves; the planner's create fails and removes what it made.
    const served = client(owner, sock, argv);
    expect(served.answer).toBe('TYPE 17');
    expect(served.stderr).toMatch(/^hako: creating the container process failed: ask the front to clone: [^\n]+\n$/);
    expect(await until(() => stateDirs(root).length === 0, 5000)).toBe(true);
    // A malformed request of its own user (another magic, a payload over 4 MiB, more strings
    // announced than sent) is closed without an answer, and the planner serves on.
    if (owner === 'root')
      for (const bad of ['magic', 'size', 'count']) {
        const r = client(owner, sock, argv, bad);
        expect(r.answer, bad).toMatch(/^(EOF|ERROR \d+|CLOSED \d+)$/);
        expect(r.stderr).toBe('');
      }
    expect(stateDirs(root)).toEqual([]);
    // The planner lives on, serving its own.
    expect((await call(owner, root, ['list'])).status).toBe(0);
  });
});
