// Issue 9, item 4: the state root and state.json are trusted only when they are the caller's
// own. Each attack is performed for real through the CLI (rootless as the test user, and as
// root) and must fail; a control shows the same planted files are read, and acted on, once
// they sit in a root the victim owns, so each refusal is about ownership or shape, not chance.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync, execFileSync, type ChildProcess } from 'node:child_process';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { hako, scratchForThisFile, testUserIds, WHO, type Who } from '../helpers/hako.js';
import { BUSYBOX_ROOTFS, CLI, IS_ROOT, TEST_USER } from '../helpers/env.js';
import { defaultSpec } from '../../src/oci/default.js';
import { cgroupProblem } from '../../src/runtime/cgroup-trust.js';
import { CgroupManager, type CgroupState } from '../../src/cgroups/index.js';
import { rootEntries } from '../helpers/leftovers.js';

const { scratch } = scratchForThisFile();
/** The other local user: squats paths the victim will use. */
const SQUATTER = 'hakosquat';

function ensureSquatter(): void {
  try {
    execFileSync('id', [SQUATTER], { stdio: 'ignore' });
  } catch {
    execFileSync('useradd', ['-M', '-s', '/usr/sbin/nologin', SQUATTER]);
  }
}
const squatterIds = () => ({
  uid: Number(execFileSync('id', ['-u', SQUATTER], { encoding: 'utf8' }).trim()),
  gid: Number(execFileSync('id', ['-g', SQUATTER], { encoding: 'utf8' }).trim()),
});
const idsOf = (who: Who) => (who === 'rootless' ? testUserIds() : { uid: 0, gid: 0 });

/** hako as the test user with a clean environment (no XDG_RUNTIME_DIR, no --root) plus `env`. */
function hakoDefaultRoot(args: string[], env: Record<string, string> = {}) {
  const pairs = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  return spawnSync('setpriv', ['--reuid', TEST_USER, '--regid', TEST_USER, '--init-groups', '--reset-env', 'env', ...pairs, CLI, ...args], {
    encoding: 'utf8',
    cwd: os.tmpdir(),
    timeout: 30_000,
  });
}

function chownR(p: string, uid: number, gid: number): void {
  fs.lchownSync(p, uid, gid);
  if (fs.lstatSync(p).isDirectory()) for (const e of fs.readdirSync(p)) chownR(path.join(p, e), uid, gid);
}

interface Plant {
  pid?: number;
  startTime?: string;
  configPath?: string;
  cgroup?: CgroupState;
  /** The poststop hook writes this file. */
  marker?: string;
  /** Raw state.json text instead of a record. */
  raw?: string;
  extra?: Record<string, unknown>;
}

/** Writes <root>/<id>/{state.json,config.json} as an attacker would, owned by uid:gid. */
function plant(root: string, id: string, owner: { uid: number; gid: number }, p: Plant = {}): string {
  const dir = path.join(root, id);
  fs.mkdirSync(dir, { recursive: true, mode: 0o711 });
  const cfg = defaultSpec(true);
  cfg.root = { path: BUSYBOX_ROOTFS, readonly: true };
  if (p.marker) cfg.hooks = { poststop: [{ path: '/bin/sh', args: ['sh', '-c', `echo ran > ${p.marker}`] }] };
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg));
  const record = {
    id,
    bundle: '/nonexistent',
    rootfs: BUSYBOX_ROOTFS,
    pid: p.pid ?? 999_999,
    startTime: p.startTime ?? '1',
    created: new Date().toISOString(),
    rootless: owner.uid !== 0,
    setgroupsDenied: false,
    configPath: p.configPath ?? path.join(dir, 'config.json'),
    owner: owner.uid,
    ...(p.cgroup ? { cgroup: p.cgroup } : {}),
    ...p.extra,
  };
  fs.writeFileSync(path.join(dir, 'state.json'), p.raw ?? JSON.stringify(record));
  chownR(dir, owner.uid, owner.gid);
  return dir;
}

function startTimeOf(pid: number): string {
  const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return s.slice(s.lastIndexOf(')') + 2).split(' ')[19];
}

