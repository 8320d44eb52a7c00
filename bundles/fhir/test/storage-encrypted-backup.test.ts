// Backup and restore of a running encrypted store (issue 15): `hako-fhir backup` taken while a
// separate process keeps writing restores every resource acknowledged before it began; `restore`
// refuses a tampered backup, a wrong signer and a running server before anything is replaced,
// and leaves no staging directory. The signing key is a real `hako keys new` identity.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI } from '../../../test/helpers/env.js';
import { fhir, kill, serving, spawnServer, stop, storageWork, type Server } from './storage-server.js';
import { writeKey } from './storage-encrypted-files.js';

const work = storageWork();
const BIN = join(import.meta.dirname, '..', 'bin', 'hako-fhir.mjs');
const started: Server[] = [];
afterEach(async () => {
  for (const s of started.splice(0)) await kill(s);
});
const start = (data: string, env: Record<string, string>): Promise<Server> => {
  const s = spawnServer(work.serverJs(), data, env);
  started.push(s);
  return serving(s);
};

function hakoFhir(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** A separate process POSTing Patients one after another; prints each acknowledged id. */
function writer(base: string): { acked: () => string[]; stop: () => Promise<void> } {
  const script = `
    let n = 0;
    for (;;) {
      const r = await fetch('${base}/Patient', { method: 'POST', headers: { 'content-type': 'application/fhir+json' },
        body: JSON.stringify({ resourceType: 'Patient', name: [{ family: 'Load', given: ['w' + n++] }] }) }).catch(() => undefined);
      if (r?.status === 201) process.stdout.write((await r.json()).id + '\\n');
    }`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d));
  return {
    acked: () => out.split('\n').filter((l, i, all) => i < all.length - 1 && l),
    stop: () => new Promise((resolve) => (child.once('exit', () => resolve()), child.kill('SIGKILL'))),
  };
}

const hashDir = (dir: string): string =>
  (readdirSync(dir, { recursive: true }) as string[])
    .sort()
    .map((n) => {
      try {
        return `${n}:${createHash('sha256')
          .update(readFileSync(join(dir, n)))
          .digest('hex')}`;
      } catch {
        return n; // a directory or a socket
      }
    })
    .join('\n');

describe('backup and restore of an encrypted store', { timeout: 240_000 }, () => {
  it('a backup under write load restores every acknowledged resource; tampering, a wrong signer and a running server are refused first', async () => {
    const dir = work.dir();
    const key = writeKey(join(dir, 'data.key'));
    const keys = spawnSync(CLI, ['keys', 'new', 'backups', '--dir', dir], { encoding: 'utf8' });
    if (keys.status !== 0) {
      // older CLIs take the directory as the working directory
      const again = spawnSync(CLI, ['keys', 'new', 'backups'], { cwd: dir, encoding: 'utf8' });
      expect(again.status, again.stderr).toBe(0);
    }
    const signKey = join(dir, 'backups.key');
    const env = { HAKO_FHIR_KEY_FILE: key, HAKO_FHIR_SNAPSHOT_BYTES: '40000' };
    const data = work.dataDir();
    const s = await start(data, env);
    const load = writer(s.baseUrl);
    while (load.acked().length < 150) await new Promise((r) => setTimeout(r, 50));
    const before = load.acked(); // acknowledged before the backup began
    const file = join(dir, 'store.backup');
    const b = await hakoFhir(['--data', data, 'backup', '--to', file, '--key', key, '--sign', signKey]);
    expect(b.stderr).toBe('');
    expect(b.status).toBe(0);
    expect(b.stdout).toMatch(
      /^backup \S+store\.backup: \d+ files, \d+ bytes, at record #\d+ \(segments 1\.\.\d+, sealed by the running server\)\n$/,
    );
    const during = load.acked().length;
    while (load.acked().length < during + 50) await new Promise((r) => setTimeout(r, 50));
    await load.stop();
    expect(await stop(s)).toBe(0);
    expect(readFileSync(file).includes(Buffer.from('Load'))).toBe(false);

    // Restored into a new directory, the server finds every resource acknowledged before the backup.
    const restored = join(dirname(data), 'restored');
    const r = await hakoFhir(['--data', restored, 'restore', file, '--key', key, '--from', join(dir, 'backups.id.json')]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^restored \d+ files \(\d+ journal records, up to segment \d+\) into \S+restored\n$/);
    const back = await start(restored, env);
    for (const id of before) expect((await fhir(back.baseUrl, 'GET', `Patient/${id}`)).status, id).toBe(200);
    const total = (await fhir(back.baseUrl, 'GET', 'Patient?_summary=count')).json.total;
    expect(total).toBeGreaterThanOrEqual(before.length);
    expect(total).toBeLessThan(load.acked().length); // taken at one position, not at the end

    // With the server running, restore refuses.
    const busy = await hakoFhir(['--data', restored, 'restore', file, '--key', key]);
    expect(busy.status).toBe(1);
    expect(busy.stderr).toMatch(/^hako-fhir: a server is running on \S+: stop it before restoring; nothing was restored\n$/);
    expect(await stop(back)).toBe(0);

    // Tampered (one bit anywhere), truncated, or signed by someone else: refused, nothing replaced or left.
    const state = hashDir(restored);
    const original = readFileSync(file);
    const tamper = (at: number): Buffer => {
      const copy = Buffer.from(original);
      copy[at] ^= 1;
      return copy;
    };
    const bad: [string, Buffer, RegExp][] = [
      ['a bit in a file', tamper(Math.floor(original.length / 2)), /its signature does not verify/],
      ['a bit in the manifest', tamper(20), /its (manifest is not JSON|signature does not verify)/],
      ['truncated', original.subarray(0, original.length - 100), /its signature does not verify|ends inside/],
      ['not a backup', Buffer.from('hello'), /it is not a hako FHIR backup/],
    ];
    for (const [what, bytes, re] of bad) {
      const f = join(dir, 'bad.backup');
      writeFileSync(f, bytes);
      const x = await hakoFhir(['--data', restored, 'restore', f, '--key', key]);
      expect(x.status, what).toBe(1);
      expect(x.stderr, what).toMatch(new RegExp(`^hako-fhir: backup \\S+ is refused: .*; nothing was restored\\n$`));
      expect(x.stderr, what).toMatch(re);
      expect(hashDir(restored), what).toBe(state);
    }
    const other = spawnSync(CLI, ['keys', 'new', 'someone', '--dir', dir], { encoding: 'utf8' });
    if (other.status !== 0) spawnSync(CLI, ['keys', 'new', 'someone'], { cwd: dir });
    const wrongSigner = await hakoFhir(['--data', restored, 'restore', file, '--key', key, '--from', join(dir, 'someone.id.json')]);
    expect(wrongSigner.stderr).toMatch(/is refused: it was signed by another key than \S+someone\.id\.json's; nothing was restored/);
    const wrongKey = await hakoFhir(['--data', restored, 'restore', file, '--key', writeKey(join(dir, 'other.key'))]);
    expect(wrongKey.stderr).toMatch(
      /is refused: store\.id does not decrypt with the key in the given key file \(chunk 0\); nothing was restored/,
    );
    expect(hashDir(restored)).toBe(state);
    expect(readdirSync(dirname(restored)).filter((n) => n.includes('restoring'))).toEqual([]);
  });
});
