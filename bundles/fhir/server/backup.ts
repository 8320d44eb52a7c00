// `hako-fhir backup` and `hako-fhir restore` (bin/hako-fhir.mjs runs this file, bundled on demand).
//
// backup --to FILE --key DATA-KEY --sign SIGNING-KEY [--data DIR]
//   The position: a running server is asked over DATA/backup.sock (backup-socket.ts) to seal its
//   active segment, so every write it acknowledged before is in journal.000001..N, which are never
//   rewritten; those, store.id, the newest snapshot up to N and auth/ are copied while writes go
//   on. With no server running, the active journal is taken as well.
// restore FILE --key DATA-KEY [--from ID.id.json] [--data DIR]
//   Checks the signature, decrypts and hashes every file, and opens the restored store as the
//   server would (every record, every segment's numbering, the snapshot) in a staging directory
//   beside DIR; only then is DIR moved aside (DIR.before-restore-TIME) and the staging put in.
//
// The backup file (format in docs/storage-encryption.md):
//   "HAKOFB1\n" | u32 manifest length | manifest JSON (names, sizes, SHA-256, position, signer)
//   | each file as chunks: u32 length | nonce | XChaCha20-Poly1305 | tag (associated data: the
//     backup id, file index, chunk index, last-chunk flag)
//   | Ed25519 signature (64 bytes) over SHA-256 of everything before it
// The chunks are sealed with HKDF(data key, backup id, "hako-fhir backup v1"); the signing key is
// a `hako keys new` key file (its Ed25519 key), read here with @noble/curves.
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { randomBytes } from '@noble/ciphers/utils.js';
import { ed25519 } from '@noble/curves/ed25519.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { createHash } from 'node:crypto';
import { constants, readFileSync, statSync } from 'node:fs';
import { chown, mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { connect, createConnection } from 'node:net';
import { basename, dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { BACKUP_SOCKET, type BackupPosition } from './backup-socket.js';
import { loadDataKey } from './data-key.js';
import { scanRecords, syncDir } from './journal.js';
import { readSnapshot } from './snapshot.js';
import { scanSealedSegment, JournalDamage } from './sealed-journal.js';
import { STORE_ID_FILE, readStoreIdentity } from './store-identity.js';
import { segmentName, snapshotName } from './store.js';

const MAGIC = Buffer.from('HAKOFB1\n', 'latin1');
const CHUNK = 1 << 20;
const SIG = 64;
const USAGE = `usage: hako-fhir [--data DIR] backup --to FILE --key DATA-KEY-FILE --sign KEY-FILE
       hako-fhir [--data DIR] restore FILE --key DATA-KEY-FILE [--from ID.id.json]
DIR defaults to bundles/fhir/data; KEY-FILE is a \`hako keys new\` key, ID.id.json its identity.`;

type Manifest = {
  format: 1;
  created: string;
  backupId: string;
  store: { encrypted: boolean };
  position: { segment: number; nextSeq: number; server: boolean };
  signer: { crv: 'Ed25519'; x: string };
  files: { name: string; size: number; sha256: string }[];
};

class Refused extends Error {}

const backupKey = (dataKey: Uint8Array, id: Uint8Array): Uint8Array =>
  hkdf(sha256, dataKey, id, new TextEncoder().encode('hako-fhir backup v1'), 32);

function chunkAad(id: Uint8Array, file: number, chunk: number, last: boolean): Uint8Array {
  const b = Buffer.alloc(id.length + 9);
  Buffer.from(id).copy(b);
  b.writeUInt32LE(file, id.length);
  b.writeUInt32LE(chunk, id.length + 4);
  b[id.length + 8] = last ? 1 : 0;
  return b;
}

/** The Ed25519 private key of a `hako keys new` key file (a JWK set, mode 0600). */
function signingKey(file: string): { priv: Uint8Array; pub: Uint8Array } {
  const st = statSync(file, { throwIfNoEntry: false });
  if (!st) throw new Refused(`signing key ${file} does not exist`);
  if ((st.mode & 0o077) !== 0) throw new Refused(`signing key ${file} can be read by others: chmod 600 ${file}`);
  const doc = JSON.parse(readFileSync(file, 'utf8')) as { type?: string; keys?: { crv?: string; d?: string; x?: string }[] };
  const jwk = doc.keys?.find((k) => k.crv === 'Ed25519' && k.d);
  if (doc.type !== 'hako-private-key' || !jwk?.d)
    throw new Refused(`signing key ${file} is not a hako key file with an Ed25519 private key`);
  const priv = Buffer.from(jwk.d, 'base64url');
  return { priv, pub: ed25519.getPublicKey(priv) };
}

/** The Ed25519 public key of a `hako keys new` identity file. */
function identityKey(file: string): string {
  const doc = JSON.parse(readFileSync(file, 'utf8')) as { type?: string; keys?: { crv?: string; x?: string; d?: string }[] };
  const jwk = doc.keys?.find((k) => k.crv === 'Ed25519');
  if (doc.type !== 'hako-identity' || !jwk?.x || jwk.d) throw new Refused(`${file} is not a hako identity file`);
  return jwk.x;
}

/** Asks the running server to seal its segment; undefined when no server listens on dir. */
function askServer(dir: string): Promise<BackupPosition | undefined> {
  return new Promise((resolvePos, reject) => {
    const socket = createConnection(join(dir, BACKUP_SOCKET));
    let said = '';
    socket.on('data', (d: Buffer) => (said += d.toString('utf8')));
    socket.on('connect', () => socket.write('seal\n'));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') resolvePos(undefined);
      else reject(new Refused(`cannot ask the server on ${dir} for a backup position: ${err.message}`));
    });
    socket.on('end', () => {
      try {
        const answer = JSON.parse(said) as BackupPosition & { error?: string };
        if (answer.error) reject(new Refused(`the server on ${dir} could not seal its journal for the backup: ${answer.error}`));
        else resolvePos(answer);
      } catch {
        reject(new Refused(`the server on ${dir} answered the backup request with ${JSON.stringify(said)}`));
      }
    });
  });
}

