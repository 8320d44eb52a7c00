// HPKE (RFC 9180) base mode with DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and
// ChaCha20-Poly1305 — the JOSE HPKE draft's "HPKE-4-KE" — from hpke-js (@hpke/core with
// its X25519 and ChaCha20-Poly1305 modules, which are built on the noble primitives).
// test/unit/seal-hpke.test.ts checks this very suite against RFC 9180's A.2.1 vectors.
import { CipherSuite } from '@hpke/core';
import { DhkemX25519HkdfSha256, HkdfSha256 } from '@hpke/dhkem-x25519';
import { Chacha20Poly1305 } from '@hpke/chacha20poly1305';

export const HPKE_ALG = 'HPKE-4-KE';

/** The draft's Recipient_structure, the HPKE info of Key Encryption:
 *  "JOSE-HPKE rcpt" 0xFF ASCII(enc) 0xFF recipient_extra_info (empty here). */
export function recipientStructure(enc: string, extra: Uint8Array = new Uint8Array(0)): Uint8Array {
  const head = Buffer.from('JOSE-HPKE rcpt', 'ascii');
  const alg = Buffer.from(enc, 'ascii');
  return new Uint8Array(Buffer.concat([head, Buffer.from([0xff]), alg, Buffer.from([0xff]), extra]));
}

let cached: CipherSuite | undefined;
export function hpkeSuite(): CipherSuite {
  cached ??= new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: new Chacha20Poly1305() });
  return cached;
}

/** Encrypts `plaintext` (the content key) to `recipientPub`: the encapsulated secret and the ciphertext. */
export async function hpkeSeal(
  recipientPub: Uint8Array,
  info: Uint8Array,
  plaintext: Uint8Array,
): Promise<{ enc: Uint8Array; ct: Uint8Array }> {
  const suite = hpkeSuite();
  const recipientPublicKey = await suite.kem.deserializePublicKey(recipientPub);
  const r = await suite.seal({ recipientPublicKey, info }, plaintext, new Uint8Array(0));
  return { enc: new Uint8Array(r.enc), ct: new Uint8Array(r.ct) };
}

/** The content key back, or a throw (any failure: wrong key, altered enc or ciphertext). */
export async function hpkeOpen(recipientPriv: Uint8Array, info: Uint8Array, enc: Uint8Array, ct: Uint8Array): Promise<Uint8Array> {
  const suite = hpkeSuite();
  const recipientKey = await suite.kem.deserializePrivateKey(recipientPriv);
  const pt = await suite.open({ recipientKey, enc, info }, ct, new Uint8Array(0));
  return new Uint8Array(pt);
}
