// The encrypted store (issue 15), bare server: nothing written through the API is readable in
// the data directory; a journal record altered, dropped, duplicated, reordered, moved between
// segments or between stores is refused at start with its segment file and byte; a torn tail
// still recovers; bad key input is one sentence, exit 1, and nothing is left behind. The
// controls: the same marker IS in a plain store's files, and the untouched store starts.
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { afterEach } from 'vitest';
import { fhir, kill, spawnServer, storageWork, serving, stop, type Server } from './storage-server.js';
import { edit, filesContaining, frames, writeKey } from './storage-encrypted-files.js';

const work = storageWork();
const MARKER = 'Zebrafinch7731';
// Every server a test starts, killed after it even when the test fails half-way.
const started: Server[] = [];
afterEach(async () => {
  for (const s of started.splice(0)) await kill(s);
});
async function start(serverJs: string, data: string, env: Record<string, string> = {}): Promise<Server> {
  const s = spawnServer(serverJs, data, env);
  started.push(s);
  return serving(s);
}

/** A data directory and its key. */
function store(sharedKey?: string): { data: string; key: string; env: Record<string, string> } {
  const data = work.dataDir();
  const key = sharedKey ?? writeKey(join(work.dir(), `${data.split('/').pop()}.key`));
  return { data, key, env: { HAKO_FHIR_KEY_FILE: key, HAKO_FHIR_SNAPSHOT_BYTES: String(1 << 30) } };
}

/** Asks the server on data to seal its segment (the backup socket): a sealed segment without a snapshot. */
function seal(data: string): Promise<{ segment: number; nextSeq: number }> {
  return new Promise((resolve, reject) => {
    const s = createConnection(join(data, 'backup.sock'));
    let said = '';
    s.on('connect', () => s.write('seal\n'));
    s.on('data', (d: Buffer) => (said += d));
    s.on('end', () => resolve(JSON.parse(said)));
    s.on('error', reject);
  });
}

/** n patients written one after the other (each its own write batch); their ids. */
async function write(s: Server, n: number, tag = ''): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await fhir(s.baseUrl, 'POST', 'Patient', {
      resourceType: 'Patient',
      name: [{ family: `${MARKER}${tag}`, given: [`p${i}`] }],
    });
    expect(r.status).toBe(201);
    ids.push(r.json.id);
  }
  return ids;
}

/** A store with segment 1 sealed (8 records) and 8 records in the active journal. */
async function filled(sharedKey?: string): Promise<ReturnType<typeof store> & { ids: string[] }> {
  const st = store(sharedKey);
  const s = await start(work.serverJs(), st.data, st.env);
  const ids = await write(s, 8);
  expect(await seal(st.data)).toEqual({ segment: 1, nextSeq: 9, encrypted: true });
  ids.push(...(await write(s, 8)));
  expect(await stop(s)).toBe(0);
  return { ...st, ids };
}

/** Starts the server and expects it to refuse with a sentence matching re. */
async function refused(st: { data: string; env: Record<string, string> }, re: RegExp): Promise<string> {
  const s = spawnServer(work.serverJs(), st.data, st.env);
  started.push(s);
  // A server that starts instead of refusing fails the test rather than hanging it.
  const served = new Promise((r) => {
    const t = setInterval(() => s.stderr().includes('serving FHIR') && (clearInterval(t), r('served')), 50);
    void s.exited.then(() => clearInterval(t));
  });
  expect(await Promise.race([s.exited, served]), s.stderr()).toBe(1);
  const lines = s.stderr().trim().split('\n');
  expect(lines.at(-1)).toMatch(re);
  return lines.at(-1)!;
}

