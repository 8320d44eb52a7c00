// Running the real hako CLI in tests, as root or as the unprivileged test user,
// and making throwaway bundles from the busybox rootfs.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync, execFileSync, type SpawnSyncReturns } from 'node:child_process';
import { afterAll } from 'vitest';
import { BUSYBOX_ROOTFS, CLI, TEST_USER, WORK } from './env.js';
import { defaultSpec } from '../../src/oci/default.js';
import type { Config } from '../../src/oci/config.js';

export type Who = 'root' | 'rootless';

export interface UserIds {
  uid: number;
  gid: number;
}

export function testUserIds(): UserIds {
  return {
    uid: Number(execFileSync('id', ['-u', TEST_USER], { encoding: 'utf8' }).trim()),
    gid: Number(execFileSync('id', ['-g', TEST_USER], { encoding: 'utf8' }).trim()),
  };
}

/** The test user's first subordinate range in /etc/subuid or /etc/subgid (by name or uid, as
 *  newuidmap reads it). Never assume 100000: a machine where other users came first gives another. */
export function testUserSubIds(file: '/etc/subuid' | '/etc/subgid'): { start: number; count: number } {
  const { uid } = testUserIds();
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const [who, start, count] = line.trim().split(':');
    if ((who === TEST_USER || who === String(uid)) && /^\d+$/.test(start ?? '') && /^\d+$/.test(count ?? ''))
      return { start: Number(start), count: Number(count) };
  }
  throw new Error(`${file} has no range for ${TEST_USER} (usermod --add-subuids/--add-subgids)`);
}

/** A fresh dir under test/.work owned by whoever will use it. */
export function scratch(who: Who, prefix = 'b-'): string {
  const dir = fs.mkdtempSync(path.join(WORK, prefix));
  fs.chmodSync(dir, 0o755);
  if (who === 'rootless') {
    const { uid, gid } = testUserIds();
    fs.chownSync(dir, uid, gid);
  }
  return dir;
}

/** A bundle whose rootfs is the shared busybox tree; config from `hako spec`, then edited. */
export function makeBundle(who: Who, edit: (c: Config) => void = () => {}): { bundle: string; root: string } {
  const bundle = scratch(who);
  const root = scratch(who, 'r-');
  const ids = who === 'rootless' ? testUserIds() : { uid: 0, gid: 0 };
  const cfg = defaultSpec(who === 'rootless');
  if (who === 'rootless') {
    cfg.linux!.uidMappings = [{ containerID: 0, hostID: ids.uid, size: 1 }];
    cfg.linux!.gidMappings = [{ containerID: 0, hostID: ids.gid, size: 1 }];
  }
  cfg.root = { path: BUSYBOX_ROOTFS, readonly: true };
  cfg.process!.terminal = false;
  cfg.process!.args = ['true'];
  edit(cfg);
  fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(cfg, null, 2));
  if (who === 'rootless') fs.chownSync(path.join(bundle, 'config.json'), ids.uid, ids.gid);
  return { bundle, root };
}

/** scratch() and makeBundle() for one test file: every dir they make is removed after it. */
export function scratchForThisFile(): { scratch: typeof scratch; makeBundle: typeof makeBundle } {
  const made: string[] = [];
  afterAll(() => {
    for (const d of made) fs.rmSync(d, { recursive: true, force: true });
  });
  return {
    scratch: (who, prefix) => {
      const d = scratch(who, prefix);
      made.push(d);
      return d;
    },
    makeBundle: (who, edit) => {
      const b = makeBundle(who, edit);
      made.push(b.bundle, b.root);
      return b;
    },
  };
}

/** Runs `hako --root ROOT ARGS…` as root or as the test user. With
 *  `detached`, output goes through files: a detached container inherits the
 *  runtime's stdio and would hold pipes open for as long as it lives. */
export function hako(
  who: Who,
  root: string,
  args: string[],
  opts: { input?: string; timeout?: number; detached?: boolean; env?: Record<string, string> } = {},
): SpawnSyncReturns<string> {
  if (opts.detached) {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-out-'));
    const fdOut = fs.openSync(path.join(out, 'stdout'), 'w+');
    const fdErr = fs.openSync(path.join(out, 'stderr'), 'w+');
    try {
      const r = spawnSync(...commandFor(who, root, args, opts.env), {
        stdio: ['ignore', fdOut, fdErr],
        timeout: opts.timeout ?? 30_000,
        cwd: os.tmpdir(),
        env: who === 'root' ? { ...process.env, ...opts.env } : { PATH: process.env.PATH },
      });
      return {
        ...r,
        stdout: fs.readFileSync(path.join(out, 'stdout'), 'utf8'),
        stderr: fs.readFileSync(path.join(out, 'stderr'), 'utf8'),
      } as SpawnSyncReturns<string>;
    } finally {
      fs.closeSync(fdOut);
      fs.closeSync(fdErr);
      fs.rmSync(out, { recursive: true, force: true });
    }
  }
  return spawnSync(...commandFor(who, root, args, opts.env), {
    encoding: 'utf8',
    input: opts.input,
    timeout: opts.timeout ?? 30_000,
    cwd: os.tmpdir(),
    env: who === 'root' ? { ...process.env, ...opts.env } : { PATH: process.env.PATH },
  });
}

/** `hako` as above, without blocking the test's event loop (its pipes to a running `hako up`
 *  keep draining): resolves with the status and the output. */
export function hakoAsync(
  who: Who,
  root: string,
  args: string[],
  opts: { timeout?: number } = {},
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(...commandFor(who, root, args), {
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: opts.timeout ?? 30_000,
      cwd: os.tmpdir(),
      env: who === 'root' ? process.env : { PATH: process.env.PATH },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c));
    child.stderr.on('data', (c: Buffer) => (stderr += c));
    child.once('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** The program and its arguments: hako itself as root, setpriv for the test user. */
function commandFor(who: Who, root: string, args: string[], env: Record<string, string> = {}): [string, string[]] {
  const full = ['--root', root, ...args];
  // setpriv --reset-env drops the environment: extra variables go through env(1).
  const extra = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  return who === 'root'
    ? [CLI, full]
    : [
        'setpriv',
        [
          '--reuid',
          TEST_USER,
          '--regid',
          TEST_USER,
          '--init-groups',
          '--reset-env',
          ...(extra.length ? ['/usr/bin/env', ...extra] : []),
          CLI,
          ...full,
        ],
      ];
}

export const WHO: Who[] = ['rootless', 'root'];
