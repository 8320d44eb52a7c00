// Snapshots: the live state (every current resource and every deleted id, each with the
// location of its newest version) after journal segments 1..N, so that a start reads the
// live data instead of replaying every version ever written.
//
// snapshot.NNNNNN: "HAKOFS1\n", then frames framed as journal records (length, crc32, JSON):
//   {"snapshot":1,"segment":N,"created":ISO}                        first
//   {"live":[[seg,off,i,resource],...]}                             current versions
//   {"gone":[[type,id,versionId,lastUpdated,seg,off,i],...]}         deleted resources
//   {"end":{"live":L,"gone":G,"frames":F}}                          last, nothing after it
// It is valid only when every frame checks, the end frame is there and its counts match.
// Written to snapshot.NNNNNN.tmp, fsync'd, read back and verified, renamed, the directory
// fsync'd: a crash leaves the old snapshot or the new one, and a torn or corrupt one is
// refused when loading (the previous snapshot and the journal then stand in).
//
// Encrypted store: "HAKOFS2\n" | store id (16) | u32 segment | HMAC-SHA256 (32), then frames
// u32 length | nonce | XChaCha20-Poly1305(JSON) | tag, each bound (associated data) to the store,
// the segment, its index and its offset, so frames cannot be altered, reordered, dropped or
// moved between snapshots or stores. Its first frame also carries the record number the journal
// after it starts with (nextSeq), which the replay checks.
import { constants } from 'node:fs';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { MAC_BYTES, STORE_ID_BYTES, type StoreCipher } from './cipher.js';
import { HEADER, MAX_RECORD, encodeRecord, syncDir } from './journal.js';
import { snapshotName, type Loc } from './store.js';

export const SNAPSHOT_MAGIC = Buffer.from('HAKOFS1\n', 'latin1');
export const SNAPSHOT_MAGIC_V2 = Buffer.from('HAKOFS2\n', 'latin1');
const SEALED_HEAD = SNAPSHOT_MAGIC_V2.length + STORE_ID_BYTES + 4;
const ENTRIES_PER_FRAME = 500;
const READ_BLOCK = 4 << 20;

export type LiveEntry = [seg: number, offset: number, index: number, resource: { resourceType: string; id: string }];
export type GoneEntry = [type: string, id: string, versionId: string | undefined, lastUpdated: string | undefined, ...loc: Loc];
type Frame = {
  snapshot?: number;
  segment?: number;
  nextSeq?: number;
  live?: LiveEntry[];
  gone?: GoneEntry[];
  end?: { live: number; gone: number; frames: number };
};

/** What a snapshot is written from: taken at one moment, iterated while serving goes on. */
export type SnapshotSource = { live: Iterable<LiveEntry>; gone: Iterable<GoneEntry> };

/** Encrypted snapshots: the store's cipher and the journal's next record number at the snapshot. */
export type SnapshotSealing = { cipher: StoreCipher; nextSeq: number };

function sealedHead(cipher: StoreCipher, seg: number): Buffer {
  const head = Buffer.alloc(SEALED_HEAD);
  SNAPSHOT_MAGIC_V2.copy(head, 0);
  cipher.storeId.copy(head, SNAPSHOT_MAGIC_V2.length);
  head.writeUInt32LE(seg, SEALED_HEAD - 4);
  return Buffer.concat([head, cipher.mac(head)]);
}

function frameAad(cipher: StoreCipher, seg: number, index: number, offset: number, length: number): Buffer {
  const pos = Buffer.alloc(20);
  pos.writeUInt32LE(seg, 0);
  pos.writeUInt32LE(index, 4);
  pos.writeUInt32LE(offset % 2 ** 32, 8);
  pos.writeUInt32LE(Math.floor(offset / 2 ** 32), 12);
  pos.writeUInt32LE(length, 16);
  return Buffer.concat([cipher.storeId, pos]);
}