const alive = (pid: number) => {
  try {
    return !/\) [ZX] /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

function waitDead(pid: number, ms = 3000): boolean {
  const end = Date.now() + ms;
  while (Date.now() < end && alive(pid)) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
  return !alive(pid);
}

/** A host process the attacker wants the victim's hako to kill, owned by the victim. */
function sacrificial(who: Who): ChildProcess {
  const args = who === 'rootless' ? ['--reuid', TEST_USER, '--regid', TEST_USER, '--init-groups', 'sleep', '300'] : null;
  const child = args ? spawn('setpriv', args, { stdio: 'ignore' }) : spawn('sleep', ['300'], { stdio: 'ignore' });
  // setpriv execs sleep in place: wait until the pid runs sleep so the start time is sleep's.
  const end = Date.now() + 3000;
  while (Date.now() < end) {
    try {
      if (fs.readFileSync(`/proc/${child.pid}/comm`, 'utf8').trim() === 'sleep') break;
    } catch {
      // not yet
    }
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
  }
  return child;
}

const oneSentence = (stderr: string) => {
  const lines = stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^hako: /);
  expect(stderr).not.toMatch(/\n\s+at /); // no stack
  return lines[0];
};

beforeAll(() => {
  if (IS_ROOT) ensureSquatter();
});
afterAll(() => {
  if (IS_ROOT) spawnSync('userdel', [SQUATTER]);
});

