// The node:http front end: turns HTTP requests into FhirRouter requests and FHIR responses
// (status from the OperationOutcome, ETag/Location headers, application/fhir+json). Searches
// (GET [type], POST [type]/_search, GET/POST [base]/_search, GET [base]?_type=) go to the search
// layer (search.ts); everything else to Medplum's FhirRouter.
//
// With authorization on (auth/, SMART on FHIR), /.well-known/smart-configuration and /auth/* are
// the auth service's; /metadata stays open; every other request needs a bearer token whose scopes
// allow the interaction (auth/enforce.ts), and each one is written to the audit trail.
import { badRequest, getStatus, isOk, normalizeOperationOutcome, OperationOutcomeError } from '@medplum/core';
import { type FhirRepository, type FhirRequest, type FhirRouter, type HttpMethod } from '@medplum/fhir-router';
import type { Bundle, BundleEntry, CapabilityStatement, OperationOutcome, OperationOutcomeIssue, Resource } from '@medplum/fhirtypes';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { securitySection } from './auth/discovery.js';
import { classify, refusal, searchFilter, visible, type Interaction } from './auth/enforce.js';
import { AuthService, type Authenticated } from './auth/index.js';
import { isResourceType, search, SearchError } from './search.js';

const FHIR_JSON = 'application/fhir+json; charset=utf-8';
const MAX_BODY = 16 * 1024 * 1024;
const METHODS = new Set<string>(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']);
const JSON_TYPES = new Set(['application/fhir+json', 'application/json', 'application/json-patch+json']);
const FORM = 'application/x-www-form-urlencoded';
const ALL_METHODS = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS';

export type HandlerOptions = {
  router: FhirRouter;
  repo: FhirRepository;
  /** Serialized once: the CapabilityStatement is large and does not change. */
  metadata: string;
  onError: (err: unknown) => void;
  /** SMART on FHIR authorization; undefined: none (HAKO_FHIR_AUTH=off). */
  auth?: AuthService;
};

type Body = { type: string; text: string } | undefined;

export function fhirHandler({ router, repo, metadata, onError, auth }: HandlerOptions): RequestListener {
  // With authorization, /metadata carries the security section, whose URLs follow the base URL.
  const secured = new Map<string, string>();
  const metadataFor = (base: string): string => {
    if (!auth) return metadata;
    let text = secured.get(base);
    if (!text) {
      const cs = JSON.parse(metadata) as CapabilityStatement;
      for (const rest of cs.rest ?? []) rest.security = securitySection(base);
      text = JSON.stringify(cs);
      if (secured.size > 16) secured.clear();
      secured.set(base, text);
    }
    return text;
  };
  return (req, res) => {
    handle(req, res).catch((err: unknown) => {
      onError(err);
      if (!res.headersSent) send(res, 500, outcome('exception', 'Internal server error'));
      else res.destroy();
    });
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fhir');
    const path = url.pathname.replace(/^\/+|\/+$/g, '');
    const segments = path ? path.split('/') : [];
    const base = baseUrl(req);
    // HEAD is GET without the body (node's ServerResponse drops it for a HEAD request).
    const method = req.method === 'HEAD' ? 'GET' : (req.method ?? '');

    if (auth && AuthService.owns(path)) return auth.serve(req, res, path, url, base);

    const first = segments[0];
    if (first && !first.startsWith('_') && !first.startsWith('$') && first !== 'metadata' && !isResourceType(first)) {
      await drain(req);
      send(
        res,
        404,
        outcome('not-found', `Unknown resource type ${first}: this server serves FHIR R4 resource types (see ${base}/metadata)`, 'error'),
      );
      return;
    }
    if (method === 'OPTIONS') {
      await drain(req);
      const headers = { allow: allowed(segments) };
      if (path === '' || path === 'metadata') res.writeHead(200, { 'content-type': FHIR_JSON, ...headers }).end(metadataFor(base));
      else res.writeHead(200, { ...headers, 'content-length': '0' }).end();
      return;
    }
    if (!METHODS.has(method)) {
      await drain(req);
      send(res, 405, outcome('not-supported', `Method ${req.method} is not supported`), { allow: ALL_METHODS });
      return;
    }
    if (path === 'metadata' && method === 'GET') {
      res.writeHead(200, { 'content-type': FHIR_JSON }).end(metadataFor(base));
      return;
    }

    let who: Authenticated | undefined;
    const recordFor =
      (principal: Authenticated['principal'] | undefined) =>
      (i: Interaction, status: number, description?: string): void =>
        auth?.recordRest({
          interaction: i.interaction,
          status,
          who: principal,
          address: req.socket.remoteAddress ?? 'unknown',
          server: req.socket.localAddress ?? 'unknown',
          resourceType: i.type,
          id: i.id,
          query: url.search ? url.search.slice(1) : undefined,
          description,
        });
    if (auth) {
      const a = await auth.authenticate(req);
      if ('status' in a) {
        await drain(req);
        if (a.status === 401) recordFor(undefined)(classify(method, segments), 401, a.message);
        send(res, a.status, outcome(a.status === 401 ? 'login' : 'throttled', a.message), a.headers);
        return;
      }
      who = a;
    }
    const record = recordFor(who?.principal);

    let body: Body;
    try {
      body = await readBody(req);
    } catch (err) {
      const oo = normalizeOperationOutcome(err);
      send(res, getStatus(oo), oo);
      return;
    }

    // Searches.
    const searchPost = method === 'POST' && (path === '_search' || (segments.length === 2 && segments[1] === '_search'));
    const searchGet =
      method === 'GET' &&
      (segments.length === 0 || path === '_search' || (segments.length === 1 && !first!.startsWith('_') && !first!.startsWith('$')));
    if (searchPost || searchGet) {
      const params = [...url.searchParams];
      if (body) {
        if (!searchPost || body.type !== FORM) {
          send(res, 415, unsupportedMediaType(body.type, `${FORM} (search parameters)`));
          return;
        }
        params.push(...new URLSearchParams(body.text));
      }
      const resourceType = segments.length >= 1 && first !== '_search' ? first : undefined;
      const interaction = classify(method, segments);
      if (who) {
        const why = await refusal(who.grant, interaction, repo);
        if (why) {
          record(interaction, 403, why);
          send(res, 403, outcome('forbidden', why));
          return;
        }
      }
      try {
        const strict = /\bhandling\s*=\s*strict\b/i.test(String(req.headers.prefer ?? ''));
        const allow = who ? searchFilter(who.grant) : undefined;
        send(res, 200, await search(repo, { resourceType, params, strict, base, allow }));
        record(interaction, 200);
      } catch (err) {
        if (!(err instanceof SearchError)) throw err;
        record(interaction, err.status, err.message);
        send(res, err.status, outcome(err.code, err.message, 'error'));
      }
      return;
    }

    let parsed: unknown;
    if (body) {
      if (!JSON_TYPES.has(body.type)) {
        send(
          res,
          415,
          unsupportedMediaType(body.type, 'application/fhir+json or application/json (application/json-patch+json for PATCH)'),
        );
        return;
      }
      try {
        parsed = JSON.parse(body.text);
      } catch {
        send(res, 400, badRequest('The request body is not valid JSON'));
        return;
      }
    }

    // An update of an id that does not exist creates it: 201, not 200 (http.html#update).
    const isInstance = segments.length === 2 && !segments[1].startsWith('_') && !segments[1].startsWith('$');
    const creates = method === 'PUT' && isInstance && !(await exists(repo, first!, segments[1]));

    const interaction = classify(method, segments, parsed, req.headers['if-none-exist'] !== undefined);
    if (who && (interaction.interaction === 'batch' || interaction.interaction === 'transaction') && isBundle(parsed)) {
      const [bundleStatus, answer] = await bundleRequest(who, parsed, interaction.interaction, record);
      send(res, bundleStatus, answer);
      return;
    }
    if (who) {
      const why = await refusal(who.grant, interaction, repo, parsed);
      if (why) {
        record(interaction, 403, why);
        send(res, 403, outcome('forbidden', why));
        return;
      }
    }

    const fhirReq: FhirRequest = {
      method: method as HttpMethod,
      url: path + url.search,
      pathname: '',
      params: {},
      query: {},
      body: parsed,
      headers: req.headers,
      config: { transactions: true },
    };
    let [oo, resource] = await router.handleRequest(fhirReq, repo);
    let status = getStatus(oo);
    if (!isOk(oo)) {
      record(interaction, status, oo.issue?.[0]?.diagnostics);
      send(res, status, oo);
      return;
    }
    if (who && resource && method === 'GET') {
      const shown = visible(who.grant, resource);
      if (!shown) {
        const why = `${resource.resourceType}/${resource.id} is not in the compartment of ${who.grant.patient} (scopes: ${who.grant.scope})`;
        record(interaction, 403, why);
        send(res, 403, outcome('forbidden', why));
        return;
      }
      resource = shown;
    }
    if (!interaction.id && resource?.id && resource.resourceType === interaction.type) interaction.id = resource.id;
    record(interaction, creates && status === 200 ? 201 : status);
    if (creates && status === 200) status = 201;
    const headers: Record<string, string> = {};
    const versionId = resource?.meta?.versionId;
    if (resource?.id && versionId && resource.resourceType !== 'Bundle') {
      headers.etag = `W/"${versionId}"`;
      if (resource.meta?.lastUpdated) headers['last-modified'] = new Date(resource.meta.lastUpdated).toUTCString();
      const versionUrl = `${base}/${resource.resourceType}/${resource.id}/_history/${versionId}`;
      if (status === 201) headers.location = versionUrl;
      if (method !== 'GET' && method !== 'DELETE') headers['content-location'] = versionUrl;
    }
    send(res, status, resource ?? oo, headers);
  }

  /**
   * A batch or transaction under authorization: every entry is checked as if it came alone. A
   * transaction with a refused entry is refused whole (403); a batch runs the entries allowed and
   * answers 403 in the place of each refused one. Reads in either are filtered like single reads.
   */
  async function bundleRequest(
    who: Authenticated,
    bundle: Bundle,
    kind: string,
    record: (i: Interaction, status: number, description?: string) => void,
  ): Promise<[number, Resource]> {
    const entries = bundle.entry ?? [];
    const checked = await Promise.all(
      entries.map(async (e) => {
        const request = e.request;
        if (!request?.method || !request.url) return { i: classify('', []), why: undefined };
        const u = new URL(request.url, 'http://fhir/');
        const segs = u.pathname
          .replace(/^\/+|\/+$/g, '')
          .split('/')
          .filter(Boolean);
        const i = classify(request.method, segs, e.resource, request.ifNoneExist !== undefined);
        if (i.interaction === 'batch' || i.interaction === 'transaction')
          return { i, why: 'a Bundle entry cannot be a batch or transaction' };
        return { i, why: await refusal(who.grant, i, repo, e.resource) };
      }),
    );
    const refused = checked.flatMap((c, n) =>
      c.why ? [`entry ${n} (${entries[n].request?.method} ${entries[n].request?.url}): ${c.why}`] : [],
    );
    if (kind === 'transaction' && refused.length) {
      for (const c of checked) record(c.i, 403, c.why ?? 'the transaction was refused for another entry');
      return [403, outcome('forbidden', `the transaction is refused: ${refused.join('; ')}`)];
    }
    const allowed = entries.filter((_, n) => !checked[n].why);
    const fhirReq: FhirRequest = {
      method: 'POST',
      url: '',
      pathname: '',
      params: {},
      query: {},
      body: { ...bundle, entry: allowed },
      headers: {},
      config: { transactions: true },
    };
    const [oo, result] = await router.handleRequest(fhirReq, repo);
    if (!isOk(oo) || result?.resourceType !== 'Bundle') {
      for (const c of checked) record(c.i, getStatus(oo), oo.issue?.[0]?.diagnostics);
      return [getStatus(oo), oo];
    }
    const answers = [...((result as Bundle).entry ?? [])];
    const out: BundleEntry[] = checked.map((c, n) => {
      if (c.why) {
        record(c.i, 403, c.why);
        return { response: { status: '403 Forbidden', outcome: outcome('forbidden', c.why) } };
      }
      const answer = answers.shift() ?? {};
      const entryStatus = Number.parseInt(answer.response?.status ?? '0', 10);
      if (answer.resource && entries[n].request?.method === 'GET') {
        const shown = visible(who.grant, answer.resource);
        if (!shown) {
          const why = `${answer.resource.resourceType}/${answer.resource.id} is not in the compartment of ${who.grant.patient}`;
          record(c.i, 403, why);
          return { response: { status: '403 Forbidden', outcome: outcome('forbidden', why) } };
        }
        answer.resource = shown;
      }
      if (!c.i.id && answer.resource?.id && answer.resource.resourceType === c.i.type) c.i.id = answer.resource.id;
      record(c.i, entryStatus);
      return answer;
    });
    return [getStatus(oo), { ...(result as Bundle), entry: out }];
  }
}

function isBundle(value: unknown): value is Bundle {
  return typeof value === 'object' && value !== null && (value as Resource).resourceType === 'Bundle';
}

/** The base URL a Host header names (http://HOST), or undefined when it is missing or not a host. */
export function baseFromHost(host: string | undefined): string | undefined {
  return host && /^[A-Za-z0-9.\-_~]+(:\d+)?$|^\[[0-9A-Fa-f:.]+\](:\d+)?$/.test(host) ? `http://${host}` : undefined;
}

/** The server's base URL as the client addressed it (Host), for Location and links. */
function baseUrl(req: IncomingMessage): string {
  const fromHost = baseFromHost(req.headers.host);
  if (fromHost) return fromHost;
  const { localAddress, localPort } = req.socket;
  const addr = localAddress?.includes(':') ? `[${localAddress}]` : (localAddress ?? '127.0.0.1');
  return `http://${addr}:${localPort}`;
}

function allowed(segments: string[]): string {
  if (segments.length === 0) return 'GET, HEAD, POST, OPTIONS';
  if (segments[0] === 'metadata') return 'GET, HEAD, OPTIONS';
  if (segments.length === 1) return segments[0] === '_search' ? 'GET, HEAD, POST, OPTIONS' : ALL_METHODS;
  if (segments.length === 2 && segments[1] === '_search') return 'POST, OPTIONS';
  if (segments.length === 2) return 'GET, HEAD, PUT, PATCH, DELETE, OPTIONS';
  return 'GET, HEAD, OPTIONS';
}

async function exists(repo: FhirRepository, type: string, id: string): Promise<boolean> {
  return repo.readResource(type, id).then(
    () => true,
    () => false,
  );
}

async function drain(req: IncomingMessage): Promise<void> {
  for await (const chunk of req as AsyncIterable<Buffer>) void chunk;
}

async function readBody(req: IncomingMessage): Promise<Body> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new OperationOutcomeError(badRequest(`The request body exceeds ${MAX_BODY} bytes`));
    chunks.push(chunk);
  }
  if (size === 0) return undefined;
  const type = (req.headers['content-type'] ?? 'application/fhir+json').split(';')[0].trim().toLowerCase();
  return { type, text: Buffer.concat(chunks).toString('utf8') };
}

function unsupportedMediaType(type: string, accepted: string): OperationOutcome {
  return outcome('not-supported', `Content-Type ${type} is not supported here: send ${accepted}`, 'error');
}

function send(res: ServerResponse, status: number, body: Resource, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': FHIR_JSON, ...headers }).end(JSON.stringify(body));
}

function outcome(
  code: OperationOutcomeIssue['code'],
  diagnostics: string,
  severity: OperationOutcomeIssue['severity'] = 'error',
): OperationOutcome {
  return { resourceType: 'OperationOutcome', issue: [{ severity, code, diagnostics }] };
}
