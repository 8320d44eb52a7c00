// FHIR R4 HTTP details (http.html) against the bundled server run bare: update-as-create is a 201,
// Location and Content-Location are absolute and name the host the client used, HEAD and OPTIONS
// answer, a body of a type the endpoint does not take is a 415.
import { RESPONSE_KEY } from 'fhir-kit-client';
import { describe, expect, it } from 'vitest';
import { statusOf } from './scenario.js';
import { httpDetailsWork } from './r4-scenario.js';
import { raw, useBareServer } from './r4-server.js';

const server = useBareServer();
const JSON_HEADERS = { 'content-type': 'application/fhir+json' };

describe('HTTP on the bare server', () => {
  it('creates by PUT with 201, answers HEAD and OPTIONS, and refuses a form body with 415', async () => {
    await httpDetailsWork(server.get().client, server.get().baseUrl);
  });

  it('gives absolute Location and Content-Location built from the Host header', async () => {
    const { client, baseUrl } = server.get();
    const created = await client.create({ resourceType: 'Patient', body: { resourceType: 'Patient', active: true } });
    expect(statusOf(created)).toBe(201);
    const response = (created as Record<typeof RESPONSE_KEY, Response>)[RESPONSE_KEY];
    expect(response.headers.get('location')).toBe(`${baseUrl}/Patient/${created.id}/_history/${created.meta.versionId}`);

    const proxied = await raw(baseUrl, 'POST', '/Patient', {
      headers: { ...JSON_HEADERS, host: 'fhir.example.test' },
      body: JSON.stringify({ resourceType: 'Patient', active: false }),
    });
    expect(proxied.status).toBe(201);
    expect(proxied.headers.location).toBe(`http://fhir.example.test/Patient/${proxied.json.id}/_history/${proxied.json.meta.versionId}`);
    const updated = await raw(baseUrl, 'PUT', `/Patient/${proxied.json.id}`, {
      headers: { ...JSON_HEADERS, host: 'fhir.example.test' },
      body: JSON.stringify({ ...proxied.json, active: true }),
    });
    expect(updated.status).toBe(200);
    expect(updated.headers.location).toBeUndefined();
    expect(updated.headers['content-location']).toBe(
      `http://fhir.example.test/Patient/${proxied.json.id}/_history/${updated.json.meta.versionId}`,
    );
    // A Host header that is not a host falls back to the address the server answered on.
    const odd = await raw(baseUrl, 'POST', '/Patient', { headers: { ...JSON_HEADERS, host: 'x/y?z' }, body: '{"resourceType":"Patient"}' });
    expect(odd.headers.location).toMatch(new RegExp(`^${baseUrl}/Patient/`));
  });

  it('answers an update-as-create inside the usual ETag/Last-Modified, then 200 for the next update', async () => {
    const { baseUrl } = server.get();
    const put = await raw(baseUrl, 'PUT', '/Observation/obs-put-1', {
      headers: JSON_HEADERS,
      body: JSON.stringify({ resourceType: 'Observation', id: 'obs-put-1', status: 'final', code: { text: 'x' } }),
    });
    expect(put.status).toBe(201);
    expect(put.headers.etag).toBe(`W/"${put.json.meta.versionId}"`);
    expect(put.headers['last-modified']).toBeDefined();
    const again = await raw(baseUrl, 'PUT', '/Observation/obs-put-1', {
      headers: JSON_HEADERS,
      body: JSON.stringify({ ...put.json, status: 'amended' }),
    });
    expect(again.status).toBe(200);
  });

  it('takes HEAD wherever GET goes, with no body', async () => {
    const { baseUrl } = server.get();
    for (const path of ['/metadata', '/Patient', '/Patient?_count=1', '/']) {
      const head = await raw(baseUrl, 'HEAD', path);
      expect(head.status, path).toBe(200);
      expect(head.text, path).toBe('');
      expect(head.headers['content-type'], path).toContain('application/fhir+json');
    }
    expect((await raw(baseUrl, 'HEAD', '/Patient/no-such-id')).status).toBe(404);
  });

  it('answers OPTIONS with the methods of the path, and an unknown method with 405 and Allow', async () => {
    const { baseUrl } = server.get();
    const meta = await raw(baseUrl, 'OPTIONS', '/metadata');
    expect(meta.status).toBe(200);
    expect(meta.json.resourceType).toBe('CapabilityStatement');
    const instance = await raw(baseUrl, 'OPTIONS', '/Patient/abc');
    expect(instance.status).toBe(200);
    expect(instance.headers.allow).toBe('GET, HEAD, PUT, PATCH, DELETE, OPTIONS');
    expect((await raw(baseUrl, 'OPTIONS', '/NoSuchType')).status).toBe(404);
    const trace = await raw(baseUrl, 'TRACE', '/Patient');
    expect(trace.status).toBe(405);
    expect(trace.headers.allow).toContain('OPTIONS');
    expect(trace.json.resourceType).toBe('OperationOutcome');
  });

  it('refuses bodies it cannot read with 415 naming the accepted types; JSON types stay accepted', async () => {
    const { baseUrl } = server.get();
    const cases: Array<[string, string, string, string]> = [
      ['POST', '/Patient', 'application/fhir+xml', '<Patient xmlns="http://hl7.org/fhir"/>'],
      ['PUT', '/Patient/p415', 'text/plain', 'resourceType=Patient'],
      ['PUT', '/Patient/p415', 'application/x-www-form-urlencoded', 'resourceType=Patient&id=p415'],
      ['POST', '/', 'application/x-www-form-urlencoded', 'resourceType=Bundle'],
      ['PATCH', '/Patient/p415', 'application/x-www-form-urlencoded', 'op=add'],
    ];
    for (const [method, path, type, body] of cases) {
      const r = await raw(baseUrl, method, path, { headers: { 'content-type': type }, body });
      expect(r.status, `${method} ${path} ${type}`).toBe(415);
      expect(r.json.resourceType).toBe('OperationOutcome');
      expect(r.json.issue[0].diagnostics).toContain(type);
      expect(r.json.issue[0].diagnostics).toContain('application/fhir+json');
    }
    expect((await raw(baseUrl, 'GET', '/Patient/p415')).status).toBe(404); // nothing was written

    const asJson = await raw(baseUrl, 'POST', '/Patient', {
      headers: { 'content-type': 'application/json' },
      body: '{"resourceType":"Patient"}',
    });
    expect(asJson.status).toBe(201);
    const patch = await raw(baseUrl, 'PATCH', `/Patient/${asJson.json.id}`, {
      headers: { 'content-type': 'application/json-patch+json' },
      body: JSON.stringify([{ op: 'add', path: '/active', value: true }]),
    });
    expect(patch.status).toBe(200);
    expect(patch.json.active).toBe(true);
    const broken = await raw(baseUrl, 'POST', '/Patient', { headers: JSON_HEADERS, body: '{"resourceType":' });
    expect(broken.status).toBe(400);
    expect(broken.json.resourceType).toBe('OperationOutcome');
  });
});