describe.skipIf(!IS_ROOT)('default state root of a rootless user without XDG_RUNTIME_DIR', () => {
  const { uid, gid } = testUserIds();
  const home = IS_ROOT ? execFileSync('getent', ['passwd', TEST_USER], { encoding: 'utf8' }).split(':')[5] : '/nonexistent';
  const homeRoot = path.join(home, '.local/state/hako');
  const runUser = `/run/user/${uid}`;
  let saved: string | null = null;
  const made: string[] = [];

  beforeAll(() => {
    // Keep whatever the machine has there, and put it back after.
    if (fs.existsSync(homeRoot)) {
      saved = `${homeRoot}.saved-${process.pid}`;
      fs.renameSync(homeRoot, saved);
    }
  });
  afterAll(() => {
    fs.rmSync(homeRoot, { recursive: true, force: true });
    if (saved) fs.renameSync(saved, homeRoot);
    for (const d of made.reverse()) fs.rmSync(d, { recursive: true, force: true });
  });

  it('is never under /tmp, and a /run/user/UID that another user made is not used', () => {
    expect(fs.existsSync(runUser)).toBe(false); // logind is not here: the test makes it
    const sq = squatterIds();
    // The squatter (via root: only root writes /run/user) prepares /run/user/UID with a hook.
    fs.mkdirSync(runUser, { mode: 0o755 });
    made.push(runUser);
    const marker = path.join(scratch('rootless', 'm-'), 'hook-ran');
    fs.mkdirSync(path.join(runUser, 'hako'), { mode: 0o755 });
    plant(path.join(runUser, 'hako'), 'victim1', sq, { marker });
    chownR(runUser, sq.uid, sq.gid);
    // The old fallback, squatted as well: it must not be read either.
    const tmpRoot = `/tmp/hako-${uid}`;
    const hadTmp = fs.existsSync(tmpRoot);
    if (!hadTmp) {
      fs.mkdirSync(tmpRoot, { mode: 0o755 });
      plant(tmpRoot, 'victim1', sq, { marker });
      chownR(tmpRoot, sq.uid, sq.gid);
    }
    try {
      const r = hakoDefaultRoot(['delete', 'victim1']);
      expect(r.status).not.toBe(0);
      expect(oneSentence(r.stderr)).toBe('hako: container "victim1" does not exist');
      expect(fs.existsSync(marker)).toBe(false);
      // Nothing was created for a verb on an id that does not exist.
      expect(fs.existsSync(homeRoot)).toBe(false);
    } finally {
      if (!hadTmp) fs.rmSync(tmpRoot, { recursive: true, force: true });
    }
    // Control: once /run/user/UID is the victim's own (as logind makes it), it is the default
    // root and the same planted files are read: the hook runs.
    chownR(runUser, uid, gid);
    fs.chmodSync(runUser, 0o700);
    const c = hakoDefaultRoot(['delete', 'victim1']);
    expect(c.stderr).toBe('');
    expect(c.status).toBe(0);
    expect(fs.readFileSync(marker, 'utf8')).toBe('ran\n');
    fs.rmSync(runUser, { recursive: true, force: true });
  });

  it("a squatted ~/.local/state/hako is refused with one sentence; the victim's own is read", () => {
    const sq = squatterIds();
    for (const d of [path.join(home, '.local'), path.join(home, '.local/state')]) {
      if (!fs.existsSync(d)) {
        fs.mkdirSync(d, { mode: 0o700 });
        fs.chownSync(d, uid, gid);
        made.push(d);
      }
    }
    const marker = path.join(scratch('rootless', 'm-'), 'hook-ran');
    fs.mkdirSync(homeRoot, { mode: 0o755 });
    plant(homeRoot, 'victim2', sq, { marker });
    chownR(homeRoot, sq.uid, sq.gid);
    for (const verb of [['delete', 'victim2'], ['delete', '--force', 'victim2'], ['state', 'victim2'], ['kill', 'victim2'], ['list']]) {
      const r = hakoDefaultRoot(verb);
      expect(r.status).not.toBe(0);
      expect(oneSentence(r.stderr)).toBe(
        `hako: the state root ${homeRoot} is owned by uid ${sq.uid}, not by you (uid ${uid}): another user may have planted it; remove it or choose another with --root`,
      );
    }
    expect(fs.existsSync(marker)).toBe(false);
    // Writable by others is as bad as owned by another.
    chownR(homeRoot, uid, gid);
    fs.chmodSync(homeRoot, 0o777);
    const w = hakoDefaultRoot(['delete', 'victim2']);
    expect(oneSentence(w.stderr)).toContain(
      `the state root ${homeRoot} is writable by its group and others (mode 777): chmod go-w ${homeRoot}`,
    );
    expect(fs.existsSync(marker)).toBe(false);
    // Control: the victim's own root (0755 is fine: only group/other write is refused).
    fs.chmodSync(homeRoot, 0o755);
    const c = hakoDefaultRoot(['delete', 'victim2']);
    expect(c.stderr).toBe('');
    expect(c.status).toBe(0);
    expect(fs.readFileSync(marker, 'utf8')).toBe('ran\n');
  });

  it('is created 0700 by the user when it is missing', () => {
    fs.rmSync(homeRoot, { recursive: true, force: true });
    const { bundle } = scratchBundle();
    const r = hakoDefaultRoot(['run', '-b', bundle, 'fresh1']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const st = fs.lstatSync(homeRoot);
    expect(st.isDirectory()).toBe(true);
    expect(st.uid).toBe(uid);
    expect(st.mode & 0o777).toBe(0o700);
    expect(rootEntries(homeRoot)).toEqual([]);
  });

  it('an XDG_RUNTIME_DIR another user owns, or one that is missing or not writable, gives one sentence', () => {
    const sq = squatterIds();
    const xdg = scratch('root', 'xdg-');
    fs.chownSync(xdg, sq.uid, sq.gid);
    fs.chmodSync(xdg, 0o777); // writable for the victim, but the squatter's
    const marker = path.join(scratch('rootless', 'm-'), 'hook-ran');
    fs.mkdirSync(path.join(xdg, 'hako'), { mode: 0o755 });
    plant(path.join(xdg, 'hako'), 'victim3', sq, { marker });
    chownR(path.join(xdg, 'hako'), sq.uid, sq.gid);
    const r = hakoDefaultRoot(['delete', 'victim3'], { XDG_RUNTIME_DIR: xdg });
    expect(r.status).not.toBe(0);
    expect(oneSentence(r.stderr)).toContain(`the state root ${xdg}/hako is owned by uid ${sq.uid}, not by you`);
    expect(fs.existsSync(marker)).toBe(false);
    // Not there yet: hako would create it in a directory others may write.
    fs.rmSync(path.join(xdg, 'hako'), { recursive: true });
    const c = hakoDefaultRoot(['create', '-b', scratchBundle().bundle, 'x'], { XDG_RUNTIME_DIR: xdg });
    expect(oneSentence(c.stderr)).toContain(`would be created in ${xdg} is owned by uid ${sq.uid}`);
    expect(fs.readdirSync(xdg)).toEqual([]);

    const missing = hakoDefaultRoot(['state', 'x'], { XDG_RUNTIME_DIR: '/nonexistent/xdg' });
    expect(oneSentence(missing.stderr)).toBe(
      'hako: XDG_RUNTIME_DIR=/nonexistent/xdg does not exist: create it (mode 0700, owned by you), unset it, or choose a state root with --root',
    );
    const ro = hakoDefaultRoot(['state', 'x'], { XDG_RUNTIME_DIR: '/' });
    expect(oneSentence(ro.stderr)).toBe(
      `hako: XDG_RUNTIME_DIR=/ is not writable by uid ${uid}: fix its owner or mode, unset it, or choose a state root with --root`,
    );
  });
});

/** A bundle for the test user (busybox, `true`). */
function scratchBundle(): { bundle: string } {
  const bundle = scratch('rootless');
  const { uid, gid } = testUserIds();
  const cfg = defaultSpec(true);
  cfg.linux!.uidMappings = [{ containerID: 0, hostID: uid, size: 1 }];
  cfg.linux!.gidMappings = [{ containerID: 0, hostID: gid, size: 1 }];
  cfg.root = { path: BUSYBOX_ROOTFS, readonly: true };
  cfg.process!.terminal = false;
  cfg.process!.args = ['true'];
  fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(cfg));
  fs.chownSync(path.join(bundle, 'config.json'), uid, gid);
  return { bundle };
}

