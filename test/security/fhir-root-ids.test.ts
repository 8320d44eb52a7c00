// Issue 9, item 8: the FHIR bundle under `hako up` as root mapped container root to host
// root, so a setuid-root file the server (or anything in the container) wrote to /data was
// a host setuid-root file. Now, as root, up maps container ids 0..65535 onto user hako's
// subordinate range (created when missing). The attack is performed for real: a process in
// the container writes a setuid file to /data; on the host it must not belong to root.
// The control runs the same bundle and the same attack under the runtime's own default
// mapping (container root = the caller = host root, what up did before) and sees owner 0.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { type ChildProcess } from 'node:child_process';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { IS_ROOT } from '../helpers/env.js';
import { hako, scratch, testUserIds, type Who } from '../helpers/hako.js';
import {
  ensureSubIds,
  entryFor,
  freeRange,
  loginDefsLimits,
  parseSubIdFile,
  rangeMappings,
  withSubIdMappings,
  type SubIdEntry,
} from '../../src/up/subids.js';
import { checkVolumes, hostUser } from '../../src/up/volumes.js';
import type { Config } from '../../src/oci/config.js';
import { copyFhirBundle } from '../../bundles/fhir/test/copy.js';
import { chownTree, serving as servingAt, startUp, type Up } from '../helpers/up.js';

