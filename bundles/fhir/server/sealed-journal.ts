// The encrypted journal format (magic "HAKOFJ3\n"): how a segment's header and records are laid
// out, sealed and checked. journal.ts appends and store.ts keeps the segments; this file says
// what a valid encrypted segment is.
//
// Segment header (68 bytes), authenticated with the store's header subkey:
//   "HAKOFJ3\n" | store id (16) | u32 segment number | u64 first record number | HMAC-SHA256 (32)
// Record:
//   u32 body length | u32 segment | u64 offset written at | u64 record number | u64 batch start
//   body: nonce (24) | XChaCha20-Poly1305(payload JSON) | tag (16)
// The 32-byte record header is the associated data, so a record opens only where it was written:
// its segment, its offset, its place in the store's numbering (one sequence across segments,
// each segment's header names where it starts). So at replay:
//   - altered: its tag fails;                     - from another store or key: its tag fails;
//   - moved or a record before it dropped/added: it opens but its offset is not where it is;
//   - moved between segments: its segment number; - dropped, duplicated, reordered: its number.
// Every refusal names the segment file and the byte offset.
//
// A torn tail against damage in the middle. A crash can only tear what was never synced, and
// that is the last write batch (group commit writes a batch, syncs it, only then the next). So a
// record that is cut short or fails its tag is a torn tail, cut off as before, only when no
// record of a LATER batch opens after it: the batch start (the number of the first record
// written with it) says which batch a record came with. An authentic record of a later batch
// behind a bad one means the bad one had been synced: damage, refused. Cutting the newest
// records off (or damaging only the last batch) looks like a crash and cannot be told from one:
// that is rollback, which a format alone cannot see (docs/storage-encryption.md).
import type { StoreCipher } from './cipher.js';
import { MAC_BYTES, NONCE, STORE_ID_BYTES, TAG } from './cipher.js';
import { MAX_RECORD } from './journal.js';

export const MAGIC_V3 = Buffer.from('HAKOFJ3\n', 'latin1');
export const SEGMENT_HEADER = MAGIC_V3.length + STORE_ID_BYTES + 4 + 8 + MAC_BYTES;
export const RECORD_HEADER = 32;
export const RECORD_OVERHEAD = RECORD_HEADER + NONCE + TAG;

const readU64 = (b: Buffer, at: number): number => b.readUInt32LE(at) + b.readUInt32LE(at + 4) * 2 ** 32;
function writeU64(b: Buffer, at: number, n: number): void {
  b.writeUInt32LE(n % 2 ** 32, at);
  b.writeUInt32LE(Math.floor(n / 2 ** 32), at + 4);
}

/** A journal damaged where a crash cannot have: start-up stops with this sentence. */
export class JournalDamage extends Error {}

export function segmentHeader(cipher: StoreCipher, seg: number, firstSeq: number): Buffer {
  const head = Buffer.alloc(SEGMENT_HEADER - MAC_BYTES);
  MAGIC_V3.copy(head, 0);
  cipher.storeId.copy(head, MAGIC_V3.length);
  head.writeUInt32LE(seg, MAGIC_V3.length + STORE_ID_BYTES);
  writeU64(head, MAGIC_V3.length + STORE_ID_BYTES + 4, firstSeq);
  return Buffer.concat([head, cipher.mac(head)]);
}

/** Checks a segment's header; returns its first record number. */
export function readSegmentHeader(cipher: StoreCipher, data: Buffer, seg: number, where: string): number {
  if (data.length < SEGMENT_HEADER || !data.subarray(0, MAGIC_V3.length).equals(MAGIC_V3))
    throw new JournalDamage(`${where} does not start with an encrypted journal header`);
  const head = data.subarray(0, SEGMENT_HEADER - MAC_BYTES);
  if (!head.subarray(MAGIC_V3.length, MAGIC_V3.length + STORE_ID_BYTES).equals(cipher.storeId))
    throw new JournalDamage(`${where} belongs to another store (its header names store ${head.toString('hex', 8, 24)})`);
  if (!cipher.mac(head).equals(data.subarray(SEGMENT_HEADER - MAC_BYTES, SEGMENT_HEADER)))
    throw new JournalDamage(`${where}: its header fails authentication (altered)`);
  const named = head.readUInt32LE(MAGIC_V3.length + STORE_ID_BYTES);
  if (named !== seg) throw new JournalDamage(`${where} is segment ${named}, not ${seg}: a segment was renamed or moved`);
  return readU64(head, MAGIC_V3.length + STORE_ID_BYTES + 4);
}

/** The size of a record's frame for a payload of n bytes. */
export const sealedFrameSize = (n: number): number => RECORD_OVERHEAD + n;

/** Seals one record at its position. */
export function sealRecord(
  cipher: StoreCipher,
  payload: Buffer,
  at: { seg: number; offset: number; seq: number; batchStart: number },
): Buffer {
  const frame = Buffer.allocUnsafe(sealedFrameSize(payload.length));
  frame.writeUInt32LE(NONCE + payload.length + TAG, 0);
  frame.writeUInt32LE(at.seg, 4);
  writeU64(frame, 8, at.offset);
  writeU64(frame, 16, at.seq);
  writeU64(frame, 24, at.batchStart);
  cipher.sealInto('journal', aad(cipher, frame), payload, frame, RECORD_HEADER);
  return frame;
}

