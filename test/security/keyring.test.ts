// The session keyring: a container must not hold the caller's. hako used to join none, so a
// container's processes possessed the session keyring of whoever ran hako, and read every key in
// it (a root container without a user namespace: host root's). Now, as runc does, the init joins
// a keyring of the container's own, `_ses.<id>`, and so does every exec'd process; --no-new-keyring
// keeps the caller's, as runc's does. The attack is performed for real, as root and rootless: a
// host process of the user that runs hako puts a key with a random payload in a session keyring of
// its own and runs hako from it (helpers/keyring.c host); in the container the same program looks
// for the key in its session keyring and reads it (keyring.c probe). The control runs the same
// with --no-new-keyring and reads the payload: the probe can see a leak when there is one.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { describe, it, expect, beforeAll } from 'vitest';
import { hako, scratchForThisFile, testUserIds, WHO, type Who } from '../helpers/hako.js';
import { CLI, IS_ROOT, REPO, TEST_USER, WORK } from '../helpers/env.js';
import { buildCreatePlan, buildExecPlan, sessionKeyringName, KEYRING_SEARCH } from '../../src/plan/build.js';
import { defaultSpec } from '../../src/oci/default.js';
import { validateConfig } from '../../src/oci/validate.js';
import type { HostFacts } from '../../src/host/facts.js';

const { makeBundle } = scratchForThisFile();
const TOOLS = path.join(WORK, 'keyring-tools');
const HELPER = path.join(TOOLS, 'keyring');

interface Probe {
  sessionId: number;
  session: string;
  sessionErrno: number;
  searchErrno: number;
  listErrno: number;
  listed: boolean;
  found: boolean;
  readErrno: number;
  payload: string | null;
}

