// The front (bin/hako, native/front/) on its own: how it reads planner messages (under
// ASan/UBSan), which state root it picks and which it refuses, whose socket it talks to
// (a witness listener shows whether it connected at all: the control of each refusal),
// today's path wherever no planner serves, and the detached start of a planner.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, IS_ROOT, REPO, TEST_USER } from '../helpers/env.js';
import { hako, scratchForThisFile, testUserIds, WHO, type Who } from '../helpers/hako.js';
import { stateDirs } from '../helpers/leftovers.js';

// These tests choose the planner's mode call by call: the suite's own (npm run test:planner-off) does not apply.
delete process.env.HAKO_PLANNER;

const { scratch, makeBundle } = scratchForThisFile();
const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-front-test-'));
const WITNESS = path.join(bin, 'front-witness');
const REFUSED_ROOT = "hako: no planner served this call (the state root is not the caller's own)\n";
const cc = (out: string, ...args: string[]) =>
  execFileSync('cc', ['-std=gnu11', '-D_GNU_SOURCE', '-Wall', '-Wextra', '-Werror', '-g', '-o', out, ...args]);

beforeAll(() => {
  fs.chmodSync(bin, 0o755);
  cc(WITNESS, path.join(REPO, 'test/native/front-witness.c'));
});
afterAll(() => fs.rmSync(bin, { recursive: true, force: true }));

const uidOf = (who: Who) => (who === 'root' ? 0 : testUserIds().uid);
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A directory for a state root (or its parent): owned by who, mode 0700 unless told. */
function dirFor(who: Who, mode = 0o700): string {
  const d = scratch(who, 'fr-');
  fs.chmodSync(d, mode);
  return d;
}

const asUser = (args: string[], env: string[] = []) =>
  ['setpriv', ['--reuid', TEST_USER, '--regid', TEST_USER, '--init-groups', '--reset-env', '/usr/bin/env', ...env, ...args]] as const;

