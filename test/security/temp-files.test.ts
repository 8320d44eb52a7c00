// Issue 9, item 6: every file hako creates. A --pid-file in a directory others may write is
// never written through a planted symlink (temp names are random, created O_EXCL|O_NOFOLLOW,
// then renamed over the target); lock files are never followed, and exist only while their
// container does; absurd ids get one sentence. Real CLI, rootless and as root.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { hako, scratchForThisFile, testUserIds, WHO, type Who } from '../helpers/hako.js';
import { IS_ROOT } from '../helpers/env.js';
import { writeAtomic } from '../../src/runtime/store.js';
import { rootEntries } from '../helpers/leftovers.js';

const { scratch, makeBundle } = scratchForThisFile();
const SPRAYER = 'hakospray';
const idsOf = (who: Who) => (who === 'rootless' ? testUserIds() : { uid: 0, gid: 0 });

beforeAll(() => {
  if (!IS_ROOT) return;
  try {
    execFileSync('id', [SPRAYER], { stdio: 'ignore' });
  } catch {
    execFileSync('useradd', ['-M', '-s', '/usr/sbin/nologin', SPRAYER]);
  }
});
afterAll(() => {
  if (IS_ROOT) spawnSync('userdel', [SPRAYER]);
});

const oneSentence = (stderr: string) => {
  const lines = stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^hako: /);
  return lines[0];
};

