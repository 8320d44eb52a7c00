// Tokens: access tokens (JWTs the server signs with its ES384 key, short-lived, verified once
// and then remembered until they expire), client assertions (SMART Backend Services'
// private_key_jwt: ES384 or RS384, signed by a key of the client's registered JWKS, `jti` used
// once), authorization codes (one use, 60 s, PKCE S256) and refresh tokens (random, stored
// hashed in state.json, revocable).
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, errors, jwtVerify, SignJWT, type JSONWebKeySet } from 'jose';
import { OAuthError } from './errors.js';
import { TOKEN_ALG, type SigningKey } from './keys.js';
import type { ClientRecord } from './registry.js';

export const ISSUER = 'hako-fhir';
export const API_AUDIENCE = 'hako-fhir-api';
export const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
export const ASSERTION_ALGS = ['ES384', 'RS384'];
/** SMART Backend Services: an assertion may be valid for 5 minutes at most. */
const MAX_ASSERTION_SECONDS = 300;
const CLOCK_SKEW = 30;
const MAX_CACHE = 20_000;

export type AccessClaims = {
  kind: 'client' | 'user' | 'admin';
  client_id: string;
  sub: string;
  scope: string;
  patient?: string;
  exp: number;
};

/** Remembers spent assertion ids until they expire; spend() is false for one seen before. */
export type SpentAssertions = { spend(key: string, until: number): Promise<boolean> };

export class Tokens {
  /** Verified access tokens until they expire: the read path pays a Map lookup, not a signature check. */
  private readonly verified = new Map<string, AccessClaims>();

  /** spent: the assertions' jti already used, kept in the data volume so a restart forgets none. */
  constructor(
    private readonly key: SigningKey,
    private readonly spent: SpentAssertions,
  ) {}

  async issue(claims: Omit<AccessClaims, 'exp'>, seconds: number): Promise<string> {
    const { kind, client_id, sub, scope, patient } = claims;
    return new SignJWT({ kind, client_id, scope, ...(patient ? { patient } : undefined) })
      .setProtectedHeader({ alg: TOKEN_ALG, kid: this.key.kid, typ: 'at+jwt' })
      .setIssuer(ISSUER)
      .setAudience(API_AUDIENCE)
      .setSubject(sub)
      .setIssuedAt()
      .setExpirationTime(Math.floor(Date.now() / 1000) + seconds)
      .setJti(randomUUID())
      .sign(this.key.privateKey);
  }

  /** The claims of a valid access token, or undefined (bad signature, expired, not ours). */
  async verify(token: string): Promise<AccessClaims | undefined> {
    return this.remembered(token) ?? this.verifyFresh(token);
  }

  /**
   * The claims of a token verified before and not expired yet (expired ones are forgotten): the
   * read path's check, synchronous so a request with a known token waits for nothing.
   */
  remembered(token: string): AccessClaims | undefined {
    const cached = this.verified.get(token);
    if (!cached) return undefined;
    if (cached.exp > Date.now() / 1000) return cached;
    this.verified.delete(token);
    return undefined;
  }

  private async verifyFresh(token: string): Promise<AccessClaims | undefined> {
    const now = Date.now() / 1000;
    try {
      const { payload } = await jwtVerify(token, this.key.publicKey, {
        algorithms: [TOKEN_ALG],
        issuer: ISSUER,
        audience: API_AUDIENCE,
        typ: 'at+jwt',
        requiredClaims: ['exp', 'sub', 'scope', 'client_id'],
      });
      const claims: AccessClaims = {
        kind: payload.kind === 'user' ? 'user' : payload.kind === 'admin' ? 'admin' : 'client',
        client_id: String(payload.client_id),
        sub: payload.sub!,
        scope: String(payload.scope),
        patient: typeof payload.patient === 'string' ? payload.patient : undefined,
        exp: payload.exp!,
      };
      if (this.verified.size >= MAX_CACHE) {
        for (const [k, c] of this.verified) if (c.exp <= now) this.verified.delete(k);
        if (this.verified.size >= MAX_CACHE) this.verified.clear();
      }
      this.verified.set(token, claims);
      return claims;
    } catch {
      return undefined;
    }
  }

