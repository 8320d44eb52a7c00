// SMART on FHIR authorization for the server: the auth store in the data volume, the OAuth
// endpoints (/.well-known/smart-configuration, /auth/*), bearer-token authentication with
// per-client budgets for the FHIR API, and the audit writer. http.ts calls it; main.ts opens it:
//
//   const auth = await AuthService.open(dataDir, { repo, log, env: process.env });  // undefined when HAKO_FHIR_AUTH=off
//   fhirHandler({ ..., auth });   ...   await auth?.close();  // before repo.close()
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { decodeJwt } from 'jose';
import { isResourceType } from '../search.js';
import { AuditWriter, loginEvent, restEvent, type AuditStore, type Principal, type RestAudit } from './audit.js';
import { PATHS, smartConfiguration } from './discovery.js';
import { OAuthError } from './errors.js';
import { sameSecret, signingKey, supervisorSecret, SUPERVISOR_PREFIX } from './keys.js';
import { Limiter, parseRate, type Rate } from './limits.js';
import { authorize, login, type Page, type PendingLogin } from './login.js';
import { REFRESH_SECONDS, revoke, token, USER_TOKEN_SECONDS } from './oauth.js';
import { ensureAuthDir, RegistryView } from './registry.js';
import { grantOf, type Grant } from './scopes.js';
import { ServerState } from './state.js';
import { randomToken, Tokens } from './tokens.js';

export type { Principal } from './audit.js';
export type Authenticated = { principal: Principal; grant: Grant };
export type Refused = { status: 401 | 429; headers: Record<string, string>; message: string };

type Code = {
  client: string;
  user: string;
  scope: string;
  patient?: string;
  redirectUri: string;
  challenge: string;
  exp: number;
  used?: boolean;
  refresh?: string;
};

const MAX_FORM = 64 * 1024;
const SUPERVISOR_GRANT: Grant = grantOf('system/AuditEvent.c', () => true);

export type AuthOptions = { repo: AuditStore; log: (sentence: string) => void; env: NodeJS.ProcessEnv };

export class AuthService {
  readonly isType = isResourceType;
  readonly registry: RegistryView;
  readonly audit: AuditWriter;
  private readonly limiter = new Limiter();
  private readonly pending = new Map<string, PendingLogin>();
  private readonly codes = new Map<string, Code>();
  private readonly grants = new Map<string, Grant>();
  private readonly rates: { token: Rate; login: Rate; unauth: Rate };

  private constructor(
    dataDir: string,
    readonly tokens: Tokens,
    readonly state: ServerState,
    private readonly supervisor: string,
    private readonly jwks: string,
    o: AuthOptions,
  ) {
    this.registry = new RegistryView(dataDir, o.log);
    this.audit = new AuditWriter(o.repo, o.log);
    this.rates = {
      token: parseRate(o.env.HAKO_FHIR_RATE_TOKEN, { count: 30, seconds: 60 }, 'HAKO_FHIR_RATE_TOKEN'),
      login: parseRate(o.env.HAKO_FHIR_RATE_LOGIN, { count: 20, seconds: 60 }, 'HAKO_FHIR_RATE_LOGIN'),
      unauth: parseRate(o.env.HAKO_FHIR_RATE_UNAUTH, { count: 120, seconds: 60 }, 'HAKO_FHIR_RATE_UNAUTH'),
    };
  }