/** Whether a server holds dir (one of its lock sockets answers). */
async function serverRunning(dir: string): Promise<boolean> {
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => /^lock\.\d+$/.test(n));
  for (const name of names) {
    const alive = await new Promise<boolean>((r) => {
      const s = connect(join(dir, name));
      s.on('connect', () => (s.destroy(), r(true)));
      s.on('error', () => r(false));
    });
    if (alive) return true;
  }
  return false;
}

const numbered = (names: string[], re: RegExp): number[] =>
  names
    .map((n) => re.exec(n)?.[1])
    .filter((n): n is string => n !== undefined)
    .map(Number)
    .sort((a, b) => a - b);

export async function backup(dir: string, o: { to: string; key: string; sign: string }): Promise<string> {
  const dataKey = await loadDataKey(o.key).catch((e: Error) => Promise.reject(new Refused(e.message)));
  const signer = signingKey(o.sign);
  if (!(await stat(dir).catch(() => undefined))?.isDirectory()) throw new Refused(`data directory ${dir} does not exist`);
  const encrypted =
    (await readStoreIdentity(dir, dataKey, o.key).catch((e: Error) => Promise.reject(new Refused(e.message)))) !== undefined;
  let position = await askServer(dir);
  const names = await readdir(dir);
  if (!position && (await serverRunning(dir)))
    throw new Refused(
      `the server on ${dir} holds its lock but does not answer on ${BACKUP_SOCKET} (an older server?): stop it or update it first`,
    );
  const sealed = numbered(names, /^journal\.(\d{6,})$/);
  const server = position !== undefined;
  position ??= { segment: sealed.at(-1) ?? 0, nextSeq: 0, encrypted };
  const upTo = position.segment;
  const files = [...(encrypted ? [STORE_ID_FILE] : []), ...sealed.filter((s) => s <= upTo).map(segmentName)];
  if (!server && names.includes('journal')) files.push('journal'); // stopped: the active segment is whole
  const snap = numbered(names, /^snapshot\.(\d{6,})$/)
    .filter((s) => s <= upTo)
    .at(-1);
  if (snap) files.push(snapshotName(snap));
  for (const name of (await readdir(join(dir, 'auth')).catch(() => [] as string[])).filter(
    (n) => !n.endsWith('.lock') && !n.endsWith('.tmp'),
  ))
    files.push(`auth/${name}`);

  const id = randomBytes(16);
  const key = backupKey(dataKey, id);
  const contents: Buffer[] = [];
  for (const name of files) contents.push(await readFile(join(dir, name)));
  const manifest: Manifest = {
    format: 1,
    created: new Date().toISOString(),
    backupId: Buffer.from(id).toString('hex'),
    store: { encrypted },
    position: { segment: upTo, nextSeq: position.nextSeq, server },
    signer: { crv: 'Ed25519', x: Buffer.from(signer.pub).toString('base64url') },
    files: files.map((name, i) => ({ name, size: contents[i].length, sha256: createHash('sha256').update(contents[i]).digest('hex') })),
  };
  const head = Buffer.from(JSON.stringify(manifest), 'utf8');
  const parts: Buffer[] = [MAGIC, u32(head.length), head];
  for (const [i, data] of contents.entries()) {
    const chunks = Math.max(1, Math.ceil(data.length / CHUNK));
    for (let c = 0; c < chunks; c++) {
      const nonce = randomBytes(24);
      const plain = data.subarray(c * CHUNK, (c + 1) * CHUNK);
      const sealedChunk = xchacha20poly1305(key, nonce, chunkAad(id, i, c, c === chunks - 1)).encrypt(plain);
      parts.push(u32(nonce.length + sealedChunk.length), Buffer.from(nonce), Buffer.from(sealedChunk));
    }
  }
  const body = Buffer.concat(parts);
  const signature = ed25519.sign(sha256(body), signer.priv);
  const out = resolve(o.to);
  const tmp = `${out}.${process.pid}.tmp`;
  try {
    await writeFile(tmp, Buffer.concat([body, Buffer.from(signature)]), { mode: 0o600, flag: 'wx' });
    const fh = await open(tmp, constants.O_RDONLY);
    await fh.sync().finally(() => fh.close());
    await rename(tmp, out);
  } catch (err) {
    await rm(tmp, { force: true });
    throw new Refused(`cannot write the backup ${out}: ${(err as Error).message}`);
  }
  const where = server ? `at record #${position.nextSeq - 1} (segments 1..${upTo}, sealed by the running server)` : `of the stopped store`;
  return `backup ${out}: ${files.length} files, ${body.length + SIG} bytes, ${where}`;
}

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};

