// Sealed envelopes: a JWE in General JSON serialization (RFC 7516 §7.2.1), one entry per
// recipient, the content key wrapped for each with HPKE "HPKE-4-KE" (draft-ietf-jose-hpke-
// encrypt-20 §6), the content encrypted with ChaCha20-Poly1305 under the protected header
// as associated data, and the whole signed by the sender with Ed25519 (a detached JWS, RFC
// 7515 appendix F, whose payload is the SHA-256 of the envelope's RFC 8785 canonical JSON
// without the signature).
// docs/sealing.md describes the format byte by byte.
import { createHash } from 'node:crypto';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { randomBytes } from '@noble/ciphers/utils.js';
import { HakoError } from '../errors.js';
import { b64u, unb64u } from './b64.js';
import { canonicalJson } from './canonical-json.js';
import { groupFingerprint } from './fingerprint.js';
import { HPKE_ALG, hpkeOpen, hpkeSeal, recipientStructure } from './hpke.js';
import { identityDocument, identityFromDocument, identityOf, sign, verify, type Identity, type PrivateKey } from './keys.js';

/** Content encryption: ChaCha20-Poly1305 with a 96-bit nonce, named as in draft-amringer-jose-chacha. */
export const CONTENT_ENC = 'C20P';
export const FHIR_CTY = 'application/fhir+json';
const SIG_ALG = 'EdDSA';
const MEMBERS = ['protected', 'recipients', 'iv', 'ciphertext', 'tag', 'signature'];

export interface RecipientEntry {
  header: { alg: string; kid: string; ek: string };
  encrypted_key: string;
}

export interface Envelope {
  protected: string;
  recipients: RecipientEntry[];
  iv: string;
  ciphertext: string;
  tag: string;
  /** Compact JWS with a detached payload: BASE64URL(header) '..' BASE64URL(signature). */
  signature: string;
}

export interface ProtectedHeader {
  enc: string;
  cty: string;
  /** The sender's kid, and its whole public identity (to check the signature without it at hand). */
  skid: string;
  sender: Record<string, unknown>;
  /** Every recipient's kid, in the order of `recipients`. */
  rkids: string[];
  iat: number;
}

export interface Opened {
  plaintext: Uint8Array;
  sender: Identity;
  header: ProtectedHeader;
  recipients: number;
}

const enc = new TextEncoder();

/** What the sender signs: `BASE64URL(JWS header) "." BASE64URL(SHA-256(JCS(envelope without
 *  "signature")))` — the JWS payload is the canonical envelope's digest. Why a digest: Ed25519
 *  hashes its message twice in JavaScript (5 s for a 10 MB Bundle); node's SHA-256 is native. */
function signingInput(jwsHeader: string, env: Omit<Envelope, 'signature'>): Uint8Array {
  const body = { protected: env.protected, recipients: env.recipients, iv: env.iv, ciphertext: env.ciphertext, tag: env.tag };
  return enc.encode(`${jwsHeader}.${b64u(envelopeDigest(body))}`);
}

export function envelopeDigest(body: Omit<Envelope, 'signature'>): Uint8Array {
  return new Uint8Array(createHash('sha256').update(canonicalJson(body), 'utf8').digest());
}

export async function sealEnvelope(plaintext: Uint8Array, from: PrivateKey, to: Identity[], now = new Date()): Promise<Envelope> {
  if (to.length === 0) throw new HakoError('seal: no recipient (--to ID.id.json)');
  const seen = new Set<string>();
  for (const r of to) {
    if (seen.has(r.kid)) throw new HakoError(`seal: ${r.name} (${r.fingerprint}) is named twice as a recipient`);
    seen.add(r.kid);
  }
  const header: ProtectedHeader = {
    enc: CONTENT_ENC,
    cty: FHIR_CTY,
    skid: from.kid,
    sender: identityDocument(identityOf(from)) as Record<string, unknown>,
    rkids: to.map((r) => r.kid),
    iat: Math.floor(now.getTime() / 1000),
  };
  const protectedB64 = b64u(enc.encode(canonicalJson(header)));
  const cek = randomBytes(32);
  const iv = randomBytes(12);
  const info = recipientStructure(CONTENT_ENC);
  const recipients: RecipientEntry[] = [];
  for (const r of to) {
    const w = await hpkeSeal(r.x25519Pub, info, cek);
    recipients.push({ header: { alg: HPKE_ALG, kid: r.kid, ek: b64u(w.enc) }, encrypted_key: b64u(w.ct) });
  }
  // JWE AAD (RFC 7516 §5.1 step 14): ASCII(BASE64URL(UTF8(JWE Protected Header))).
  const sealed = chacha20poly1305(cek, iv, enc.encode(protectedB64)).encrypt(plaintext);
  cek.fill(0);
  const body = {
    protected: protectedB64,
    recipients,
    iv: b64u(iv),
    ciphertext: b64u(sealed.subarray(0, sealed.length - 16)),
    tag: b64u(sealed.subarray(sealed.length - 16)),
  };
  const jwsHeader = b64u(enc.encode(canonicalJson({ alg: SIG_ALG, kid: from.kid })));
  const sig = sign(signingInput(jwsHeader, body), from);
  return { ...body, signature: `${jwsHeader}..${b64u(sig)}` };
}

