// Signed bundles (issue 15): hako sign, hako verify, and run/create/up --require-signed, with
// real keys, a real busybox rootfs and real containers, rootless (as the test user) and as root.
// Every way of changing a signed bundle is refused by verify and by --require-signed with the
// sentence naming what changed, and a refused run leaves nothing; the controls show the same
// bundle unchanged verifies and runs, and that the leftover checks see a container that exists.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { describe, it, expect, beforeAll } from 'vitest';
import { hako, hakoAsync, scratchForThisFile, testUserIds, WHO, type Who } from '../helpers/hako.js';
import { BUSYBOX_ROOTFS, IS_ROOT } from '../helpers/env.js';
import { newKeys } from '../../src/seal/keys.js';
import type { Config } from '../../src/oci/config.js';
import { stateDirs as leftovers, mountsUnder } from '../helpers/leftovers.js';

const { scratch, makeBundle } = scratchForThisFile();

/** $0 of the container's shell (which stays, as its script ends with a builtin): a process
 *  carrying it is one of these tests' containers. */
const MARK = `sgn-mark-${process.pid}`;

interface Signed {
  who: Who;
  bundle: string;
  root: string;
  keys: string;
  trust: string;
}

function own(who: Who, p: string): void {
  if (who !== 'rootless') return;
  const { uid, gid } = testUserIds();
  execFileSync('chown', ['-R', `${uid}:${gid}`, p]);
}

/** A bundle with its own copy of the busybox rootfs, alice's and mallory's keys, a trust dir
 *  holding alice only, and the bundle signed by alice (as `who`). */
function signedBundle(who: Who, sleep = 0, more: { edit?: (c: Config) => void; files?: Record<string, string> } = {}): Signed {
  const dir = scratch(who, 'sgn-');
  const keys = path.join(dir, 'keys');
  const trust = path.join(dir, 'trust');
  fs.mkdirSync(keys, { mode: 0o700 });
  fs.mkdirSync(trust, { mode: 0o755 });
  newKeys('alice', keys);
  newKeys('mallory', keys);
  fs.copyFileSync(path.join(keys, 'alice.id.json'), path.join(trust, 'alice.id.json'));
  own(who, dir);
  const { bundle, root } = makeBundle(who, (c) => {
    c.root = { path: 'rootfs', readonly: true };
    c.process!.args = ['sh', '-c', `echo signed-ok; sleep ${sleep}; exit 0`, MARK];
    more.edit?.(c);
  });
  for (const [name, text] of Object.entries(more.files ?? {})) fs.writeFileSync(path.join(bundle, name), text);
  execFileSync('cp', ['-a', BUSYBOX_ROOTFS, path.join(bundle, 'rootfs')]);
  own(who, path.join(bundle, 'rootfs'));
  const r = hako(who, root, ['sign', '-b', bundle, '--key', path.join(keys, 'alice.key')]);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  expect(r.stdout).toMatch(/^signed .* as alice \(fingerprint [0-9a-f ]{39}\): config\.json and \d+ rootfs paths in .*hako\.sig\.json\n$/);
  return { who, bundle, root, keys, trust };
}