/** Writes, verifies and installs snapshot.SEG; returns its size. Yields between frames. */
export async function writeSnapshot(
  dir: string,
  seg: number,
  source: SnapshotSource,
  keep = 2,
  sealing?: SnapshotSealing,
): Promise<number> {
  const final = join(dir, snapshotName(seg));
  const tmp = `${final}.tmp`;
  const file = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o600);
  let size = 0;
  let index = 0;
  try {
    const put = async (frame: Frame): Promise<void> => {
      let buf: Buffer;
      if (sealing) {
        const plain = Buffer.from(JSON.stringify(frame), 'utf8');
        const length = 24 + plain.length + 16;
        buf = Buffer.allocUnsafe(4 + length);
        buf.writeUInt32LE(length, 0);
        sealing.cipher.sealInto('snapshot', frameAad(sealing.cipher, seg, index, size, length), plain, buf, 4);
      } else {
        buf = encodeRecord(frame);
      }
      await file.write(buf, 0, buf.length, size);
      size += buf.length;
      index++;
    };
    const magic = sealing ? sealedHead(sealing.cipher, seg) : SNAPSHOT_MAGIC;
    await file.write(magic, 0, magic.length, 0);
    size = magic.length;
    await put({ snapshot: 1, segment: seg, created: new Date().toISOString(), ...(sealing && { nextSeq: sealing.nextSeq }) } as Frame);
    let frames = 1;
    const counts = { live: 0, gone: 0 };
    for (const kind of ['live', 'gone'] as const) {
      let chunk: unknown[] = [];
      for (const entry of source[kind]) {
        chunk.push(entry);
        if (chunk.length === ENTRIES_PER_FRAME) {
          await put({ [kind]: chunk });
          frames++;
          counts[kind] += chunk.length;
          chunk = [];
        }
      }
      if (chunk.length) {
        await put({ [kind]: chunk });
        frames++;
        counts[kind] += chunk.length;
      }
    }
    await put({ end: { ...counts, frames: frames + 1 } });
    await file.sync();
  } finally {
    await file.close();
  }
  await readSnapshot(tmp, () => {}, sealing && { cipher: sealing.cipher, seg }); // verified as it will be read, before it is trusted
  await rename(tmp, final);
  await syncDir(dir);
  return size;
}

/** Removes snapshots older than the newest `keep` (the one before the newest is the fallback). */
export async function pruneSnapshots(dir: string, snapshots: number[], keep = 2): Promise<void> {
  const old = snapshots.splice(keep);
  for (const seg of old) await rm(join(dir, snapshotName(seg)), { force: true });
  if (old.length) await syncDir(dir);
}

/**
 * Reads a snapshot frame by frame, handing each live and gone batch to onBatch; throws
 * (naming what is wrong) when it is torn or corrupt — the caller then discards what it got.
 */
export async function readSnapshot(
  path: string,
  onBatch: (batch: { live?: LiveEntry[]; gone?: GoneEntry[] }) => void | Promise<void>,
  sealed?: { cipher: StoreCipher; seg: number },
): Promise<{ segment: number; live: number; gone: number; bytes: number; nextSeq?: number }> {
  const file = await open(path, constants.O_RDONLY);
  try {
    const reader = new FrameReader(file, sealed);
    if (sealed) {
      const head = await reader.take(SEALED_HEAD + MAC_BYTES);
      if (!head?.subarray(0, SNAPSHOT_MAGIC_V2.length).equals(SNAPSHOT_MAGIC_V2))
        throw new Error(
          head?.subarray(0, SNAPSHOT_MAGIC.length).equals(SNAPSHOT_MAGIC)
            ? 'it is not encrypted, in an encrypted store'
            : 'it does not start with the encrypted snapshot magic',
        );
      if (!head.subarray(SNAPSHOT_MAGIC_V2.length, SNAPSHOT_MAGIC_V2.length + STORE_ID_BYTES).equals(sealed.cipher.storeId))
        throw new Error('it belongs to another store');
      if (!sealedHead(sealed.cipher, sealed.seg).equals(head))
        throw new Error(`its header fails authentication or is not snapshot ${sealed.seg}'s`);
    } else {
      const magic = await reader.take(SNAPSHOT_MAGIC.length);
      if (!magic?.equals(SNAPSHOT_MAGIC))
        throw new Error(
          magic?.equals(SNAPSHOT_MAGIC_V2) ? 'it is encrypted: set HAKO_FHIR_KEY_FILE' : 'it does not start with the snapshot magic',
        );
    }
    const first = await reader.frame();
    if (first?.snapshot !== 1 || typeof first.segment !== 'number') throw new Error('its first frame is not a snapshot header');
    if (sealed && (first.segment !== sealed.seg || typeof first.nextSeq !== 'number'))
      throw new Error(`its first frame names segment ${first.segment}, not ${sealed.seg}`);
    let frames = 1;
    const counts = { live: 0, gone: 0 };
    for (;;) {
      const frame = await reader.frame();
      if (!frame) throw new Error(`it ends after ${frames} frames without its end frame (torn)`);
      frames++;
      if (frame.end) {
        const { end } = frame;
        if (end.live !== counts.live || end.gone !== counts.gone || end.frames !== frames)
          throw new Error(`its end frame counts ${JSON.stringify(end)}, but it holds ${JSON.stringify({ ...counts, frames })}`);
        if (!(await reader.atEnd())) throw new Error('bytes follow its end frame');
        return { segment: first.segment, ...counts, bytes: reader.offset, nextSeq: first.nextSeq };
      }
      counts.live += frame.live?.length ?? 0;
      counts.gone += frame.gone?.length ?? 0;
      await onBatch(frame);
    }
  } finally {
    await file.close();
  }
}