  /** Opens the auth store (making the signing key and hako up's secret on the first start); undefined when HAKO_FHIR_AUTH=off. */
  static async open(dataDir: string, o: AuthOptions): Promise<AuthService | undefined> {
    const mode = o.env.HAKO_FHIR_AUTH ?? 'on';
    if (mode === 'off') {
      o.log('authorization is OFF (HAKO_FHIR_AUTH=off): anyone who reaches the port reads and writes every resource');
      return undefined;
    }
    if (mode !== 'on') throw new Error(`HAKO_FHIR_AUTH=${mode} is not on or off`);
    ensureAuthDir(dataDir);
    const key = await signingKey(dataDir);
    const state = new ServerState(dataDir);
    const svc = new AuthService(
      dataDir,
      new Tokens(key, state),
      state,
      supervisorSecret(dataDir),
      JSON.stringify({ keys: [key.publicJwk] }),
      o,
    );
    await svc.registry.refresh();
    if (Object.keys(svc.registry.current.clients).length === 0) {
      o.log(
        'authorization is on and no client is registered yet. To get a first token, from the repository ' +
          '(--data DIR for another data directory than bundles/fhir/data, --url URL for another server than 127.0.0.1:8080): ' +
          'npx hako-fhir clients add reader --new-key reader.private.jwk --scopes "system/Patient.rs", then ' +
          'npx hako-fhir token --client reader --key reader.private.jwk --scope "system/Patient.rs" ' +
          '(bundles/fhir/README.md, "Authorization")',
      );
    }
    return svc;
  }

  async close(): Promise<void> {
    await this.audit.close();
  }

  // ---- the OAuth endpoints

  /** Whether the path (no leading slash) is one of the open endpoints served here. */
  static owns(path: string): boolean {
    return path === '.well-known/smart-configuration' || path.startsWith('auth/');
  }

  async serve(req: IncomingMessage, res: ServerResponse, path: string, url: URL, base: string): Promise<void> {
    const address = req.socket.remoteAddress ?? 'unknown';
    const server = req.socket.localAddress ?? 'unknown';
    const method = req.method === 'HEAD' ? 'GET' : req.method;
    if (path === '.well-known/smart-configuration' && method === 'GET') return sendJson(res, 200, smartConfiguration(base));
    if (path === PATHS.jwks && method === 'GET') return void res.writeHead(200, { 'content-type': 'application/json' }).end(this.jwks);
    if (path === PATHS.authorize && method === 'GET') {
      await this.registry.refresh();
      return this.sendPage(res, authorize(this, url.searchParams, base), address, server, 'authorize');
    }
    const post = [PATHS.token, PATHS.revoke, PATHS.login] as string[];
    if (!post.includes(path)) {
      await drain(req);
      return sendJson(res, 404, { error: 'invalid_request', error_description: `no endpoint ${req.method} /${path}` });
    }
    if (method !== 'POST') {
      await drain(req);
      res.setHeader('allow', 'POST');
      return sendJson(res, 405, { error: 'invalid_request', error_description: `/${path} takes POST` });
    }
    let what = path === PATHS.login ? 'login' : path === PATHS.revoke ? 'revoke' : 'token';
    let client: string | undefined;
    let user: string | undefined;
    try {
      const form = await readForm(req);
      client = form.get('client_id') ?? undefined;
      await this.registry.refresh();
      if (path === PATHS.login) {
        user = form.get('username') || undefined;
        return await this.sendPage(res, await login(this, form, address), address, server, 'login');
      }
      if (path === PATHS.revoke) {
        await revoke(this, form);
        return sendJson(res, 200, {});
      }
      what = `token (${form.get('grant_type') ?? 'no grant_type'})`;
      const tokenUrls = [`${base}/${PATHS.token}`, ...(this.publicUrl ? [`${this.publicUrl}/${PATHS.token}`] : [])];
      const answer = await token(this, form, tokenUrls, address);
      this.audit.record(
        loginEvent({ success: true, what, client: answer.client, user: answer.user, address, server, description: 'granted' }),
      );
      return sendJson(res, 200, answer.body);
    } catch (err) {
      if (err instanceof RateLimited) {
        this.audit.record(
          loginEvent({ success: false, what, client, user, address, server, description: `rate limited (${err.message})` }),
        );
        res.setHeader('retry-after', String(err.retryAfter));
        if (path === PATHS.login)
          return void res
            .writeHead(429, { 'content-type': 'text/plain; charset=utf-8' })
            .end(`Too many attempts: try again in ${err.retryAfter} s.\n`);
        return sendJson(res, 429, {
          error: 'invalid_request',
          error_description: `too many requests: ${err.message}; retry after ${err.retryAfter} s`,
        });
      }
      if (!(err instanceof OAuthError)) throw err;
      this.audit.record(loginEvent({ success: false, what, client, user, address, server, description: `${err.code}: ${err.message}` }));
      if (err.status === 401) res.setHeader('www-authenticate', 'Bearer realm="hako-fhir", error="invalid_client"');
      return sendJson(res, err.status, { error: err.code, error_description: err.message });
    }
  }

