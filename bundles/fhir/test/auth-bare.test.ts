// SMART on FHIR authorization through real HTTP, on the bundled server run bare: discovery,
// backend services (ES384 and RS384 keys made here), the people flow through the login page
// (password + TOTP), every scope rule allowed and refused, a batch mixing allowed and refused
// entries, rate limits and budgets, the bad-input list, and the AuditEvents of each.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { generateKeyPair, SignJWT, type JWK } from 'jose';
import { Secret, TOTP } from 'otpauth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run as adminCommand } from '../server/auth/cli.js';
import { ASSERTION_TYPE } from '../server/auth/tokens.js';
import { updateRegistry } from '../server/auth/registry.js';
import { pkceChallenge } from '../server/auth/tokens.js';
import { assertion, bundleWithAuth, getToken, registerClient, tokenRequest, type TestClient } from './auth-helper.js';
import { workDir } from './r4-server.js';

type Server = { child: ChildProcess; baseUrl: string; stderr: () => string; data: string };

let work: string;
let serverJs: string;
const servers: Server[] = [];

beforeAll(async () => {
  work = workDir('auth-bare-');
  await bundleWithAuth(join(work, 'app'), join(work, 'src'));
  serverJs = join(work, 'app', 'server.js');
}, 120_000);

afterAll(async () => {
  for (const s of servers) {
    if (s.child.exitCode === null && s.child.signalCode === null) {
      s.child.kill('SIGTERM');
      await once(s.child, 'exit');
    }
  }
  if (work) rmSync(work, { recursive: true, force: true });
});