/** Sequential frames from a file, read in large blocks. */
class FrameReader {
  private buf = Buffer.alloc(0);
  private at = 0; // position of buf[0] in the file
  private pos = 0; // read position within buf
  private eof = false;
  private index = 0;

  constructor(
    private readonly file: FileHandle,
    private readonly sealed?: { cipher: StoreCipher; seg: number },
  ) {}

  get offset(): number {
    return this.at + this.pos;
  }

  private async fill(need: number): Promise<boolean> {
    while (this.buf.length - this.pos < need && !this.eof) {
      const rest = this.buf.subarray(this.pos);
      const block = Buffer.allocUnsafe(Math.max(READ_BLOCK, need - rest.length));
      const { bytesRead } = await this.file.read(block, 0, block.length, this.at + this.buf.length);
      if (bytesRead === 0) this.eof = true;
      this.at += this.pos;
      this.buf = Buffer.concat([rest, block.subarray(0, bytesRead)]);
      this.pos = 0;
    }
    return this.buf.length - this.pos >= need;
  }

  async take(n: number): Promise<Buffer | undefined> {
    if (!(await this.fill(n))) return undefined;
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  async frame(): Promise<Frame | undefined> {
    if (this.sealed) return this.sealedFrame(this.sealed);
    const header = await this.take(HEADER);
    if (!header) return undefined;
    const length = header.readUInt32LE(0);
    if (length > MAX_RECORD) throw new Error(`a frame at byte ${this.offset - HEADER} claims ${length} bytes (corrupt)`);
    const payload = await this.take(length);
    if (!payload) return undefined;
    if (crc32(payload) !== header.readUInt32LE(4)) throw new Error(`the frame at byte ${this.offset - length - HEADER} fails its checksum`);
    return JSON.parse(payload.toString('utf8')) as Frame;
  }

  private async sealedFrame({ cipher, seg }: { cipher: StoreCipher; seg: number }): Promise<Frame | undefined> {
    const at = this.offset;
    const header = await this.take(4);
    if (!header) return undefined;
    const length = header.readUInt32LE(0);
    if (length > MAX_RECORD) throw new Error(`a frame at byte ${at} claims ${length} bytes (corrupt)`);
    const body = await this.take(length);
    if (!body) return undefined;
    const plain = cipher.open('snapshot', frameAad(cipher, seg, this.index++, at, length), body);
    if (!plain) throw new Error(`the frame at byte ${at} fails authentication (altered, moved, or from another store)`);
    return JSON.parse(plain.toString('utf8')) as Frame;
  }

  async atEnd(): Promise<boolean> {
    return !(await this.fill(1));
  }
}