function aad(cipher: StoreCipher, frame: Buffer): Buffer {
  return Buffer.concat([cipher.storeId, frame.subarray(0, RECORD_HEADER)]);
}

type Opened = { kind: 'ok'; seg: number; offset: number; seq: number; batchStart: number; payload: Buffer; end: number };
type Tried = Opened | { kind: 'short' } | { kind: 'bad' };

/** The record whose frame starts at offset: opened, cut short by the end of data, or failing its tag. */
export function tryRecord(cipher: StoreCipher, data: Buffer, offset: number): Tried {
  if (offset + RECORD_HEADER > data.length) return { kind: 'short' };
  const length = data.readUInt32LE(offset);
  if (length < NONCE + TAG || length > MAX_RECORD) return { kind: 'bad' };
  const end = offset + RECORD_HEADER + length;
  if (end > data.length) return { kind: 'short' };
  const frame = data.subarray(offset, end);
  const payload = cipher.open('journal', aad(cipher, frame), frame.subarray(RECORD_HEADER));
  if (!payload) return { kind: 'bad' };
  return {
    kind: 'ok',
    seg: frame.readUInt32LE(4),
    offset: readU64(frame, 8),
    seq: readU64(frame, 16),
    batchStart: readU64(frame, 24),
    payload,
    end,
  };
}

/** Checks that an opened record is the one expected at this position. */
export function checkPlace(r: Opened, seg: number, offset: number, seq: number | undefined, where: string): void {
  if (r.seg !== seg)
    throw new JournalDamage(`${where}: the record at byte ${offset} was written in segment ${r.seg} (moved between segments)`);
  if (r.offset !== offset)
    throw new JournalDamage(
      `${where}: the record at byte ${offset} was written at byte ${r.offset} (moved, or a record before it dropped or duplicated)`,
    );
  if (seq !== undefined && r.seq !== seq)
    throw new JournalDamage(
      `${where}: the record at byte ${offset} is record #${r.seq} where #${seq} belongs (a record dropped, duplicated or reordered)`,
    );
}

export type SealedScan<T> = { records: T[]; offsets: number[]; validLength: number; firstSeq: number; nextSeq: number };

/**
 * Opens and checks every record of a segment image. tornTail: the active segment, whose last
 * write batch may be torn by a crash (cut off, see above); a sealed segment must be whole.
 */
export function scanSealedSegment<T>(cipher: StoreCipher, data: Buffer, seg: number, where: string, tornTail: boolean): SealedScan<T> {
  const firstSeq = readSegmentHeader(cipher, data, seg, where);
  const records: T[] = [];
  const offsets: number[] = [];
  let offset = SEGMENT_HEADER;
  let seq = firstSeq;
  while (offset < data.length) {
    const r = tryRecord(cipher, data, offset);
    if (r.kind !== 'ok') {
      const what = r.kind === 'short' ? 'is cut short' : 'fails authentication (altered, or sealed with another key or store)';
      if (!tornTail) throw new JournalDamage(`${where}: the record at byte ${offset} ${what}; a sealed segment is whole`);
      const later = laterBatchAfter(cipher, data, offset, seg, seq);
      if (later !== undefined)
        throw new JournalDamage(
          `${where}: the record at byte ${offset} ${what}, and a record synced after it opens at byte ${later}: damage in the middle, not a torn tail`,
        );
      break;
    }
    checkPlace(r, seg, offset, seq, where);
    records.push(JSON.parse(r.payload.toString('utf8')) as T);
    offsets.push(offset);
    offset = r.end;
    seq++;
  }
  return { records, offsets, validLength: offset, firstSeq, nextSeq: seq };
}

/**
 * The offset of an authentic record of this segment after `from` that shows the bad record was
 * not a torn tail: one written in a later batch than record #seq, or one not where it was
 * written (tampering). Only places whose header could be such a record (this segment, a record
 * number after seq) are tried, so the search costs little; it runs only when a record failed.
 */
function laterBatchAfter(cipher: StoreCipher, data: Buffer, from: number, seg: number, seq: number): number | undefined {
  for (let y = from + 1; y + RECORD_HEADER <= data.length; y++) {
    if (data.readUInt32LE(y + 4) !== seg) continue;
    const n = readU64(data, y + 16);
    if (n <= seq || n > seq + 2 ** 24) continue;
    const r = tryRecord(cipher, data, y);
    if (r.kind === 'ok' && (r.offset !== y || r.batchStart > seq)) return y;
  }
  return undefined;
}

/** Opens a record read on its own (a history read): it must open, and be the one written at offset in seg. */
export function openRecordFrame(cipher: StoreCipher, frame: Buffer, seg: number, offset: number, where: string): Buffer {
  const r = tryRecord(cipher, frame, 0);
  if (r.kind !== 'ok')
    throw new JournalDamage(`${where}: the record at byte ${offset} ${r.kind === 'short' ? 'is cut short' : 'fails authentication'}`);
  checkPlace({ ...r, offset: r.offset }, seg, offset, undefined, where);
  return r.payload;
}
