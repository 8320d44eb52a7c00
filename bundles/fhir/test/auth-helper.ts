// Authorization for the tests: register a backend-services client in a data directory (the
// registry the `hako-fhir` command writes; a running server re-reads it within a second), and get
// an access token from the server's token endpoint with a private_key_jwt assertion.
import { randomUUID } from 'node:crypto';
import { cpSync, copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { bundleFhirServer } from '../build/server-bundle.js';
import { updateRegistry } from '../server/auth/registry.js';
import { ASSERTION_TYPE } from '../server/auth/tokens.js';

export type TestClient = { id: string; alg: 'ES384' | 'RS384'; privateKey: CryptoKey; kid: string; publicJwk: JWK };

const FHIR = join(import.meta.dirname, '..');

/** A key pair made here (the private key never leaves the test). */
export async function makeClientKey(id: string, alg: 'ES384' | 'RS384' = 'ES384'): Promise<TestClient> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const kid = `${id}-${alg}`;
  return { id, alg, privateKey, kid, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

/** Registers a backend-services client (its public key as a JWKS) with these scopes. */
export async function registerClient(
  dataDir: string,
  id: string,
  scopes: string,
  o: { alg?: 'ES384' | 'RS384'; budget?: number } = {},
): Promise<TestClient> {
  const client = await makeClientKey(id, o.alg);
  updateRegistry(dataDir, (r) => {
    r.clients[id] = {
      id,
      scopes,
      jwks: { keys: [client.publicJwk as Record<string, unknown>] },
      budget: o.budget ?? 60_000,
      created: new Date().toISOString(),
    };
  });
  return client;
}

/** A client assertion (RFC 7523) for the token endpoint; `claims`/`header` override for bad-input tests. */
export async function assertion(
  client: TestClient,
  tokenUrl: string,
  o: { claims?: Record<string, unknown>; exp?: number; iat?: number; nbf?: number; key?: CryptoKey } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT({ jti: randomUUID(), ...o.claims })
    .setProtectedHeader({ alg: client.alg, kid: client.kid, typ: 'JWT' })
    .setIssuer(String(o.claims?.iss ?? client.id))
    .setSubject(String(o.claims?.sub ?? client.id))
    .setAudience(tokenUrl)
    .setIssuedAt(o.iat ?? now)
    .setExpirationTime(o.exp ?? now + 240);
  if (o.nbf !== undefined) jwt.setNotBefore(o.nbf);
  return jwt.sign(o.key ?? client.privateKey);
}

export async function tokenRequest(
  baseUrl: string,
  form: Record<string, string>,
): Promise<{ status: number; headers: Headers; body: Record<string, any> }> {
  const res = await fetch(`${baseUrl}/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form),
  });
  const text = await res.text();
  let body: Record<string, any>;
  try {
    body = JSON.parse(text);
  } catch {
    body = { text };
  }
  return { status: res.status, headers: res.headers, body };
}

/** client_credentials with a fresh assertion: the access token. */
export async function getToken(baseUrl: string, client: TestClient, scope: string): Promise<string> {
  const tokenUrl = `${baseUrl}/auth/token`;
  const r = await tokenRequest(baseUrl, {
    grant_type: 'client_credentials',
    scope,
    client_assertion_type: ASSERTION_TYPE,
    client_assertion: await assertion(client, tokenUrl),
  });
  if (r.status !== 200) throw new Error(`no token: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.access_token as string;
}

/** Every scope: all resources but the audit trail, and the audit trail to read. */
export const FULL_SCOPE = 'system/*.cruds system/AuditEvent.rs';

/** Registers client "test" with every scope on a running server, and gets its token. */
export async function fullAccess(dataDir: string, baseUrl: string, id = 'test'): Promise<string> {
  const client = await registerClient(dataDir, id, FULL_SCOPE);
  await new Promise((r) => setTimeout(r, 1_100)); // a running server re-reads the registry within a second
  return getToken(baseUrl, client, FULL_SCOPE);
}

/**
 * Bundles the server into OUTDIR; with `edit`, from a scratch copy of server/ the edit changes
 * first (the benchmark's variants).
 */
export async function bundleWithAuth(outDir: string, scratch: string, edit?: (serverDir: string) => void): Promise<void> {
  if (!edit) return bundleFhirServer({ bundleDir: FHIR, outDir });
  mkdirSync(scratch, { recursive: true });
  cpSync(join(FHIR, 'server'), join(scratch, 'server'), { recursive: true });
  copyFileSync(join(FHIR, 'package.json'), join(scratch, 'package.json'));
  edit(join(scratch, 'server'));
  await bundleFhirServer({ bundleDir: scratch, outDir });
}