  /**
   * Authenticates a client by its assertion (RFC 7523, SMART Backend Services); returns the
   * client. `audiences`: the token endpoint's URLs as the client may have addressed it.
   */
  async verifyAssertion(assertion: string, lookup: (id: string) => ClientRecord | undefined, audiences: string[]): Promise<ClientRecord> {
    let header: ReturnType<typeof decodeProtectedHeader>;
    let unverified: ReturnType<typeof decodeJwt>;
    try {
      header = decodeProtectedHeader(assertion);
      unverified = decodeJwt(assertion);
    } catch {
      throw new OAuthError('invalid_client', 'client_assertion is not a JWT');
    }
    if (!header.alg || header.alg === 'none') throw new OAuthError('invalid_client', 'client_assertion is unsigned (alg none)');
    if (!ASSERTION_ALGS.includes(header.alg))
      throw new OAuthError('invalid_client', `client_assertion is signed with ${header.alg}: use ES384 or RS384`);
    const id = unverified.iss;
    if (typeof id !== 'string' || !id) throw new OAuthError('invalid_client', 'client_assertion has no iss (the client_id)');
    const client = lookup(id);
    if (!client) throw new OAuthError('invalid_client', `unknown client ${JSON.stringify(id)}`);
    if (!client.jwks?.keys.length)
      throw new OAuthError('invalid_client', `client ${id} has no registered keys (it is not a backend service)`);
    let payload: Awaited<ReturnType<typeof jwtVerify>>['payload'];
    try {
      ({ payload } = await jwtVerify(assertion, createLocalJWKSet(client.jwks as JSONWebKeySet), {
        algorithms: ASSERTION_ALGS,
        issuer: id,
        subject: id,
        audience: audiences,
        clockTolerance: CLOCK_SKEW,
        requiredClaims: ['exp', 'jti'],
      }));
    } catch (err) {
      throw new OAuthError('invalid_client', assertionProblem(err, id));
    }
    const now = Math.floor(Date.now() / 1000);
    if (payload.exp! > now + MAX_ASSERTION_SECONDS + CLOCK_SKEW)
      throw new OAuthError('invalid_client', `client_assertion expires more than ${MAX_ASSERTION_SECONDS} s from now`);
    if (!(await this.spent.spend(`${id}\n${payload.jti}`, payload.exp! + CLOCK_SKEW)))
      throw new OAuthError('invalid_client', `client_assertion jti ${payload.jti} was used before (replay)`);
    return client;
  }
}

function assertionProblem(err: unknown, id: string): string {
  if (err instanceof errors.JWTExpired) return 'client_assertion has expired';
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf' || err.claim === 'iat') return `client_assertion is not valid yet (${err.claim})`;
    if (err.claim === 'aud') return 'client_assertion aud is not this token endpoint';
    if (err.claim === 'iss' || err.claim === 'sub') return `client_assertion ${err.claim} is not the client_id`;
    return `client_assertion: ${err.message}`;
  }
  if (
    err instanceof errors.JWKSNoMatchingKey ||
    err instanceof errors.JWSSignatureVerificationFailed ||
    err instanceof errors.JWKSMultipleMatchingKeys
  )
    return `client_assertion is not signed by a key registered for client ${id}`;
  if (err instanceof errors.JOSEAlgNotAllowed) return 'client_assertion is signed with an algorithm not allowed (ES384, RS384)';
  return `client_assertion is not valid (${(err as Error).message})`;
}

/** A random token: 256 bits, base64url. */
export function randomToken(): string {
  return randomBytes(32).toString('base64url');
}

/** PKCE S256: BASE64URL(SHA256(verifier)). */
export function pkceChallenge(verifier: string): string {
  return createHash('sha256').update(verifier).digest('base64url');
}