describe('the subordinate range: parsing, choosing a free one, mapping', () => {
  it('parses /etc/subuid-style text, skipping malformed lines, and finds a user by name or uid', () => {
    const entries = parseSubIdFile('alice:100000:65536\n# comment\nbad:line\n1001:200000:65536\nhako:300000:0\nhako:400000:70000\n\n');
    expect(entries).toEqual([
      { owner: 'alice', start: 100000, count: 65536 },
      { owner: '1001', start: 200000, count: 65536 },
      { owner: 'hako', start: 300000, count: 0 },
      { owner: 'hako', start: 400000, count: 70000 },
    ]);
    expect(entryFor(entries, 'hako', 999)).toEqual({ owner: 'hako', start: 400000, count: 70000 }); // an empty entry is skipped
    expect(entryFor(entries, 'bob', 1001)?.start).toBe(200000);
    expect(entryFor(entries, 'carol', 1002)).toBeUndefined();
  });

  it('picks the lowest range that overlaps nothing in either file (never assumes a fresh machine)', () => {
    const r = (start: number, count: number): SubIdEntry => ({ owner: 'x', start, count });
    expect(freeRange([], 65536)).toBe(100000);
    expect(freeRange([r(100000, 65536)], 65536)).toBe(165536);
    // A gap too small is skipped; unsorted, overlapping and zero-sized entries are handled.
    expect(freeRange([r(300000, 65536), r(100000, 65536), r(170000, 100), r(120000, 10000), r(165536, 0)], 65536)).toBe(170100);
    expect(freeRange([r(165536, 65536)], 65536)).toBe(100000); // 100000..165535: exactly 65536 ids fit
    expect(freeRange([r(165535, 65536)], 65536)).toBe(231071);
  });

  it('respects SUB_UID_MIN/MAX and says so when nothing is free', () => {
    expect(loginDefsLimits('SUB_UID_MIN\t\t   200000\nSUB_UID_MAX 300000\n', 'UID')).toEqual({ min: 200000, max: 300000 });
    expect(loginDefsLimits('', 'GID')).toEqual({ min: 100000, max: 600100000 });
    expect(() => freeRange([{ owner: 'x', start: 200000, count: 65536 }], 65536, 200000, 300000)).toThrow(
      'no free range of 65536 subordinate ids between 200000 and 300000 in /etc/subuid and /etc/subgid',
    );
  });

  const cfg = (linux: Config['linux'] = {}): Config =>
    ({ ociVersion: '1.2.0', process: { cwd: '/', args: ['/node'], user: { uid: 0, gid: 0 } }, linux }) as Config;

  it('maps container ids 0..65535 onto the range, and the server (container root) is the range base on the host', () => {
    const ranges = { uid: { owner: 'hako', start: 165536, count: 65536 }, gid: { owner: 'hako', start: 165536, count: 100000 } };
    expect(rangeMappings(ranges)).toEqual({
      uidMappings: [{ containerID: 0, hostID: 165536, size: 65536 }],
      gidMappings: [{ containerID: 0, hostID: 165536, size: 65536 }],
    });
    const out = withSubIdMappings(cfg({ namespaces: [{ type: 'user' }] }), ranges);
    expect(out.linux!.namespaces).toEqual([{ type: 'user' }]);
    expect(hostUser(out)).toEqual({ uid: 165536, gid: 165536, gids: [165536] });
    // Control: the bundle as shipped (no maps) runs, as root, as the caller: host root.
    if (IS_ROOT) expect(hostUser(cfg())).toMatchObject({ uid: 0, gid: 0 });
  });

  it("keeps a bundle's own maps, but never ones that reach host id 0", () => {
    const never = () => {
      throw new Error('the range is not looked up when the bundle maps its own ids');
    };
    const own = cfg({
      uidMappings: [{ containerID: 0, hostID: 500000, size: 10 }],
      gidMappings: [{ containerID: 0, hostID: 500000, size: 10 }],
    });
    expect(withSubIdMappings(own, never)).toBe(own);
    expect(() =>
      withSubIdMappings(
        cfg({ uidMappings: [{ containerID: 0, hostID: 0, size: 65536 }], gidMappings: [{ containerID: 0, hostID: 500000, size: 10 }] }),
        never,
      ),
    ).toThrow('config.json: linux.uidMappings[0]: maps host uid 0 into the container: hako up as root never runs a container as host root');
    expect(() => withSubIdMappings(cfg({ uidMappings: [{ containerID: 0, hostID: 500000, size: 10 }] }), never)).toThrow(
      'config.json: linux.gidMappings: missing',
    );
  });

  it('a volume is judged for the mapped user, not the caller', () => {
    const bundle = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-ids-'));
    try {
      const data = path.join(bundle, 'data');
      fs.mkdirSync(data, { mode: 0o700 });
      const c = withSubIdMappings(
        { ...cfg(), mounts: [{ destination: '/data', type: 'bind', source: 'data', options: ['rbind', 'rw'] }] },
        {
          uid: { owner: 'hako', start: 3000000, count: 65536 },
          gid: { owner: 'hako', start: 3000000, count: 65536 },
        },
      );
      // Owned by the caller, mode 0700: the range's root cannot write it.
      expect(() => checkVolumes(c, bundle)).toThrow(
        `the data volume ${data} (mounted at /data) is not writable by uid 3000000, the container's user on the host`,
      );
      fs.chmodSync(data, 0o777);
      expect(() => checkVolumes(c, bundle)).not.toThrow();
    } finally {
      fs.rmSync(bundle, { recursive: true, force: true });
    }
  });

  it('uses existing entries as they are, and creates nothing for a user other than hako', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-ids-'));
    try {
      const subuid = path.join(dir, 'subuid');
      const subgid = path.join(dir, 'subgid');
      fs.writeFileSync(subuid, 'someone:100000:65536\nhakotest-x:400000:65536\n');
      fs.writeFileSync(subgid, 'hakotest-x:500000:65536\n');
      expect(ensureSubIds({ user: 'hakotest-x', subuid, subgid })).toEqual({
        user: 'hakotest-x',
        uid: { owner: 'hakotest-x', start: 400000, count: 65536 },
        gid: { owner: 'hakotest-x', start: 500000, count: 65536 },
        created: [],
      });
      expect(() => ensureSubIds({ user: 'nobody-here', subuid, subgid })).toThrow(
        `--subids nobody-here: user nobody-here has no entry in ${subuid}`,
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('creates what is missing: the system user, then one range free in both files (useradd/usermod, as a fake that edits copies)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-ids-'));
    try {
      const subuid = path.join(dir, 'subuid');
      const subgid = path.join(dir, 'subgid');
      const loginDefs = path.join(dir, 'login.defs');
      // Not a fresh machine: other users' ranges, different in the two files.
      fs.writeFileSync(subuid, 'alice:100000:65536\nbob:165536:65536\n');
      fs.writeFileSync(subgid, 'alice:100000:65536\ncarol:231072:1000\n');
      fs.writeFileSync(loginDefs, 'SUB_UID_MIN 100000\nSUB_GID_MIN 100000\n');
      const calls: string[][] = [];
      let users: Record<string, number> = {};
      const fake = (tool: string, args: string[]) => {
        calls.push([tool, ...args]);
        if (tool === 'useradd') users = { ...users, [args.at(-1)!]: 998 };
        if (tool === 'usermod') {
          const user = args.at(-1)!;
          for (let i = 0; i < args.length - 1; i += 2) {
            const [a, b] = args[i + 1]!.split('-').map(Number);
            fs.appendFileSync(args[i] === '--add-subuids' ? subuid : subgid, `${user}:${a}:${b! - a! + 1}\n`);
          }
        }
      };
      const got = ensureSubIds({ subuid, subgid, loginDefs, run: fake, uidOf: (u) => users[u] });
      expect(calls).toEqual([
        [
          'useradd',
          '--system',
          '--no-create-home',
          '--home-dir',
          '/nonexistent',
          '--shell',
          '/usr/sbin/nologin',
          '--comment',
          'hako container ids',
          'hako',
        ],
        ['usermod', '--add-subuids', '232072-297607', '--add-subgids', '232072-297607', 'hako'],
      ]);
      expect(got).toEqual({
        user: 'hako',
        uid: { owner: 'hako', start: 232072, count: 65536 },
        gid: { owner: 'hako', start: 232072, count: 65536 },
        created: ['system user hako', 'subordinate uids 232072-297607 (' + subuid + ')', 'subordinate gids 232072-297607 (' + subgid + ')'],
      });
      // A second time, nothing is created; an entry by uid counts as the user's.
      calls.length = 0;
      fs.writeFileSync(subgid, 'alice:100000:65536\n998:700000:65536\n');
      expect(ensureSubIds({ subuid, subgid, loginDefs, run: fake, uidOf: (u) => users[u] }).gid.start).toBe(700000);
      expect(calls).toEqual([]);
      // Only the missing file gets an entry: the other half's numbers when they are free there...
      fs.writeFileSync(subgid, 'alice:100000:65536\n');
      ensureSubIds({ subuid, subgid, loginDefs, run: fake, uidOf: (u) => users[u] });
      expect(calls).toEqual([['usermod', '--add-subgids', '232072-297607', 'hako']]);
      // ...else the lowest range free in both files.
      calls.length = 0;
      fs.writeFileSync(subgid, 'alice:100000:65536\ndave:240000:10\n');
      ensureSubIds({ subuid, subgid, loginDefs, run: fake, uidOf: (u) => users[u] });
      expect(calls).toEqual([['usermod', '--add-subgids', '297608-363143', 'hako']]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---- real containers ----

const running: ChildProcess[] = [];
const dirs: string[] = [];

/** A free loopback port in 18000..18999 (others run tests concurrently: never a fixed one). */
async function freePort(): Promise<number> {
  const first = 18000 + Math.floor(Math.random() * 1000);
  for (let i = 0; i < 1000; i++) {
    const port = 18000 + ((first - 18000 + i) % 1000);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (ok) return port;
  }
  throw new Error('no free port in 18000..18999');
}

/** A copy of the FHIR bundle owned by who, with an empty data dir as the builder makes it (0700).
 *  Without its seccomp and Landlock policy: the probes chmod and chown, which the server never
 *  does, and the control runs it with `hako run` (no seccomp agent, no activated socket). */
function fhirBundle(who: Who): string {
  const bundle = scratch(who, 'fhir-ids-');
  dirs.push(bundle);
  copyFhirBundle(bundle, { policy: false });
  fs.mkdirSync(path.join(bundle, 'data'), { mode: 0o700 });
  chownTree(who, bundle);
  return bundle;
}

async function until(what: string, test: () => boolean, alive: () => boolean, detail: () => string, ms = 90_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!test()) {
    if (!alive() || Date.now() > deadline) throw new Error(`${what} did not happen: ${detail()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const up = (who: Who, bundle: string, root: string, port: number): Up =>
  startUp(who, bundle, root, ['--listen', `127.0.0.1:${port}`], running);

async function serving(u: Up, port: number): Promise<string> {
  const s = await servingAt(u);
  expect(s.port).toBe(port);
  return s.id;
}

function initPid(who: Who, root: string, id: string): number {
  const r = hako(who, root, ['state', id]);
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout).pid;
}

function idLine(pid: number, key: 'Uid' | 'Gid'): number[] {
  const line = new RegExp(`^${key}:\\s+(.*)$`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]!;
  return line.trim().split(/\s+/).map(Number);
}

/**
 * The attack, from inside: a process of the container writes /data/suid with the setuid and
 * setgid bits (mode 06755) and tries to give it to uid 0 (container root, the only "root"
 * it can name). Returns what it saw.
 */
function setuidAttack(who: Who, root: string, bundle: string, id: string): { mode: number; chown: string } {
  const script = `
    const fs = require('fs');
    fs.writeFileSync('/data/suid', '#!/bin/sh\\n');
    fs.chmodSync('/data/suid', 0o6755);
    let chown; try { fs.chownSync('/data/suid', 0, 0); chown = 'ok'; } catch (e) { chown = e.code; }
    fs.chmodSync('/data/suid', 0o6755);
    console.log(JSON.stringify({ mode: fs.statSync('/data/suid').mode, chown }));`;
  const proc = path.join(root, 'attack.json');
  const base = JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8')).process;
  fs.writeFileSync(proc, JSON.stringify({ ...base, args: ['/node', '-e', script] }), { mode: 0o644 });
  const r = hako(who, root, ['exec', '--process', proc, id]);
  fs.rmSync(proc);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return JSON.parse(r.stdout);
}

async function stop(u: Up, pid: number): Promise<void> {
  u.child.kill('SIGTERM');
  expect(await u.exited).toBe(0);
  expect(fs.existsSync(`/proc/${pid}`)).toBe(false);
}

/** The hako entries as the files now hold them, checked to overlap no other entry. */
function hakoRanges(): { uid: SubIdEntry; gid: SubIdEntry } {
  const out: Record<string, SubIdEntry> = {};
  for (const [key, file] of [
    ['uid', '/etc/subuid'],
    ['gid', '/etc/subgid'],
  ] as const) {
    const entries = parseSubIdFile(fs.readFileSync(file, 'utf8'));
    const mine = entryFor(entries, 'hako', undefined);
    expect(mine, `${file} has an entry for hako`).toBeDefined();
    expect(mine!.count).toBeGreaterThanOrEqual(65536);
    for (const other of entries.filter((e) => e.owner !== 'hako' && e.count > 0))
      expect(
        other.start + other.count <= mine!.start || other.start >= mine!.start + mine!.count,
        `${file}: ${other.owner}:${other.start}:${other.count} overlaps hako's range`,
      ).toBe(true);
    out[key] = mine!;
  }
  return out as { uid: SubIdEntry; gid: SubIdEntry };
}

afterEach(async () => {
  for (const child of running.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
  }
});
afterAll(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function stateRoot(who: Who): string {
  const root = scratch(who, 'state-ids-');
  dirs.push(root);
  return root;
}

describe.skipIf(!IS_ROOT)('hako up as root runs the FHIR server on a subordinate range, never as host root', () => {
  it('the server is the range base on the host: uid_map, /proc status, the journal it writes, and a setuid file planted in /data', async () => {
    const bundle = fhirBundle('root');
    const root = stateRoot('root');
    const port = await freePort();
    const u = up('root', bundle, root, port);
    const id = await serving(u, port);
    const { uid, gid } = hakoRanges(); // created by this up, or by an earlier one: not overlapping anything
    expect(uid.start).not.toBe(0);
    expect(u.stdout()).toContain(
      `as root, in a user namespace with no capabilities, as host uid ${uid.start} (user hako's subordinate range))`,
    );

    const pid = initPid('root', root, id);
    expect(fs.readFileSync(`/proc/${pid}/uid_map`, 'utf8').trim().split(/\s+/).map(Number)).toEqual([0, uid.start, 65536]);
    expect(fs.readFileSync(`/proc/${pid}/gid_map`, 'utf8').trim().split(/\s+/).map(Number)).toEqual([0, gid.start, 65536]);
    expect(idLine(pid, 'Uid')).toEqual([uid.start, uid.start, uid.start, uid.start]);
    expect(idLine(pid, 'Gid')).toEqual([gid.start, gid.start, gid.start, gid.start]);

    // The journal the server created in /data: the range's root owns it on the host.
    const journal = fs.statSync(path.join(bundle, 'data/journal'));
    expect([journal.uid, journal.gid]).toEqual([uid.start, gid.start]);
    expect(fs.statSync(path.join(bundle, 'data')).uid).toBe(uid.start);

    // The attack: a setuid file from inside. It gets its bits, but it is not root's.
    const seen = setuidAttack('root', root, bundle, id);
    expect(seen.mode & 0o6000).toBe(0o6000);
    const planted = fs.statSync(path.join(bundle, 'data/suid'));
    expect(planted.uid).toBe(uid.start);
    expect(planted.gid).toBe(gid.start);
    expect(planted.uid).not.toBe(0);
    expect(planted.gid).not.toBe(0);
    for (const name of fs.readdirSync(path.join(bundle, 'data')))
      expect(fs.lstatSync(path.join(bundle, 'data', name)).uid, name).not.toBe(0);

    await stop(u, pid);
  });

  it('adopts a data volume written before (root-owned files kept, a planted setuid-root file defused, symlinks not followed)', async () => {
    const bundle = fhirBundle('root');
    const root = stateRoot('root');
    const data = path.join(bundle, 'data');
    // Not a journal: the bundle's store is encrypted, and a plain journal would be refused (storage-encrypted tests).
    fs.writeFileSync(path.join(data, 'notes'), 'written by host root\n', { mode: 0o600 });
    fs.writeFileSync(path.join(data, 'old-suid'), '#!/bin/sh\n', { mode: 0o755 });
    fs.chmodSync(path.join(data, 'old-suid'), 0o4755);
    fs.mkdirSync(path.join(data, 'sub'), { mode: 0o700 });
    fs.writeFileSync(path.join(data, 'sub/file'), 'x', { mode: 0o600 });
    const target = path.join(bundle, 'host-file');
    fs.writeFileSync(target, 'host', { mode: 0o600 });
    fs.symlinkSync(target, path.join(data, 'link'));
    fs.linkSync(target, path.join(data, 'hardlink'));

    const port = await freePort();
    const u = up('root', bundle, root, port);
    const id = await serving(u, port);
    const { uid, gid } = hakoRanges();
    expect(u.stderr()).toContain(
      `hako up: data volume ${data} now belongs to uid ${uid.start} gid ${gid.start}, the container's user on the host (and 4 entries in it that host root owned)`,
    );
    for (const name of ['notes', 'old-suid', 'sub', 'sub/file'])
      expect([fs.statSync(path.join(data, name)).uid, fs.statSync(path.join(data, name)).gid], name).toEqual([uid.start, gid.start]);
    expect(fs.statSync(path.join(data, 'old-suid')).mode & 0o6000).toBe(0); // chown clears setuid
    expect(fs.lstatSync(path.join(data, 'link')).uid).toBe(0); // neither the link...
    expect(fs.statSync(target).uid).toBe(0); // ...nor what it or the hard link points to
    expect(u.stderr()).toContain('(0 journal records replayed; the store is encrypted)');
    await stop(u, initPid('root', root, id));
  });

  it("control: the same bundle and attack under the runtime's default root mapping give a host setuid-root file", async () => {
    // What `up` did before: the bundle as shipped, container root mapped to the caller.
    const bundle = fhirBundle('root');
    const root = stateRoot('root');
    // Build the rootfs through up once (its builder), then run the config as shipped.
    const port = await freePort();
    const u = up('root', bundle, root, port);
    const upId = await serving(u, port);
    await stop(u, initPid('root', root, upId));
    const data = path.join(bundle, 'data-control');
    fs.mkdirSync(data, { mode: 0o700 });
    const cfg = JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8'));
    cfg.mounts.find((m: { destination: string }) => m.destination === '/data').source = data;
    // The store's key belongs to the subordinate uid up runs the server as; this run's server is
    // host root without capabilities and could not read it: a plain store here.
    cfg.mounts = cfg.mounts.filter((m: { destination: string }) => m.destination !== '/run/secrets');
    cfg.process.env = cfg.process.env.filter((e: string) => !e.startsWith('HAKO_FHIR_KEY_FILE='));
    fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(cfg));

    const id = `ids-control-${process.pid}`;
    const r = hako('root', root, ['run', '-d', '-b', bundle, id], { detached: true });
    expect(r.status, r.stderr).toBe(0);
    try {
      const pid = initPid('root', root, id);
      expect(fs.readFileSync(`/proc/${pid}/uid_map`, 'utf8').trim().split(/\s+/).map(Number)).toEqual([0, 0, 1]);
      await until(
        'the journal',
        () => fs.existsSync(path.join(data, 'journal')),
        () => fs.existsSync(`/proc/${pid}`),
        () => 'the server exited',
      );
      expect(fs.statSync(path.join(data, 'journal')).uid).toBe(0);
      expect(idLine(pid, 'Uid')[0]).toBe(0);
      const seen = setuidAttack('root', root, bundle, id);
      expect(seen.mode & 0o6000).toBe(0o6000);
      const planted = fs.statSync(path.join(data, 'suid'));
      // The escape the tests above rule out: a setuid-root file on the host.
      expect(planted.uid).toBe(0);
      expect(planted.mode & 0o4000).toBe(0o4000);
    } finally {
      fs.rmSync(path.join(data, 'suid'), { force: true });
      hako('root', root, ['delete', '--force', id]);
    }
  });
});

describe.skipIf(!IS_ROOT)("hako up rootless is unchanged: the caller's own id", () => {
  it("maps only the test user; the journal is the test user's", async () => {
    const { uid, gid } = testUserIds();
    const bundle = fhirBundle('rootless');
    const root = stateRoot('rootless');
    const port = await freePort();
    const u = up('rootless', bundle, root, port);
    const id = await serving(u, port);
    expect(u.stdout()).toMatch(/, rootless\)\n$/);
    const pid = initPid('rootless', root, id);
    expect(fs.readFileSync(`/proc/${pid}/uid_map`, 'utf8').trim().split(/\s+/).map(Number)).toEqual([0, uid, 1]);
    expect(idLine(pid, 'Uid')).toEqual([uid, uid, uid, uid]);
    const journal = fs.statSync(path.join(bundle, 'data/journal'));
    expect([journal.uid, journal.gid]).toEqual([uid, gid]);
    const seen = setuidAttack('rootless', root, bundle, id);
    expect(seen.mode & 0o6000).toBe(0o6000);
    expect(fs.statSync(path.join(bundle, 'data/suid')).uid).toBe(uid);
    await stop(u, pid);
  });
});
