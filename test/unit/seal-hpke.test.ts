// The HPKE suite sealing uses (src/seal/hpke.ts), checked against RFC 9180's published
// vector A.2.1 (base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20Poly1305).
// The ephemeral key is derived from ikmE as the RFC does, so every output is fixed.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { hpkeOpen, hpkeSeal, hpkeSuite, recipientStructure } from '../../src/seal/hpke.js';

const V = JSON.parse(fs.readFileSync(path.join(import.meta.dirname, 'fixtures/hpke-rfc9180-a2-1.json'), 'utf8'));
const hex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));
const toHex = (b: ArrayBuffer | Uint8Array) => Buffer.from(b instanceof Uint8Array ? b : new Uint8Array(b)).toString('hex');

describe('HPKE against RFC 9180 A.2.1', () => {
  it('is the vector for this suite (mode 0, KEM 0x0020, KDF 0x0001, AEAD 0x0003)', () => {
    const s = hpkeSuite();
    expect([V.mode, s.kem.id, s.kdf.id, s.aead.id]).toEqual([0, V.kem_id, V.kdf_id, V.aead_id]);
  });

  it('derives the ephemeral and the recipient key pairs from ikmE and ikmR', async () => {
    const s = hpkeSuite();
    for (const [ikm, sk, pk] of [
      [V.ikmE, V.skEm, V.pkEm],
      [V.ikmR, V.skRm, V.pkRm],
    ]) {
      const kp = await s.kem.deriveKeyPair(hex(ikm));
      expect(toHex(await s.kem.serializePublicKey(kp.publicKey))).toBe(pk);
      expect(toHex(await s.kem.serializePrivateKey(kp.privateKey))).toBe(sk);
    }
  });

  it('gives the vector enc and ciphertexts at sequence numbers 0, 1, 2, 4 and the exports', async () => {
    const s = hpkeSuite();
    const recipientPublicKey = await s.kem.deserializePublicKey(hex(V.pkRm));
    const ekm = await s.kem.deriveKeyPair(hex(V.ikmE));
    const sender = await s.createSenderContext({ recipientPublicKey, info: hex(V.info), ekm });
    expect(toHex(sender.enc)).toBe(V.enc);
    const recipient = await s.createRecipientContext({
      recipientKey: await s.kem.deserializePrivateKey(hex(V.skRm)),
      enc: hex(V.enc),
      info: hex(V.info),
    });
    let seq = 0;
    for (const e of V.encryptions as { seq: number; pt: string; aad: string; ct: string }[]) {
      // The context's sequence number advances per message: seal (and open) the skipped ones.
      while (seq < e.seq) {
        await recipient.open(await sender.seal(hex(e.pt), hex('00')), hex('00'));
        seq++;
      }
      const ct = await sender.seal(hex(e.pt), hex(e.aad));
      expect(toHex(ct)).toBe(e.ct);
      expect(toHex(await recipient.open(ct, hex(e.aad)))).toBe(e.pt);
      seq++;
    }
    for (const x of V.exports as { exporter_context: string; L: number; exported_value: string }[])
      expect(toHex(await sender.export(hex(x.exporter_context), x.L))).toBe(x.exported_value);
  });

  it("opens the vector's first ciphertext with the recipient key, and refuses it altered", async () => {
    const s = hpkeSuite();
    const ctx = await s.createRecipientContext({
      recipientKey: await s.kem.deserializePrivateKey(hex(V.skRm)),
      enc: hex(V.enc),
      info: hex(V.info),
    });
    const bad = hex(V.encryptions[0].ct);
    bad[3] ^= 0x01;
    await expect(ctx.open(bad, hex(V.encryptions[0].aad))).rejects.toThrow();
  });

  it('round-trips a content key through hpkeSeal/hpkeOpen, and another key cannot open it', async () => {
    const s = hpkeSuite();
    const r = await s.kem.deriveKeyPair(hex(V.ikmR));
    const other = await s.kem.deriveKeyPair(hex(V.ikmE));
    const pub = new Uint8Array(await s.kem.serializePublicKey(r.publicKey));
    const priv = new Uint8Array(await s.kem.serializePrivateKey(r.privateKey));
    const info = recipientStructure('C20P');
    expect(toHex(recipientStructure('A128GCM'))).toBe('4a4f53452d48504b452072637074ff4131323847434dff'); // the draft's example
    const cek = hex('00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff');
    const { enc, ct } = await hpkeSeal(pub, info, cek);
    expect(toHex(await hpkeOpen(priv, info, enc, ct))).toBe(toHex(cek));
    await expect(hpkeOpen(new Uint8Array(await s.kem.serializePrivateKey(other.privateKey)), info, enc, ct)).rejects.toThrow();
  });
});
