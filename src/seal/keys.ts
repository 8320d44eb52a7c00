// A hako identity's keys: X25519 to receive sealed envelopes, Ed25519 to sign.
// NAME.key holds both private keys (mode 0600, refused when group or others may read it);
// NAME.id.json holds the public halves, the name and the fingerprint, to hand to others.
// Both are JWK sets (RFC 7517, OKP keys of RFC 8037) so any JOSE library can read them.
import fs from 'node:fs';
import path from 'node:path';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { HakoError } from '../errors.js';
import { b64u, unb64u } from './b64.js';
import { groupFingerprint, kidOf } from './fingerprint.js';

export interface KeyPair {
  priv: Uint8Array;
  pub: Uint8Array;
}

export interface PrivateKey {
  name: string;
  x25519: KeyPair;
  ed25519: KeyPair;
  /** Grouped hex, for eyes: `3f2a 91bc ...`. */
  fingerprint: string;
  /** The same 128 bits as one hex string: the key id envelopes carry. */
  kid: string;
}

export interface Identity {
  name: string;
  x25519Pub: Uint8Array;
  ed25519Pub: Uint8Array;
  fingerprint: string;
  kid: string;
}

const KEY_TYPE = 'hako-private-key';
const ID_TYPE = 'hako-identity';
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

interface Jwk {
  kty: 'OKP';
  crv: 'X25519' | 'Ed25519';
  use: 'enc' | 'sig';
  kid: string;
  x: string;
  d?: string;
}

function jwks(k: { x: Uint8Array; e: Uint8Array; xd?: Uint8Array; ed?: Uint8Array }, kid: string): Jwk[] {
  const enc: Jwk = { kty: 'OKP', crv: 'X25519', use: 'enc', kid, x: b64u(k.x) };
  const sig: Jwk = { kty: 'OKP', crv: 'Ed25519', use: 'sig', kid, x: b64u(k.e) };
  if (k.xd) enc.d = b64u(k.xd);
  if (k.ed) sig.d = b64u(k.ed);
  return [enc, sig];
}

/** The public identity document (what NAME.id.json holds), e.g. to embed or publish. */
export function identityDocument(id: Identity): object {
  return {
    type: ID_TYPE,
    name: id.name,
    fingerprint: id.fingerprint,
    kid: id.kid,
    keys: jwks({ x: id.x25519Pub, e: id.ed25519Pub }, id.kid),
  };
}

export function identityOf(key: PrivateKey): Identity {
  return { name: key.name, x25519Pub: key.x25519.pub, ed25519Pub: key.ed25519.pub, fingerprint: key.fingerprint, kid: key.kid };
}

/** Writes DIR/NAME.key (0600) and DIR/NAME.id.json; refuses to replace either. */
export function newKeys(name: string, dir: string): { keyPath: string; idPath: string; key: PrivateKey } {
  if (!NAME.test(name))
    throw new HakoError(`keys new: "${name}" is not a name (letters, digits, . _ -, at most 64, not starting with . _ -)`);
  const keyPath = path.join(dir, `${name}.key`);
  const idPath = path.join(dir, `${name}.id.json`);
  for (const p of [keyPath, idPath]) if (fs.existsSync(p)) throw new HakoError(`keys new: ${p} already exists; it is not replaced`);
  const xs = x25519.utils.randomSecretKey();
  const es = ed25519.utils.randomSecretKey();
  const xp = x25519.getPublicKey(xs);
  const ep = ed25519.getPublicKey(es);
  const kid = kidOf(xp, ep);
  const key: PrivateKey = { name, x25519: { priv: xs, pub: xp }, ed25519: { priv: es, pub: ep }, fingerprint: groupFingerprint(kid), kid };
  const doc = { type: KEY_TYPE, name, fingerprint: key.fingerprint, kid, keys: jwks({ x: xp, e: ep, xd: xs, ed: es }, kid) };
  // Created with 0600 from the start (never a moment with the umask's mode); 'wx' refuses a
  // file (or a symlink) that appeared since the check.
  writeNew(keyPath, JSON.stringify(doc, null, 2) + '\n', 0o600);
  try {
    writeNew(idPath, JSON.stringify(identityDocument(identityOf(key)), null, 2) + '\n', 0o644);
  } catch (e) {
    fs.rmSync(keyPath, { force: true });
    throw e;
  }
  return { keyPath, idPath, key };
}

