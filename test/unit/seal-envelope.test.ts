// Sealed envelopes (src/seal/envelope.ts): round trips, and every alteration refused with a
// reason — each refusal is checked against a control that opens the untouched envelope.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HakoError } from '../../src/errors.js';
import { b64u } from '../../src/seal/b64.js';
import { canonicalJson } from '../../src/seal/canonical-json.js';
import { envelopeDigest, openEnvelope, protectedHeader, sealEnvelope, type Envelope } from '../../src/seal/envelope.js';
import { identityOf, newKeys, sign } from '../../src/seal/keys.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'seal-env-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const [alice, bob, carol, dave, mallory] = ['alice', 'bob', 'carol', 'dave', 'mallory'].map((n) => newKeys(n, dir).key);
const id = identityOf;
const bundle = (marker: string) =>
  new TextEncoder().encode(
    JSON.stringify({ resourceType: 'Bundle', type: 'collection', entry: [{ resource: { resourceType: 'Patient', id: marker } }] }),
  );
const text = (e: Envelope) => JSON.stringify(e, null, 2);
const refusal = async (p: Promise<unknown>): Promise<string> => {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(HakoError);
    return (e as Error).message;
  }
  throw new Error('opened, expected a refusal');
};

describe('sealed envelopes', () => {
  it('round-trips to one recipient, with the sender named', async () => {
    const env = await sealEnvelope(bundle('one'), alice, [id(bob)]);
    const o = await openEnvelope(text(env), bob, id(alice));
    expect(new TextDecoder().decode(o.plaintext)).toBe(new TextDecoder().decode(bundle('one')));
    expect(o.sender.kid).toBe(alice.kid);
    expect(protectedHeader(env)).toMatchObject({ enc: 'C20P', cty: 'application/fhir+json', skid: alice.kid, rkids: [bob.kid] });
    expect(env.recipients[0].header).toMatchObject({ alg: 'HPKE-4-KE', kid: bob.kid });
  });

  it('round-trips to many recipients; each opens the same content, a non-recipient cannot', async () => {
    const env = await sealEnvelope(bundle('many'), alice, [id(bob), id(carol), id(dave)]);
    expect(env.recipients).toHaveLength(3);
    for (const k of [bob, carol, dave])
      expect(Buffer.from((await openEnvelope(text(env), k)).plaintext)).toEqual(Buffer.from(bundle('many')));
    expect(await refusal(openEnvelope(text(env), mallory))).toMatch(
      /^not sealed to you: mallory \(fingerprint [0-9a-f ]+\) is not among its 3 recipients$/,
    );
  });

  it('refuses a wrong expected sender', async () => {
    const env = await sealEnvelope(bundle('s'), alice, [id(bob)]);
    expect(await refusal(openEnvelope(text(env), bob, id(carol)))).toMatch(/^sealed by alice .*, not by the expected sender carol/);
  });

  it('refuses the envelope with any one byte flipped', async () => {
    const env = text(await sealEnvelope(bundle('flip'), alice, [id(bob), id(carol)]));
    await openEnvelope(env, bob); // control
    const bytes = Buffer.from(env);
    const reasons = new Set<string>();
    for (let i = 0; i < bytes.length; i++) {
      const b = Buffer.from(bytes);
      b[i] ^= 0x01;
      reasons.add((await refusal(openEnvelope(b.toString('latin1'), bob))).replace(/\[\d+\]|[0-9a-f]{32}|"[^"]*"/g, '…').slice(0, 40));
    }
    // Refused for different reasons depending on where the byte was (JSON, shape, signature...).
    expect(reasons.size).toBeGreaterThan(3);
  });

  it('refuses the envelope truncated anywhere', async () => {
    const env = text(await sealEnvelope(bundle('trunc'), alice, [id(bob)]));
    for (let n = 0; n < env.length; n += 7) await refusal(openEnvelope(env.slice(0, n), bob));
    // the ciphertext shortened by one byte, the rest intact: the signature catches it
    const e = JSON.parse(env) as Envelope;
    e.ciphertext = e.ciphertext.slice(0, -2);
    expect(await refusal(openEnvelope(JSON.stringify(e), bob))).toMatch(
      /signature of alice .* does not verify: the envelope was changed after it was sealed/,
    );
  });

  it('refuses headers, content or signatures swapped between two envelopes of the same sender', async () => {
    const a = await sealEnvelope(bundle('A'), alice, [id(bob)]);
    // another second: the protected headers differ (within one second they are equal, nothing to swap)
    const b = await sealEnvelope(bundle('B'), alice, [id(bob)], new Date(Date.now() + 1000));
    expect(b.protected).not.toBe(a.protected);
    for (const part of ['protected', 'iv', 'ciphertext', 'tag', 'signature', 'recipients'] as const) {
      const mixed = { ...a, [part]: b[part] };
      expect(await refusal(openEnvelope(text(mixed), bob)), part).toMatch(/does not verify/);
    }
  });

  it('refuses a removed, added or reordered recipient', async () => {
    const env = await sealEnvelope(bundle('r'), alice, [id(bob), id(carol)]);
    const removed = { ...env, recipients: [env.recipients[0]] };
    expect(await refusal(openEnvelope(text(removed), bob))).toMatch(/recipients \(1\) are not the 2 the sender listed/);
    const other = await sealEnvelope(bundle('r2'), alice, [id(dave)]);
    const added = { ...env, recipients: [...env.recipients, other.recipients[0]] };
    expect(await refusal(openEnvelope(text(added), dave))).toMatch(/recipients \(3\) are not the 2/);
    const reordered = { ...env, recipients: [env.recipients[1], env.recipients[0]] };
    expect(await refusal(openEnvelope(text(reordered), bob))).toMatch(/added, removed or reordered/);
  });

  it('refuses an envelope re-signed by someone else, whether it keeps or replaces the sender', async () => {
    const env = await sealEnvelope(bundle('resign'), alice, [id(bob)]);
    const resign = (e: Omit<Envelope, 'signature'>, kid: string) => {
      const h = b64u(new TextEncoder().encode(canonicalJson({ alg: 'EdDSA', kid })));
      const body = { protected: e.protected, recipients: e.recipients, iv: e.iv, ciphertext: e.ciphertext, tag: e.tag };
      const input = new TextEncoder().encode(`${h}.${b64u(envelopeDigest(body))}`);
      return { ...body, signature: `${h}..${b64u(sign(input, mallory))}` };
    };
    // mallory's signature on alice's envelope: not alice's signature
    expect(await refusal(openEnvelope(text(resign(env, mallory.kid)), bob))).toMatch(/signed by kid .*, not by the sender/);
    expect(await refusal(openEnvelope(text(resign(env, alice.kid)), bob))).toMatch(/signature of alice .* does not verify/);
    // mallory rewrites the protected header to name herself: the content was sealed under alice's header
    const h = protectedHeader(env);
    const malloryHeader = protectedHeader(await sealEnvelope(bundle('x'), mallory, [id(bob)]));
    const forgedHeader = { ...h, skid: mallory.kid, sender: malloryHeader.sender };
    const forged = { ...env, protected: b64u(new TextEncoder().encode(canonicalJson(forgedHeader))) };
    expect(await refusal(openEnvelope(text(resign(forged, mallory.kid)), bob))).toMatch(/the content does not decrypt/);
  });

  it('refuses what is not an envelope, in one sentence', async () => {
    expect(await refusal(openEnvelope('hello', bob))).toBe('not a sealed envelope: it is not JSON');
    expect(await refusal(openEnvelope('{"resourceType":"Bundle"}', bob))).toMatch(
      /^not a sealed envelope: no JWE "protected" and "recipients"/,
    );
    const env = await sealEnvelope(bundle('m'), alice, [id(bob)]);
    const { signature: _, ...unsigned } = env;
    void _;
    expect(await refusal(openEnvelope(JSON.stringify(unsigned), bob))).toBe('envelope: signature: expected a string');
    expect(await refusal(openEnvelope(JSON.stringify({ ...env, extra: 1 }), bob))).toBe('envelope: unexpected member "extra"');
  });
});