describe('encrypted store, bare server', { timeout: 180_000 }, () => {
  it('keeps no plaintext in the data directory (a plain store, the control, does) and reads back after a restart from journal and snapshot', async () => {
    const plain = work.dataDir();
    const p = await start(work.serverJs(), plain);
    await write(p, 3);
    expect(await stop(p)).toBe(0);
    expect(filesContaining(plain, MARKER)).toContain('journal'); // the search can see a marker

    const st = store();
    const env = { ...st.env, HAKO_FHIR_SNAPSHOT_BYTES: '20000' };
    const s = await start(work.serverJs(), st.data, env);
    expect(s.stderr()).toContain('the store is encrypted');
    const ids = await write(s, 60);
    const updated = await fhir(s.baseUrl, 'PUT', `Patient/${ids[0]}`, { resourceType: 'Patient', id: ids[0], active: true });
    expect(updated.status).toBe(200);
    while (!s.stderr().includes('wrote snapshot.')) await new Promise((r) => setTimeout(r, 50));
    expect(await stop(s)).toBe(0);
    const names = readdirSync(st.data);
    expect(names.some((n) => n.startsWith('snapshot.'))).toBe(true);
    expect(names.some((n) => /^journal\.\d+$/.test(n))).toBe(true);
    expect(filesContaining(st.data, MARKER)).toEqual([]);
    expect(filesContaining(st.data, 'Patient')).toEqual([]);
    expect(readFileSync(join(st.data, 'journal')).subarray(0, 8).toString()).toBe('HAKOFJ3\n');

    const again = await start(work.serverJs(), st.data, env);
    expect(again.stderr(), again.stderr()).toMatch(/snapshot of \d+ resources/);
    for (const id of ids.slice(1)) expect((await fhir(again.baseUrl, 'GET', `Patient/${id}`)).json.name[0].family).toBe(MARKER);
    expect((await fhir(again.baseUrl, 'GET', `Patient/${ids[0]}`)).json.active).toBe(true);
    const hist = await fhir(again.baseUrl, 'GET', `Patient/${ids[0]}/_history`);
    expect(hist.json.total).toBe(2);
    expect(hist.json.entry[1].resource.name[0].family).toBe(MARKER);
    expect(await stop(again)).toBe(0);
  });

  it('starts on an untouched store (the control for the tampering below)', async () => {
    const st = await filled();
    const s = await start(work.serverJs(), st.data, st.env);
    expect(s.stderr()).toContain('16 journal records replayed');
    for (const id of st.ids) expect((await fhir(s.baseUrl, 'GET', `Patient/${id}`)).status).toBe(200);
    expect(await stop(s)).toBe(0);
  });

  it('refuses a record altered in the middle of the active journal, naming the file and byte', async () => {
    const st = await filled();
    const file = join(st.data, 'journal');
    const [at, end] = frames(file)[3];
    edit(file, (d) => ((d[Math.floor((at + end) / 2)] ^= 1), d));
    await refused(
      st,
      new RegExp(`journal ${file}: the record at byte ${at} fails authentication .* damage in the middle, not a torn tail`),
    );
  });

  it('refuses a record altered in a sealed segment', async () => {
    const st = await filled();
    const file = join(st.data, 'journal.000001');
    const [at, end] = frames(file)[7];
    edit(file, (d) => ((d[end - 1] ^= 0x80), d));
    await refused(st, new RegExp(`journal segment ${file}: the record at byte ${at} fails authentication .*a sealed segment is whole`));
  });

  it('refuses a record dropped from the middle', async () => {
    const st = await filled();
    const file = join(st.data, 'journal');
    const f = frames(file);
    edit(file, (d) => Buffer.concat([d.subarray(0, f[2][0]), d.subarray(f[2][1])]));
    await refused(
      st,
      new RegExp(
        `journal ${file}: the record at byte ${f[2][0]} was written at byte ${f[3][0]} \\(moved, or a record before it dropped or duplicated\\)`,
      ),
    );
  });

  it('refuses a duplicated (replayed) record, also at the tail', async () => {
    const st = await filled();
    const file = join(st.data, 'journal');
    const f = frames(file);
    edit(file, (d) => Buffer.concat([d.subarray(0, f[4][1]), d.subarray(f[4][0], f[4][1]), d.subarray(f[4][1])]));
    await refused(st, new RegExp(`journal ${file}: the record at byte ${f[4][1]} was written at byte ${f[4][0]}`));
    const st2 = await filled();
    const file2 = join(st2.data, 'journal');
    const g = frames(file2);
    edit(file2, (d) => Buffer.concat([d, d.subarray(g[1][0], g[1][1])]));
    await refused(st2, new RegExp(`journal ${file2}: the record at byte ${g.at(-1)![1]} was written at byte ${g[1][0]}`));
  });

  it('refuses two records swapped', async () => {
    const st = await filled();
    const file = join(st.data, 'journal');
    const f = frames(file);
    edit(file, (d) =>
      Buffer.concat([d.subarray(0, f[5][0]), d.subarray(f[6][0], f[6][1]), d.subarray(f[5][0], f[5][1]), d.subarray(f[6][1])]),
    );
    await refused(st, new RegExp(`journal ${file}: the record at byte ${f[5][0]} was written at byte ${f[6][0]}`));
  });

  it('refuses a record moved from a sealed segment into the active one, and a whole segment renamed', async () => {
    const st = await filled();
    const sealed = join(st.data, 'journal.000001');
    const file = join(st.data, 'journal');
    const s1 = frames(sealed);
    const f = frames(file);
    const moved = readFileSync(sealed).subarray(s1[0][0], s1[0][1]);
    edit(file, (d) => Buffer.concat([d.subarray(0, f[2][0]), moved, d.subarray(f[2][0])]));
    await refused(st, new RegExp(`journal ${file}: the record at byte ${f[2][0]} was written in segment 1 \\(moved between segments\\)`));

    const st2 = await filled();
    writeFileSync(join(st2.data, 'journal.000002'), readFileSync(join(st2.data, 'journal.000001')));
    await refused(
      st2,
      new RegExp(
        `journal ${join(st2.data, 'journal')} is segment 2, not 3|journal segment ${join(st2.data, 'journal.000002')} is segment 1, not 2`,
      ),
    );
  });

  it('refuses a record moved in from another store under the same key', async () => {
    const a = await filled();
    const b = await filled(a.key); // the same data key, another store (its own id)
    const other = store(a.key);
    const bs = await start(work.serverJs(), other.data, other.env);
    await write(bs, 3, 'B');
    expect(await stop(bs)).toBe(0);
    const file = join(a.data, 'journal');
    const f = frames(file);
    const foreign = frames(join(other.data, 'journal'))[1];
    const record = readFileSync(join(other.data, 'journal')).subarray(foreign[0], foreign[1]);
    edit(file, (d) => Buffer.concat([d.subarray(0, f[3][0]), record, d.subarray(f[3][1])]));
    await refused(
      a,
      new RegExp(`journal ${file}: the record at byte ${f[3][0]} fails authentication \\(altered, or sealed with another key or store\\)`),
    );
    // A whole segment of the other store does not open either.
    writeFileSync(join(b.data, 'journal.000001'), readFileSync(join(other.data, 'journal')));
    await refused(b, /journal segment .*journal\.000001 belongs to another store/);
  });

  it('refuses a sealed segment missing or cut at a record boundary', async () => {
    const st = await filled();
    const s = await start(work.serverJs(), st.data, st.env);
    await seal(st.data);
    await write(s, 2);
    expect(await stop(s)).toBe(0);
    const two = join(st.data, 'journal.000002');
    const f = frames(two);
    edit(two, (d) => d.subarray(0, f.at(-1)![0]));
    await refused(st, new RegExp(`journal ${join(st.data, 'journal')} starts at record #17, but what comes before it ends at #15`));
    const st2 = await filled();
    const s2 = await start(work.serverJs(), st2.data, st2.env);
    await seal(st2.data);
    expect(await stop(s2)).toBe(0);
    const { rmSync } = await import('node:fs');
    rmSync(join(st2.data, 'journal.000001'));
    await refused(st2, new RegExp(`journal segment ${join(st2.data, 'journal.000001')} is missing`));
  });

  it('still cuts a torn tail: a half-written last record, or a last batch of garbage', async () => {
    const st = await filled();
    const file = join(st.data, 'journal');
    const f = frames(file);
    edit(file, (d) => d.subarray(0, f.at(-1)![0] + 40));
    const s = await start(work.serverJs(), st.data, st.env);
    expect(s.stderr()).toContain(`journal ${file} ended in a torn or corrupt record: dropped 40 bytes after 7 whole records`);
    expect((await fhir(s.baseUrl, 'GET', `Patient/${st.ids[14]}`)).status).toBe(200);
    const more = await write(s, 2);
    expect(await stop(s)).toBe(0);
    // A crash that extended the file but wrote zeros (or garbage) over the last batch.
    edit(file, (d) => Buffer.concat([d, Buffer.alloc(300)]));
    const again = await start(work.serverJs(), st.data, st.env);
    expect(again.stderr()).toContain('dropped 300 bytes after 9 whole records');
    for (const id of more) expect((await fhir(again.baseUrl, 'GET', `Patient/${id}`)).status).toBe(200);
    expect(await stop(again)).toBe(0);
  });

  it('bad key input: one sentence each, exit 1, nothing created in the data directory', async () => {
    const cases: [string, (st: ReturnType<typeof store>) => void, RegExp][] = [
      [
        'missing',
        (st) => (st.env.HAKO_FHIR_KEY_FILE = `${st.key}.nope`),
        /^hako-fhir: key file \S+\.nope does not exist \(HAKO_FHIR_KEY_FILE names the store's data key\)$/,
      ],
      [
        'loose',
        (st) => writeKey(st.key, 0o644),
        /^hako-fhir: key file \S+ can be read by others \(mode 0644\): make it the owner's alone \(chmod 600 \S+\)$/,
      ],
      ['group', (st) => writeKey(st.key, 0o640), /can be read by others \(mode 0640\)/],
      [
        'short',
        (st) => writeKey(st.key, 0o600, 'ab'.repeat(16)),
        /^hako-fhir: key file \S+ holds 32 hex digits: a data key is 32 bytes written as 64 hex digits$/,
      ],
      ['not hex', (st) => writeKey(st.key, 0o600, 'x'.repeat(64)), /holds something other than hex digits: a data key is 32 bytes/],
    ];
    for (const [what, spoil, re] of cases) {
      const st = store();
      spoil(st);
      const line = await refused(st, re);
      expect(line, what).toMatch(re);
      expect(readdirSync(st.data), what).toEqual([]);
    }
  });

  it('refuses the wrong key, a plain store given a key, and an encrypted store given none', async () => {
    const st = await filled();
    const wrong = writeKey(join(work.dir(), 'wrong.key'));
    await refused(
      { data: st.data, env: { HAKO_FHIR_KEY_FILE: wrong } },
      /^hako-fhir: the key in \S+wrong\.key does not open the store in \S+ \(store\.id's check fails\): it was made with another key$/,
    );
    await refused(
      { data: st.data, env: {} },
      /^hako-fhir: data directory \S+ holds an encrypted store: set HAKO_FHIR_KEY_FILE to its key file$/,
    );
    const plain = work.dataDir();
    const p = await start(work.serverJs(), plain);
    await write(p, 1);
    expect(await stop(p)).toBe(0);
    const before = readdirSync(plain).sort();
    await refused(
      { data: plain, env: { HAKO_FHIR_KEY_FILE: st.key } },
      /holds a plain \(unencrypted\) store and HAKO_FHIR_KEY_FILE is set/,
    );
    expect(readdirSync(plain).sort()).toEqual(before.filter((n) => !n.startsWith('lock.')));
    expect(existsSync(join(plain, 'store.id'))).toBe(false);
    mkdirSync(join(work.dir(), 'unused'), { recursive: true });
  });
});