function writeNew(p: string, text: string, mode: number): void {
  let fd: number;
  try {
    fd = fs.openSync(p, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, mode);
  } catch (e) {
    throw new HakoError(`keys new: cannot create ${p}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    fs.fchmodSync(fd, mode); // the umask may have narrowed the identity's mode; never widened the key's
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function readJson(p: string, what: string): { doc: Record<string, unknown>; mode: number } {
  let fd: number;
  try {
    fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw new HakoError(`${p}: a ${what} is not read through a symbolic link`);
    throw new HakoError(`${p}: cannot read the ${what}: ${code ?? (e as Error).message}`);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new HakoError(`${p}: the ${what} is not a regular file`);
    if (st.size > 1 << 20) throw new HakoError(`${p}: too large for a ${what} (${st.size} bytes)`);
    const text = fs.readFileSync(fd, 'utf8');
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (e) {
      throw new HakoError(`${p}: the ${what} is not JSON (${(e as Error).message})`);
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new HakoError(`${p}: the ${what} is not a JSON object`);
    return { doc: v as Record<string, unknown>, mode: st.mode };
  } finally {
    fs.closeSync(fd);
  }
}

/** Finds the set's one key of curve `crv` and checks its public half (and private half, if
 *  `withPrivate`); every error names the file and the JSON path. */
function keyOf(p: string, doc: Record<string, unknown>, crv: 'X25519' | 'Ed25519', withPrivate: boolean): KeyPair {
  const keys = doc.keys;
  if (!Array.isArray(keys)) throw new HakoError(`${p}: keys: expected an array of JWKs`);
  const idx = keys.findIndex((k) => typeof k === 'object' && k !== null && (k as Jwk).crv === crv);
  if (idx < 0) {
    const crvs = keys.map((k) => (typeof k === 'object' && k !== null ? String((k as Jwk).crv) : typeof k)).join(', ');
    throw new HakoError(`${p}: keys: no ${crv} key (found: ${crvs || 'none'})`);
  }
  if (keys.filter((k) => (k as Jwk)?.crv === crv).length > 1) throw new HakoError(`${p}: keys: more than one ${crv} key`);
  const k = keys[idx] as Record<string, unknown>;
  const at = `${p}: keys[${idx}]`;
  if (k.kty !== 'OKP') throw new HakoError(`${at}.kty: expected "OKP", not ${JSON.stringify(k.kty)}`);
  const pub = unb64u(k.x, `${at}.x`);
  if (pub.length !== 32) throw new HakoError(`${at}.x: a ${crv} public key is 32 bytes, not ${pub.length}`);
  if (!withPrivate) {
    if (k.d !== undefined) throw new HakoError(`${at}.d: an identity file must not hold a private key (is this a .key file?)`);
    if (crv === 'Ed25519') checkEdPoint(pub, `${at}.x`);
    return { priv: new Uint8Array(0), pub };
  }
  if (k.d === undefined) throw new HakoError(`${at}.d: no private key (is this an identity file, not a .key file?)`);
  const priv = unb64u(k.d, `${at}.d`);
  if (priv.length !== 32) throw new HakoError(`${at}.d: a ${crv} private key is 32 bytes, not ${priv.length}`);
  const derived = crv === 'X25519' ? x25519.getPublicKey(priv) : ed25519.getPublicKey(priv);
  if (!equal(derived, pub)) throw new HakoError(`${at}: the public key x does not belong to the private key d`);
  return { priv, pub };
}

function checkEdPoint(pub: Uint8Array, at: string): void {
  try {
    ed25519.Point.fromBytes(pub);
  } catch {
    throw new HakoError(`${at}: not a valid Ed25519 public key`);
  }
}

function header(p: string, doc: Record<string, unknown>, type: string, what: string): string {
  if (doc.type !== type) {
    const other = doc.type === KEY_TYPE ? ' (it is a private key file)' : doc.type === ID_TYPE ? ' (it is an identity file)' : '';
    throw new HakoError(
      `${p}: type: expected "${type}" for ${what === 'identity' ? 'an' : 'a'} ${what}, not ${JSON.stringify(doc.type)}${other}`,
    );
  }
  if (typeof doc.name !== 'string' || !NAME.test(doc.name))
    throw new HakoError(`${p}: name: expected a name, not ${JSON.stringify(doc.name)}`);
  return doc.name;
}

function checkKid(p: string, doc: Record<string, unknown>, kid: string): void {
  // The fingerprint is recomputed, never trusted: a changed key with an old fingerprint is refused.
  if (doc.kid !== undefined && doc.kid !== kid)
    throw new HakoError(`${p}: kid: ${JSON.stringify(doc.kid)} does not match the keys (they give ${kid})`);
  if (doc.fingerprint !== undefined && doc.fingerprint !== groupFingerprint(kid))
    throw new HakoError(
      `${p}: fingerprint: ${JSON.stringify(doc.fingerprint)} does not match the keys (they give ${groupFingerprint(kid)})`,
    );
}

export function loadPrivateKey(p: string): PrivateKey {
  const { doc, mode } = readJson(p, 'private key');
  // The type first: an identity file given for a key is a mistake to name, not a loose key.
  const name = header(p, doc, KEY_TYPE, 'private key');
  if ((mode & 0o077) !== 0)
    throw new HakoError(
      `${p}: the private key file may be read by others (mode ${(mode & 0o777).toString(8).padStart(4, '0')}); run chmod 600 ${p}`,
    );
  const xk = keyOf(p, doc, 'X25519', true);
  const ek = keyOf(p, doc, 'Ed25519', true);
  const kid = kidOf(xk.pub, ek.pub);
  checkKid(p, doc, kid);
  return { name, x25519: xk, ed25519: ek, fingerprint: groupFingerprint(kid), kid };
}

export function loadIdentity(p: string): Identity {
  return identityFromDocument(readJson(p, 'identity').doc, p);
}

/** An identity from its parsed document (a file, or one embedded elsewhere); `p` names it in errors. */
export function identityFromDocument(doc: Record<string, unknown>, p: string): Identity {
  const name = header(p, doc, ID_TYPE, 'identity');
  const xk = keyOf(p, doc, 'X25519', false);
  const ek = keyOf(p, doc, 'Ed25519', false);
  const kid = kidOf(xk.pub, ek.pub);
  checkKid(p, doc, kid);
  return { name, x25519Pub: xk.pub, ed25519Pub: ek.pub, fingerprint: groupFingerprint(kid), kid };
}

/** Ed25519 signature (RFC 8032, deterministic) of `bytes`. */
export function sign(bytes: Uint8Array, key: PrivateKey | Uint8Array): Uint8Array {
  return ed25519.sign(bytes, key instanceof Uint8Array ? key : key.ed25519.priv);
}

/** True when `sig` is `pubkey`'s Ed25519 signature of `bytes` (strict: no malleable forms). */
export function verify(bytes: Uint8Array, sig: Uint8Array, pubkey: Identity | Uint8Array): boolean {
  const pub = pubkey instanceof Uint8Array ? pubkey : pubkey.ed25519Pub;
  if (sig.length !== 64 || pub.length !== 32) return false;
  try {
    return ed25519.verify(sig, bytes, pub, { zip215: false });
  } catch {
    return false;
  }
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