  private get publicUrl(): string | undefined {
    return process.env.HAKO_FHIR_PUBLIC_URL?.replace(/\/+$/, '');
  }

  private sendPage(res: ServerResponse, p: Page, address: string, server: string, what: string): void {
    if (p.audit) this.audit.record(loginEvent({ ...p.audit, what, address, server }));
    const headers: Record<string, string> = {
      'cache-control': 'no-store',
      'x-frame-options': 'DENY',
      'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
    };
    if (p.location) res.writeHead(p.status, { ...headers, location: p.location }).end();
    else res.writeHead(p.status, { ...headers, 'content-type': 'text/html; charset=utf-8' }).end(p.html);
  }

  // ---- state the endpoints share

  unverifiedIssuer(assertion: string): string | undefined {
    try {
      const iss = decodeJwt(assertion).iss;
      return typeof iss === 'string' ? iss : undefined;
    } catch {
      return undefined;
    }
  }

  limitToken(address: string, client: string | undefined): void {
    let wait = this.limiter.take(`token-addr\n${address}`, this.rates.token);
    if (wait) throw new RateLimited(`token requests from ${address}`, wait);
    if (client) {
      wait = this.limiter.take(`token-client\n${client}`, this.rates.token);
      if (wait) throw new RateLimited(`token requests for client ${client}`, wait);
    }
  }

  limitLogin(address: string, user: string): void {
    let wait = this.limiter.take(`login-addr\n${address}`, this.rates.login);
    if (wait) throw new RateLimited(`sign-ins from ${address}`, wait);
    wait = this.limiter.take(`login-user\n${user}`, this.rates.login);
    if (wait) throw new RateLimited(`sign-ins as ${user}`, wait);
  }

  addPendingLogin(p: PendingLogin): string {
    const now = Date.now();
    for (const [k, v] of this.pending) if (v.exp < now) this.pending.delete(k);
    const id = randomBytes(24).toString('base64url');
    this.pending.set(id, p);
    return id;
  }

  pendingLogin(id: string): PendingLogin | undefined {
    const p = this.pending.get(id);
    return p && p.exp > Date.now() ? p : undefined;
  }

  dropPendingLogin(id: string): void {
    this.pending.delete(id);
  }

  addCode(c: Omit<Code, 'exp'>): string {
    const now = Date.now();
    for (const [k, v] of this.codes) if (v.exp < now - 10 * 60_000) this.codes.delete(k);
    const code = randomToken();
    this.codes.set(code, { ...c, exp: now + 60_000 });
    return code;
  }

  /** The code's record; a used one stays known for 10 minutes so a second use is recognized. */
  takeCode(code: string): Code | undefined {
    const c = this.codes.get(code);
    if (!c) return undefined;
    return c.used || c.exp > Date.now() ? c : undefined;
  }

