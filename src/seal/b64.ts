// base64url without padding (RFC 7515 §2), the encoding of every binary field in JOSE.
import { HakoError } from '../errors.js';

export function b64u(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

/** Strict: Buffer's decoder skips characters it does not know, which would let a changed
 *  envelope decode to the same bytes. `what` names the field (and file) in the error. */
export function unb64u(s: unknown, what: string): Uint8Array {
  if (typeof s !== 'string' || !/^[A-Za-z0-9_-]*$/.test(s)) throw new HakoError(`${what}: expected a base64url string`);
  const out = new Uint8Array(Buffer.from(s, 'base64url'));
  if (b64u(out) !== s) throw new HakoError(`${what}: not canonical base64url`);
  return out;
}