/** Parses and checks an envelope's shape; every refusal is one sentence naming the part. */
export function parseEnvelope(text: string): Envelope {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new HakoError('not a sealed envelope: it is not JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new HakoError('not a sealed envelope: it is not a JSON object');
  const o = v as Record<string, unknown>;
  if (typeof o.protected !== 'string' || !Array.isArray(o.recipients))
    throw new HakoError('not a sealed envelope: no JWE "protected" and "recipients" members (General JSON serialization)');
  for (const k of Object.keys(o)) if (!MEMBERS.includes(k)) throw new HakoError(`envelope: unexpected member "${k}"`);
  for (const k of MEMBERS) if (typeof o[k] !== 'string' && k !== 'recipients') throw new HakoError(`envelope: ${k}: expected a string`);
  if (o.recipients.length === 0) throw new HakoError('envelope: recipients: empty');
  o.recipients.forEach((r, i) => {
    const at = `envelope: recipients[${i}]`;
    if (typeof r !== 'object' || r === null || Array.isArray(r)) throw new HakoError(`${at}: expected an object`);
    const e = r as Record<string, unknown>;
    for (const k of Object.keys(e)) if (k !== 'header' && k !== 'encrypted_key') throw new HakoError(`${at}: unexpected member "${k}"`);
    if (typeof e.encrypted_key !== 'string') throw new HakoError(`${at}.encrypted_key: expected a string`);
    const h = e.header as Record<string, unknown>;
    if (typeof h !== 'object' || h === null || Array.isArray(h)) throw new HakoError(`${at}.header: expected an object`);
    for (const k of Object.keys(h)) if (!['alg', 'kid', 'ek'].includes(k)) throw new HakoError(`${at}.header: unexpected member "${k}"`);
    if (h.alg !== HPKE_ALG) throw new HakoError(`${at}.header.alg: expected "${HPKE_ALG}", not ${JSON.stringify(h.alg)}`);
    if (typeof h.kid !== 'string' || typeof h.ek !== 'string') throw new HakoError(`${at}.header: kid and ek must be strings`);
  });
  return o as unknown as Envelope;
}

export function protectedHeader(env: Envelope): ProtectedHeader {
  let h: Record<string, unknown>;
  try {
    h = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(unb64u(env.protected, 'envelope: protected')));
  } catch (e) {
    if (e instanceof HakoError) throw e;
    throw new HakoError('envelope: protected: not a JSON header');
  }
  if (typeof h !== 'object' || h === null || Array.isArray(h)) throw new HakoError('envelope: protected: not a JSON object');
  if (h.enc !== CONTENT_ENC) throw new HakoError(`envelope: protected.enc: expected "${CONTENT_ENC}", not ${JSON.stringify(h.enc)}`);
  if (h.cty !== FHIR_CTY) throw new HakoError(`envelope: protected.cty: expected "${FHIR_CTY}", not ${JSON.stringify(h.cty)}`);
  if (typeof h.skid !== 'string') throw new HakoError('envelope: protected.skid: expected a string');
  if (typeof h.sender !== 'object' || h.sender === null) throw new HakoError('envelope: protected.sender: expected an identity');
  if (!Array.isArray(h.rkids) || !h.rkids.every((k) => typeof k === 'string'))
    throw new HakoError('envelope: protected.rkids: expected an array of key ids');
  if (!Number.isSafeInteger(h.iat)) throw new HakoError('envelope: protected.iat: expected an integer');
  if (h.crit !== undefined) throw new HakoError('envelope: protected.crit: no critical extension is understood');
  return h as unknown as ProtectedHeader;
}

/** Checks everything, then decrypts: the sender's identity and signature, the recipient list,
 *  the caller's entry, the content. `expectedSender` refuses any other sender. */