describe.each(WHO)('--root and state.json (%s)', (who) => {
  const run = it.skipIf(!IS_ROOT);

  run('a --root another user owns, one others may write, or a symlink is refused; poststop hooks planted there never run', () => {
    const sq = squatterIds();
    const victim = idsOf(who);
    const marker = path.join(scratch(who, 'm-'), 'hook-ran');
    const squat = scratch('root', 'sq-');
    plant(squat, 'p1', sq, { marker });
    fs.chownSync(squat, sq.uid, sq.gid);
    const r = hako(who, squat, ['delete', 'p1']);
    expect(r.status).not.toBe(0);
    expect(oneSentence(r.stderr)).toContain(`the state root ${squat} is owned by uid ${sq.uid}, not by you (uid ${victim.uid})`);
    expect(fs.existsSync(marker)).toBe(false);

    const open = scratch(who, 'ww-');
    plant(open, 'p1', victim, { marker });
    fs.chmodSync(open, 0o777);
    const w = hako(who, open, ['delete', 'p1']);
    expect(oneSentence(w.stderr)).toContain(`is writable by its group and others (mode 777)`);
    fs.chmodSync(open, 0o775);
    const g = hako(who, open, ['delete', 'p1']);
    expect(oneSentence(g.stderr)).toContain(`is writable by its group (mode 775)`);
    expect(fs.existsSync(marker)).toBe(false);

    fs.chmodSync(open, 0o755);
    const link = path.join(scratch(who, 'ln-'), 'root');
    fs.symlinkSync(open, link);
    const l = hako(who, link, ['delete', 'p1']);
    expect(oneSentence(l.stderr)).toBe(`hako: the state root ${link} is a symlink; name the real directory (${open}) instead`);
    expect(fs.existsSync(marker)).toBe(false);

    // Control: the same planted container in a root the victim owns (0755, as the tests make
    // them) is read, and its hook runs: the refusals above are about the root, not the files.
    const c = hako(who, open, ['delete', 'p1']);
    expect(c.stderr).toBe('');
    expect(c.status).toBe(0);
    expect(fs.readFileSync(marker, 'utf8')).toBe('ran\n');
  });

  run('a state.json naming a config elsewhere is refused: hooks come only from the state dir', () => {
    const victim = idsOf(who);
    const marker = path.join(scratch(who, 'm-'), 'hook-ran');
    const root = scratch(who, 'r-');
    // The hostile config (with the hook) lives elsewhere; the state dir's own has none.
    const elsewhere = plant(scratch(who, 'e-'), 'p2', victim, { marker });
    plant(root, 'p2', victim, { configPath: path.join(elsewhere, 'config.json') });
    const r = hako(who, root, ['delete', 'p2']);
    expect(r.status).not.toBe(0);
    expect(oneSentence(r.stderr)).toContain(`configPath: ${elsewhere}/config.json is not ${root}/p2/config.json`);
    expect(fs.existsSync(marker)).toBe(false);
    // --force removes the untrusted dir without running anything.
    const f = hako(who, root, ['delete', '--force', 'p2']);
    expect(f.status).toBe(0);
    expect(f.stderr).toContain('removed its directory without signalling anything or running hooks');
    expect(fs.existsSync(marker)).toBe(false);
    expect(rootEntries(root)).toEqual([]);
    // A symlinked config.json is not followed either.
    plant(root, 'p3', victim);
    fs.rmSync(path.join(root, 'p3/config.json'));
    fs.symlinkSync(path.join(elsewhere, 'config.json'), path.join(root, 'p3/config.json'));
    const s = hako(who, root, ['delete', 'p3']);
    expect(s.status).toBe(0);
    expect(s.stderr).toContain('it is a symlink');
    expect(s.stderr).toContain('no poststop hook runs');
    expect(fs.existsSync(marker)).toBe(false);
  });

  run('malformed or hostile state.json gives one sentence, never a crash', () => {
    const victim = idsOf(who);
    const root = scratch(who, 'r-');
    const cases: Array<[Plant, RegExp]> = [
      [{ raw: '{"id": "m1", "pid": ' }, /invalid state file \(not valid JSON\)/],
      [{ raw: '[]' }, /invalid state file \(\(top level\): expected object\)/],
      [{ pid: -1 }, /invalid state file \(pid: expected integer to be greater or equal to 1\)/],
      [{ pid: 0 }, /invalid state file \(pid: expected integer to be greater or equal to 1\)/],
      [{ pid: 1.5 }, /invalid state file \(pid: expected integer\)/],
      [{ startTime: '12; rm -rf /' }, /invalid state file \(startTime: /],
      [{ extra: { id: 'other' } }, /invalid state file \(id: "other" is not "m1"\)/],
    ];
    for (const [p, msg] of cases) {
      plant(root, 'm1', victim, p);
      for (const verb of ['state', 'kill', 'delete', 'start', 'pause', 'ps', 'exec']) {
        const args = verb === 'exec' ? ['exec', 'm1', 'true'] : [verb, 'm1'];
        const r = hako(who, root, args);
        expect(r.status).not.toBe(0);
        expect(oneSentence(r.stderr)).toMatch(msg);
      }
      fs.rmSync(path.join(root, 'm1'), { recursive: true });
    }
    // A symlinked state.json is not followed.
    const other = plant(scratch(who, 'e-'), 'm1', victim);
    fs.mkdirSync(path.join(root, 'm1'));
    fs.symlinkSync(path.join(other, 'state.json'), path.join(root, 'm1/state.json'));
    chownR(path.join(root, 'm1'), victim.uid, victim.gid);
    const r = hako(who, root, ['state', 'm1']);
    expect(oneSentence(r.stderr)).toMatch(/state\.json is a symlink/);
    // list skips what it cannot trust instead of failing.
    const l = hako(who, root, ['list', '-q']);
    expect(l.status).toBe(0);
    expect(l.stdout).toBe('');
  });

  run('a forged pid is never signalled: bad values, a stale start time, a squatted root', () => {
    const victim = idsOf(who);
    const sq = squatterIds();
    const sleeper = sacrificial(who);
    const pid = sleeper.pid!;
    try {
      expect(alive(pid)).toBe(true);
      const st = startTimeOf(pid);
      // In a squatted root, even an exact record is not read.
      const squat = scratch('root', 'sq-');
      plant(squat, 'k1', sq, { pid, startTime: st });
      fs.chownSync(squat, sq.uid, sq.gid);
      const a = hako(who, squat, ['kill', 'k1', 'KILL']);
      expect(oneSentence(a.stderr)).toContain('is owned by uid');
      // In the victim's root: a start time that is not the process's (pid reuse, or a guess).
      const root = scratch(who, 'r-');
      plant(root, 'k1', victim, { pid, startTime: String(Number(st) + 1) });
      const b = hako(who, root, ['kill', 'k1', 'KILL']);
      expect(oneSentence(b.stderr)).toBe('hako: container "k1" is not running');
      const b2 = hako(who, root, ['kill', '--all', 'k1', 'KILL']);
      expect(b2.status).toBe(0); // runc: --all on a stopped container succeeds, signalling nothing
      // -1 would be every process the victim may signal, 0 its process group.
      for (const bad of [-1, 0]) {
        fs.rmSync(path.join(root, 'k1'), { recursive: true });
        plant(root, 'k1', victim, { pid: bad, startTime: st });
        const c = hako(who, root, ['kill', 'k1', 'KILL']);
        expect(oneSentence(c.stderr)).toMatch(/invalid state file \(pid: /);
      }
      expect(alive(pid)).toBe(true);
      // Control: the exact record in the victim's own root does reach the process (through a
      // pidfd), so the test would see a signal that got through.
      fs.rmSync(path.join(root, 'k1'), { recursive: true });
      plant(root, 'k1', victim, { pid, startTime: st });
      const d = hako(who, root, ['kill', 'k1', 'KILL']);
      expect(d.stderr).toBe('');
      expect(waitDead(pid)).toBe(true);
    } finally {
      sleeper.kill('SIGKILL');
    }
  });

  run('a fake cgroup (outside any cgroup mount, cgroup.kill a symlink, cgroup.procs listing a host pid) is refused', () => {
    const victim = idsOf(who);
    const sleeper = sacrificial(who);
    const pid = sleeper.pid!;
    try {
      const root = scratch(who, 'r-');
      const fake = scratch(who, 'cg-');
      const cgdir = path.join(fake, 'hako/f1');
      fs.mkdirSync(cgdir, { recursive: true });
      fs.writeFileSync(path.join(cgdir, 'cgroup.procs'), `${pid}\n`);
      fs.writeFileSync(path.join(cgdir, 'cgroup.events'), 'populated 1\nfrozen 0\n');
      const precious = path.join(scratch(who, 'v-'), 'precious');
      fs.writeFileSync(precious, 'precious\n');
      fs.symlinkSync(precious, path.join(cgdir, 'cgroup.kill'));
      chownR(fake, victim.uid, victim.gid);
      chownR(path.dirname(precious), victim.uid, victim.gid);
      const cgroup: CgroupState = { mount: fake, base: '/', path: '/hako/f1', available: [], strict: false, created: ['/hako/f1'] };
      plant(root, 'f1', victim, { cgroup });
      for (const args of [
        ['kill', '--all', 'f1', 'KILL'],
        ['kill', '--all', 'f1', 'TERM'],
        ['delete', 'f1'],
        ['pause', 'f1'],
      ]) {
        const r = hako(who, root, args);
        expect(r.status).not.toBe(0);
        expect(oneSentence(r.stderr)).toContain(`cgroup.mount: ${fake} is not a cgroup v2 mount`);
      }
      const f = hako(who, root, ['delete', '--force', 'f1']);
      expect(f.status).toBe(0);
      expect(f.stderr).toContain('removed its directory without signalling anything or running hooks');
      expect(fs.readFileSync(precious, 'utf8')).toBe('precious\n');
      expect(alive(pid)).toBe(true);
      expect(fs.existsSync(cgdir)).toBe(true); // not rmdir'ed either

      // A path with "..", or one elsewhere on the real mount, is refused as well.
      const mount = realCgroup2Mount();
      for (const [p, msg] of [
        ['/hako/../../etc', /cgroup\.path: must be a normalized absolute path/],
        ['/system.slice', /cgroup\.path: \/system\.slice is not where hako puts the cgroup of container "f1"/],
      ] as const) {
        plant(root, 'f1', victim, { cgroup: { ...cgroup, mount: mount ?? '/sys/fs/cgroup', path: p, created: [] } });
        const r = hako(who, root, ['kill', '--all', 'f1', 'KILL']);
        if (mount) expect(oneSentence(r.stderr)).toMatch(msg);
        else expect(r.status).not.toBe(0);
        fs.rmSync(path.join(root, 'f1'), { recursive: true });
      }
      expect(alive(pid)).toBe(true);
    } finally {
      sleeper.kill('SIGKILL');
    }
  });
});

function realCgroup2Mount(): string | null {
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [pre, post] = line.split(' - ');
    if (post?.startsWith('cgroup2 ')) return pre.split(' ')[4];
  }
  return null;
}

describe('the cgroup checks themselves', () => {
  it('refuses symlinks on the way and in cgroup files; a plain tree on a trusted mount passes (control)', () => {
    const fake = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-cgtrust-'));
    try {
      const mounts = { v2: [fake], v1: [] };
      const state: CgroupState = { mount: fake, base: '/', path: '/hako/t1', available: [], strict: false, created: ['/hako/t1'] };
      fs.mkdirSync(path.join(fake, 'hako/t1'), { recursive: true });
      expect(cgroupProblem(state, 't1', undefined, mounts)).toBeNull();
      expect(cgroupProblem(state, 't1', undefined, { v2: [], v1: [] })).toMatch(/is not a cgroup v2 mount/);
      expect(cgroupProblem({ ...state, path: '/hako/t2' }, 't1', undefined, mounts)).toMatch(/is not where hako puts/);
      expect(cgroupProblem({ ...state, created: ['/', '/hako/t1'] }, 't1', undefined, mounts)).toMatch(/created: \/ is not/);
      expect(cgroupProblem({ ...state, path: '/hako/../hako/t1' }, 't1', undefined, mounts)).toMatch(/without "\." or "\.\."/);
      // The container's own cgroupsPath is honoured (absolute, relative, systemd).
      fs.mkdirSync(path.join(fake, 'machine.slice/pod-t1.scope'), { recursive: true });
      expect(
        cgroupProblem({ ...state, path: '/machine.slice/pod-t1.scope', created: [] }, 't1', 'machine.slice:pod:t1', mounts),
      ).toBeNull();
      expect(cgroupProblem({ ...state, path: '/a/b/mine', created: [] }, 't1', 'mine', mounts)).toBeNull();
      expect(cgroupProblem({ ...state, path: '/a/b/mine', created: [] }, 't1', '/mine', mounts)).toMatch(/is not where/);
      // A symlink on the way.
      fs.rmSync(path.join(fake, 'hako'), { recursive: true });
      const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-cgelse-'));
      fs.mkdirSync(path.join(elsewhere, 't1'));
      fs.symlinkSync(elsewhere, path.join(fake, 'hako'));
      expect(cgroupProblem(state, 't1', undefined, mounts)).toBe(`cgroup: ${fake}/hako is a symlink`);
      fs.rmSync(path.join(fake, 'hako'));
      // cgroup.kill a symlink: the manager opens cgroup files O_NOFOLLOW and writes nothing.
      fs.mkdirSync(path.join(fake, 'hako/t1'), { recursive: true });
      const precious = path.join(elsewhere, 'precious');
      fs.writeFileSync(precious, 'precious\n');
      fs.writeFileSync(path.join(fake, 'hako/t1/cgroup.procs'), '');
      fs.symlinkSync(precious, path.join(fake, 'hako/t1/cgroup.kill'));
      const m = new CgroupManager(state);
      expect(() => m.killAll('SIGKILL')).toThrow(/ELOOP/);
      expect(fs.readFileSync(precious, 'utf8')).toBe('precious\n');
      // Control: a regular cgroup.kill is written, so the test sees a write that gets through.
      fs.rmSync(path.join(fake, 'hako/t1/cgroup.kill'));
      fs.writeFileSync(path.join(fake, 'hako/t1/cgroup.kill'), '');
      m.killAll('SIGKILL');
      expect(fs.readFileSync(path.join(fake, 'hako/t1/cgroup.kill'), 'utf8')).toBe('1');
      fs.rmSync(elsewhere, { recursive: true });
    } finally {
      fs.rmSync(fake, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!IS_ROOT || !realCgroup2Mount())("a recorded init outside the container's real cgroup (root)", () => {
  it('is not signalled even with its exact start time; once it is in the cgroup, it is (control)', () => {
    const mount = realCgroup2Mount()!;
    const id = `cgk${process.pid}`;
    const dir = path.join(mount, 'hako', id);
    const madeHako = !fs.existsSync(path.join(mount, 'hako'));
    try {
      fs.mkdirSync(dir, { recursive: true });
    } catch {
      return; // not writable here: nothing to check
    }
    const sleeper = sacrificial('root');
    const pid = sleeper.pid!;
    try {
      const root = scratch('root', 'r-');
      const cgroup: CgroupState = { mount, base: '/', path: `/hako/${id}`, available: [], strict: false, created: [`/hako/${id}`] };
      plant(root, id, { uid: 0, gid: 0 }, { pid, startTime: startTimeOf(pid), cgroup });
      const r = hako('root', root, ['kill', id, 'KILL']);
      expect(oneSentence(r.stderr)).toBe(
        `hako: container "${id}": process ${pid} is not in the container's cgroup; hako does not signal it`,
      );
      expect(alive(pid)).toBe(true);
      fs.writeFileSync(path.join(dir, 'cgroup.procs'), String(pid));
      const c = hako('root', root, ['kill', id, 'KILL']);
      expect(c.stderr).toBe('');
      expect(waitDead(pid)).toBe(true);
    } finally {
      sleeper.kill('SIGKILL');
      for (let i = 0; i < 100 && fs.existsSync(dir); i++) {
        try {
          fs.rmdirSync(dir);
        } catch {
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
        }
      }
      try {
        if (madeHako) fs.rmdirSync(path.join(mount, 'hako'));
      } catch {
        // another container's cgroup lives there now
      }
    }
  });
});
