// hako verify, and --require-signed: the bundle is what a trusted identity signed, or one
// sentence says what is not (which file, which path, which field). The config handed back is
// parsed from the very bytes that were hashed, so a config.json changed after the check is
// never the one that runs.
import path from 'node:path';
import { createHash } from 'node:crypto';
import { HakoError } from '../errors.js';
import { parseJson, validateConfig } from '../oci/validate.js';
import type { Config } from '../oci/config.js';
import { verify, type Identity } from '../seal/keys.js';
import { unb64u } from '../seal/b64.js';
import { buildManifest, type Entry } from './manifest.js';
import { diffManifests, summarize } from './diff.js';
import { readBytes } from './read.js';
import { MAX_CONFIG_BYTES } from './sign.js';
import { SIGNATURE_FILE, parseSignatureFile, signedBytes, type SignatureDocument } from './signature-file.js';
import { loadTrust } from './trust.js';

/** A manifest entry is about 150 bytes: this holds some 400 000 paths. */
const MAX_SIGNATURE_BYTES = 64 * 1024 * 1024;

export interface Verified {
  config: Config;
  signer: Identity;
  entries: number;
  /** The rootfs as checked (absolute) and its manifest now, for checkWindow. */
  rootfs: string;
  manifest: Entry[];
}

function readSignature(bundle: string, bundleArg: string): SignatureDocument {
  let bytes: Buffer;
  try {
    bytes = readBytes(path.join(bundle, SIGNATURE_FILE), SIGNATURE_FILE, MAX_SIGNATURE_BYTES);
  } catch (e) {
    if ((e as Error).message === `cannot read ${SIGNATURE_FILE}: no such file`)
      throw new HakoError(`${bundleArg} is not signed (it has no ${SIGNATURE_FILE}; hako sign makes one)`);
    throw e;
  }
  return parseSignatureFile(bytes.toString('utf8'), SIGNATURE_FILE);
}

function signerOf(doc: SignatureDocument, trusted: Identity[], trustDir: string): Identity {
  const id = trusted.find((t) => t.kid === doc.signer.kid);
  if (id) return id;
  const sameName = trusted.find((t) => t.name === doc.signer.name);
  throw new HakoError(
    `${SIGNATURE_FILE}: signed by ${doc.signer.name} (fingerprint ${doc.signer.fingerprint}), who is not trusted: ` +
      (sameName
        ? `${trustDir} trusts a different key by that name (fingerprint ${sameName.fingerprint})`
        : `no identity in ${trustDir} has that fingerprint`),
  );
}

export function verifyBundle(bundleArg: string, trustDir: string): Verified {
  const bundle = path.resolve(bundleArg);
  const trusted = loadTrust(trustDir);
  const doc = readSignature(bundle, bundleArg);
  const signer = signerOf(doc, trusted, trustDir);
  let sig: Uint8Array;
  try {
    sig = unb64u(doc.signature, `${SIGNATURE_FILE}: signature`);
  } catch (e) {
    throw new HakoError((e as Error).message);
  }
  if (!verify(signedBytes(doc), sig, signer))
    throw new HakoError(
      `${SIGNATURE_FILE}: the signature does not verify with ${signer.name}'s key (fingerprint ${signer.fingerprint}): the file was altered after signing`,
    );
  // From here the document is the signer's own: every difference is a change to the bundle.
  const changed = `the bundle changed since ${signer.name} signed it`;
  const configBytes = readBytes(path.join(bundle, 'config.json'), 'config.json', MAX_CONFIG_BYTES);
  if (configBytes.length !== doc.config.size || createHash('sha256').update(configBytes).digest('hex') !== doc.config.sha256)
    throw new HakoError(`${changed}: config.json changed`);
  const config = validateConfig(parseJson(configBytes.toString('utf8'), 'config.json'));
  // Signed along with config.json: equal unless the signer's tool was not hako sign.
  if (config.root!.path !== doc.rootfs.path)
    throw new HakoError(`${SIGNATURE_FILE}: rootfs.path: "${doc.rootfs.path}" is not config.json's root.path "${config.root!.path}"`);
  const rootfs = path.resolve(bundle, config.root!.path);
  const now = buildManifest(rootfs, doc.rootfs.path);
  const diffs = diffManifests(doc.rootfs.entries, now, doc.rootfs.path);
  if (diffs.length) throw new HakoError(`${changed}: ${summarize(diffs)}`);
  return { config, signer, entries: now.length, rootfs, manifest: now };
}