export async function openEnvelope(text: string, key: PrivateKey, expectedSender?: Identity): Promise<Opened> {
  const env = parseEnvelope(text);
  const header = protectedHeader(env);
  const sender = identityFromDocument(header.sender, 'envelope: protected.sender');
  if (sender.kid !== header.skid)
    throw new HakoError(`envelope: protected.skid ${header.skid} is not the kid of the sender identity it carries (${sender.kid})`);
  if (expectedSender && expectedSender.kid !== sender.kid)
    throw new HakoError(
      `sealed by ${sender.name} (fingerprint ${sender.fingerprint}), not by the expected sender ${expectedSender.name} (fingerprint ${expectedSender.fingerprint})`,
    );
  const kids = env.recipients.map((r) => r.header.kid);
  if (kids.length !== header.rkids.length || kids.some((k, i) => k !== header.rkids[i]))
    throw new HakoError(
      `envelope: the recipients (${kids.length}) are not the ${header.rkids.length} the sender listed in the protected header: one was added, removed or reordered`,
    );
  if (new Set(kids).size !== kids.length) throw new HakoError('envelope: a recipient appears twice');
  // The signature before any decryption: nothing from an altered envelope is acted on.
  const [jwsHeader, empty, sigB64, ...rest] = env.signature.split('.');
  if (empty !== '' || rest.length || sigB64 === undefined)
    throw new HakoError('envelope: signature: expected a detached compact JWS (header..signature)');
  let jh: Record<string, unknown>;
  try {
    jh = JSON.parse(Buffer.from(unb64u(jwsHeader, 'envelope: signature header')).toString('utf8'));
  } catch (e) {
    if (e instanceof HakoError) throw e;
    throw new HakoError('envelope: signature: the JWS header is not JSON');
  }
  if (jh.alg !== SIG_ALG) throw new HakoError(`envelope: signature: alg must be "${SIG_ALG}", not ${JSON.stringify(jh.alg)}`);
  if (jh.kid !== sender.kid)
    throw new HakoError(`envelope: signature: signed by kid ${JSON.stringify(jh.kid)}, not by the sender ${sender.kid}`);
  const sig = unb64u(sigB64, 'envelope: signature');
  if (!verify(signingInput(jwsHeader, env), sig, sender))
    throw new HakoError(
      `the signature of ${sender.name} (fingerprint ${sender.fingerprint}) does not verify: the envelope was changed after it was sealed`,
    );
  const mine = env.recipients.findIndex((r) => r.header.kid === key.kid);
  if (mine < 0)
    throw new HakoError(
      `not sealed to you: ${key.name} (fingerprint ${key.fingerprint}) is not among its ${kids.length} recipient${kids.length === 1 ? '' : 's'}`,
    );
  const r = env.recipients[mine];
  const ek = unb64u(r.header.ek, `envelope: recipients[${mine}].header.ek`);
  const wrapped = unb64u(r.encrypted_key, `envelope: recipients[${mine}].encrypted_key`);
  let cek: Uint8Array;
  try {
    cek = await hpkeOpen(key.x25519.priv, recipientStructure(header.enc), ek, wrapped);
  } catch {
    throw new HakoError(`envelope: recipients[${mine}]: the content key does not open with ${key.name}'s key`);
  }
  if (cek.length !== 32) throw new HakoError(`envelope: recipients[${mine}]: the content key is ${cek.length} bytes, not 32`);
  const iv = unb64u(env.iv, 'envelope: iv');
  if (iv.length !== 12) throw new HakoError(`envelope: iv: ${iv.length} bytes, not 12`);
  const tag = unb64u(env.tag, 'envelope: tag');
  if (tag.length !== 16) throw new HakoError(`envelope: tag: ${tag.length} bytes, not 16`);
  const ct = unb64u(env.ciphertext, 'envelope: ciphertext');
  const both = new Uint8Array(ct.length + 16);
  both.set(ct);
  both.set(tag, ct.length);
  let plaintext: Uint8Array;
  try {
    plaintext = chacha20poly1305(cek, iv, enc.encode(env.protected)).decrypt(both);
  } catch {
    throw new HakoError('envelope: the content does not decrypt (ciphertext, tag, iv or protected header changed)');
  } finally {
    cek.fill(0);
  }
  return { plaintext, sender, header, recipients: kids.length };
}

/** One line for people: who sealed it, to how many, when. */
export function describeSender(o: Opened): string {
  return `sealed by ${o.sender.name} (fingerprint ${groupFingerprint(o.sender.kid)}) to ${o.recipients} recipient${o.recipients === 1 ? '' : 's'} on ${new Date(o.header.iat * 1000).toISOString()}; signature verified`;
}