/** Verifies FILE completely and returns its manifest and decrypted files; nothing is written. */
async function verifyBackup(file: string, dataKey: Uint8Array, from: string | undefined): Promise<{ m: Manifest; files: Buffer[] }> {
  const data = await readFile(file).catch((e: Error) => Promise.reject(new Refused(`cannot read the backup ${file}: ${e.message}`)));
  const bad = (why: string): Refused => new Refused(`backup ${file} is refused: ${why}; nothing was restored`);
  if (data.length < MAGIC.length + 4 + SIG || !data.subarray(0, MAGIC.length).equals(MAGIC)) throw bad('it is not a hako FHIR backup');
  const body = data.subarray(0, data.length - SIG);
  const headLen = data.readUInt32LE(MAGIC.length);
  let m: Manifest;
  try {
    m = JSON.parse(data.subarray(MAGIC.length + 4, MAGIC.length + 4 + headLen).toString('utf8')) as Manifest;
  } catch {
    throw bad('its manifest is not JSON (altered or truncated)');
  }
  if (m.format !== 1 || m.signer?.crv !== 'Ed25519' || !Array.isArray(m.files)) throw bad('its manifest is not format 1');
  let ok = false;
  try {
    ok = ed25519.verify(data.subarray(data.length - SIG), sha256(body), Buffer.from(m.signer.x, 'base64url'));
  } catch {
    ok = false;
  }
  if (!ok) throw bad('its signature does not verify (altered or truncated)');
  if (from && identityKey(from) !== m.signer.x) throw bad(`it was signed by another key than ${from}'s`);
  const id = Buffer.from(m.backupId, 'hex');
  const key = backupKey(dataKey, id);
  let at = MAGIC.length + 4 + headLen;
  const files: Buffer[] = [];
  for (const [i, f] of m.files.entries()) {
    if (!/^(store\.id|journal(\.\d{6,})?|snapshot\.\d{6,}|auth\/[A-Za-z0-9._-]+)$/.test(f.name))
      throw bad(`it names a file ${JSON.stringify(f.name)}`);
    const chunks = Math.max(1, Math.ceil(f.size / CHUNK));
    const parts: Uint8Array[] = [];
    for (let c = 0; c < chunks; c++) {
      if (at + 4 > body.length) throw bad(`it ends inside ${f.name}`);
      const len = body.readUInt32LE(at);
      const sealedChunk = body.subarray(at + 4, at + 4 + len);
      at += 4 + len;
      try {
        parts.push(
          xchacha20poly1305(key, sealedChunk.subarray(0, 24), chunkAad(id, i, c, c === chunks - 1)).decrypt(sealedChunk.subarray(24)),
        );
      } catch {
        throw bad(`${f.name} does not decrypt with the key in the given key file (chunk ${c})`);
      }
    }
    const content = Buffer.concat(parts);
    if (content.length !== f.size || createHash('sha256').update(content).digest('hex') !== f.sha256)
      throw bad(`${f.name} does not match its hash`);
    files.push(content);
  }
  if (at !== body.length) throw bad('bytes follow its last file');
  return { m, files };
}

