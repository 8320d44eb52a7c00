// Crash safety under load (issue 13): SIGKILL at random moments during a write load, and
// while a snapshot is being written; after every restart each acknowledged version is there
// byte for byte and the server answers.
import { readdirSync, watch } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { fhir, kill, start, storageWork, stop, type Server } from './storage-server.js';

const work = storageWork();
const KILLS = Number(process.env.STORAGE_CRASH_KILLS ?? 24);

describe('crash safety', () => {
  it(`keeps every acknowledged write across ${KILLS} SIGKILLs under load, some while a snapshot is written`, async () => {
    const data = work.dataDir();
    // A small threshold: snapshots all the time, so kills land in them too.
    const env = { HAKO_FHIR_SNAPSHOT_BYTES: '30000' };
    const acknowledged = new Map<string, string>(); // "id/versionId" → the response body
    const ids: string[] = [];
    let duringSnapshot = 0;
    const check = async (s: Server, sample: number): Promise<void> => {
      expect((await fhir(s.baseUrl, 'GET', 'metadata')).status).toBe(200);
      const keys = [...acknowledged.keys()];
      const chosen = sample >= keys.length ? keys : Array.from({ length: sample }, () => keys[Math.floor(Math.random() * keys.length)]);
      for (const k of chosen) {
        const [id, version] = k.split('/');
        const got = await fhir(s.baseUrl, 'GET', `Patient/${id}/_history/${version}`);
        expect(got.status, k).toBe(200);
        expect(got.text, k).toBe(acknowledged.get(k));
      }
    };
    for (let round = 0; round < KILLS; round++) {
      const s = await start(work.serverJs(), data, env);
      await check(s, 40);
      let dead = false;
      const worker = async (w: number): Promise<void> => {
        for (let n = 0; !dead; n++) {
          const id = ids.length && n % 2 ? ids[Math.floor(Math.random() * ids.length)] : undefined;
          const body = { resourceType: 'Patient', ...(id ? { id } : {}), name: [{ family: `R${round}W${w}`, given: [`n${n}`] }] };
          try {
            const r = id ? await fhir(s.baseUrl, 'PUT', `Patient/${id}`, body) : await fhir(s.baseUrl, 'POST', 'Patient', body);
            if (r.status === 200 || r.status === 201) {
              acknowledged.set(`${r.json.id}/${r.json.meta.versionId}`, r.text);
              if (!id) ids.push(r.json.id);
            }
          } catch {
            return; // in flight when the server died: never acknowledged
          }
        }
      };
      const load = Promise.all([0, 1, 2].map(worker));
      if (round % 3 === 2) {
        // Kill while a snapshot is being written: as soon as its temp file appears.
        await new Promise<void>((resolve) => {
          const watcher = watch(data, (_event, name) => {
            if (name?.endsWith('.tmp')) done();
          });
          const timer = setTimeout(done, 3_000);
          function done(): void {
            clearTimeout(timer);
            watcher.close();
            setTimeout(resolve, Math.random() * 3);
          }
        });
      } else {
        await new Promise((r) => setTimeout(r, 50 + Math.random() * 400));
      }
      await kill(s);
      dead = true;
      if (readdirSync(data).some((n) => n.startsWith('snapshot.') && n.endsWith('.tmp'))) duringSnapshot++;
      await load;
    }
    const last = await start(work.serverJs(), data, env);
    try {
      await check(last, Infinity);
    } finally {
      expect(await stop(last)).toBe(0);
    }
    expect(acknowledged.size).toBeGreaterThan(KILLS * 5);
    console.log(
      `crash test: ${acknowledged.size} acknowledged versions of ${ids.length} resources, ${KILLS} kills, ${duringSnapshot} of them during a snapshot write`,
    );
    expect(duringSnapshot).toBeGreaterThan(0);
  }, 600_000);
});
