// The token endpoint (POST /auth/token, form-encoded) and revocation (POST /auth/revoke, RFC 7009).
//
//   client_credentials   SMART Backend Services: client_assertion (private_key_jwt), system/ scopes
//   authorization_code   people, after the login page: code + PKCE verifier (S256), one use
//   refresh_token        people: a new access token and a new refresh token (the old one is spent)
//
// Every answer is an OAuth JSON body with Cache-Control: no-store; every failure a standard
// error code; every request (granted or not) an AuditEvent.
import type { AuthService } from './index.js';
import { OAuthError } from './errors.js';
import { narrow, ScopeError } from './scopes.js';
import { ASSERTION_TYPE, pkceChallenge, randomToken } from './tokens.js';
import type { ClientRecord } from './registry.js';

export const CLIENT_TOKEN_SECONDS = 300;
export const USER_TOKEN_SECONDS = 900;
export const REFRESH_SECONDS = 30 * 24 * 3600;

export type TokenAnswer = { body: Record<string, unknown>; client?: string; user?: string; what: string };

function one(form: URLSearchParams, name: string, required = true): string | undefined {
  const values = form.getAll(name);
  if (values.length > 1) throw new OAuthError('invalid_request', `${name} is given more than once`);
  if (required && !values[0]) throw new OAuthError('invalid_request', `${name} is missing`);
  return values[0] || undefined;
}

function scopeOf(svc: AuthService, requested: string, allowed: string): string {
  let granted: string;
  try {
    granted = narrow(requested, allowed, svc.isType);
  } catch (err) {
    if (err instanceof ScopeError) throw new OAuthError('invalid_scope', err.message);
    throw err;
  }
  if (!granted.split(' ').some((s) => s.includes('/') && !s.startsWith('launch')))
    throw new OAuthError('invalid_scope', `none of the scopes asked for (${requested}) is allowed to this client`);
  return granted;
}

export async function token(svc: AuthService, form: URLSearchParams, tokenUrls: string[], address: string): Promise<TokenAnswer> {
  const grantType = one(form, 'grant_type');
  const what = `token (${grantType})`;
  // The client, by assertion when one is sent (a confidential client), else by client_id (public).
  let client: ClientRecord | undefined;
  const assertion = one(form, 'client_assertion', false);
  if (assertion) {
    if (one(form, 'client_assertion_type', false) !== ASSERTION_TYPE)
      throw new OAuthError('invalid_request', `client_assertion_type must be ${ASSERTION_TYPE}`);
    const claimed = svc.unverifiedIssuer(assertion);
    svc.limitToken(address, claimed);
    client = await svc.tokens.verifyAssertion(assertion, (id) => svc.registry.client(id), tokenUrls);
  } else {
    svc.limitToken(address, one(form, 'client_id', false));
  }

  if (grantType === 'client_credentials') {
    if (!client) throw new OAuthError('invalid_client', 'client_credentials needs a client_assertion (private_key_jwt)');
    const requested = one(form, 'scope')!;
    const scope = scopeOf(svc, requested, client.scopes);
    if (scope.split(' ').some((s) => s.startsWith('user/') || s.startsWith('patient/')))
      throw new OAuthError('invalid_scope', 'client_credentials grants system/ scopes only');
    const access = await svc.tokens.issue({ kind: 'client', client_id: client.id, sub: client.id, scope }, CLIENT_TOKEN_SECONDS);
    return { what, client: client.id, body: { access_token: access, token_type: 'Bearer', expires_in: CLIENT_TOKEN_SECONDS, scope } };
  }

  if (grantType === 'authorization_code') {
    const code = one(form, 'code')!;
    const clientId = client?.id ?? one(form, 'client_id')!;
    const pending = svc.takeCode(code);
    if (!pending) throw new OAuthError('invalid_grant', 'the code is unknown, expired or was used already');
    if (pending.used) {
      // A code used twice: whatever it bought is revoked too (RFC 6749 section 4.1.2).
      if (pending.refresh) await svc.state.revokeRefresh(pending.refresh);
      throw new OAuthError('invalid_grant', 'the code was used already (its tokens are revoked)');
    }
    pending.used = true;
    if (pending.client !== clientId) throw new OAuthError('invalid_grant', 'the code was issued to another client');
    if (one(form, 'redirect_uri') !== pending.redirectUri)
      throw new OAuthError('invalid_grant', 'redirect_uri differs from the one authorized');
    const verifier = one(form, 'code_verifier')!;
    if (!/^[A-Za-z0-9._~-]{43,128}$/.test(verifier))
      throw new OAuthError('invalid_grant', 'code_verifier is not 43 to 128 unreserved characters');
    if (pkceChallenge(verifier) !== pending.challenge)
      throw new OAuthError('invalid_grant', 'code_verifier does not match the code_challenge');
    const body = await svc.issueUserTokens(pending.client, pending.user, pending.scope, pending.patient);
    pending.refresh = body.refresh_token as string | undefined;
    return { what, client: pending.client, user: pending.user, body };
  }

  if (grantType === 'refresh_token') {
    const refresh = one(form, 'refresh_token')!;
    const record = svc.state.refresh(refresh);
    const clientId = client?.id ?? one(form, 'client_id')!;
    if (!record) throw new OAuthError('invalid_grant', 'the refresh token is unknown, expired or revoked');
    if (record.client !== clientId) throw new OAuthError('invalid_grant', 'the refresh token was issued to another client');
    const user = svc.registry.user(record.user);
    if (!user || user.generation !== record.generation || !svc.registry.client(record.client)) {
      await svc.state.revokeRefresh(refresh);
      throw new OAuthError('invalid_grant', 'the user or client of this refresh token was removed or re-enrolled');
    }
    let scope = record.scope;
    const asked = one(form, 'scope', false);
    if (asked) scope = scopeOf(svc, asked, record.scope);
    await svc.state.revokeRefresh(refresh);
    const body = await svc.issueUserTokens(record.client, record.user, scope, record.patient);
    return { what, client: record.client, user: record.user, body };
  }

  throw new OAuthError(
    'unsupported_grant_type',
    `grant_type ${grantType} is not supported (client_credentials, authorization_code, refresh_token)`,
  );
}

/** RFC 7009: 200 whether or not the token existed; only refresh tokens are kept, so only they are revoked. */
export async function revoke(svc: AuthService, form: URLSearchParams): Promise<{ revoked: boolean }> {
  const value = one(form, 'token')!;
  const hint = one(form, 'token_type_hint', false);
  if (hint && hint !== 'refresh_token' && hint !== 'access_token')
    throw new OAuthError('unsupported_token_type', `token_type_hint ${hint} is not refresh_token or access_token`);
  return { revoked: await svc.state.revokeRefresh(value) };
}

export { randomToken };
