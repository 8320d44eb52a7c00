// The server's secrets, in the data volume only (never config.json, never the environment):
//
//   DATA/auth/signing-key.jwk    the private ES384 key that signs access tokens (mode 0600),
//                                made on the first start; its public half is served at /auth/jwks
//   DATA/auth/supervisor.secret  a random bearer credential for `hako up` (mode 0600), good only
//                                for creating AuditEvents (its refused-syscall alerts)
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from 'jose';
import { authDir, ensureAuthDir, writeSecretFile } from './registry.js';

export const TOKEN_ALG = 'ES384';
export const SUPERVISOR_PREFIX = 'hako-supervisor.';

export type SigningKey = { kid: string; privateKey: CryptoKey; publicJwk: JWK; publicKey: CryptoKey };

function readIfPresent(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function fromJwk(jwk: JWK): Promise<SigningKey> {
  const kid = jwk.kid ?? (await calculateJwkThumbprint(jwk));
  const { d: _d, ...pub } = jwk;
  void _d;
  const publicJwk: JWK = { ...pub, kid, alg: TOKEN_ALG, use: 'sig' };
  return {
    kid,
    privateKey: (await importJWK(jwk, TOKEN_ALG)) as CryptoKey,
    publicKey: (await importJWK(publicJwk, TOKEN_ALG)) as CryptoKey,
    publicJwk,
  };
}

/** The signing key; made (and written, 0600) when missing unless `create` is false. */
export async function signingKey(dataDir: string, create = true): Promise<SigningKey> {
  const file = join(authDir(dataDir), 'signing-key.jwk');
  const text = readIfPresent(file);
  if (text) return fromJwk(JSON.parse(text) as JWK);
  if (!create) throw new Error(`${file} does not exist: the server makes it on its first start`);
  ensureAuthDir(dataDir);
  const { privateKey } = await generateKeyPair(TOKEN_ALG, { extractable: true });
  const jwk = await exportJWK(privateKey);
  jwk.kid = await calculateJwkThumbprint(jwk);
  writeSecretFile(dataDir, file, `${JSON.stringify(jwk)}\n`);
  return fromJwk(jwk);
}

/** hako up's credential: read, or made when missing. */
export function supervisorSecret(dataDir: string): string {
  const file = join(authDir(dataDir), 'supervisor.secret');
  const text = readIfPresent(file)?.trim();
  if (text?.startsWith(SUPERVISOR_PREFIX)) return text;
  ensureAuthDir(dataDir);
  const secret = SUPERVISOR_PREFIX + randomBytes(32).toString('base64url');
  writeSecretFile(dataDir, file, `${secret}\n`);
  return secret;
}

export function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
