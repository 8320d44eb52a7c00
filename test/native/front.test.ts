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

describe.each(WHO)("today's path behind the front (%s)", (who) => {
  it.skipIf(who === 'root' && !IS_ROOT)('a container runs, its exit code comes back, nothing is left behind', () => {
    const { bundle, root } = makeBundle(who, (c) => (c.process!.args = ['sh', '-c', 'echo out; exit 3']));
    const id = `fr-${who}`;
    for (const env of [{ HAKO_PLANNER: 'off' }, {}] as Record<string, string>[]) {
      const r = hako(who, root, ['run', '-b', bundle, id], { env });
      expect([r.status, r.stdout, r.stderr]).toEqual([3, 'out\n', '']);
      expect(stateDirs(root)).toEqual([]);
    }
    const bad = hako(who, root, ['run', '-b', path.join(bundle, 'missing'), id]);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(stateDirs(root)).toEqual([]);
  });
});
