// History as FHIR R4 has it (http.html#history, issue 13): it survives a delete, a deleted
// resource reads 410, type- and system-level history, request/response on every entry; and the
// same after a restart from the journal and from a snapshot.
import { describe, expect, it } from 'vitest';
import { failure, fhirClient } from './scenario.js';
import { fhir, start, stop, storageWork, type Server } from './storage-server.js';

const work = storageWork();

type Entry = {
  resource?: { id: string; meta: { versionId: string }; name?: { family: string }[] };
  request: { method: string; url: string };
  response: { status: string; etag?: string; lastModified?: string };
};

async function chart(s: Server): Promise<{ id: string; versions: string[]; otherId: string }> {
  const client = fhirClient(s.baseUrl);
  const created = await client.create({ resourceType: 'Patient', body: { resourceType: 'Patient', name: [{ family: 'V1' }] } });
  const versions = [created.meta.versionId];
  for (const family of ['V2', 'V3']) {
    const updated = await client.update({
      resourceType: 'Patient',
      id: created.id,
      body: { resourceType: 'Patient', id: created.id, name: [{ family }] },
    });
    versions.push(updated.meta.versionId);
  }
  const other = await client.create({
    resourceType: 'Observation',
    body: { resourceType: 'Observation', status: 'final', code: { text: 'x' } },
  });
  await client.delete({ resourceType: 'Patient', id: created.id });
  return { id: created.id, versions, otherId: other.id };
}

async function checkHistory(s: Server, { id, versions, otherId }: { id: string; versions: string[]; otherId: string }): Promise<void> {
  const client = fhirClient(s.baseUrl);
  // A read of a deleted resource is 410 Gone; a second delete changes nothing.
  const gone = await failure(client.read({ resourceType: 'Patient', id }));
  expect(gone.status).toBe(410);
  expect(gone.data.resourceType).toBe('OperationOutcome');
  expect((await fhir(s.baseUrl, 'GET', 'Patient/no-such-id')).status).toBe(404);
  // vread of every older version still works.
  for (const [n, version] of versions.entries())
    expect((await client.vread({ resourceType: 'Patient', id, version })).name[0].family).toBe(`V${n + 1}`);

  const history = await client.history({ resourceType: 'Patient', id });
  expect(history.type).toBe('history');
  expect(history.total).toBe(4);
  const entries = history.entry as Entry[];
  expect(entries.map((e) => `${e.request.method} ${e.request.url} ${e.response.status}`)).toEqual([
    `DELETE Patient/${id} 200 OK`,
    `PUT Patient/${id} 200 OK`,
    `PUT Patient/${id} 200 OK`,
    'POST Patient 201 Created',
  ]);
  expect(entries[0].resource).toBeUndefined();
  expect(entries.slice(1).map((e) => e.resource!.meta.versionId)).toEqual([...versions].reverse());
  for (const e of entries) {
    expect(e.response.etag).toMatch(/^W\/"[^"]+"$/);
    expect(Number.isNaN(Date.parse(e.response.lastModified!))).toBe(false);
  }
  // The delete is a version of its own: vread of it is 410 too.
  const deleteVersion = /^W\/"([^"]+)"$/.exec(entries[0].response.etag!)![1];
  expect((await fhir(s.baseUrl, 'GET', `Patient/${id}/_history/${deleteVersion}`)).status).toBe(410);

  // Type level: this type's versions only, newest first, paged with links.
  const typeLevel = await fhir(s.baseUrl, 'GET', 'Patient/_history');
  expect(typeLevel.status).toBe(200);
  expect((typeLevel.json.entry as Entry[]).map((e) => e.request.method)).toEqual(['DELETE', 'PUT', 'PUT', 'POST']);
  const page = await fhir(s.baseUrl, 'GET', 'Patient/_history?_count=3');
  expect(page.json.entry).toHaveLength(3);
  const next = page.json.link.find((l: { relation: string }) => l.relation === 'next').url;
  expect((await fhir(s.baseUrl, 'GET', next)).json.entry.map((e: Entry) => e.request.method)).toEqual(['POST']);
  // System level: every type.
  const system = await fhir(s.baseUrl, 'GET', '_history');
  expect(system.status).toBe(200);
  const mine = (system.json.entry as Entry[]).filter((e) => !/^Encounter/.test(e.request.url)); // the snapshot round adds one
  expect(mine).toHaveLength(5);
  expect(mine[1].resource!.id).toBe(otherId);
  expect((await fhir(s.baseUrl, 'GET', 'NoSuchType/_history')).status).toBe(404);
}

describe('history', () => {
  it('survives a delete, and a restart from the journal, and one from a snapshot', async () => {
    const data = work.dataDir();
    let s = await start(work.serverJs(), data);
    let made;
    try {
      made = await chart(s);
      await checkHistory(s, made);
    } finally {
      expect(await stop(s)).toBe(0);
    }
    s = await start(work.serverJs(), data);
    try {
      expect(s.stderr()).toContain('(5 journal records replayed)');
      await checkHistory(s, made);
    } finally {
      expect(await stop(s)).toBe(0);
    }
    // A tiny snapshot threshold: the next write seals the journal and writes a snapshot.
    s = await start(work.serverJs(), data, { HAKO_FHIR_SNAPSHOT_BYTES: '100' });
    try {
      await fhir(s.baseUrl, 'POST', 'Encounter', { resourceType: 'Encounter', status: 'finished', class: { code: 'AMB' } });
      for (let i = 0; i < 100 && !/wrote snapshot/.test(s.stderr()); i++) await new Promise((r) => setTimeout(r, 50));
      expect(s.stderr()).toMatch(/wrote snapshot\.000001 \(\d+ bytes\)/);
    } finally {
      expect(await stop(s)).toBe(0);
    }
    s = await start(work.serverJs(), data);
    try {
      expect(s.stderr()).toContain('(snapshot of 2 resources and 1 deleted loaded, 0 journal records replayed)');
      await checkHistory(s, made);
      // A create after the delete (update as create) continues the same history.
      const again = await fhir(s.baseUrl, 'PUT', `Patient/${made.id}`, { resourceType: 'Patient', id: made.id, name: [{ family: 'V5' }] });
      expect(again.status).toBeLessThan(300);
      const history = await fhir(s.baseUrl, 'GET', `Patient/${made.id}/_history`);
      expect(history.json.total).toBe(5);
      expect(history.json.entry[1].request.method).toBe('DELETE');
    } finally {
      expect(await stop(s)).toBe(0);
    }
  });
});