async function start(env: Record<string, string> = {}, data = join(work, `data-${servers.length}`)): Promise<Server> {
  mkdirSync(data, { recursive: true });
  const child = spawn(process.execPath, [serverJs], {
    env: { PATH: process.env.PATH ?? '', UV_USE_IO_URING: '0', HAKO_FHIR_DATA: data, HAKO_FHIR_LISTEN: '127.0.0.1:0', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let text = '';
  child.stderr!.on('data', (c: Buffer) => (text += c.toString()));
  const deadline = Date.now() + 30_000;
  for (;;) {
    const port = /serving FHIR R4 on http:\/\/127\.0\.0\.1:(\d+)/.exec(text)?.[1];
    if (port) {
      const s = { child, baseUrl: `http://127.0.0.1:${port}`, stderr: () => text, data };
      servers.push(s);
      return s;
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the server did not start: ${text}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

const reload = (): Promise<void> => new Promise((r) => setTimeout(r, 1_100));

type Answer = { status: number; headers: Headers; json: any; text: string };

async function call(
  baseUrl: string,
  method: string,
  path: string,
  token?: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const res = await fetch(`${baseUrl}${path}`, {
    method,
    redirect: 'manual',
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : undefined),
      ...(body !== undefined ? { 'content-type': 'application/fhir+json' } : undefined),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, json, text };
}

const ids = (bundle: any): string[] => (bundle.entry ?? []).map((e: any) => `${e.resource.resourceType}/${e.resource.id}`);

/** The AuditEvents so far (newest first), read with the audit scope. */
async function auditTrail(s: Server, audit: string, query = ''): Promise<any[]> {
  await new Promise((r) => setTimeout(r, 150)); // the writer batches every few ms
  const r = await call(s.baseUrl, 'GET', `/AuditEvent?_sort=-date&_count=1000${query}`, audit);
  expect(r.status).toBe(200);
  return (r.json.entry ?? []).map((e: any) => e.resource);
}

const agentIds = (ev: any): string[] => ev.agent.map((a: any) => a.who?.identifier?.value).filter(Boolean);

describe('SMART on FHIR: discovery, tokens and scopes', () => {
  let s: Server;
  let admin: TestClient;
  let audit: string;
  let writer: string;
  let patientA: string;
  let patientB: string;
  let obsA: string;

  beforeAll(async () => {
    s = await start();
    admin = await registerClient(s.data, 'admin', 'system/*.cruds system/AuditEvent.rs');
    await reload();
    writer = await getToken(s.baseUrl, admin, 'system/*.cruds');
    audit = await getToken(s.baseUrl, admin, 'system/AuditEvent.rs');
    const mk = async (body: any): Promise<string> => {
      const r = await call(s.baseUrl, 'POST', `/${body.resourceType}`, writer, body);
      expect(r.status, r.text).toBe(201);
      return r.json.id;
    };
    patientA = await mk({ resourceType: 'Patient', name: [{ family: 'Alpha' }] });
    patientB = await mk({ resourceType: 'Patient', name: [{ family: 'Beta' }] });
    obsA = await mk({ resourceType: 'Observation', status: 'final', code: { text: 'hr' }, subject: { reference: `Patient/${patientA}` } });
    await mk({ resourceType: 'Observation', status: 'final', code: { text: 'hr' }, subject: { reference: `Patient/${patientB}` } });
  }, 60_000);

  it('serves discovery and /metadata without a token, and says how to get the first token on the first start', async () => {
    const conf = await call(s.baseUrl, 'GET', '/.well-known/smart-configuration');
    expect(conf.status).toBe(200);
    expect(conf.json.token_endpoint).toBe(`${s.baseUrl}/auth/token`);
    expect(conf.json.token_endpoint_auth_signing_alg_values_supported).toEqual(['ES384', 'RS384']);
    expect(conf.json.code_challenge_methods_supported).toEqual(['S256']);
    expect(conf.json.capabilities).toContain('permission-v2');
    const md = await call(s.baseUrl, 'GET', '/metadata');
    expect(md.status).toBe(200);
    const security = md.json.rest[0].security;
    expect(security.service[0].coding[0].code).toBe('SMART-on-FHIR');
    expect(security.extension[0].extension).toContainEqual({ url: 'token', valueUri: `${s.baseUrl}/auth/token` });
    const jwks = await call(s.baseUrl, 'GET', '/auth/jwks');
    expect(jwks.json.keys[0]).toMatchObject({ kty: 'EC', crv: 'P-384', alg: 'ES384' });
    expect(jwks.json.keys[0].d).toBeUndefined();
    expect(s.stderr()).toContain('no client is registered yet. To get a first token, from the repository');
    expect(s.stderr()).toContain(
      'npx hako-fhir clients add reader --new-key reader.private.jwk --scopes "system/Patient.rs", then ' +
        'npx hako-fhir token --client reader --key reader.private.jwk --scope "system/Patient.rs"',
    );
  });

  it('keeps the signing key in the data volume, mode 0600, and nowhere in the environment', async () => {
    const { statSync } = await import('node:fs');
    for (const f of ['signing-key.jwk', 'supervisor.secret', 'registry.json'])
      expect(statSync(join(s.data, 'auth', f)).mode & 0o777).toBe(0o600);
    expect(statSync(join(s.data, 'auth')).mode & 0o777).toBe(0o700);
    const key = JSON.parse(readFileSync(join(s.data, 'auth', 'signing-key.jwk'), 'utf8')) as JWK;
    expect(key.d).toBeTruthy();
    expect(readFileSync(`/proc/${s.child.pid}/environ`, 'utf8')).not.toContain(key.d!);
  });

  it('answers 401 with WWW-Authenticate without a valid token, and audits it', async () => {
    const none = await call(s.baseUrl, 'GET', `/Patient/${patientA}`);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="hako-fhir"');
    expect(none.json.resourceType).toBe('OperationOutcome');
    const bad = await call(s.baseUrl, 'GET', `/Patient/${patientA}`, 'not.a.token');
    expect(bad.status).toBe(401);
    expect(bad.headers.get('www-authenticate')).toBe('Bearer realm="hako-fhir", error="invalid_token"');
    // A token signed by another key with the same claims.
    const { privateKey } = await generateKeyPair('ES384');
    const forged = await new SignJWT({ kind: 'client', client_id: 'admin', scope: 'system/*.cruds' })
      .setProtectedHeader({ alg: 'ES384', typ: 'at+jwt' })
      .setIssuer('hako-fhir')
      .setAudience('hako-fhir-api')
      .setSubject('admin')
      .setExpirationTime('5m')
      .sign(privateKey);
    expect((await call(s.baseUrl, 'GET', `/Patient/${patientA}`, forged)).status).toBe(401);
    const events = await auditTrail(s, audit);
    const refused = events.find(
      (e) => e.outcome === '4' && e.entity?.[0]?.what?.reference === `Patient/${patientA}` && e.agent[0].who.display === 'anonymous',
    );
    expect(refused?.subtype[0].code).toBe('read');
  });

  it('backend services with ES384 and RS384 keys: a token, a read, and an AuditEvent naming the client', async () => {
    for (const alg of ['ES384', 'RS384'] as const) {
      const c = await registerClient(s.data, `reader-${alg}`, 'system/Patient.rs', { alg });
      await reload();
      const token = await getToken(s.baseUrl, c, 'system/Patient.rs');
      const read = await call(s.baseUrl, 'GET', `/Patient/${patientA}`, token);
      expect(read.status).toBe(200);
      expect(read.json.name[0].family).toBe('Alpha');
      const events = await auditTrail(s, audit);
      const login = events.find((e) => e.type.code === '110114' && agentIds(e).includes(c.id));
      expect(login).toMatchObject({ outcome: '0', action: 'E', subtype: [{ code: '110122' }] });
      const ev = events.find((e) => e.type.code === 'rest' && agentIds(e).includes(c.id));
      expect(ev).toMatchObject({
        action: 'R',
        outcome: '0',
        subtype: [{ code: 'read' }],
        entity: [{ what: { reference: `Patient/${patientA}` } }],
      });
      expect(ev.agent[0].network).toEqual({ address: '127.0.0.1', type: '2' });
    }
  });

  it('grants only the scopes the client is registered for, and refuses a request for none', async () => {
    const c = await registerClient(s.data, 'narrow', 'system/Patient.rs');
    await reload();
    const url = `${s.baseUrl}/auth/token`;
    const r = await tokenRequest(s.baseUrl, {
      grant_type: 'client_credentials',
      scope: 'system/Patient.rs system/Observation.rs',
      client_assertion_type: ASSERTION_TYPE,
      client_assertion: await assertion(c, url),
    });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ token_type: 'Bearer', expires_in: 300, scope: 'system/Patient.rs' });
    expect(r.headers.get('cache-control')).toBe('no-store');
    const none = await tokenRequest(s.baseUrl, {
      grant_type: 'client_credentials',
      scope: 'system/Observation.rs',
      client_assertion_type: ASSERTION_TYPE,
      client_assertion: await assertion(c, url),
    });
    expect(none.status).toBe(400);
    expect(none.body.error).toBe('invalid_scope');
  });

  it('enforces r, s, c, u, d on single interactions (allowed and refused)', async () => {
    const c = await registerClient(s.data, 'scoped', 'system/Patient.crs system/Observation.s system/Encounter.ud');
    await reload();
    const t = await getToken(s.baseUrl, c, 'system/Patient.crs system/Observation.s system/Encounter.ud');
    const expect403 = async (method: string, path: string, body?: unknown) => {
      const r = await call(s.baseUrl, method, path, t, body);
      expect(r.status, `${method} ${path}: ${r.text}`).toBe(403);
      expect(r.json.resourceType).toBe('OperationOutcome');
      expect(r.json.issue[0].code).toBe('forbidden');
    };
    // r
    expect((await call(s.baseUrl, 'GET', `/Patient/${patientA}`, t)).status).toBe(200);
    expect((await call(s.baseUrl, 'GET', `/Patient/${patientA}/_history`, t)).status).toBe(200);
    await expect403('GET', `/Observation/${obsA}`);
    await expect403('GET', `/Observation/${obsA}/_history`);
    // s
    expect((await call(s.baseUrl, 'GET', '/Observation?code=hr', t)).status).toBe(200);
    await expect403('GET', '/Encounter');
    await expect403('POST', '/Encounter/_search');
    // c
    const created = await call(s.baseUrl, 'POST', '/Patient', t, { resourceType: 'Patient', active: true });
    expect(created.status).toBe(201);
    await expect403('POST', '/Observation', { resourceType: 'Observation', status: 'final', code: { text: 'x' } });
    // u
    await expect403('PUT', `/Patient/${created.json.id}`, { resourceType: 'Patient', id: created.json.id, active: false });
    await expect403('PATCH', `/Patient/${created.json.id}`, [{ op: 'replace', path: '/active', value: false }]);
    const enc = await call(s.baseUrl, 'POST', '/Encounter', writer, {
      resourceType: 'Encounter',
      status: 'planned',
      class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
    });
    expect((await call(s.baseUrl, 'PUT', `/Encounter/${enc.json.id}`, t, { ...enc.json, status: 'finished' })).status).toBe(200);
    // d
    await expect403('DELETE', `/Patient/${created.json.id}`);
    expect((await call(s.baseUrl, 'DELETE', `/Encounter/${enc.json.id}`, t)).status).toBe(200);
    // conditional update needs u and s
    await expect403('PUT', '/Encounter?status=planned', { resourceType: 'Encounter', status: 'planned', class: enc.json.class });
    // $operations
    await expect403('POST', '/$graphql', { query: '{ PatientList { id } }' });
    // the audit trail has the refusals
    const events = await auditTrail(s, audit);
    const mine = events.filter((e) => agentIds(e).includes('scoped') && e.type.code === 'rest');
    expect(mine.filter((e) => e.outcome === '4').map((e) => e.subtype[0].code)).toEqual(
      expect.arrayContaining(['read', 'history-instance', 'search-type', 'create', 'update', 'patch', 'delete', 'operation']),
    );
    expect(mine.filter((e) => e.outcome === '0').map((e) => e.subtype[0].code)).toEqual(
      expect.arrayContaining(['read', 'history-instance', 'search-type', 'create', 'update', 'delete']),
    );
  });

  it('leaves out _include/_revinclude results and history entries the scopes do not cover', async () => {
    const c = await registerClient(s.data, 'obs-only', 'system/Observation.rs');
    const p = await registerClient(s.data, 'pat-only', 'system/Patient.rs');
    await reload();
    const obsOnly = await getToken(s.baseUrl, c, 'system/Observation.rs');
    const patOnly = await getToken(s.baseUrl, p, 'system/Patient.rs');
    const inc = await call(s.baseUrl, 'GET', `/Observation?_id=${obsA}&_include=Observation:subject`, obsOnly);
    expect(ids(inc.json)).toEqual([`Observation/${obsA}`]);
    const incAll = await call(s.baseUrl, 'GET', `/Observation?_id=${obsA}&_include=Observation:subject`, writer);
    expect(ids(incAll.json)).toEqual([`Observation/${obsA}`, `Patient/${patientA}`]);
    const rev = await call(s.baseUrl, 'GET', `/Patient?_id=${patientA}&_revinclude=Observation:subject`, patOnly);
    expect(ids(rev.json)).toEqual([`Patient/${patientA}`]);
    const system = await call(s.baseUrl, 'GET', '/?_type=Patient,Observation', patOnly);
    expect(ids(system.json).every((id) => id.startsWith('Patient/'))).toBe(true);
    const history = await call(s.baseUrl, 'GET', '/_history', patOnly);
    expect(history.status).toBe(200);
    const types = new Set(history.json.entry.map((e: any) => e.resource?.resourceType ?? e.request.url.split('/')[0]));
    expect([...types]).toEqual(['Patient']);
    expect((await call(s.baseUrl, 'GET', '/Observation/_history', patOnly)).status).toBe(403);
  });

  it('checks every batch entry: allowed ones run, refused ones answer 403; a transaction with a refused entry is refused whole', async () => {
    const c = await registerClient(s.data, 'batcher', 'system/Patient.crs');
    await reload();
    const t = await getToken(s.baseUrl, c, 'system/Patient.crs');
    const batch = await call(s.baseUrl, 'POST', '/', t, {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        { resource: { resourceType: 'Patient', name: [{ family: 'Batched' }] }, request: { method: 'POST', url: 'Patient' } },
        {
          resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' } },
          request: { method: 'POST', url: 'Observation' },
        },
        { request: { method: 'GET', url: `Patient/${patientA}` } },
        { request: { method: 'GET', url: `Observation/${obsA}` } },
        { request: { method: 'DELETE', url: `Patient/${patientB}` } },
      ],
    });
    expect(batch.status).toBe(200);
    expect(batch.json.entry.map((e: any) => e.response.status.split(' ')[0])).toEqual(['201', '403', '200', '403', '403']);
    expect(batch.json.entry[1].response.outcome.issue[0].diagnostics).toContain('no scope allows c on Observation');
    expect((await call(s.baseUrl, 'GET', `/Patient/${patientB}`, writer)).status).toBe(200);
    const tx = await call(s.baseUrl, 'POST', '/', t, {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: { resourceType: 'Patient', name: [{ family: 'TxRefused' }] }, request: { method: 'POST', url: 'Patient' } },
        {
          resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' } },
          request: { method: 'POST', url: 'Observation' },
        },
      ],
    });
    expect(tx.status).toBe(403);
    expect(tx.json.issue[0].diagnostics).toContain('entry 1 (POST Observation)');
    expect((await call(s.baseUrl, 'GET', '/Patient?family=TxRefused', writer)).json.total).toBe(0);
    const events = await auditTrail(s, audit);
    const mine = events.filter((e) => agentIds(e).includes('batcher')).map((e) => `${e.subtype[0].code} ${e.outcome}`);
    expect(mine).toEqual(expect.arrayContaining(['create 0', 'create 4', 'read 0', 'read 4', 'delete 4']));
  });

  it('AuditEvents: readable only with the audit scope, never updated or deleted, created only with an explicit scope (hako up’s)', async () => {
    expect((await call(s.baseUrl, 'GET', '/AuditEvent', writer)).status).toBe(403);
    const [ev] = await auditTrail(s, audit);
    const all = await getToken(s.baseUrl, admin, 'system/*.cruds system/AuditEvent.rs');
    expect((await call(s.baseUrl, 'PUT', `/AuditEvent/${ev.id}`, all, ev)).status).toBe(403);
    expect((await call(s.baseUrl, 'DELETE', `/AuditEvent/${ev.id}`, all)).status).toBe(403);
    const alert = { ...ev, id: undefined, meta: undefined };
    expect((await call(s.baseUrl, 'POST', '/AuditEvent', writer, alert)).status).toBe(403);
    const secret = readFileSync(join(s.data, 'auth', 'supervisor.secret'), 'utf8').trim();
    expect((await call(s.baseUrl, 'POST', '/AuditEvent', secret, alert)).status).toBe(201);
    expect((await call(s.baseUrl, 'GET', `/Patient/${patientA}`, secret)).status).toBe(403);
    expect((await call(s.baseUrl, 'POST', '/AuditEvent', `${secret.slice(0, -2)}xx`, alert)).status).toBe(401);
  });

  it('refuses bad client assertions with the standard OAuth error and an AuditEvent each, never a 500', async () => {
    const c = await registerClient(s.data, 'victim', 'system/Patient.rs');
    await reload();
    const url = `${s.baseUrl}/auth/token`;
    const now = Math.floor(Date.now() / 1000);
    const form = (a: string, extra: Record<string, string> = {}) => ({
      grant_type: 'client_credentials',
      scope: 'system/Patient.rs',
      client_assertion_type: ASSERTION_TYPE,
      client_assertion: a,
      ...extra,
    });
    const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const unsigned = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ iss: 'victim', sub: 'victim', aud: url, exp: now + 60, jti: 'n1' })}.`;
    const stranger = await generateKeyPair('ES384');
    const replayed = await assertion(c, url);
    expect((await tokenRequest(s.baseUrl, form(replayed))).status).toBe(200);
    const cases: [string, Record<string, string>, string, number][] = [
      ['expired', form(await assertion(c, url, { exp: now - 120, iat: now - 300 })), 'invalid_client', 401],
      ['not yet valid', form(await assertion(c, url, { nbf: now + 600 })), 'invalid_client', 401],
      ['wrong audience', form(await assertion(c, 'http://elsewhere/auth/token')), 'invalid_client', 401],
      ['wrong issuer', form(await assertion(c, url, { claims: { sub: 'someone-else' } })), 'invalid_client', 401],
      ['unsigned (alg none)', form(unsigned), 'invalid_client', 401],
      ['re-signed with an unregistered key', form(await assertion(c, url, { key: stranger.privateKey })), 'invalid_client', 401],
      ['replayed', form(replayed), 'invalid_client', 401],
      ['too long-lived', form(await assertion(c, url, { exp: now + 3600 })), 'invalid_client', 401],
      ['unknown client', form(await assertion({ ...c, id: 'nobody' }, url)), 'invalid_client', 401],
      ['not a JWT', form('garbage'), 'invalid_client', 401],
      ['scope that does not parse', form(await assertion(c, url), { scope: 'system/Patient.xyz' }), 'invalid_scope', 400],
      ['scope of an unknown type', form(await assertion(c, url), { scope: 'system/Nothing.rs' }), 'invalid_scope', 400],
      ['unknown grant type', form(await assertion(c, url), { grant_type: 'password' }), 'unsupported_grant_type', 400],
      ['no grant type', { scope: 'x' }, 'invalid_request', 400],
      ['wrong assertion type', form(await assertion(c, url), { client_assertion_type: 'x' }), 'invalid_request', 400],
      ['no assertion', { grant_type: 'client_credentials', scope: 'system/Patient.rs' }, 'invalid_client', 401],
    ];
    for (const [name, f, error, status] of cases) {
      const r = await tokenRequest(s.baseUrl, f);
      expect(r.status, `${name}: ${JSON.stringify(r.body)}`).toBe(status);
      expect(r.body.error, name).toBe(error);
      expect(typeof r.body.error_description, name).toBe('string');
    }
    // Not a form at all, and a huge body.
    const json = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(json.status).toBe(400);
    const huge = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'a='.padEnd(100_000, 'x'),
    });
    expect(huge.status).toBe(400);
    expect((await fetch(url)).status).toBe(405);
    const events = (await auditTrail(s, audit)).filter((e) => e.type.code === '110114' && e.outcome === '4');
    const descs = events.map((e) => e.outcomeDesc).join('\n');
    for (const text of [
      'has expired',
      'not valid yet',
      'aud is not this token endpoint',
      'sub is not the client_id',
      'alg none',
      'not signed by a key registered',
      'replay',
      'unknown client',
      'invalid_scope',
      'unsupported_grant_type',
    ])
      expect(descs).toContain(text);
    expect(s.stderr()).not.toContain('request failed');
  });
});

describe('SMART on FHIR: assertions across a restart', () => {
  it('refuses an assertion replayed after the server restarted (spent jti are kept in the data volume)', async () => {
    const port = await new Promise<number>((resolve) => {
      const srv = createServer().listen(0, '127.0.0.1', () => {
        const { port } = srv.address() as AddressInfo;
        srv.close(() => resolve(port));
      });
    });
    const env = { HAKO_FHIR_LISTEN: `127.0.0.1:${port}` };
    const first = await start(env);
    const c = await registerClient(first.data, 'restarter', 'system/Patient.rs');
    await reload();
    const url = `${first.baseUrl}/auth/token`;
    const form = (a: string) => ({
      grant_type: 'client_credentials',
      scope: 'system/Patient.rs',
      client_assertion_type: ASSERTION_TYPE,
      client_assertion: a,
    });
    const spent = await assertion(c, url);
    expect((await tokenRequest(first.baseUrl, form(spent))).status).toBe(200);
    first.child.kill('SIGTERM');
    await once(first.child, 'exit');
    const second = await start(env, first.data);
    const replay = await tokenRequest(second.baseUrl, form(spent));
    expect(replay.status, JSON.stringify(replay.body)).toBe(401);
    expect(replay.body.error_description).toMatch(/was used before \(replay\)/);
    // control: a fresh assertion of the same client is accepted by the restarted server
    expect((await tokenRequest(second.baseUrl, form(await assertion(c, url)))).status).toBe(200);
  });
});

describe('SMART on FHIR: people (authorization code + PKCE, password + TOTP)', () => {
  let s: Server;
  let audit: string;
  let patientA: string;
  let patientB: string;
  let obsA: string;
  const redirect = 'http://app.example/callback';
  const users: Record<string, { password: string; secret: string }> = {};

  async function addUser(name: string, scopes: string, patient?: string): Promise<void> {
    const lines: string[] = [];
    await adminCommand(
      ['--data', s.data, 'users', 'add', name, '--scopes', scopes, ...(patient ? ['--patient', patient] : [])],
      s.data,
      (l) => lines.push(l),
    );
    const password = /one-time password \(shown only now\): (\S+)/.exec(lines.join('\n'))![1];
    const uri = /(otpauth:\/\/\S+)/.exec(lines.join('\n'))![1];
    users[name] = { password, secret: new URL(uri).searchParams.get('secret')! };
  }

  const code = (name: string, offset = 0) =>
    new TOTP({ secret: Secret.fromBase32(users[name].secret), algorithm: 'SHA1', digits: 6, period: 30 }).generate({
      timestamp: Date.now() + offset * 30_000,
    });

  /** Drives the login page like a browser; returns the redirect's query. */
  async function signIn(
    name: string,
    o: { scope?: string; verifier?: string; totp?: string; password?: string } = {},
  ): Promise<{ status: number; query: URLSearchParams; html: string; verifier: string }> {
    const verifier = o.verifier ?? 'v'.repeat(20) + Math.random().toString(36).slice(2).padEnd(30, 'x');
    const q = new URLSearchParams({
      response_type: 'code',
      client_id: 'app',
      redirect_uri: redirect,
      scope: o.scope ?? 'launch/patient patient/*.rs offline_access openid fhirUser',
      state: 'st-1',
      aud: s.baseUrl,
      code_challenge: pkceChallenge(verifier),
      code_challenge_method: 'S256',
    });
    const page = await call(s.baseUrl, 'GET', `/auth/authorize?${q}`);
    expect(page.status, page.text).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    const request = /name="request" value="([^"]+)"/.exec(page.text)![1];
    const res = await fetch(`${s.baseUrl}/auth/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        request,
        username: name,
        password: o.password ?? users[name]?.password ?? 'x',
        code: o.totp ?? code(name),
      }),
    });
    const location = res.headers.get('location');
    return { status: res.status, query: new URL(location ?? 'http://x/').searchParams, html: await res.text(), verifier };
  }

  const exchange = (c: string, verifier: string) =>
    tokenRequest(s.baseUrl, {
      grant_type: 'authorization_code',
      code: c,
      redirect_uri: redirect,
      client_id: 'app',
      code_verifier: verifier,
    });

  beforeAll(async () => {
    s = await start();
    const admin = await registerClient(s.data, 'admin', 'system/*.cruds system/AuditEvent.rs');
    updateRegistry(s.data, (r) => {
      r.clients.app = {
        id: 'app',
        scopes: 'patient/*.rus user/*.rs launch/patient offline_access openid fhirUser',
        redirectUris: [redirect],
        budget: 60_000,
        created: '',
      };
    });
    await reload();
    const writer = await getToken(s.baseUrl, admin, 'system/*.cruds');
    audit = await getToken(s.baseUrl, admin, 'system/AuditEvent.rs');
    const mk = async (body: any): Promise<string> => (await call(s.baseUrl, 'POST', `/${body.resourceType}`, writer, body)).json.id;
    patientA = await mk({ resourceType: 'Patient', name: [{ family: 'Alpha' }] });
    patientB = await mk({ resourceType: 'Patient', name: [{ family: 'Beta' }] });
    obsA = await mk({ resourceType: 'Observation', status: 'final', code: { text: 'hr' }, subject: { reference: `Patient/${patientA}` } });
    await mk({ resourceType: 'Observation', status: 'final', code: { text: 'hr' }, subject: { reference: `Patient/${patientB}` } });
    await addUser('alice', 'patient/*.rs launch/patient offline_access openid fhirUser', patientA);
    await addUser('bob', 'patient/*.rs launch/patient offline_access', patientA);
    await addUser('carol', 'patient/*.rs launch/patient', patientA);
    await addUser('dave', 'patient/*.rs launch/patient', patientA);
    await addUser('erin', 'patient/*.rus launch/patient', patientA);
    await reload();
  }, 60_000);

  it('signs in with password and TOTP, gets a token with the patient in context, reads only that patient’s data', async () => {
    const login = await signIn('alice');
    expect(login.status, login.html).toBe(302);
    expect(login.query.get('state')).toBe('st-1');
    const t = await exchange(login.query.get('code')!, login.verifier);
    expect(t.status, JSON.stringify(t.body)).toBe(200);
    expect(t.body).toMatchObject({ token_type: 'Bearer', patient: patientA });
    expect(t.body.refresh_token).toBeTruthy();
    const token = t.body.access_token;
    expect((await call(s.baseUrl, 'GET', `/Patient/${patientA}`, token)).status).toBe(200);
    expect((await call(s.baseUrl, 'GET', `/Observation/${obsA}`, token)).status).toBe(200);
    expect((await call(s.baseUrl, 'GET', `/Patient/${patientB}`, token)).status).toBe(403);
    const obs = await call(s.baseUrl, 'GET', '/Observation', token);
    expect(ids(obs.json)).toEqual([`Observation/${obsA}`]);
    expect(obs.json.total).toBe(1);
    // patient/ scopes write nothing here (rs), and never outside the compartment
    expect(
      (await call(s.baseUrl, 'POST', '/Observation', token, { resourceType: 'Observation', status: 'final', code: { text: 'x' } })).status,
    ).toBe(403);
    // the code is spent: a second use is refused (and revokes the refresh token it bought)
    const again = await exchange(login.query.get('code')!, login.verifier);
    expect(again.status).toBe(400);
    expect(again.body.error).toBe('invalid_grant');
    const refreshed = await tokenRequest(s.baseUrl, { grant_type: 'refresh_token', refresh_token: t.body.refresh_token, client_id: 'app' });
    expect(refreshed.body.error).toBe('invalid_grant');
    const events = await auditTrail(s, audit);
    const logins = events.filter((e) => e.type.code === '110114' && agentIds(e).includes('alice'));
    expect(logins.map((e) => `${e.outcome} ${e.outcomeDesc}`)).toEqual(
      expect.arrayContaining(['0 login: password and one-time code accepted', '0 token (authorization_code): granted']),
    );
    const reuse = events.find((e) => e.type.code === '110114' && e.outcome === '4' && /used already/.test(e.outcomeDesc));
    expect(agentIds(reuse)).toEqual(['app']);
    const read = events.find(
      (e) => e.type.code === 'rest' && agentIds(e).includes('alice') && e.subtype[0].code === 'read' && e.outcome === '0',
    );
    expect(agentIds(read)).toEqual(['alice', 'app']);
  });

  it('refuses a patch that would move a resource out of the patient’s compartment, allows one that keeps it in', async () => {
    const login = await signIn('erin', { scope: 'launch/patient patient/*.rus' });
    const t = await exchange(login.query.get('code')!, login.verifier);
    expect(t.status, JSON.stringify(t.body)).toBe(200);
    const token = t.body.access_token;
    const patch = (ops: unknown[]) =>
      call(s.baseUrl, 'PATCH', `/Observation/${obsA}`, token, ops, { 'content-type': 'application/json-patch+json' });
    const away = await patch([{ op: 'replace', path: '/subject/reference', value: `Patient/${patientB}` }]);
    expect(away.status, JSON.stringify(away.json)).toBe(403);
    expect(away.json.issue[0].diagnostics).toMatch(/the patch would move Observation\/.* out of the compartment of/);
    // control: the same token may patch what stays in the compartment (scheme case-insensitive)
    const kept = await call(s.baseUrl, 'PATCH', `/Observation/${obsA}`, undefined, [{ op: 'replace', path: '/status', value: 'amended' }], {
      'content-type': 'application/json-patch+json',
      authorization: `bearer ${token}`,
    });
    expect(kept.status, JSON.stringify(kept.json)).toBe(200);
    const now = await call(s.baseUrl, 'GET', `/Observation/${obsA}`, token);
    expect(now.json).toMatchObject({ status: 'amended', subject: { reference: `Patient/${patientA}` } });
  });

  it('refreshes and revokes refresh tokens; refuses a PKCE verifier that does not match', async () => {
    const login = await signIn('bob');
    const wrong = await exchange(login.query.get('code')!, 'w'.repeat(43));
    expect(wrong.status).toBe(400);
    expect(wrong.body).toMatchObject({ error: 'invalid_grant', error_description: 'code_verifier does not match the code_challenge' });
    const login2 = await signIn('bob', { totp: code('bob', 1) });
    const t = await exchange(login2.query.get('code')!, login2.verifier);
    expect(t.status).toBe(200);
    const r1 = await tokenRequest(s.baseUrl, { grant_type: 'refresh_token', refresh_token: t.body.refresh_token, client_id: 'app' });
    expect(r1.status).toBe(200);
    expect((await call(s.baseUrl, 'GET', `/Patient/${patientA}`, r1.body.access_token)).status).toBe(200);
    // the old refresh token is spent; the new one is revoked
    expect(
      (await tokenRequest(s.baseUrl, { grant_type: 'refresh_token', refresh_token: t.body.refresh_token, client_id: 'app' })).body.error,
    ).toBe('invalid_grant');
    const rev = await fetch(`${s.baseUrl}/auth/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: r1.body.refresh_token }),
    });
    expect(rev.status).toBe(200);
    expect(
      (await tokenRequest(s.baseUrl, { grant_type: 'refresh_token', refresh_token: r1.body.refresh_token, client_id: 'app' })).body.error,
    ).toBe('invalid_grant');
  });

  it('refuses a wrong password and a reused code, and locks the user out after 5 wrong codes', async () => {
    const pw = await signIn('carol', { password: 'wrong' });
    expect(pw.status).toBe(401);
    expect(pw.html).toContain('Wrong user name, password or code.');
    for (let n = 1; n <= 5; n++) {
      const bad = await signIn('carol', { totp: '000000' === code('carol') ? '111111' : '000000' });
      expect(bad.status, `attempt ${n}`).toBe(n < 5 ? 401 : 403);
    }
    const locked = await signIn('carol');
    expect(locked.status).toBe(403);
    expect(locked.html).toContain('locked');
    const ok = await signIn('dave');
    expect(ok.status).toBe(302);
    const reused = await signIn('dave'); // the same 30-second code again
    expect(reused.status).toBe(401);
    const events = (await auditTrail(s, audit)).filter((e) => e.type.code === '110114' && agentIds(e).includes('carol'));
    expect(events.map((e) => e.outcomeDesc).join('\n')).toMatch(/locked after 5/);
    // unknown client and unregistered redirect: answered on the page, never redirected
    const bad = await call(s.baseUrl, 'GET', `/auth/authorize?client_id=nobody&redirect_uri=${encodeURIComponent(redirect)}`);
    expect(bad.status).toBe(400);
    const evil = await call(s.baseUrl, 'GET', `/auth/authorize?client_id=app&redirect_uri=${encodeURIComponent('http://evil.example/')}`);
    expect(evil.status).toBe(400);
    const noPkce = await call(
      s.baseUrl,
      'GET',
      `/auth/authorize?client_id=app&response_type=code&redirect_uri=${encodeURIComponent(redirect)}&scope=patient/*.rs`,
    );
    expect(noPkce.status).toBe(302);
    expect(new URL(noPkce.headers.get('location')!).searchParams.get('error')).toBe('invalid_request');
  });
});

describe('SMART on FHIR: rate limits and budgets', () => {
  it('answers 429 with Retry-After on the token endpoint and the login page, and over a client’s budget', async () => {
    const s = await start({ HAKO_FHIR_RATE_TOKEN: '3/60', HAKO_FHIR_RATE_LOGIN: '2/60' });
    const c = await registerClient(s.data, 'robot', 'system/Patient.rs', { budget: 5 });
    const admin = await registerClient(s.data, 'admin', 'system/AuditEvent.rs');
    await reload();
    const token = await getToken(s.baseUrl, c, 'system/Patient.rs');
    for (let n = 0; n < 5; n++) expect((await call(s.baseUrl, 'GET', '/Patient', token)).status).toBe(200);
    const over = await call(s.baseUrl, 'GET', '/Patient', token);
    expect(over.status).toBe(429);
    expect(Number(over.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(over.json.issue[0].code).toBe('throttled');
    await getToken(s.baseUrl, c, 'system/Patient.rs');
    await getToken(s.baseUrl, c, 'system/Patient.rs');
    const limited = await tokenRequest(s.baseUrl, {
      grant_type: 'client_credentials',
      scope: 'system/Patient.rs',
      client_assertion_type: ASSERTION_TYPE,
      client_assertion: await assertion(c, `${s.baseUrl}/auth/token`),
    });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    const login = async () =>
      fetch(`${s.baseUrl}/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'request=x&username=u',
      });
    // An unknown sign-in request is refused before the limiter; a known one counts.
    updateRegistry(s.data, (r) => {
      r.clients.app = { id: 'app', scopes: 'patient/*.rs', redirectUris: ['http://app.example/cb'], budget: 60_000, created: '' };
    });
    await reload();
    expect((await login()).status).toBe(400);
    const q = new URLSearchParams({
      response_type: 'code',
      client_id: 'app',
      redirect_uri: 'http://app.example/cb',
      scope: 'patient/*.rs',
      code_challenge: 'a'.repeat(43),
      code_challenge_method: 'S256',
    });
    const page = await call(s.baseUrl, 'GET', `/auth/authorize?${q}`);
    const request = /name="request" value="([^"]+)"/.exec(page.text)![1];
    const post = () =>
      fetch(`${s.baseUrl}/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ request, username: 'u', password: 'p', code: '123456' }),
      });
    expect((await post()).status).toBe(401);
    expect((await post()).status).toBe(401);
    const third = await post();
    expect(third.status).toBe(429);
    expect(Number(third.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    // The AuditEvents: a fresh server so the token limiter does not stop the audit client.
    s.child.kill('SIGTERM');
    await once(s.child, 'exit');
    const again = await start({}, s.data);
    const audit = await getToken(again.baseUrl, admin, 'system/AuditEvent.rs');
    const events = await auditTrail(again, audit);
    expect(events.filter((e) => e.type.code === '110114' && /rate limited/.test(e.outcomeDesc)).length).toBeGreaterThanOrEqual(2);
  });
});
