// The store's encryption: one data key (data-key.ts) gives each store its own subkeys with
// HKDF-SHA256, salted with the store's random id (store-identity.ts), so a record sealed for one
// store never opens in another. Records and snapshot frames are sealed with XChaCha20-Poly1305
// (a random 24-byte nonce each: no counter to keep across crashes), their position bound as
// associated data by the callers (sealed-journal.ts, snapshot.ts). Primitives: @noble only.
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { randomBytes } from '@noble/ciphers/utils.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';

export const NONCE = 24;
export const TAG = 16;
export const STORE_ID_BYTES = 16;
export const MAC_BYTES = 32;

const subkey = (key: Uint8Array, storeId: Uint8Array, purpose: string): Uint8Array =>
  hkdf(sha256, key, storeId, new TextEncoder().encode(`hako-fhir store v1 ${purpose}`), 32);

export class StoreCipher {
  private readonly journalKey: Uint8Array;
  private readonly snapshotKey: Uint8Array;
  private readonly macKey: Uint8Array;

  constructor(
    dataKey: Uint8Array,
    readonly storeId: Buffer,
  ) {
    this.journalKey = subkey(dataKey, storeId, 'journal');
    this.snapshotKey = subkey(dataKey, storeId, 'snapshot');
    this.macKey = subkey(dataKey, storeId, 'headers');
  }

  /** nonce | ciphertext | tag, written into out at at (out must have room). */
  sealInto(kind: 'journal' | 'snapshot', aad: Uint8Array, plaintext: Uint8Array, out: Buffer, at: number): void {
    const nonce = randomBytes(NONCE);
    const sealed = xchacha20poly1305(this.key(kind), nonce, aad).encrypt(plaintext);
    out.set(nonce, at);
    out.set(sealed, at + NONCE);
  }

  /** The plaintext, or undefined when the tag does not hold (altered, another key, another position). */
  open(kind: 'journal' | 'snapshot', aad: Uint8Array, body: Uint8Array): Buffer | undefined {
    if (body.length < NONCE + TAG) return undefined;
    try {
      const plain = xchacha20poly1305(this.key(kind), body.subarray(0, NONCE), aad).decrypt(body.subarray(NONCE));
      return Buffer.from(plain.buffer, plain.byteOffset, plain.byteLength);
    } catch {
      return undefined;
    }
  }

  /** HMAC-SHA256 of a file header under the store's header subkey. */
  mac(data: Uint8Array): Buffer {
    return Buffer.from(hmac(sha256, this.macKey, data));
  }

  private key(kind: 'journal' | 'snapshot'): Uint8Array {
    return kind === 'journal' ? this.journalKey : this.snapshotKey;
  }
}

/** A fresh random store id. */
export function newStoreId(): Buffer {
  return Buffer.from(randomBytes(STORE_ID_BYTES));
}