  async issueUserTokens(client: string, user: string, scope: string, patient?: string): Promise<Record<string, unknown>> {
    const access = await this.tokens.issue({ kind: 'user', client_id: client, sub: user, scope, patient }, USER_TOKEN_SECONDS);
    const body: Record<string, unknown> = { access_token: access, token_type: 'Bearer', expires_in: USER_TOKEN_SECONDS, scope };
    if (patient) body.patient = patient.replace(/^Patient\//, '');
    if (scope.split(' ').includes('offline_access') || scope.split(' ').includes('online_access')) {
      const refresh = randomToken();
      const generation = this.registry.user(user)!.generation;
      await this.state.addRefresh(refresh, {
        client,
        user,
        scope,
        patient,
        generation,
        exp: Math.floor(Date.now() / 1000) + REFRESH_SECONDS,
      });
      body.refresh_token = refresh;
    }
    return body;
  }

  // ---- the FHIR API

  /** The caller of a FHIR request, or why it is refused (401, or 429 over the budget). */
  async authenticate(req: IncomingMessage): Promise<Authenticated | Refused> {
    this.registry.tick();
    const header = req.headers.authorization;
    const address = req.socket.remoteAddress ?? 'unknown';
    const bearer = header && bearerToken(header);
    const unauthorized = (
      error?: string,
      message = 'a bearer access token is required (see /.well-known/smart-configuration)',
    ): Refused => {
      const wait = this.limiter.take(`unauth\n${address}`, this.rates.unauth);
      if (wait) return { status: 429, headers: { 'retry-after': String(wait) }, message: `too many unauthorized requests from ${address}` };
      return {
        status: 401,
        headers: { 'www-authenticate': `Bearer realm="hako-fhir"${error ? `, error="${error}"` : ''}` },
        message,
      };
    };
    if (!bearer) return unauthorized(header ? 'invalid_request' : undefined);
    if (bearer.startsWith(SUPERVISOR_PREFIX)) {
      if (!sameSecret(bearer, this.supervisor)) return unauthorized('invalid_token', 'the supervisor credential is not this server’s');
      return { principal: { kind: 'supervisor', client: 'hako-supervisor' }, grant: SUPERVISOR_GRANT };
    }
    const claims = this.tokens.remembered(bearer) ?? (await this.tokens.verify(bearer));
    if (!claims) return unauthorized('invalid_token', 'the access token is invalid or expired');
    let principal: Principal;
    if (claims.kind === 'admin') principal = { kind: 'admin', client: claims.client_id };
    else {
      const client = this.registry.client(claims.client_id);
      if (!client) return unauthorized('invalid_token', `client ${claims.client_id} is no longer registered`);
      if (claims.kind === 'user' && !this.registry.user(claims.sub))
        return unauthorized('invalid_token', `user ${claims.sub} is no longer registered`);
      principal = claims.kind === 'user' ? { kind: 'user', client: client.id, user: claims.sub } : { kind: 'client', client: client.id };
      const wait = this.limiter.take(`budget\n${client.id}`, { count: client.budget, seconds: 60 });
      if (wait)
        return {
          status: 429,
          headers: { 'retry-after': String(wait) },
          message: `client ${client.id} is over its budget of ${client.budget} requests a minute`,
        };
    }
    const key = `${claims.scope}\n${claims.patient ?? ''}`;
    let grant = this.grants.get(key);
    if (!grant) {
      if (this.grants.size > 10_000) this.grants.clear();
      grant = grantOf(claims.scope, this.isType, claims.patient);
      this.grants.set(key, grant);
    }
    return { principal, grant };
  }

  recordRest(a: RestAudit): void {
    this.audit.record(restEvent(a));
  }
}

export class RateLimited extends Error {
  constructor(
    message: string,
    readonly retryAfter: number,
  ) {
    super(message);
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res
    .writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', pragma: 'no-cache' })
    .end(JSON.stringify(body));
}

async function drain(req: IncomingMessage): Promise<void> {
  for await (const chunk of req as AsyncIterable<Buffer>) void chunk;
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  const chunks: Buffer[] = [];
  let size = 0;
  let tooBig = false;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_FORM) tooBig = true;
    else chunks.push(chunk);
  }
  if (tooBig) throw new OAuthError('invalid_request', `the request body exceeds ${MAX_FORM} bytes`);
  if (type !== 'application/x-www-form-urlencoded')
    throw new OAuthError('invalid_request', 'send the parameters as application/x-www-form-urlencoded');
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

/** The token of an `Authorization: Bearer TOKEN` header (scheme case-insensitive, RFC 6750), or undefined. */
function bearerToken(header: string): string | undefined {
  if (header.length < 8 || header.slice(0, 7).toLowerCase() !== 'bearer ') return undefined;
  const token = header.slice(7).trimStart();
  return token && !/\s/.test(token) ? token : undefined;
}