/** Every pid hako could get, or a wide window after the last one handed out. */
function pidRange(): [number, number] {
  const max = Number(fs.readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
  if (max <= 65_536) return [1, max];
  const last = Number(fs.readFileSync('/proc/sys/kernel/ns_last_pid', 'utf8'));
  return [last, last + 20_000];
}

describe.each(WHO)('pid file in a world-writable directory (%s)', (who) => {
  it.skipIf(!IS_ROOT)('a symlink spray on its temp names, and on the pid file itself, is never written through', () => {
    const sprayer = {
      uid: Number(execFileSync('id', ['-u', SPRAYER], { encoding: 'utf8' }).trim()),
      gid: Number(execFileSync('id', ['-g', SPRAYER], { encoding: 'utf8' }).trim()),
    };
    const victim = idsOf(who);
    // No sticky bit: fs.protected_symlinks does not step in here, only hako can.
    const shared = scratch('root', 'ww-');
    fs.chmodSync(shared, 0o777);
    const secrets = scratch(who, 's-');
    const precious = path.join(secrets, 'precious');
    const precious2 = path.join(secrets, 'precious2');
    for (const f of [precious, precious2]) {
      fs.writeFileSync(f, 'precious\n', { mode: 0o644 });
      fs.chownSync(f, victim.uid, victim.gid);
    }
    // Control: the directory lets a plain open follow the sprayer's symlinks.
    const probe = path.join(shared, 'probe');
    const canary = path.join(secrets, 'canary');
    fs.writeFileSync(canary, 'before\n');
    fs.symlinkSync(canary, probe);
    fs.lchownSync(probe, sprayer.uid, sprayer.gid);
    fs.writeFileSync(probe, 'after\n');
    expect(fs.readFileSync(canary, 'utf8')).toBe('after\n');

    // The spray: every name the old writeAtomic could pick (<file>.<pid>.tmp), and the file itself.
    const pidFile = path.join(shared, 'x.pid');
    const [lo, hi] = pidRange();
    for (let p = lo; p < hi; p++) fs.symlinkSync(precious, `${pidFile}.${p}.tmp`);
    fs.symlinkSync(precious2, pidFile);
    for (const f of fs.readdirSync(shared)) fs.lchownSync(path.join(shared, f), sprayer.uid, sprayer.gid);

    const { bundle, root } = makeBundle(who);
    const r = hako(who, root, ['run', '-b', bundle, '--pid-file', pidFile, 'pf1']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(fs.readFileSync(precious, 'utf8')).toBe('precious\n');
    expect(fs.readFileSync(precious2, 'utf8')).toBe('precious\n');
    // The symlink at the pid file was replaced, not followed.
    const st = fs.lstatSync(pidFile);
    expect(st.isFile()).toBe(true);
    expect(st.uid).toBe(victim.uid);
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    expect(pid).toBeGreaterThan(0);
    // The spray covered the pid hako ran with (it started just before the init).
    expect(pid >= lo && pid < hi).toBe(true);
    expect(fs.readdirSync(shared).filter((f) => f.startsWith('.x.pid.'))).toEqual([]);
    expect(rootEntries(root)).toEqual([]);
  });
});

describe('writeAtomic itself', () => {
  it('replaces a symlink at the target instead of following it, and leaves no temp file', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-wa-'));
    try {
      const target = path.join(dir, 'f');
      const precious = path.join(dir, 'precious');
      fs.writeFileSync(precious, 'precious\n');
      fs.symlinkSync(precious, target);
      for (let i = 0; i < 50; i++) writeAtomic(target, `v${i}`);
      expect(fs.readFileSync(target, 'utf8')).toBe('v49');
      expect(fs.readFileSync(precious, 'utf8')).toBe('precious\n');
      expect(fs.readdirSync(dir).sort()).toEqual(['f', 'precious']);
      // A missing directory is one sentence, not a stack.
      expect(() => writeAtomic(path.join(dir, 'nope/f'), 'x')).toThrow(`cannot write ${dir}/nope/f: ${dir}/nope does not exist`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.each(WHO)('lock files (%s)', (who) => {
  const run = it.skipIf(who === 'root' && !IS_ROOT);

  run('verbs on ids that do not exist leave nothing behind', () => {
    const root = scratch(who, 'r-');
    const verbs = [
      ['kill', 'ghost'],
      ['kill', '--all', 'ghost', 'KILL'],
      ['delete', 'ghost'],
      ['start', 'ghost'],
      ['state', 'ghost'],
      ['pause', 'ghost'],
      ['resume', 'ghost'],
      ['ps', 'ghost'],
      ['exec', 'ghost', 'true'],
    ];
    for (let i = 0; i < 2; i++) {
      for (const v of verbs) {
        const args = v.map((a) => (a === 'ghost' ? `ghost${i}` : a));
        const r = hako(who, root, args);
        expect(r.status).not.toBe(0);
        expect(oneSentence(r.stderr)).toBe(`hako: container "ghost${i}" does not exist`);
      }
      // runc: delete --force of a missing container succeeds.
      expect(hako(who, root, ['delete', '--force', `ghost${i}`]).status).toBe(0);
    }
    expect(rootEntries(root)).toEqual([]);
  });

  run("a container's lock goes with it; a failed create leaves none", () => {
    const { bundle, root } = makeBundle(who, (c) => (c.process!.args = ['sleep', '30']));
    const c = hako(who, root, ['create', '-b', bundle, 'lk1'], { detached: true });
    expect(c.stderr).toBe('');
    expect(c.status).toBe(0);
    expect(rootEntries(root).sort()).toEqual(['.lk1.lock', 'lk1']);
    const lock = fs.lstatSync(path.join(root, '.lk1.lock'));
    expect(lock.isFile()).toBe(true);
    expect(lock.mode & 0o777).toBe(0o600);
    // state.json went through writeAtomic: no temp files, private.
    expect(fs.readdirSync(path.join(root, 'lk1')).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(fs.statSync(path.join(root, 'lk1/state.json')).mode & 0o777).toBe(0o600);
    expect(hako(who, root, ['delete', '--force', 'lk1']).status).toBe(0);
    expect(rootEntries(root)).toEqual([]);
    const bad = makeBundle(who, (c) => (c.root!.path = 'nope'));
    expect(hako(who, bad.root, ['create', '-b', bad.bundle, 'lk2']).status).not.toBe(0);
    const bad2 = makeBundle(who, (c) => (c.process!.args = ['/nonexistent-binary']));
    expect(hako(who, bad2.root, ['run', '-b', bad2.bundle, 'lk3']).status).not.toBe(0);
    expect(rootEntries(bad.root)).toEqual([]);
    expect(rootEntries(bad2.root)).toEqual([]);
  });

  run('a planted lock symlink is not followed (nothing is created or truncated at its target)', () => {
    const { bundle, root } = makeBundle(who);
    const victim = idsOf(who);
    const secrets = scratch(who, 's-');
    const target = path.join(secrets, 'would-be-created');
    const precious = path.join(secrets, 'precious');
    fs.writeFileSync(precious, 'precious\n');
    fs.chownSync(precious, victim.uid, victim.gid);
    fs.symlinkSync(target, path.join(root, '.ls1.lock'));
    fs.symlinkSync(precious, path.join(root, '.ls2.lock'));
    for (const f of ['.ls1.lock', '.ls2.lock']) fs.lchownSync(path.join(root, f), victim.uid, victim.gid);
    for (const id of ['ls1', 'ls2']) {
      const r = hako(who, root, ['run', '-b', bundle, id]);
      expect(r.status).not.toBe(0);
      expect(oneSentence(r.stderr)).toBe(`hako: ${root}/.${id}.lock is a symlink: hako does not follow it; remove it`);
    }
    expect(fs.existsSync(target)).toBe(false);
    expect(fs.readFileSync(precious, 'utf8')).toBe('precious\n');
    // Control: an open without O_NOFOLLOW would have created the target.
    fs.closeSync(fs.openSync(path.join(root, '.ls1.lock'), fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600));
    expect(fs.existsSync(target)).toBe(true);
  });

  run('a 300-character id gets one sentence; a 200-character one works', () => {
    const { bundle, root } = makeBundle(who);
    const long = 'a'.repeat(300);
    for (const v of [
      ['create', '-b', bundle, long],
      ['run', '-b', bundle, long],
      ['state', long],
      ['kill', long],
      ['delete', long],
      ['delete', '--force', long],
      ['start', long],
    ]) {
      const r = hako(who, root, v);
      expect(r.status).not.toBe(0);
      expect(oneSentence(r.stderr)).toBe('hako: invalid container id: it is 300 characters long, at most 200 are allowed');
    }
    const ok = hako(who, root, ['run', '-b', bundle, 'b'.repeat(200)]);
    expect(ok.stderr).toBe('');
    expect(ok.status).toBe(0);
    expect(rootEntries(root)).toEqual([]);
  });
});
