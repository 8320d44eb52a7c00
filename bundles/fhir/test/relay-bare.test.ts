// The FHIR server as a blind relay, served bare (the in-hako run is relay-in-hako.test.ts):
// a sealed envelope posted as a Binary, found by its recipient's kid in meta.tag, fetched and
// opened by the recipient; the server's data directory never holds the plaintext.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openEnvelope, sealEnvelope } from '../../../src/seal/envelope.js';
import { identityOf, newKeys } from '../../../src/seal/keys.js';
import { binaryOf, JOSE_JSON, RECIPIENT_TAG, unwrapBinary } from '../../../src/seal/relay.js';
import { raw, useBareServer } from './r4-server.js';

const server = useBareServer();
const keys = fs.mkdtempSync(path.join(os.tmpdir(), 'relay-bare-'));
afterAll(() => fs.rmSync(keys, { recursive: true, force: true }));
const [a, b, c] = ['org-a', 'org-b', 'org-c'].map((n) => newKeys(n, keys).key);
const MARKER = `relay-marker-${process.pid}-9d1e`;

describe('FHIR server as a blind relay (bare)', () => {
  it('stores a sealed Bundle as a Binary, finds it by recipient kid, returns it for the recipient to open', async () => {
    const { baseUrl } = server.get();
    const bundle = {
      resourceType: 'Bundle',
      type: 'collection',
      entry: [{ resource: { resourceType: 'Patient', name: [{ family: MARKER }] } }],
    };
    const env = await sealEnvelope(new TextEncoder().encode(JSON.stringify(bundle)), a, [identityOf(b)]);
    const posted = await raw(baseUrl, 'POST', '/Binary', {
      headers: { 'content-type': 'application/fhir+json' },
      body: JSON.stringify(binaryOf(env, JSON.stringify(env))),
    });
    expect(posted.status, posted.text).toBe(201);
    expect(posted.text).not.toContain(MARKER);
    // B searches by its own kid; C (not a recipient) finds nothing addressed to it.
    const found = await raw(baseUrl, 'GET', `/Binary?_tag=${encodeURIComponent(`${RECIPIENT_TAG}|${b.kid}`)}`);
    expect(found.status, found.text).toBe(200);
    expect(found.json.entry.map((e: { resource: { id: string } }) => e.resource.id)).toEqual([posted.json.id]);
    const none = await raw(baseUrl, 'GET', `/Binary?_tag=${encodeURIComponent(`${RECIPIENT_TAG}|${c.kid}`)}`);
    expect(none.json.entry ?? []).toEqual([]);
    const read = await raw(baseUrl, 'GET', `/Binary/${posted.json.id}`, { headers: { accept: 'application/fhir+json' } });
    expect(read.status).toBe(200);
    expect(read.json.contentType).toBe(JOSE_JSON);
    const opened = await openEnvelope(unwrapBinary(read.text), b, identityOf(a));
    expect(JSON.parse(new TextDecoder().decode(opened.plaintext))).toEqual(bundle);
    await expect(openEnvelope(unwrapBinary(read.text), c)).rejects.toThrow(/not sealed to you/);
  });
});