/** Processes whose command line carries MARK: the containers of this file. */
function markedProcesses(): number[] {
  const found: number[] = [];
  for (const p of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      if (fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(MARK)) found.push(Number(p));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** cgroup directories named after `id` (a few levels down: hako's own, systemd slices). */
function cgroupsNamed(id: string, dir = '/sys/fs/cgroup', depth = 5): string[] {
  if (depth === 0) return [];
  let names: fs.Dirent[];
  try {
    names = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  return names
    .filter((d) => d.isDirectory())
    .flatMap((d) => [...(d.name.includes(id) ? [path.join(dir, d.name)] : []), ...cgroupsNamed(id, path.join(dir, d.name), depth - 1)]);
}

function verify(s: Signed) {
  return hako(s.who, s.root, ['verify', '-b', s.bundle, '--trust', s.trust]);
}

/** One line on stderr, nothing on stdout, a non-zero exit. */
function expectOneSentence(r: { status: number | null; stdout: string; stderr: string }, sentence: string | RegExp): void {
  expect(r.stdout).toBe('');
  const lines = r.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  if (typeof sentence === 'string') expect(lines[0]).toBe(`hako: ${sentence}`);
  else expect(lines[0]).toMatch(sentence);
  expect(r.status).not.toBe(0);
}

/** A refused verb left no state dir, mount, process or cgroup. */
function expectNothingLeft(s: Signed, id: string): void {
  expect(leftovers(s.root)).toEqual([]);
  expect(mountsUnder(s.bundle)).toEqual([]);
  expect(markedProcesses()).toEqual([]);
  expect(cgroupsNamed(id)).toEqual([]);
}

function expectRefused(s: Signed, id: string, sentence: string | RegExp): void {
  expectOneSentence(verify(s), sentence);
  const flagged =
    typeof sentence === 'string'
      ? `--require-signed: ${sentence}`
      : new RegExp(`^hako: --require-signed: ${sentence.source.replace(/^\^hako: /, '')}`);
  for (const verb of ['run', 'create']) {
    const r = hako(s.who, s.root, [verb, '-b', s.bundle, '--require-signed', '--trust', s.trust, `${id}-${verb}`]);
    expectOneSentence(r, flagged);
    expectNothingLeft(s, `${id}-${verb}`);
  }
}

const read = (p: string) => fs.readFileSync(p, 'utf8');
/** Rewrites a file in place: its inode, owner and mode stay; only its bytes change. */
const rewrite = (p: string, text: string) => fs.writeFileSync(p, text);

describe.each(WHO)('signed bundles (%s)', (who) => {
  const test = it.skipIf(who === 'root' && !IS_ROOT);
  let s: Signed;
  const changed = 'the bundle changed since alice signed it';

  beforeAll(() => {
    if (who === 'root' && !IS_ROOT) return;
    s = signedBundle(who);
  });

  test('sign then verify: OK with the signer and fingerprint; run --require-signed runs it', () => {
    const v = verify(s);
    expect(v.stderr).toBe('');
    expect(v.status).toBe(0);
    const fp = JSON.parse(read(path.join(s.keys, 'alice.id.json'))).fingerprint as string;
    expect(v.stdout).toMatch(
      new RegExp(`^OK: .* is signed by alice \\(fingerprint ${fp}\\); config\\.json and \\d+ rootfs paths unchanged\\n$`),
    );
    const r = hako(who, s.root, ['run', '-b', s.bundle, '--require-signed', '--trust', s.trust, 'sgn-ok']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('signed-ok\n');
    expect(r.status).toBe(0);
    expect(leftovers(s.root)).toEqual([]);
  });

  test('control: the leftover checks see a container that exists (state dir, process)', async () => {
    const c = signedBundle(who, 3);
    const running = hakoAsync(who, c.root, ['run', '-b', c.bundle, '--require-signed', '--trust', c.trust, 'sgn-ctl']);
    const deadline = Date.now() + 20_000;
    while (markedProcesses().length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(markedProcesses().length).toBeGreaterThan(0);
    expect(leftovers(c.root)).toContain('sgn-ctl');
    if (who === 'root') expect(cgroupsNamed('sgn-ctl').length).toBeGreaterThan(0);
    const done = await running;
    expect(done.stdout).toBe('signed-ok\n');
    expect(done.status).toBe(0);
    expectNothingLeft(c, 'sgn-ctl');
  });

  test('a rootfs file whose content changed (same size)', () => {
    const f = path.join(s.bundle, 'rootfs/etc/passwd');
    const before = read(f);
    rewrite(f, before.replace('root:x:0:0', 'ruut:x:0:0'));
    try {
      expectRefused(s, 'sgn-content', `${changed}: rootfs/etc/passwd: content changed`);
    } finally {
      rewrite(f, before);
    }
    expect(verify(s).status).toBe(0);
  });

  test('a rootfs file that grew', () => {
    const f = path.join(s.bundle, 'rootfs/etc/group');
    const before = read(f);
    rewrite(f, before + 'evil:x:0:\n');
    try {
      expectRefused(s, 'sgn-grew', `${changed}: rootfs/etc/group: content changed (size ${before.length} → ${before.length + 10} bytes)`);
    } finally {
      rewrite(f, before);
    }
  });

  test('a changed mode', () => {
    const f = path.join(s.bundle, 'rootfs/etc/group');
    fs.chmodSync(f, 0o4755);
    try {
      expectRefused(s, 'sgn-mode', `${changed}: rootfs/etc/group: mode 0644 → 4755`);
    } finally {
      fs.chmodSync(f, 0o644);
    }
  });

  test('a changed owner', () => {
    const f = path.join(s.bundle, 'rootfs/etc/group');
    const st = fs.statSync(f);
    fs.chownSync(f, st.uid + 1, st.gid);
    try {
      expectRefused(s, 'sgn-owner', `${changed}: rootfs/etc/group: owner ${st.uid}:${st.gid} → ${st.uid + 1}:${st.gid}`);
    } finally {
      fs.chownSync(f, st.uid, st.gid);
    }
  });

  test('an added file', () => {
    const f = path.join(s.bundle, 'rootfs/etc/ld.so.preload');
    fs.writeFileSync(f, '/tmp/evil.so\n');
    try {
      expectRefused(s, 'sgn-added', `${changed}: rootfs/etc/ld.so.preload: added`);
    } finally {
      fs.rmSync(f);
    }
  });

  test('a removed file', () => {
    const f = path.join(s.bundle, 'rootfs/etc/group');
    const keep = path.join(s.bundle, 'group.kept');
    fs.renameSync(f, keep);
    try {
      expectRefused(s, 'sgn-removed', `${changed}: rootfs/etc/group: removed`);
    } finally {
      fs.renameSync(keep, f);
    }
  });

  test('a changed symlink target', () => {
    const l = path.join(s.bundle, 'rootfs/bin/ls');
    const { uid, gid } = fs.lstatSync(l);
    fs.rmSync(l);
    fs.symlinkSync('/tmp/not-busybox', l);
    fs.lchownSync(l, uid, gid);
    try {
      expectRefused(s, 'sgn-link', `${changed}: rootfs/bin/ls: symlink target "busybox" → "/tmp/not-busybox"`);
    } finally {
      fs.rmSync(l);
      fs.symlinkSync('busybox', l);
      fs.lchownSync(l, uid, gid);
    }
    expect(verify(s).status).toBe(0);
  });

  test('a file replaced by a symlink', () => {
    const f = path.join(s.bundle, 'rootfs/etc/passwd');
    const keep = path.join(s.bundle, 'passwd.kept');
    fs.renameSync(f, keep);
    fs.symlinkSync('/etc/passwd', f);
    if (who === 'rootless') own(who, f);
    try {
      expectRefused(s, 'sgn-type', new RegExp(`^hako: ${changed}: rootfs/etc/passwd: type file → symlink`));
    } finally {
      fs.rmSync(f);
      fs.renameSync(keep, f);
    }
  });

  test('config.json changed', () => {
    const f = path.join(s.bundle, 'config.json');
    const before = read(f);
    rewrite(f, before.replace('"readonly": true', '"readonly": false'));
    expect(read(f)).not.toBe(before);
    try {
      expectRefused(s, 'sgn-config', `${changed}: config.json changed`);
    } finally {
      rewrite(f, before);
    }
  });

  test('the signature file altered (a signed mode loosened to match a change)', () => {
    const f = path.join(s.bundle, 'hako.sig.json');
    const before = read(f);
    // The attacker changes the rootfs and the manifest alike: only the signature can tell.
    const passwd = path.join(s.bundle, 'rootfs/etc/passwd');
    fs.chmodSync(passwd, 0o666);
    rewrite(f, before.replace(/("path":"etc\/passwd","type":"file","mode":)"0644"/, '$1"0666"'));
    expect(read(f)).not.toBe(before);
    try {
      expectRefused(
        s,
        'sgn-sig',
        /^hako: hako\.sig\.json: the signature does not verify with alice's key \(fingerprint [0-9a-f ]+\): the file was altered after signing$/,
      );
    } finally {
      rewrite(f, before);
      fs.chmodSync(passwd, 0o644);
    }
  });

  test('signed by someone not trusted', () => {
    const f = path.join(s.bundle, 'hako.sig.json');
    const before = read(f);
    const r = hako(who, s.root, ['sign', '-b', s.bundle, '--key', path.join(s.keys, 'mallory.key')]);
    expect(r.status).toBe(0);
    try {
      expectRefused(
        s,
        'sgn-untrusted',
        /^hako: hako\.sig\.json: signed by mallory \(fingerprint [0-9a-f ]+\), who is not trusted: no identity in .*trust has that fingerprint$/,
      );
    } finally {
      rewrite(f, before);
    }
    expect(verify(s).status).toBe(0);
  });

  test('an unsigned bundle', () => {
    const f = path.join(s.bundle, 'hako.sig.json');
    const keep = path.join(s.bundle, 'sig.kept');
    fs.renameSync(f, keep);
    try {
      expectRefused(s, 'sgn-unsigned', `${s.bundle} is not signed (it has no hako.sig.json; hako sign makes one)`);
    } finally {
      fs.renameSync(keep, f);
    }
  });

  test('a malformed signature file: one sentence naming the JSON path', () => {
    const f = path.join(s.bundle, 'hako.sig.json');
    const before = read(f);
    try {
      rewrite(f, '{"type": "hako-bundle-signature",');
      expectRefused(s, 'sgn-json', /^hako: hako\.sig\.json is not valid JSON: /);
      rewrite(f, before.replace(/"mode":"0755"/, '"mode":"755"'));
      expectRefused(s, 'sgn-path', /^hako: hako\.sig\.json: rootfs\.entries\[\d+\]\.mode: expected string to match '\^\[0-7\]\{4\}\$'$/);
      rewrite(f, '{"type": "something-else"}');
      expectRefused(
        s,
        'sgn-type',
        'hako.sig.json: type: expected "hako-bundle-signature", not "something-else": not a hako bundle signature',
      );
    } finally {
      rewrite(f, before);
    }
  });

  test('bad flags and trust dirs: one sentence each, nothing left', () => {
    const id = 'sgn-flags';
    const cases: Array<[string[], string]> = [
      [['--require-signed'], '--require-signed: needs --trust DIR, the directory of trusted identities (*.id.json)'],
      [['--trust', s.trust], '--trust: only means something with --require-signed'],
      [['--require-signed', '--trust', `${s.trust}-missing`], `--require-signed: --trust ${s.trust}-missing: no such directory`],
    ];
    for (const [flags, sentence] of cases) {
      expectOneSentence(hako(who, s.root, ['run', '-b', s.bundle, ...flags, id]), sentence);
      expectNothingLeft(s, id);
    }
    expectOneSentence(
      hako(who, s.root, ['verify', '-b', s.bundle, '--trust', `${s.trust}-missing`]),
      `--trust ${s.trust}-missing: no such directory`,
    );
    // A trust dir anyone may write to would let anyone trust themselves.
    fs.chmodSync(s.trust, 0o777);
    try {
      expectRefused(s, id, `--trust ${s.trust}: others may write to it (mode 0777), so anyone could add an identity to trust`);
    } finally {
      fs.chmodSync(s.trust, 0o755);
    }
    const empty = scratch(who, 'sgn-empty-');
    expectOneSentence(
      hako(who, s.root, ['verify', '-b', s.bundle, '--trust', empty]),
      `--trust ${empty}: holds no identity (NAME.id.json, from hako keys new)`,
    );
  });

  test('sign: a key others may read, a file that is not a key, a FIFO in the rootfs: one sentence, no signature written', () => {
    const c = signedBundle(who);
    const sig = path.join(c.bundle, 'hako.sig.json');
    fs.rmSync(sig);
    const key = path.join(c.keys, 'alice.key');
    fs.chmodSync(key, 0o644);
    expectOneSentence(
      hako(who, c.root, ['sign', '-b', c.bundle, '--key', key]),
      `${key}: the private key file may be read by others (mode 0644); run chmod 600 ${key}`,
    );
    fs.chmodSync(key, 0o600);
    const id = path.join(c.keys, 'alice.id.json');
    expectOneSentence(
      hako(who, c.root, ['sign', '-b', c.bundle, '--key', id]),
      /^hako: .*alice\.id\.json: the private key file may be read by others|^hako: .*alice\.id\.json: type: expected "hako-private-key"/,
    );
    const fifo = path.join(c.bundle, 'rootfs/tmp/fifo');
    execFileSync('mkfifo', [fifo]);
    expectOneSentence(
      hako(who, c.root, ['sign', '-b', c.bundle, '--key', key]),
      "rootfs/tmp/fifo: is a FIFO; a signed rootfs holds only files, directories and symlinks (devices come from the runtime's /dev)",
    );
    fs.rmSync(fifo);
    expect(fs.readdirSync(c.bundle).sort()).toEqual(['config.json', 'rootfs']);
    // The control: the same call with the FIFO gone signs.
    expect(hako(who, c.root, ['sign', '-b', c.bundle, '--key', key]).status).toBe(0);
    expect(fs.existsSync(sig)).toBe(true);
  });

  test('up --require-signed: a changed bundle is refused before its build hook runs; the signed one is served without running it', async () => {
    // up as root runs the container on a subordinate range: a user namespace without mappings.
    const edit = (c: Config) => {
      if (who === 'root') c.linux!.namespaces!.push({ type: 'user' });
    };
    const files = {
      'package.json': JSON.stringify({ hako: { build: 'build.mjs', serves: 'signed test server' } }),
      'build.mjs': "import fs from 'node:fs';\nfs.writeFileSync(process.argv[2] + '/hook-ran', 'yes');\n",
    };
    const u = signedBundle(who, 0, { edit, files });
    const port = who === 'root' ? 18752 : 18751;
    const up = (...flags: string[]) =>
      hakoAsync(who, u.root, ['up', u.bundle, '--listen', `127.0.0.1:${port}`, '--restart', 'no', '--id', 'sgn-up', ...flags]);
    const hookRan = path.join(u.bundle, 'hook-ran');
    const passwd = path.join(u.bundle, 'rootfs/etc/passwd');
    const before = read(passwd);
    rewrite(passwd, before.replace('root:x:0:0', 'ruut:x:0:0'));
    const refused = await up('--require-signed', '--trust', u.trust);
    expectOneSentence(refused, '--require-signed: the bundle changed since alice signed it: rootfs/etc/passwd: content changed');
    expect(fs.existsSync(hookRan)).toBe(false);
    expectNothingLeft(u, 'sgn-up');
    rewrite(passwd, before);
    const served = await up('--require-signed', '--trust', u.trust);
    expect(served.stdout).toContain('signed-ok\n');
    expect(served.stderr).toContain('container sgn-up exited with status 0');
    expect(served.status).toBe(0);
    expect(fs.existsSync(hookRan)).toBe(false);
    expectNothingLeft(u, 'sgn-up');
    // The control: without --require-signed the same up runs the hook (the check above can see it).
    const plain = await up();
    expect(plain.status).toBe(0);
    expect(fs.existsSync(hookRan)).toBe(true);
  });

  test('the window after the check: a signed rootfs others may write, or a writable rootfs, is refused to run (verify still says OK)', () => {
    const w = signedBundle(who);
    const key = path.join(w.keys, 'alice.key');
    const etc = path.join(w.bundle, 'rootfs/etc');
    fs.chmodSync(etc, 0o777);
    expect(hako(who, w.root, ['sign', '-b', w.bundle, '--key', key]).status).toBe(0);
    expect(verify(w).status).toBe(0);
    const uid = who === 'root' ? 0 : testUserIds().uid;
    const tail = `so it could change after the check; a signed rootfs may be changed only by you (uid ${uid}) and root`;
    const r = hako(who, w.root, ['run', '-b', w.bundle, '--require-signed', '--trust', w.trust, 'sgn-window']);
    expectOneSentence(r, `--require-signed: rootfs/etc: group or others may write to it (mode 0777), ${tail}`);
    expectNothingLeft(w, 'sgn-window');
    // A sticky directory (as /tmp) lets others add names only: accepted, and the container runs.
    fs.chmodSync(etc, 0o1777);
    expect(hako(who, w.root, ['sign', '-b', w.bundle, '--key', key]).status).toBe(0);
    const ok = hako(who, w.root, ['run', '-b', w.bundle, '--require-signed', '--trust', w.trust, 'sgn-window']);
    expect(ok.stderr).toBe('');
    expect(ok.stdout).toBe('signed-ok\n');
    fs.chmodSync(etc, 0o755);
    expect(hako(who, w.root, ['sign', '-b', w.bundle, '--key', key]).status).toBe(0);
    // A directory above the rootfs others may write: they could put another tree in its place.
    fs.chmodSync(w.bundle, 0o777);
    try {
      expectOneSentence(
        hako(who, w.root, ['run', '-b', w.bundle, '--require-signed', '--trust', w.trust, 'sgn-window']),
        `--require-signed: ${w.bundle}: group or others may write to it (mode 0777), ${tail.replace('a signed rootfs', 'the directories above a signed rootfs')}`,
      );
      expectNothingLeft(w, 'sgn-window');
    } finally {
      fs.chmodSync(w.bundle, 0o755);
    }
    // A rootfs the container may write: the container could change what was verified.
    const cfgFile = path.join(w.bundle, 'config.json');
    rewrite(cfgFile, read(cfgFile).replace('"readonly": true', '"readonly": false'));
    expect(hako(who, w.root, ['sign', '-b', w.bundle, '--key', key]).status).toBe(0);
    expect(verify(w).status).toBe(0);
    const rw = hako(who, w.root, ['run', '-b', w.bundle, '--require-signed', '--trust', w.trust, 'sgn-window']);
    expectOneSentence(
      rw,
      '--require-signed: config.json: root.readonly: must be true for a signed bundle: the container could otherwise change what was verified',
    );
    expectNothingLeft(w, 'sgn-window');
  });
});
