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
//
// Authorization (server/auth) first: with HAKO_BUNDLE the driver registers a backend-services
// client, an app and a user in BUNDLE/data/auth/registry.json (as the `hako-fhir` command would),
// gets a token with a private_key_jwt assertion, signs the user in through the login page
// (scrypt password, TOTP code), exchanges the code (PKCE), refreshes and revokes, and meets a
// 401, a 403 and a bad assertion; every later request carries the client's token. Without
// HAKO_BUNDLE it sends HAKO_FHIR_TOKEN if set (or nothing, for a server with HAKO_FHIR_AUTH=off).
const base = (process.argv[2] ?? process.env.HAKO_URL ?? '').replace(/\/$/, '');
if (!base) {
  console.error('usage: driver.mjs URL');
  process.exit(2);
}
import { createHash, randomBytes, randomUUID, scryptSync } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { appendFileSync, chownSync, existsSync, readFileSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { Secret, TOTP } from 'otpauth';

const json = 'application/fhir+json';

/** The Authorization header every request sends (set once the driver has a token). */
let bearer = process.env.HAKO_FHIR_TOKEN ? { authorization: `Bearer ${process.env.HAKO_FHIR_TOKEN}` } : {};

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
          ...bearer,
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
if (process.env.HAKO_BUNDLE) await authorize(join(process.env.HAKO_BUNDLE, 'data'));
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

// ---- authorization

/** A form POST to /auth/*: status, Location and the body (JSON or the page). */
function form(path, fields) {
  const payload = new URLSearchParams(fields).toString();
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${base}/${path}`,
      {
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(payload) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d) => (text += d));
        res.on('end', () => {
          let body = text;
          try {
            body = JSON.parse(text);
          } catch {
            // an HTML page
          }
          resolve({ status: res.statusCode, location: res.headers.location, body });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

function page(path) {
  return new Promise((resolve, reject) => {
    http
      .get(`${base}/${path}`, { agent: false }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode, body: text }));
      })
      .on('error', reject);
  });
}

/** registry.json as `hako-fhir` writes it (the driver is its only writer while learning): atomically,
 *  0600, and as root handed to the data directory's owner (the server's uid). */
function writeRegistry(data, edit) {
  const file = join(data, 'auth', 'registry.json');
  const registry = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : { version: 1, clients: {}, users: {} };
  edit(registry);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(registry, null, 2)}\n`, { mode: 0o600 });
  if (process.getuid?.() === 0) {
    const owner = statSync(data);
    chownSync(tmp, owner.uid, owner.gid);
  }
  renameSync(tmp, file);
}

async function authorize(data) {
  const scope = 'system/*.cruds system/AuditEvent.rs';
  const { privateKey, publicKey } = await generateKeyPair('ES384');
  const kid = `driver-${Date.now().toString(36)}`;
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'ES384', use: 'sig' };
  const redirect = 'http://driver.invalid/callback';
  const password = randomBytes(18).toString('base64url');
  const salt = randomBytes(16);
  const [N, r, p] = [1 << 15, 8, 1];
  const hash = scryptSync(password.normalize('NFKC'), salt, 32, { N, r, p, maxmem: 128 * N * r * 2 });
  const totp = new Secret({ size: 20 }).base32;
  const created = new Date().toISOString();
  writeRegistry(data, (reg) => {
    reg.clients.driver = { id: 'driver', scopes: scope, jwks: { keys: [jwk] }, budget: 1_000_000, created };
    reg.clients['driver-app'] = { id: 'driver-app', scopes: 'user/*.rs offline_access', redirectUris: [redirect], budget: 60_000, created };
    reg.users.driver = {
      name: 'driver',
      scopes: 'user/*.rs offline_access',
      password: `scrypt$${N}$${r}$${p}$${salt.toString('base64url')}$${hash.toString('base64url')}`,
      totp,
      generation: Date.now(),
      created,
    };
  });
  await new Promise((res) => setTimeout(res, 1_100)); // the server re-reads the registry within a second

  const tokenUrl = `${base}/auth/token`;
  const assertion = (key = privateKey) =>
    new SignJWT({ jti: randomUUID() })
      .setProtectedHeader({ alg: 'ES384', kid, typ: 'JWT' })
      .setIssuer('driver')
      .setSubject('driver')
      .setAudience(tokenUrl)
      .setIssuedAt()
      .setExpirationTime('4m')
      .sign(key);
  const grant = (a) =>
    form('auth/token', {
      grant_type: 'client_credentials',
      scope,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: a,
    });
  expect('discovery', await page('.well-known/smart-configuration'), [200]);
  expect('the server key', await page('auth/jwks'), [200]);
  expect('no token (401)', await call('GET', 'Patient'), [401]);
  expect('a bad token (401)', await call('GET', 'Patient', undefined, { authorization: 'Bearer x.y.z' }), [401]);
  expect('an assertion signed with another key (401)', await grant(await assertion((await generateKeyPair('ES384')).privateKey)), [401]);
  const granted = expect('client_credentials', await grant(await assertion()), [200]).body;
  bearer = { authorization: `Bearer ${granted.access_token}` };

  // A person: the login page (password + TOTP), the code with PKCE, a refresh, a revocation.
  const verifier = randomBytes(32).toString('base64url');
  const q = new URLSearchParams({
    response_type: 'code',
    client_id: 'driver-app',
    redirect_uri: redirect,
    scope: 'user/Patient.rs offline_access',
    state: 'driver',
    aud: base,
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
  });
  const login = expect('the login page', await page(`auth/authorize?${q}`), [200]).body;
  const request = /name="request" value="([^"]+)"/.exec(login)?.[1];
  if (!request) fail('the login page has no request field');
  const code = () => new TOTP({ secret: Secret.fromBase32(totp), algorithm: 'SHA1', digits: 6, period: 30 }).generate();
  expect('a wrong password', await form('auth/login', { request, username: 'driver', password: 'wrong', code: code() }), [200, 400, 401]);
  const signed = expect('sign-in', await form('auth/login', { request, username: 'driver', password, code: code() }), [302]);
  const back = new URL(signed.location).searchParams.get('code');
  const user = expect(
    'authorization_code',
    await form('auth/token', {
      grant_type: 'authorization_code',
      code: back,
      redirect_uri: redirect,
      client_id: 'driver-app',
      code_verifier: verifier,
    }),
    [200],
  ).body;
  expect('a read as the user', await call('GET', 'Patient', undefined, { authorization: `Bearer ${user.access_token}` }), [200]);
  expect('refused by scope (403)', await call('GET', 'Observation', undefined, { authorization: `Bearer ${user.access_token}` }), [403]);
  const refreshed = expect(
    'refresh_token',
    await form('auth/token', { grant_type: 'refresh_token', refresh_token: user.refresh_token, client_id: 'driver-app' }),
    [200],
  ).body;
  expect('revoke', await form('auth/revoke', { token: refreshed.refresh_token, client_id: 'driver-app' }), [200]);
  expect('the audit trail', await call('GET', 'AuditEvent?_count=50'), [200]);
}