/** Opens the restored store as the server would: every record, numbering and snapshot. */
async function checkStore(dir: string, m: Manifest, dataKey: Uint8Array, keyFile: string): Promise<number> {
  const names = await readdir(dir);
  const cipher = m.store.encrypted ? await readStoreIdentity(dir, dataKey, keyFile) : undefined;
  if (m.store.encrypted && !cipher) throw new Error('its store.id is missing');
  const sealed = numbered(names, /^journal\.(\d{6,})$/);
  const segs: [number, string][] = sealed.map((s) => [s, segmentName(s)]);
  if (names.includes('journal')) segs.push([(sealed.at(-1) ?? 0) + 1, 'journal']);
  let expect = 1;
  let records = 0;
  for (const [i, [seg, name]] of segs.entries()) {
    if (seg !== i + 1) throw new Error(`segment ${segmentName(i + 1)} is missing`);
    const data = await readFile(join(dir, name));
    if (cipher) {
      const scan = scanSealedSegment(cipher, data, seg, name, false);
      if (scan.firstSeq !== expect) throw new JournalDamage(`${name} starts at record #${scan.firstSeq}, not #${expect}`);
      expect = scan.nextSeq;
      records += scan.records.length;
    } else {
      const scan = scanRecords(data);
      if (scan.validLength !== data.length) throw new Error(`${name} is corrupt at byte ${scan.validLength}`);
      records += scan.records.length;
    }
  }
  for (const s of numbered(names, /^snapshot\.(\d{6,})$/)) {
    const read = await readSnapshot(join(dir, snapshotName(s)), () => {}, cipher && { cipher, seg: s });
    if (cipher && read.nextSeq !== undefined && s < segs.length && read.nextSeq > expect)
      throw new Error(`${snapshotName(s)} is ahead of the journal`);
  }
  return records;
}

export async function restore(dir: string, o: { file: string; key: string; from?: string }): Promise<string> {
  const dataKey = await loadDataKey(o.key).catch((e: Error) => Promise.reject(new Refused(e.message)));
  const { m, files } = await verifyBackup(o.file, dataKey, o.from);
  const target = resolve(dir);
  if (await serverRunning(target)) throw new Refused(`a server is running on ${target}: stop it before restoring; nothing was restored`);
  const staging = join(dirname(target), `.${basename(target)}.restoring-${process.pid}`);
  await rm(staging, { recursive: true, force: true });
  const owner = await stat(target).catch(() => undefined);
  let records: number;
  try {
    await mkdir(join(staging, 'auth'), { recursive: true, mode: 0o700 });
    for (const [i, f] of m.files.entries()) await writeFile(join(staging, f.name), files[i], { mode: 0o600 });
    records = await checkStore(staging, m, dataKey, o.key);
    // As root, what was restored goes to the data directory's owner (the server's uid).
    if (owner && process.getuid?.() === 0)
      for (const name of ['', 'auth', ...m.files.map((f) => f.name)]) await chown(join(staging, name), owner.uid, owner.gid);
    for (const f of m.files) {
      const fh = await open(join(staging, f.name), constants.O_RDONLY);
      await fh.sync().finally(() => fh.close());
    }
    await syncDir(join(staging, 'auth'));
    await syncDir(staging);
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    if (err instanceof Refused) throw err;
    throw new Refused(`backup ${o.file} is refused: the store in it does not open: ${(err as Error).message}; nothing was restored`);
  }
  let aside = '';
  if (owner) {
    aside = `${target}.before-restore-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    await rename(target, aside);
  }
  await rename(staging, target);
  await syncDir(dirname(target));
  return `restored ${m.files.length} files (${records} journal records, up to segment ${m.position.segment}) into ${target}${aside ? `; the previous data is in ${aside}` : ''}`;
}

export async function main(argv: string[], defaultData: string): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        data: { type: 'string' },
        to: { type: 'string' },
        key: { type: 'string' },
        sign: { type: 'string' },
        from: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    process.stderr.write(`hako-fhir: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const dir = resolve((values.data as string | undefined) ?? defaultData);
  const [verb, file] = positionals;
  try {
    if (verb === 'backup' && values.to && values.key && values.sign && !file) {
      process.stdout.write(`${await backup(dir, { to: values.to as string, key: values.key as string, sign: values.sign as string })}\n`);
      return 0;
    }
    if (verb === 'restore' && file && values.key) {
      process.stdout.write(`${await restore(dir, { file, key: values.key as string, from: values.from as string | undefined })}\n`);
      return 0;
    }
  } catch (err) {
    process.stderr.write(`hako-fhir: ${(err as Error).message}\n`);
    return 1;
  }
  process.stderr.write(`${USAGE}\n`);
  return 2;
}