/** Listens where a planner would (as who) until one connection or ms; resolves with what it saw. */
async function witness(who: Who, sock: string, ms: number): Promise<{ seen: Promise<string> }> {
  const [cmd, args] = who === 'root' ? [WITNESS, [sock, String(ms)]] : asUser([WITNESS, sock, String(ms)]);
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c));
  const done = new Promise<string>((resolve) => child.once('close', () => resolve(out.replace('ready\n', '').trim())));
  while (!out.includes('ready\n')) {
    if (child.exitCode !== null) throw new Error(`front-witness ended: ${out}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return { seen: done }; // not the promise itself: an async function would wait for it
}

/** The front with HAKO_PLANNER=require as who: exit 125 and one sentence when nothing served it. */
function required(who: Who, args: string[], extraEnv: Record<string, string> = {}, cwd = os.tmpdir()) {
  const env = { HAKO_PLANNER: 'require', ...extraEnv };
  if (who === 'root') return spawnSync(CLI, args, { encoding: 'utf8', cwd, env: { ...process.env, ...env } });
  const [cmd, a] = asUser(
    [CLI, ...args],
    Object.entries(env).map(([k, v]) => `${k}=${v}`),
  );
  return spawnSync(cmd, a, { encoding: 'utf8', cwd });
}

describe('the front reads planner messages', () => {
  it('refuses every malformed message and leaks no fd, under ASan/UBSan', () => {
    const exe = path.join(bin, 'front-protocol');
    cc(
      exe,
      '-fsanitize=address,undefined',
      '-fno-sanitize-recover=all',
      path.join(REPO, 'test/native/front-protocol.c'),
      path.join(REPO, 'native/front/message.c'),
      path.join(REPO, 'native/front/connect.c'),
    );
    const out = execFileSync(exe, ['3000'], { encoding: 'utf8' });
    expect(out).toMatch(/^front protocol: all cases handled, 3000 fuzzed messages \([1-9]\d* spawns taken\)$/m);
  });
});

describe("HAKO_PLANNER=off is today's path", () => {
  it('prints what node bin/hako.cjs prints, and fails as it fails', () => {
    const env = { ...process.env, HAKO_PLANNER: 'off' };
    const front = spawnSync(CLI, ['--version'], { encoding: 'utf8', env });
    const node = spawnSync(process.execPath, [path.join(REPO, 'bin/hako.cjs'), '--version'], { encoding: 'utf8', env });
    expect(front.status).toBe(0);
    expect(front.stdout).toMatch(/^hako version /);
    expect(front.stdout).toBe(node.stdout);
    const root = dirFor('root');
    const bad = spawnSync(CLI, ['--root', root, 'state', 'no-such'], { encoding: 'utf8', env });
    const badNode = spawnSync(process.execPath, [path.join(REPO, 'bin/hako.cjs'), '--root', root, 'state', 'no-such'], {
      encoding: 'utf8',
      env,
    });
    expect(bad.status).not.toBe(0);
    expect([bad.status, bad.stderr]).toEqual([badNode.status, badNode.stderr]);
  });
});

describe.each(WHO)('the state root (%s)', (who) => {
  it.skipIf(!IS_ROOT)("a symlink, a group-writable dir and another user's dir are refused; the real one is reached", async () => {
    const real = dirFor(who);
    const sock = path.join(real, '.planner.sock');
    // Control: the caller's own root is reached, and the call's argv arrives.
    let { seen } = await witness(who, sock, 5000);
    let r = required(who, ['--root', real, 'state', 'fr-x']);
    expect(r.status).toBe(125);
    expect(await seen).toMatch(new RegExp(`^request uid=${uidOf(who)} argc=5 argv=${esc(`${CLI}|--root|${real}|state|fr-x`)} env=\\d+$`));
    fs.rmSync(sock);

    const link = path.join(dirFor(who, 0o755), 'link');
    fs.symlinkSync(real, link);
    ({ seen } = await witness(who, sock, 1500));
    r = required(who, ['--root', link, 'state', 'fr-x']);
    expect([r.status, r.stderr]).toEqual([125, REFUSED_ROOT]);
    expect(await seen).toBe('none');
    fs.rmSync(sock);

    fs.chmodSync(real, 0o770);
    ({ seen } = await witness(who, sock, 1500));
    r = required(who, ['--root', real, 'state', 'fr-x']);
    expect([r.status, r.stderr]).toEqual([125, REFUSED_ROOT]);
    expect(await seen).toBe('none');
    fs.rmSync(sock);
    fs.chmodSync(real, 0o700);

    // Another user's root, its socket listened on by that user: not even connected to.
    const other: Who = who === 'root' ? 'rootless' : 'root';
    const theirs = dirFor(other);
    ({ seen } = await witness(other, path.join(theirs, '.planner.sock'), 1500));
    r = required(who, ['--root', theirs, 'state', 'fr-x']);
    expect([r.status, r.stderr]).toEqual([125, REFUSED_ROOT]);
    expect(await seen).toBe('none');
  });
});

describe('whose socket the front talks to', () => {
  it.skipIf(!IS_ROOT)("a listener of another uid in the caller's own root is not served a call (SO_PEERCRED)", async () => {
    const root = dirFor('root');
    const sock = path.join(root, '.planner.sock');
    // The test user listens in a dir of its own; root moves that socket into root's root.
    const theirs = dirFor('rootless');
    let { seen } = await witness('rootless', path.join(theirs, '.planner.sock'), 5000);
    fs.renameSync(path.join(theirs, '.planner.sock'), sock);
    let r = required('root', ['--root', root, 'list']);
    expect([r.status, r.stderr]).toEqual([125, "hako: no planner served this call (the socket's planner is not the caller's)\n"]);
    expect(await seen).toBe('no request');
    fs.rmSync(sock);
    // Control: root's own listener at the same path is sent the call.
    ({ seen } = await witness('root', sock, 5000));
    r = required('root', ['--root', root, 'list']);
    expect(r.status).toBe(125);
    expect(await seen).toMatch(/^request uid=0 argc=4 argv=.*\|list env=\d+$/);
  });

  it.skipIf(!IS_ROOT)('rootless without --root: $XDG_RUNTIME_DIR/hako, as src/runtime/store.ts decides', async () => {
    const xdg = dirFor('rootless');
    const root = path.join(xdg, 'hako');
    fs.mkdirSync(root, { mode: 0o700 });
    fs.chownSync(root, testUserIds().uid, testUserIds().gid);
    const { seen } = await witness('rootless', path.join(root, '.planner.sock'), 5000);
    const r = required('rootless', ['state', 'fr-x'], { XDG_RUNTIME_DIR: xdg });
    expect(r.status).toBe(125);
    expect(await seen).toMatch(new RegExp(`^request uid=${uidOf('rootless')} argc=3 argv=${esc(CLI)}\\|state\\|fr-x env=\\d+$`));
  });

  it.skipIf(!IS_ROOT)("a relative --root is taken against the caller's cwd, .. and . resolved", async () => {
    const parent = dirFor('root', 0o755);
    const root = path.join(parent, 'r2');
    fs.mkdirSync(root, { mode: 0o700 });
    fs.mkdirSync(path.join(parent, 'sub'));
    const { seen } = await witness('root', path.join(root, '.planner.sock'), 5000);
    const r = required('root', ['--root=./sub/../r2/', 'state', 'fr-x'], {}, parent);
    console.log('DBG', execFileSync('sh', ['-c', 'ss -xlp | grep planner; ls -li ' + root], { encoding: 'utf8' }));
    expect(r.status).toBe(125);
    expect(await seen).toMatch(/^request uid=0 argc=4 argv=.*\|--root=\.\/sub\/\.\.\/r2\/\|state\|fr-x env=\d+$/);
  });

  it.skipIf(!IS_ROOT)('a verb the planner does not serve, or a closed stdio fd, never reaches a socket', async () => {
    const root = dirFor('root');
    const sock = path.join(root, '.planner.sock');
    let { seen } = await witness('root', sock, 1500);
    let r = required('root', ['--root', root, 'pause', 'fr-x']);
    expect([r.status, r.stderr]).toEqual([125, 'hako: no planner served this call (the planner does not serve this verb)\n']);
    expect(await seen).toBe('none');
    fs.rmSync(sock);
    ({ seen } = await witness('root', sock, 1500));
    r = spawnSync('sh', ['-c', `exec "$0" --root "$1" list <&-`, CLI, root], {
      encoding: 'utf8',
      env: { ...process.env, HAKO_PLANNER: 'require' },
    });
    expect([r.status, r.stderr]).toEqual([125, 'hako: no planner served this call (a standard fd is closed)\n']);
    expect(await seen).toBe('none');
  });
});

const sleep = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
const plannersOf = (root: string) =>
  fs
    .readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').endsWith(`planner.cjs\0--root\0${root}\0`);
      } catch {
        return false;
      }
    });

describe.each(WHO)('a container behind the front (%s)', (who) => {
  it.skipIf(who === 'root' && !IS_ROOT)(
    "today's path, then the planner the first call started: exit codes come back, nothing is left behind",
    () => {
      const { bundle, root } = makeBundle(who, (c) => (c.process!.args = ['sh', '-c', 'echo out; exit 3']));
      const id = `fr-${who}`;
      for (const env of [{ HAKO_PLANNER: 'off' }, {}] as Record<string, string>[]) {
        const r = hako(who, root, ['run', '-b', bundle, id], { env });
        expect([r.status, r.stdout, r.stderr]).toEqual([3, 'out\n', '']);
        expect(stateDirs(root)).toEqual([]);
      }
      // The second call started a planner: once it listens, it serves (the front clones).
      const sock = path.join(root, '.planner.sock');
      for (let i = 0; i < 200 && !fs.existsSync(sock); i++) sleep(50);
      const served = hako(who, root, ['run', '-b', bundle, id], { env: { HAKO_PLANNER: 'require' } });
      expect([served.status, served.stdout, served.stderr]).toEqual([3, 'out\n', '']);
      // Bad input (the planner may hand it back to today's path): one sentence, nothing left.
      const bad = hako(who, root, ['run', '-b', path.join(bundle, 'missing'), id]);
      expect(bad.status).toBe(1);
      expect(bad.stderr.trim().split('\n')).toHaveLength(1);
      expect(stateDirs(root)).toEqual([]);
      // And it ends once the root is gone.
      expect(plannersOf(root)).toHaveLength(1);
      fs.rmSync(root, { recursive: true });
      for (let i = 0; i < 100 && plannersOf(root).length; i++) sleep(50);
      expect(plannersOf(root)).toEqual([]);
    },
  );
});

describe('the planner is started detached by a call it could not serve', () => {
  // A copy of the tree whose dist/cli/planner.cjs is a stand-in that only records how the
  // front started it: the start itself is what is tested here, not a planner.
  const tree = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-front-tree-'));
  afterAll(() => fs.rmSync(tree, { recursive: true, force: true }));
  beforeAll(() => {
    fs.chmodSync(tree, 0o755);
    fs.mkdirSync(path.join(tree, 'bin'));
    fs.mkdirSync(path.join(tree, 'dist/cli'), { recursive: true });
    for (const f of ['bin/hako', 'bin/hako.cjs', 'bin/package.json', 'dist/cli/hako.cjs', 'dist/cli/hako.cjs.v8cache'])
      fs.copyFileSync(path.join(REPO, f), path.join(tree, f));
    for (const shared of ['build', 'node_modules', 'package.json']) fs.symlinkSync(path.join(REPO, shared), path.join(tree, shared));
  });
  const recorder = `
const fs = require('node:fs');
const root = process.argv[process.argv.indexOf('--root') + 1];
const stat = fs.readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
const callers = fs.readdirSync('/proc').filter((p) => /^\\d+$/.test(p)).filter((p) => {
  try { return fs.readFileSync('/proc/' + p + '/cmdline', 'utf8').includes('hako.cjs\\0--root\\0' + root); } catch { return false; }
});
fs.writeFileSync(root + '/started.json', JSON.stringify({
  argv: process.argv, env: process.env, sid: Number(stat[3]),
  stdio: [0, 1, 2].map((fd) => fs.readlinkSync('/proc/self/fd/' + fd)), callers, cwd: process.cwd(),
}));
`;

  it.skipIf(!IS_ROOT)(
    'with only PATH, HOME, XDG_RUNTIME_DIR and HAKO_PLANNER_IDLE_MS, no stdio, its own session, after the call',
    async () => {
      fs.writeFileSync(path.join(tree, 'dist/cli/planner.cjs'), recorder);
      const root = dirFor('root');
      const front = path.join(tree, 'bin/hako');
      const env = { PATH: process.env.PATH!, HOME: '/root', XDG_RUNTIME_DIR: '/nonexistent', HAKO_PLANNER_IDLE_MS: '1234', FOO: 'bar' };
      const r = spawnSync(front, ['--root', root, 'list', '-q'], { encoding: 'utf8', env, cwd: bin });
      expect([r.status, r.stdout, r.stderr]).toEqual([0, '', '']);
      const file = path.join(root, 'started.json');
      for (let i = 0; i < 100 && !fs.existsSync(file); i++) await new Promise((res) => setTimeout(res, 50));
      const got = JSON.parse(fs.readFileSync(file, 'utf8'));
      expect(got.argv.slice(1)).toEqual([path.join(tree, 'bin/../dist/cli/planner.cjs'), '--root', root]);
      expect(got.env).toEqual({ PATH: env.PATH, HOME: '/root', XDG_RUNTIME_DIR: '/nonexistent', HAKO_PLANNER_IDLE_MS: '1234' });
      expect(got.stdio).toEqual(['/dev/null', '/dev/null', '/dev/null']);
      expect(got.cwd).toBe('/');
      const ourSid = Number(fs.readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ')[3]);
      expect(got.sid).not.toBe(ourSid);
      expect(got.callers).toEqual([]);
    },
  );

  it.skipIf(!IS_ROOT)('not for a verb it does not serve, nor with HAKO_PLANNER=off, nor when there is none to start', async () => {
    fs.writeFileSync(path.join(tree, 'dist/cli/planner.cjs'), recorder);
    const front = path.join(tree, 'bin/hako');
    const root = dirFor('root');
    for (const [args, extra] of [
      [['--root', root, 'pause', 'fr-x'], {}],
      [['--root', root, 'list'], { HAKO_PLANNER: 'off' }],
    ] as [string[], Record<string, string>][])
      spawnSync(front, args, { encoding: 'utf8', env: { ...process.env, ...extra } });
    fs.rmSync(path.join(tree, 'dist/cli/planner.cjs'));
    const r = spawnSync(front, ['--root', root, 'list', '-q'], { encoding: 'utf8' });
    expect([r.status, r.stdout, r.stderr]).toEqual([0, '', '']);
    await new Promise((res) => setTimeout(res, 1500));
    expect(fs.readdirSync(root)).toEqual([]);
  });
});

const valgrind = spawnSync('valgrind', ['--version']).status === 0;
describe.skipIf(!valgrind || !IS_ROOT)('under valgrind', () => {
  const vg = (args: string[], env: Record<string, string>) =>
    spawnSync('valgrind', ['-q', '--error-exitcode=99', CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  it("today's path, a refused root and a served request show no memory error", async () => {
    let r = vg(['--version'], { HAKO_PLANNER: 'off' });
    expect([r.status, r.stdout]).toEqual([0, expect.stringMatching(/^hako version /)]);
    const root = dirFor('root');
    fs.chmodSync(root, 0o777);
    r = vg(['--root', root, 'list'], { HAKO_PLANNER: 'require' });
    expect(r.status).toBe(125);
    fs.chmodSync(root, 0o700);
    const { seen } = await witness('root', path.join(root, '.planner.sock'), 5000);
    r = vg(['--root', root, 'state', 'x'.repeat(100_000)], { HAKO_PLANNER: 'require', BIG: 'y'.repeat(100_000) });
    expect([r.status, r.stderr]).toEqual([125, 'hako: no planner served this call (the planner ended before serving it)\n']);
    expect(await seen).toMatch(/^request uid=0 argc=5 /);
  });
});
