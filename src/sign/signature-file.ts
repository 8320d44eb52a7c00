// BUNDLE/hako.sig.json: who signed, the SHA-256 of config.json, the rootfs manifest, and the
// Ed25519 signature over all of it. The signed bytes are a domain label and the document
// without "signature", serialized again from the checked fields in a fixed order: a field the
// schema does not know is refused, so nothing in the file escapes the signature.
// The format is documented in docs/signing.md.
import { Type, type Static } from '@sinclair/typebox';
import { Check } from '@sinclair/typebox/value';
import { Errors } from '@sinclair/typebox/errors';
import { HakoError } from '../errors.js';
import type { Entry } from './manifest.js';

export const SIGNATURE_FILE = 'hako.sig.json';
export const SIGNATURE_TYPE = 'hako-bundle-signature';
const LABEL = 'hako bundle signature v1\0';

const Hex64 = Type.String({ pattern: '^[0-9a-f]{64}$' });
const Uint = Type.Integer({ minimum: 0 });

const EntrySchema = Type.Object(
  {
    path: Type.String({ minLength: 1 }),
    type: Type.Union([Type.Literal('dir'), Type.Literal('file'), Type.Literal('symlink')]),
    mode: Type.String({ pattern: '^[0-7]{4}$' }),
    uid: Uint,
    gid: Uint,
    size: Type.Optional(Uint),
    sha256: Type.Optional(Hex64),
    target: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);

const SignatureDoc = Type.Object(
  {
    type: Type.Literal(SIGNATURE_TYPE),
    version: Type.Literal(1),
    signer: Type.Object(
      { name: Type.String(), fingerprint: Type.String(), kid: Type.String({ pattern: '^[0-9a-f]{32}$' }) },
      { additionalProperties: false },
    ),
    created: Type.String(),
    config: Type.Object({ path: Type.Literal('config.json'), size: Uint, sha256: Hex64 }, { additionalProperties: false }),
    rootfs: Type.Object({ path: Type.String({ minLength: 1 }), entries: Type.Array(EntrySchema) }, { additionalProperties: false }),
    signature: Type.String({ pattern: '^[A-Za-z0-9_-]{86}$' }),
  },
  { additionalProperties: false },
);

export type SignatureDocument = Static<typeof SignatureDoc>;
export type Unsigned = Omit<SignatureDocument, 'signature'>;

/** "/rootfs/entries/3/mode" -> "rootfs.entries[3].mode" */
function jsonPath(pointer: string): string {
  let out = '';
  for (const p of pointer.split('/').slice(1)) out += /^\d+$/.test(p) ? `[${p}]` : out ? `.${p}` : p;
  return out || '(top level)';
}

function entryFields(e: Entry): Entry {
  const out: Entry = { path: e.path, type: e.type, mode: e.mode, uid: e.uid, gid: e.gid };
  if (e.type === 'file') Object.assign(out, { size: e.size, sha256: e.sha256 });
  if (e.type === 'symlink') out.target = e.target;
  return out;
}

/** The document in its one order of fields (the file is written in it, and the signature is
 *  over it). */
export function canonical(d: Unsigned): Unsigned {
  return {
    type: d.type,
    version: d.version,
    signer: { name: d.signer.name, fingerprint: d.signer.fingerprint, kid: d.signer.kid },
    created: d.created,
    config: { path: d.config.path, size: d.config.size, sha256: d.config.sha256 },
    rootfs: { path: d.rootfs.path, entries: d.rootfs.entries.map(entryFields) },
  };
}

export function signedBytes(d: Unsigned): Uint8Array {
  return Buffer.from(LABEL + JSON.stringify(canonical(d)), 'utf8');
}

/** Checks the parsed file; every problem is one sentence naming its JSON path. */
export function parseSignatureFile(text: string, shown: string): SignatureDocument {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new HakoError(`${shown} is not valid JSON: ${(e as Error).message}`);
  }
  // The kind of file first: "not a signature" says more than the first missing field.
  const head = typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  if (head?.type !== SIGNATURE_TYPE)
    throw new HakoError(
      `${shown}: type: expected "${SIGNATURE_TYPE}", not ${JSON.stringify(head?.type ?? v)}: not a hako bundle signature`,
    );
  if (head.version !== 1) throw new HakoError(`${shown}: version: ${JSON.stringify(head.version)} is not a version hako reads (1)`);
  if (!Check(SignatureDoc, v)) {
    const first = Errors(SignatureDoc, v).First()!;
    throw new HakoError(`${shown}: ${jsonPath(first.path)}: ${first.message.toLowerCase()}`);
  }
  const seen = new Set<string>();
  v.rootfs.entries.forEach((e, i) => {
    const at = `${shown}: rootfs.entries[${i}]`;
    if (seen.has(e.path)) throw new HakoError(`${at}.path: "${e.path}" is listed twice`);
    seen.add(e.path);
    const fileFields = e.size !== undefined && e.sha256 !== undefined;
    if (e.type === 'file' ? !fileFields || e.target !== undefined : e.size !== undefined || e.sha256 !== undefined)
      throw new HakoError(`${at}: a ${e.type} has ${e.type === 'file' ? 'size and sha256, and no target' : 'no size or sha256'}`);
    if ((e.type === 'symlink') !== (e.target !== undefined))
      throw new HakoError(`${at}: ${e.type === 'symlink' ? 'a symlink needs its target' : `a ${e.type} has no target`}`);
  });
  if (!seen.has('.')) throw new HakoError(`${shown}: rootfs.entries: the rootfs itself (".") is missing`);
  return v;
}
