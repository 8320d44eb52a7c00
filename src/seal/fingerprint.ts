// The identity's fingerprint: short enough to read aloud and compare by eye, long enough
// (128 bits) that nobody can make a second identity with the same one.
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';

/** Domain label: a hash of the two public keys means "a hako identity" and nothing else. */
const LABEL = utf8ToBytes('hako identity v1\0');
const BYTES = 16;

/** `kid` form: 32 lowercase hex digits, what envelopes and the FHIR relay carry and search. */
export function kidOf(x25519Pub: Uint8Array, ed25519Pub: Uint8Array): string {
  const h = sha256.create().update(LABEL).update(x25519Pub).update(ed25519Pub).digest();
  return bytesToHex(h.subarray(0, BYTES));
}

/** Display form: the kid in groups of four, `3f2a 91bc ...`. */
export function groupFingerprint(kid: string): string {
  return kid.match(/.{1,4}/g)!.join(' ');
}

/** Accepts either form (a user may paste the grouped one) and gives the kid. */
export function normalizeFingerprint(s: string): string {
  return s.replace(/[\s:-]/g, '').toLowerCase();
}
