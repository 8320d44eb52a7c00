#!/usr/bin/env node
// The driver `hako profile learn` runs against the FHIR server while it learns the serving
// phase (node driver.mjs URL): every interaction the server offers, its error paths and its
// limits, so the serving set holds all of them: history after a delete (410, vread, type and
// system history, reading sealed journal segments), a connection to the data directory's lock
// (the holder answers it while serving), and enough written to seal the journal and write
// snapshots while serving (three, so an old one is pruned); last, a torn journal tail
// (HAKO_BUNDLE) for the next start to recover from. Restart from a snapshot and the journal
// after it, and SIGTERM shutdown, are the learner's own runs. Exits non-zero when the server
// answers wrongly.
const base = (process.argv[2] ?? process.env.HAKO_URL ?? '').replace(/\/$/, '');
if (!base) {
  console.error('usage: driver.mjs URL');
  process.exit(2);
}
import http from 'node:http';
import net from 'node:net';
import { appendFileSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const json = 'application/fhir+json';

// node:http with a connection per request: the server may close one it refused (oversize body).
function call(method, path, body, headers = {}) {
  const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${base}/${path}`,
      {
        method,
        agent: false,
        headers: {
          accept: json,
          ...(payload !== undefined ? { 'content-type': json, 'content-length': Buffer.byteLength(payload) } : {}),
          ...headers,
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d) => (text += d));
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode, etag: res.headers.etag, body: text ? JSON.parse(text) : undefined });
          } catch (e) {
            reject(new Error(`${method} ${path}: not JSON: ${text.slice(0, 100)}`));
          }
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

function fail(sentence) {
  console.error(`driver: ${sentence}`);
  process.exit(1);
}

function expect(what, got, want) {
  if (!want.includes(got.status)) {
    console.error(`${what}: status ${got.status}, expected ${want.join(' or ')}: ${JSON.stringify(got.body).slice(0, 200)}`);
    process.exit(1);
  }
  return got;
}

expect('capabilities', await call('GET', 'metadata'), [200]);
const patient = expect(
  'create',
  await call('POST', 'Patient', { resourceType: 'Patient', name: [{ family: 'Driver', given: ['Learn'] }], birthDate: '1970-01-01' }),
  [201],
).body;
expect('read', await call('GET', `Patient/${patient.id}`), [200]);
expect('vread', await call('GET', `Patient/${patient.id}/_history/${patient.meta.versionId}`), [200]);
const updated = expect('update', await call('PUT', `Patient/${patient.id}`, { ...patient, active: true }), [200]).body;
expect(
  'conditional update with a stale version (412)',
  await call('PUT', `Patient/${patient.id}`, { ...patient, active: false }, { 'if-match': `W/"${patient.meta.versionId}"` }),
  [412],
);
expect(
  'update with the current version',
  await call('PUT', `Patient/${patient.id}`, { ...updated, gender: 'other' }, { 'if-match': `W/"${updated.meta.versionId}"` }),
  [200],
);
const obs = expect(
  'create observation',
  await call('POST', 'Observation', {
    resourceType: 'Observation',
    status: 'final',
    code: { text: 'heart rate' },
    subject: { reference: `Patient/${patient.id}` },
    valueQuantity: { value: 60 },
  }),
  [201],
).body;
expect('search', await call('GET', 'Patient?family=Driver'), [200]);
expect('search by reference', await call('GET', `Observation?subject=Patient/${patient.id}`), [200]);
expect('search with _count and _sort', await call('GET', 'Patient?_count=5&_sort=-_lastUpdated'), [200]);
expect('history of a resource', await call('GET', `Patient/${patient.id}/_history`), [200]);
expect('history of a type', await call('GET', 'Patient/_history'), [200]);
expect(
  'transaction',
  await call('POST', '', {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      {
        fullUrl: 'urn:uuid:7a0b7b0e-1111-4c1c-9d4a-3b0c7e5e2a01',
        resource: { resourceType: 'Patient', name: [{ family: 'Tx' }] },
        request: { method: 'POST', url: 'Patient' },
      },
      {
        resource: {
          resourceType: 'Observation',
          status: 'final',
          code: { text: 'w' },
          subject: { reference: 'urn:uuid:7a0b7b0e-1111-4c1c-9d4a-3b0c7e5e2a01' },
        },
        request: { method: 'POST', url: 'Observation' },
      },
    ],
  }),
  [200],
);
expect(
  'batch',
  await call('POST', '', { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'GET', url: `Patient/${patient.id}` } }] }),
  [200],
);
expect('delete', await call('DELETE', `Observation/${obs.id}`), [200, 204]);
expect('read deleted (410)', await call('GET', `Observation/${obs.id}`), [410]);
expect('delete of a deleted resource', await call('DELETE', `Observation/${obs.id}`), [200, 204]);
expect('history of a deleted resource', await call('GET', `Observation/${obs.id}/_history`), [200]);
expect('vread of a deleted resource', await call('GET', `Observation/${obs.id}/_history/${obs.meta.versionId}`), [200]);
expect('history of a type', await call('GET', 'Observation/_history?_count=2'), [200]);
expect(
  'history of the system',
  await call('GET', `_history?_since=${encodeURIComponent(new Date(Date.now() - 3600e3).toISOString())}`),
  [200],
);
expect('history of an unknown type (404)', await call('GET', 'NoSuchType/_history'), [404]);
expect('read missing (404)', await call('GET', 'Patient/does-not-exist'), [404]);
expect('unknown type (404/400)', await call('GET', 'NoSuchType/1'), [400, 404]);
expect('bad JSON (400)', await call('POST', 'Patient', '{"resourceType": "Patient",'), [400]);
expect('invalid resource (400)', await call('POST', 'Patient', { resourceType: 'Patient', birthDate: 'yesterday' }), [400]);
// The server may answer and close before the body is sent: a reset is an answer here too.
const oversize = await call('POST', 'Patient', `{"resourceType":"Patient","text":"${'x'.repeat(17 * 1024 * 1024)}"}`).catch(() => ({
  status: 0,
}));
expect('oversize body (400/413, or the connection closed)', oversize, [0, 400, 413]);
expect(
  'unsupported method (405)',
  await call('PATCH', `Patient/${patient.id}`, '[]', { 'content-type': 'application/json-patch+json' }),
  [200, 400, 405, 415],
);
// Some concurrency: the serving set includes what parallel requests make the server do.
await Promise.all(
  Array.from({ length: 20 }, (_, i) => call('POST', 'Patient', { resourceType: 'Patient', name: [{ family: `Load${i}` }] })),
);
const data = process.env.HAKO_BUNDLE ? join(process.env.HAKO_BUNDLE, 'data') : undefined;
// The lock: a second server (or anyone) connecting to the lock socket gets the holder's line.
if (data) {
  const locks = readdirSync(data).filter((n) => /^lock\.\d+$/.test(n));
  if (locks.length !== 1) fail(`expected one lock socket in ${data}, found ${locks.join(', ') || 'none'}`);
  const said = await new Promise((resolve, reject) => {
    let text = '';
    net
      .connect(join(data, locks[0]))
      .on('data', (d) => (text += d))
      .on('end', () => resolve(text))
      .on('error', reject);
  });
  if (!/"pid":/.test(said)) fail(`the lock holder said ${JSON.stringify(said)}`);
}
// Snapshots while serving: past the default threshold (8 MiB of journal) three times, so the
// journal is sealed, snapshots are written and verified, and the oldest is pruned.
const big = 'x'.repeat(1 << 20);
for (let round = 1; round <= 3; round++) {
  const made = [];
  for (let i = 0; i < 9; i++)
    made.push(
      expect('a large write', await call('POST', 'Patient', { resourceType: 'Patient', name: [{ family: 'Big', text: big }] }), [201]).body
        .id,
    );
  if (data) {
    const name = `snapshot.${String(round).padStart(6, '0')}`;
    const deadline = Date.now() + 60_000;
    while (!existsSync(join(data, name)) || readdirSync(data).some((n) => n.endsWith('.tmp'))) {
      if (Date.now() > deadline) fail(`no ${name} in ${data} after 60 s`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  // Deleted again, so the next snapshot is no larger and the threshold stays at 8 MiB.
  for (const id of made) expect('delete a large one', await call('DELETE', `Patient/${id}`), [200, 204]);
}
if (data && existsSync(join(data, 'snapshot.000001'))) fail('the oldest snapshot was not pruned');
if (data && !existsSync(join(data, 'journal.000001'))) fail('the journal was not sealed');
// History reads from the sealed segments (opened while serving).
expect('vread from a sealed segment', await call('GET', `Patient/${patient.id}/_history/${patient.meta.versionId}`), [200]);
expect('history from sealed segments', await call('GET', '_history?_count=1000'), [200]);
// A torn journal tail for the next start to cut off (its recovery path): half a record header.
if (process.env.HAKO_BUNDLE) appendFileSync(join(process.env.HAKO_BUNDLE, 'data', 'journal'), Buffer.from([0x48, 0x4b, 0x4a]));
console.error('driver: every interaction answered as expected');
