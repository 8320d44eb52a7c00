// One writer per data directory (issue 13): the lock (server/lock.ts), bare servers.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fhir, kill, serving, spawnServer, start, stop, storageWork } from './storage-server.js';

const work = storageWork();
const HELD =
  /^hako-fhir: data directory (\S+) is in use by another hako FHIR server \(pid (\d+) on host \S+, serving http:\/\/127\.0\.0\.1:(\d+), since \S+\): a data directory has one writer, so stop that one first\n$/;

describe('the data directory lock', () => {
  it('refuses a second server in one sentence naming the holder, and the first keeps its writes', async () => {
    const data = work.dataDir();
    const first = await start(work.serverJs(), data);
    try {
      const created = await fhir(first.baseUrl, 'POST', 'Patient', { resourceType: 'Patient', active: true });
      expect(created.status).toBe(201);
      const second = spawnServer(work.serverJs(), data);
      expect(await second.exited).toBe(1);
      const m = HELD.exec(second.stderr());
      expect(m, second.stderr()).not.toBeNull();
      expect(m![1]).toBe(data);
      expect(Number(m![2])).toBe(first.child.pid);
      expect(first.baseUrl).toBe(`http://127.0.0.1:${m![3]}`);
      expect((await fhir(first.baseUrl, 'GET', `Patient/${created.json.id}`)).json.active).toBe(true);
    } finally {
      expect(await stop(first)).toBe(0);
    }
    // A clean stop removes its lock file.
    expect(readdirSync(data).filter((n) => n.startsWith('lock.'))).toEqual([]);
  });

  it('is taken cleanly after the holder was SIGKILLed (its socket file is stale)', async () => {
    const data = work.dataDir();
    const first = await start(work.serverJs(), data);
    const id = (await fhir(first.baseUrl, 'POST', 'Patient', { resourceType: 'Patient', active: true })).json.id;
    await kill(first);
    expect(existsSync(join(data, 'lock.1'))).toBe(true);
    const second = await start(work.serverJs(), data);
    try {
      expect(second.stderr()).not.toContain('in use');
      expect(readdirSync(data).filter((n) => n.startsWith('lock.'))).toEqual(['lock.2']); // the stale one removed
      expect((await fhir(second.baseUrl, 'GET', `Patient/${id}`)).json.active).toBe(true);
    } finally {
      expect(await stop(second)).toBe(0);
    }
  });

  it('lets exactly one of several servers started together serve, over a stale lock too', async () => {
    for (const round of [0, 1, 2]) {
      const data = work.dataDir();
      if (round > 0) await kill(await start(work.serverJs(), data)); // a stale lock.1 to race over
      const racers = Array.from({ length: 4 }, () => spawnServer(work.serverJs(), data));
      // Each either serves or exits 1 naming the holder.
      const outcomes = await Promise.all(
        racers.map((r) =>
          serving(r).then(
            () => 'serving',
            async () => ((await r.exited) === 1 && /is in use by another hako FHIR server/.test(r.stderr()) ? 'refused' : r.stderr()),
          ),
        ),
      );
      const servingCount = outcomes.filter((o) => o === 'serving').length;
      try {
        expect(outcomes.filter((o) => o !== 'serving' && o !== 'refused')).toEqual([]);
        expect(servingCount).toBeLessThanOrEqual(1);
        // Two racers may both let go (each sees the other alive); then a restart takes it.
        if (servingCount === 0) await stop(await start(work.serverJs(), data));
      } finally {
        for (const r of racers) await stop(r);
      }
    }
  });
});