function buildHelper(): void {
  fs.mkdirSync(TOOLS, { recursive: true, mode: 0o755 });
  fs.chmodSync(TOOLS, 0o755);
  const tmp = `${HELPER}.${process.pid}.tmp`;
  execFileSync('gcc', ['-static', '-O2', '-Wall', '-Werror', '-o', tmp, path.join(REPO, 'test/security/helpers/keyring.c')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  fs.chmodSync(tmp, 0o755);
  fs.renameSync(tmp, HELPER);
}

/** A fresh key: its description and a random payload no container may read. */
function newKey() {
  return { desc: `hako-keyring-test-${crypto.randomBytes(4).toString('hex')}`, secret: `secret-${crypto.randomBytes(12).toString('hex')}` };
}

/** `hako --root ROOT ARGS…` run, as root or as the test user, from a session keyring holding the key. */
function hakoWithKey(who: Who, root: string, key: { desc: string; secret: string }, args: string[]) {
  const cmd = [HELPER, 'host', key.desc, key.secret, CLI, '--root', root, ...args];
  return who === 'root'
    ? spawnSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8', timeout: 30_000, cwd: os.tmpdir() })
    : spawnSync('setpriv', ['--reuid', TEST_USER, '--regid', TEST_USER, '--init-groups', '--reset-env', ...cmd], {
        encoding: 'utf8',
        timeout: 30_000,
        cwd: os.tmpdir(),
        env: { PATH: process.env.PATH },
      });
}

function probeOf(out: string): Probe {
  const line = out.split('\n').find((l) => l.startsWith('{'));
  if (!line) throw new Error(`no probe output in: ${out}`);
  return JSON.parse(line) as Probe;
}

/** The helper at /tmp in the container, asked about this key. */
function probeBundle(who: Who, desc: string, args?: string[]) {
  return makeBundle(who, (c) => {
    c.mounts!.push({ destination: '/tmp', type: 'bind', source: TOOLS, options: ['rbind', 'ro'] });
    c.process!.args = args ?? ['/tmp/keyring', 'probe', desc];
  });
}

const sessionName = (p: Probe) => p.session.split(';').slice(4).join(';');

function expectKeyHidden(p: Probe, secret: string, id: string, raw: string): void {
  expect(raw).not.toContain(secret);
  expect(p.payload).toBeNull();
  expect(p.found).toBe(false);
  expect(p.listed).toBe(false);
  expect(sessionName(p)).toBe(`_ses.${id}`);
}

function expectKeyRead(p: Probe, secret: string): void {
  expect(p.found).toBe(true);
  expect(p.listed).toBe(true);
  expect(p.payload).toBe(secret);
}

beforeAll(buildHelper);

describe.each(WHO)('the caller’s session keyring (%s)', (who) => {
  const run = it.skipIf(who === 'root' && !IS_ROOT);

  run('a container gets a session keyring of its own: the caller’s key is neither seen nor read', () => {
    const key = newKey();
    const { bundle, root } = probeBundle(who, key.desc);
    const r = hakoWithKey(who, root, key, ['run', '-b', bundle, 'kr1']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expectKeyHidden(probeOf(r.stdout), key.secret, 'kr1', r.stdout);
  });

  run('control: with --no-new-keyring the container holds the caller’s keyring and reads the key', () => {
    const key = newKey();
    const { bundle, root } = probeBundle(who, key.desc);
    const r = hakoWithKey(who, root, key, ['run', '--no-new-keyring', '-b', bundle, 'kr2']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const p = probeOf(r.stdout);
    expectKeyRead(p, key.secret);
    expect(sessionName(p)).toBe('_ses');
  });

  run('an exec’d process joins the container’s keyring, never the caller of `hako exec`’s; --no-new-keyring at create carries over', () => {
    const key = newKey();
    const { bundle, root } = probeBundle(who, key.desc, ['sleep', '60']);
    for (const [id, create] of [
      ['kr3', ['run', '-d', '-b', bundle, 'kr3']],
      ['kr4', ['run', '-d', '--no-new-keyring', '-b', bundle, 'kr4']],
    ] as const) {
      const c = hako(who, root, [...create], { detached: true });
      expect(c.stderr).toBe('');
      expect(c.status).toBe(0);
      try {
        const r = hakoWithKey(who, root, key, ['exec', id, '/tmp/keyring', 'probe', key.desc]);
        expect(r.stderr).toBe('');
        expect(r.status).toBe(0);
        const p = probeOf(r.stdout);
        if (id === 'kr3') expectKeyHidden(p, key.secret, id, r.stdout);
        else expectKeyRead(p, key.secret); // the control
      } finally {
        hako(who, root, ['delete', '--force', id]);
      }
    }
  });
});

describe('the container’s session keyring is shared by its processes (root, no user namespace: runc’s permissions)', () => {
  it.skipIf(!IS_ROOT)('the init’s keyring is searchable by its uid, and an exec’d process joins that very keyring', () => {
    const { bundle, root } = probeBundle('root', 'none', ['sleep', '60']);
    expect(hako('root', root, ['run', '-d', '-b', bundle, 'kr5'], { detached: true }).status).toBe(0);
    try {
      // The init's keyring, from the host: root may view it (/proc/keys lists what the reader may view).
      const rings = fs
        .readFileSync('/proc/keys', 'utf8')
        .split('\n')
        .filter((l) => / keyring +_ses\.kr5: /.test(l));
      expect(rings).toHaveLength(1);
      const [serial, , , , perm] = rings[0]!.trim().split(/\s+/);
      // runc adds KEY_USR_SEARCH (0x80000) without a user namespace.
      expect(Number.parseInt(perm!, 16) & 0x80000).toBe(0x80000);
      const r = hako('root', root, ['exec', 'kr5', '/tmp/keyring', 'probe', 'none']);
      expect(r.stderr).toBe('');
      const p = probeOf(r.stdout);
      expect(sessionName(p)).toBe('_ses.kr5');
      expect(p.sessionId).toBe(Number.parseInt(serial!, 16));
    } finally {
      hako('root', root, ['delete', '--force', 'kr5']);
    }
  });
});

describe('a keyring of the container’s name made beforehand by another user (root, no user namespace)', () => {
  it.skipIf(!IS_ROOT)('is not joined: the container takes a keyring of its own instead', async () => {
    // The kernel joins any keyring of the name the caller may search, whoever owns it: a host
    // user who guesses a root container's id could hand it a keyring they hold too.
    const squat = { desc: `hako-squat-${crypto.randomBytes(4).toString('hex')}`, secret: `squat-${crypto.randomBytes(8).toString('hex')}` };
    const squatter = spawn(
      'setpriv',
      ['--reuid', TEST_USER, '--regid', TEST_USER, '--init-groups', '--reset-env', HELPER, 'squat', '_ses.kr6', squat.desc, squat.secret],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH } },
    );
    try {
      await new Promise<void>((resolve, reject) => {
        let out = '';
        squatter.stdout!.on('data', (d: Buffer) => (out += d) && out.includes('ready') && resolve());
        squatter.stderr!.on('data', (d: Buffer) => reject(new Error(String(d))));
        squatter.once('exit', (code) => reject(new Error(`the squatter exited (${code})`)));
      });
      const { uid } = testUserIds();
      // Control: root joining that name by hand gets the squatter's keyring and reads its key.
      const control = spawnSync(HELPER, ['join', '_ses.kr6', squat.desc], { encoding: 'utf8' });
      expect(control.stderr).toBe('');
      const c = probeOf(control.stdout);
      expect(c.session.split(';')[1]).toBe(String(uid));
      expectKeyRead(c, squat.secret);
      const { bundle, root } = probeBundle('root', squat.desc);
      const r = hako('root', root, ['run', '-b', bundle, 'kr6']);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const p = probeOf(r.stdout);
      expect(r.stdout).not.toContain(squat.secret);
      expect(p.found).toBe(false);
      expect(p.listed).toBe(false);
      expect(p.session.split(';')[1]).toBe('0'); // root's own
    } finally {
      squatter.kill('SIGKILL');
    }
  });
});

describe('the plan: where the keyring is joined', () => {
  const host: HostFacts = { uid: 1000, gid: 1000, user: 'alice', lastCap: 40, landlockAbi: 7, cgroup2Unified: true };
  const cfg = (rootless: boolean) => {
    const c = defaultSpec(rootless);
    c.root = { path: '/nonexistent-rootfs', readonly: true };
    c.process!.terminal = false;
    c.process!.noNewPrivileges = false; // the seccomp filter then loads before the identity steps
    if (c.linux!.namespaces!.some((n) => n.type === 'user')) {
      c.linux!.uidMappings = [{ containerID: 0, hostID: host.uid, size: 1 }];
      c.linux!.gidMappings = [{ containerID: 0, hostID: host.gid, size: 1 }];
    }
    return validateConfig(JSON.parse(JSON.stringify(c)));
  };
  const seccomp = { program: new Uint8Array(8), flags: 0, listener: false };
  const ops = (steps: Array<{ op: string }>) => steps.map((s) => s.op);

  it('create: right after the namespaces, before anything runs in the container, with runc’s search bit', () => {
    for (const rootless of [true, false]) {
      const p = buildCreatePlan({ cfg: cfg(rootless), bundle: '/b', rootless, host, seccomp, sessionKeyring: sessionKeyringName('c1') });
      const o = ops(p.steps);
      const k = o.indexOf('JOIN_SESSION_KEYRING');
      expect(o.slice(0, k).every((op) => op === 'UNSHARE' || op === 'SETNS' || op === 'FORK' || op === 'WRITE_FILE')).toBe(true);
      expect(k).toBeLessThan(o.indexOf('MOUNT'));
      expect(k).toBeLessThan(o.indexOf('SECCOMP'));
      expect(p.steps[k]!.args).toEqual(['_ses.c1', rootless ? KEYRING_SEARCH.OTHERS : KEYRING_SEARCH.OWNER]);
    }
    // --no-new-keyring: none.
    expect(ops(buildCreatePlan({ cfg: cfg(false), bundle: '/b', rootless: false, host }).steps)).not.toContain('JOIN_SESSION_KEYRING');
  });

  it('exec: right after the fork into the pid namespace, before the seccomp filter, permissions untouched', () => {
    const c = cfg(true);
    const o = { cfg: c, bundle: '/b', rootless: true, host, initPid: 42, process: c.process!, setgroupsDenied: true, seccomp };
    const p = buildExecPlan({ ...o, sessionKeyring: sessionKeyringName('c1') }, () => true);
    const k = ops(p.steps).indexOf('JOIN_SESSION_KEYRING');
    expect(p.steps[k - 1]!.op).toBe('FORK');
    expect(k).toBeLessThan(ops(p.steps).indexOf('SECCOMP'));
    expect(p.steps[k]!.args).toEqual(['_ses.c1', 0]);
    expect(ops(buildExecPlan(o, () => true).steps)).not.toContain('JOIN_SESSION_KEYRING');
  });
});
