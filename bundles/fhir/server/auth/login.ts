// People: the authorization endpoint (GET /auth/authorize, authorization code with PKCE S256)
// and its login page (POST /auth/login: user name, password and a TOTP code). Five wrong codes
// lock the user out until `hako-fhir users unlock NAME`. A request that names no registered
// client or redirect URI is answered here (never redirected); any other problem goes back to
// the app's redirect URI as ?error=...&state=....
import type { AuthService } from './index.js';
import { OAuthError } from './errors.js';
import { narrow, ScopeError } from './scopes.js';
import { MAX_CODE_FAILURES } from './state.js';
import { acceptCode } from './totp.js';
import { verifyPassword } from './users.js';

export type PendingLogin = {
  client: string;
  redirectUri: string;
  scope: string;
  state?: string;
  challenge: string;
  exp: number;
};

export type Page = {
  status: number;
  html?: string;
  location?: string;
  audit?: { success: boolean; user?: string; client?: string; description: string };
};

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>${esc(title)} — hako FHIR</title>
<style>body{font:16px system-ui,sans-serif;max-width:24rem;margin:3rem auto;padding:0 1rem}label{display:block;margin:.8rem 0 .2rem}
input{width:100%;padding:.4rem;font:inherit;box-sizing:border-box}button{margin-top:1.2rem;padding:.5rem 1.2rem;font:inherit}.error{color:#a00}</style>
</head><body><h1>${esc(title)}</h1>
${body}
</body></html>
`;
}

function form(request: string, client: string, error?: string): string {
  return page(
    'Sign in',
    `<p>The application <b>${esc(client)}</b> asks to use your FHIR data.</p>
${error ? `<p class="error" role="alert">${esc(error)}</p>` : ''}
<form method="post" action="login">
<input type="hidden" name="request" value="${esc(request)}">
<label for="username">User name</label><input id="username" name="username" autocomplete="username" required>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<label for="code">One-time code (authenticator app)</label><input id="code" name="code" inputmode="numeric" pattern="[0-9]{6}" autocomplete="one-time-code" required>
<button type="submit">Sign in</button>
</form>`,
  );
}

function errorPage(status: number, message: string): Page {
  return { status, html: page('Cannot sign in', `<p class="error" role="alert">${esc(message)}</p>`) };
}

function redirect(uri: string, params: Record<string, string | undefined>): string {
  const url = new URL(uri);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, v);
  return url.toString();
}

/** GET /auth/authorize. */
export function authorize(svc: AuthService, q: URLSearchParams, base: string): Page {
  const clientId = q.get('client_id') ?? '';
  const client = svc.registry.client(clientId);
  if (!client) return errorPage(400, `invalid_client: unknown client ${JSON.stringify(clientId)}`);
  const redirectUri = q.get('redirect_uri') ?? '';
  if (!client.redirectUris?.includes(redirectUri))
    return errorPage(400, `invalid_request: redirect_uri ${JSON.stringify(redirectUri)} is not registered for client ${clientId}`);
  const state = q.get('state') ?? undefined;
  const fail = (error: string, description: string): Page => ({
    status: 302,
    location: redirect(redirectUri, { error, error_description: description, state }),
    audit: { success: false, client: clientId, description: `${error}: ${description}` },
  });
  if (q.get('response_type') !== 'code') return fail('unsupported_response_type', 'response_type must be code');
  const challenge = q.get('code_challenge') ?? '';
  if (q.get('code_challenge_method') !== 'S256' || !/^[A-Za-z0-9_-]{43}$/.test(challenge))
    return fail('invalid_request', 'PKCE is required: code_challenge (43 base64url characters) with code_challenge_method S256');
  const aud = q.get('aud');
  if (aud && aud.replace(/\/+$/, '') !== base) return fail('invalid_request', `aud ${aud} is not this server (${base})`);
  let scope: string;
  try {
    scope = narrow(q.get('scope') ?? '', client.scopes, svc.isType);
  } catch (err) {
    if (err instanceof ScopeError) return fail('invalid_scope', err.message);
    throw err;
  }
  if (!scope.split(' ').some((s) => s.includes('/') && !s.startsWith('launch')))
    return fail('invalid_scope', 'none of the scopes asked for is allowed to this client');
  const request = svc.addPendingLogin({ client: clientId, redirectUri, scope, state, challenge, exp: Date.now() + 10 * 60_000 });
  return { status: 200, html: form(request, clientId) };
}

/** POST /auth/login (form): the password and the code; on success a redirect with the code. */
export async function login(svc: AuthService, f: URLSearchParams, address: string): Promise<Page> {
  const pending = svc.pendingLogin(f.get('request') ?? '');
  if (!pending) return errorPage(400, 'This sign-in has expired or is unknown: start again from the application.');
  const requestId = f.get('request')!;
  const name = f.get('username') ?? '';
  svc.limitLogin(address, name);
  const again = (message: string, status = 401, description = message): Page => ({
    status,
    html: form(requestId, pending.client, message),
    audit: { success: false, user: name || undefined, client: pending.client, description },
  });
  const user = svc.registry.user(name);
  if (!user) {
    // As slow as a real check, so the answer does not tell which names exist.
    await verifyPassword(f.get('password') ?? '', 'scrypt$32768$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
    return again('Wrong user name, password or code.', 401, 'unknown user');
  }
  if (svc.state.locked(name, user.generation))
    return again('This account is locked after too many wrong codes: ask an administrator to unlock it.', 403, 'account locked');
  if (!(await verifyPassword(f.get('password') ?? '', user.password)))
    return again('Wrong user name, password or code.', 401, 'wrong password');
  const step = acceptCode(user.totp, (f.get('code') ?? '').trim(), svc.state.lastStep(name));
  if (step === undefined) {
    const failures = await svc.state.codeFailed(name, user.generation);
    if (failures >= MAX_CODE_FAILURES)
      return again(
        'This account is now locked after too many wrong codes: ask an administrator to unlock it.',
        403,
        `wrong code, locked after ${failures}`,
      );
    return again('Wrong user name, password or code.', 401, `wrong or reused code (${failures} of ${MAX_CODE_FAILURES})`);
  }
  await svc.state.codeAccepted(name, step);
  svc.dropPendingLogin(requestId);
  let scope: string;
  try {
    scope = narrow(pending.scope, user.scopes, svc.isType);
  } catch (err) {
    throw new OAuthError('invalid_scope', (err as Error).message);
  }
  const resourceScopes = scope.split(' ').filter((s) => s.includes('/') && !s.startsWith('launch'));
  if (!resourceScopes.length) {
    return {
      status: 302,
      location: redirect(pending.redirectUri, {
        error: 'access_denied',
        error_description: `user ${name} has none of the scopes asked for`,
        state: pending.state,
      }),
      audit: { success: false, user: name, client: pending.client, description: 'the user has none of the scopes asked for' },
    };
  }
  const patient = resourceScopes.some((s) => s.startsWith('patient/')) ? user.patient : undefined;
  const code = svc.addCode({
    client: pending.client,
    user: name,
    scope,
    patient,
    redirectUri: pending.redirectUri,
    challenge: pending.challenge,
  });
  return {
    status: 302,
    location: redirect(pending.redirectUri, { code, state: pending.state }),
    audit: { success: true, user: name, client: pending.client, description: 'password and one-time code accepted' },
  };
}
