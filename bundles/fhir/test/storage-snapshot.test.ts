// Snapshots (issue 13): written while serving, verified, and a torn or corrupt one is refused
// on start with the previous snapshot and the journal standing in — tested like a torn journal.
import { mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MAGIC_V1, encodeRecord } from '../server/journal.js';
import { readSnapshot, writeSnapshot, type GoneEntry, type LiveEntry } from '../server/snapshot.js';
import { fhir, start, stop, storageWork, type Server } from './storage-server.js';

const work = storageWork();

/** Everything a client can see of these ids: each read and each history, as text. */
async function state(s: Server, ids: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const id of ids) {
    const read = await fhir(s.baseUrl, 'GET', `Patient/${id}`);
    out.push(`${read.status} ${read.status === 200 ? read.text : ''}`);
    out.push((await fhir(s.baseUrl, 'GET', `Patient/${id}/_history`)).text);
  }
  return out;
}

const snapshots = (data: string): string[] =>
  readdirSync(data)
    .filter((n) => /^snapshot\.\d+$/.test(n))
    .sort();

describe('snapshots', () => {
  it('round-trips, and refuses a torn one, one with bytes after its end and a corrupt one', async () => {
    const dir = mkdtempSync(join(process.env.HAKO_TEST_WORK ?? tmpdir(), 'storage-snap-'));
    try {
      const live: LiveEntry[] = Array.from({ length: 1200 }, (_, n) => [2, 8 + n, 0, { resourceType: 'Patient', id: `p${n}` }]);
      const gone: GoneEntry[] = [['Patient', 'gone1', 'v9', '2026-01-01T00:00:00.000Z', 1, 8, 0]];
      const bytes = await writeSnapshot(dir, 3, { live, gone });
      const path = join(dir, 'snapshot.000003');
      const got: LiveEntry[] = [];
      const read = await readSnapshot(path, (b) => void got.push(...(b.live ?? [])));
      expect(read).toEqual({ segment: 3, live: 1200, gone: 1, bytes });
      expect(got).toEqual(live);
      const whole = readFileSync(path);
      for (const [what, image, error] of [
        ['torn', whole.subarray(0, whole.length - 7), /torn|without its end frame/],
        ['extra bytes', Buffer.concat([whole, Buffer.from('x')]), /bytes follow its end frame/],
        ['flipped byte', Buffer.from(whole.map((b, i) => (i === 5000 ? b ^ 1 : b))), /fails its checksum/],
      ] as const) {
        writeFileSync(path, image);
        await expect(
          readSnapshot(path, () => {}),
          what,
        ).rejects.toThrow(error);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('falls back to the previous snapshot and the journal when the newest is torn or corrupt, then to the whole journal', async () => {
    const data = work.dataDir();
    let s = await start(work.serverJs(), data, { HAKO_FHIR_SNAPSHOT_BYTES: '3000' });
    const ids: string[] = [];
    try {
      for (let i = 0; i < 60; i++) {
        const c = await fhir(s.baseUrl, 'POST', 'Patient', { resourceType: 'Patient', name: [{ family: `Snap${i}` }] });
        ids.push(c.json.id);
        if (i % 3 === 0) await fhir(s.baseUrl, 'PUT', `Patient/${c.json.id}`, { ...c.json, active: true });
        if (i % 7 === 0) await fhir(s.baseUrl, 'DELETE', `Patient/${c.json.id}`);
      }
      for (let i = 0; i < 100 && snapshots(data).length < 2; i++) await new Promise((r) => setTimeout(r, 50));
    } finally {
      expect(await stop(s)).toBe(0);
    }
    const names = snapshots(data);
    expect(names.length).toBe(2); // the newest two are kept
    s = await start(work.serverJs(), data);
    const before = await state(s, ids);
    expect(await stop(s)).toBe(0);
    expect(s.stderr()).toMatch(/\(snapshot of \d+ resources and \d+ deleted loaded, \d+ journal records replayed\)/);

    const [older, newest] = names.map((n) => join(data, n));
    const original = readFileSync(newest);
    for (const damage of ['torn', 'corrupt'] as const) {
      if (damage === 'torn') truncateSync(newest, original.length - 10);
      else writeFileSync(newest, Buffer.from(original.map((b, i) => (i === original.length >> 1 ? b ^ 0x40 : b))));
      s = await start(work.serverJs(), data);
      try {
        expect(s.stderr()).toContain(`hako-fhir: snapshot ${newest} is torn or corrupt (`);
        expect(s.stderr()).toContain(`): starting from snapshot ${older.split('/').pop()} instead\n`);
        expect(await state(s, ids)).toEqual(before);
      } finally {
        expect(await stop(s)).toBe(0);
      }
    }
    truncateSync(older, 20);
    s = await start(work.serverJs(), data);
    try {
      expect(s.stderr()).toContain(`hako-fhir: snapshot ${older} is torn or corrupt (`);
      expect(s.stderr()).toContain('): starting from the whole journal instead\n');
      expect(await state(s, ids)).toEqual(before);
    } finally {
      expect(await stop(s)).toBe(0);
    }
  });

  it('rewrites a journal of the first format once, with the history chain', async () => {
    const data = work.dataDir();
    const put = (family: string, versionId: string) => ({
      op: 'put',
      resource: { resourceType: 'Patient', id: 'old1', name: [{ family }], meta: { versionId, lastUpdated: '2026-01-01T00:00:00.000Z' } },
    });
    writeFileSync(
      join(data, 'journal'),
      Buffer.concat([
        MAGIC_V1,
        encodeRecord(put('First', 'a1')),
        encodeRecord({ op: 'tx', ops: [put('Second', 'a2')] }),
        encodeRecord({ op: 'delete', resourceType: 'Patient', id: 'old1' }),
        encodeRecord(put('Third', 'a3')),
      ]),
    );
    let s = await start(work.serverJs(), data);
    try {
      expect(s.stderr()).toContain(`journal ${join(data, 'journal')} was in the first format: rewrote its 4 records`);
      const history = await fhir(s.baseUrl, 'GET', 'Patient/old1/_history');
      expect(history.json.entry.map((e: { request: { method: string } }) => e.request.method)).toEqual(['PUT', 'DELETE', 'PUT', 'POST']);
      expect((await fhir(s.baseUrl, 'GET', 'Patient/old1/_history/a1')).json.name[0].family).toBe('First');
    } finally {
      expect(await stop(s)).toBe(0);
    }
    s = await start(work.serverJs(), data);
    try {
      expect(s.stderr()).not.toContain('first format');
      expect((await fhir(s.baseUrl, 'GET', 'Patient/old1')).json.name[0].family).toBe('Third');
    } finally {
      expect(await stop(s)).toBe(0);
    }
  });
});
