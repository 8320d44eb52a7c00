// The node:http front end: turns HTTP requests into FhirRouter requests and FHIR responses
// (status from the OperationOutcome, ETag/Location headers, application/fhir+json).
import { badRequest, getStatus, isOk, normalizeOperationOutcome, OperationOutcomeError } from '@medplum/core';
import { type FhirRepository, type FhirRequest, type FhirRouter, type HttpMethod } from '@medplum/fhir-router';
import type { OperationOutcome, Resource } from '@medplum/fhirtypes';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';

const FHIR_JSON = 'application/fhir+json; charset=utf-8';
const MAX_BODY = 16 * 1024 * 1024;
const METHODS = new Set<string>(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']);
const JSON_TYPES = new Set(['application/fhir+json', 'application/json', 'application/json-patch+json']);

export type HandlerOptions = {
  router: FhirRouter;
  repo: FhirRepository;
  /** Serialized once: the CapabilityStatement is large and does not change. */
  metadata: string;
  onError: (err: unknown) => void;
};

export function fhirHandler({ router, repo, metadata, onError }: HandlerOptions): RequestListener {
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
    if (!METHODS.has(req.method ?? '')) {
      send(res, 405, outcome('not-supported', `Method ${req.method} is not supported`));
      return;
    }
    if (path === 'metadata' && req.method === 'GET') {
      res.writeHead(200, { 'content-type': FHIR_JSON }).end(metadata);
      return;
    }
    let body: unknown;
    try {
      body = await readBody(req);
    } catch (err) {
      const oo = normalizeOperationOutcome(err);
      send(res, getStatus(oo), oo);
      return;
    }
    const fhirReq: FhirRequest = {
      method: req.method as HttpMethod,
      url: path + url.search,
      pathname: '',
      params: {},
      query: {},
      body,
      headers: req.headers,
      config: { transactions: true },
    };
    const [oo, resource] = await router.handleRequest(fhirReq, repo);
    const status = getStatus(oo);
    if (!isOk(oo)) {
      send(res, status, oo);
      return;
    }
    const headers: Record<string, string> = {};
    const versionId = resource?.meta?.versionId;
    if (resource?.id && versionId && resource.resourceType !== 'Bundle') {
      headers.etag = `W/"${versionId}"`;
      if (resource.meta?.lastUpdated) headers['last-modified'] = new Date(resource.meta.lastUpdated).toUTCString();
      if (status === 201) headers.location = `${resource.resourceType}/${resource.id}/_history/${versionId}`;
    }
    send(res, status, resource ?? oo, headers);
  }
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new OperationOutcomeError(badRequest(`The request body exceeds ${MAX_BODY} bytes`));
    chunks.push(chunk);
  }
  if (size === 0) return undefined;
  const text = Buffer.concat(chunks).toString('utf8');
  const type = (req.headers['content-type'] ?? 'application/fhir+json').split(';')[0].trim().toLowerCase();
  if (type === 'application/x-www-form-urlencoded') return Object.fromEntries(new URLSearchParams(text));
  if (!JSON_TYPES.has(type)) throw new OperationOutcomeError(badRequest(`Unsupported content type ${type}`));
  try {
    return JSON.parse(text);
  } catch {
    throw new OperationOutcomeError(badRequest('The request body is not valid JSON'));
  }
}

function send(res: ServerResponse, status: number, body: Resource, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': FHIR_JSON, ...headers }).end(JSON.stringify(body));
}

function outcome(code: 'exception' | 'not-supported', diagnostics: string): OperationOutcome {
  return { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code, diagnostics }] };
}
