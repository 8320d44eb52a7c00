// hako sign: the signature file for a bundle as it is now (config.json and its rootfs).
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { HakoError } from '../errors.js';
import { parseJson, validateConfig } from '../oci/validate.js';
import { loadPrivateKey, sign } from '../seal/keys.js';
import { b64u } from '../seal/b64.js';
import { buildManifest } from './manifest.js';
import { readBytes } from './read.js';
import { SIGNATURE_FILE, SIGNATURE_TYPE, canonical, signedBytes, type SignatureDocument, type Unsigned } from './signature-file.js';

/** Far above any real config.json; the same bound verify uses. */
export const MAX_CONFIG_BYTES = 16 * 1024 * 1024;

export interface SignResult {
  file: string;
  signer: { name: string; fingerprint: string };
  entries: number;
}

export function signBundle(bundleArg: string, keyFile: string, now = new Date()): SignResult {
  const bundle = path.resolve(bundleArg);
  // The key first: a loose or wrong key is refused before the rootfs is read.
  const key = loadPrivateKey(keyFile);
  const configBytes = readBytes(path.join(bundle, 'config.json'), 'config.json', MAX_CONFIG_BYTES);
  const cfg = validateConfig(parseJson(configBytes.toString('utf8'), 'config.json'));
  const rootPath = cfg.root!.path;
  const rootfs = path.resolve(bundle, rootPath);
  const out = path.join(bundle, SIGNATURE_FILE);
  // The signature file cannot be part of what it signs.
  const rel = path.relative(rootfs, out);
  if (!rel.startsWith('..') && !path.isAbsolute(rel))
    throw new HakoError(
      `config.json: root.path: "${rootPath}" holds the bundle's own ${SIGNATURE_FILE}; keep the rootfs in a directory of its own`,
    );
  const doc: Unsigned = canonical({
    type: SIGNATURE_TYPE,
    version: 1,
    signer: { name: key.name, fingerprint: key.fingerprint, kid: key.kid },
    created: now.toISOString(),
    config: { path: 'config.json', size: configBytes.length, sha256: createHash('sha256').update(configBytes).digest('hex') },
    rootfs: { path: rootPath, entries: buildManifest(rootfs, rootPath) },
  });
  const signature = b64u(sign(signedBytes(doc), key));
  writeReplacing(out, formatDocument({ ...doc, signature }));
  return { file: out, signer: { name: key.name, fingerprint: key.fingerprint }, entries: doc.rootfs.entries.length };
}

/** One field a line, and one rootfs entry a line: a diff of two signatures reads as the
 *  paths that changed. */
function formatDocument(d: SignatureDocument): string {
  const fields = Object.entries(d).map(([k, v]) =>
    k === 'rootfs'
      ? ` "rootfs": {"path": ${JSON.stringify(d.rootfs.path)}, "entries": [\n${d.rootfs.entries.map((e) => `  ${JSON.stringify(e)}`).join(',\n')}\n ]}`
      : ` ${JSON.stringify(k)}: ${JSON.stringify(v)}`,
  );
  return `{\n${fields.join(',\n')}\n}\n`;
}

/** Written beside, then renamed over: a reader sees the old signature or the new, never half. */
function writeReplacing(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o644);
    try {
      fs.writeSync(fd, text);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    if (e instanceof HakoError) throw e;
    throw new HakoError(`cannot write ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}
