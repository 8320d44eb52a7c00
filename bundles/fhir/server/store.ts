// The data directory's files, below the repository's meaning of them:
//
//   journal             the active journal segment: every write is appended here (journal.ts)
//   journal.000001 …    sealed segments, oldest first: with the active one, every version ever
//                       written, never rewritten; history reads go to them by location
//   snapshot.000007     the live state after segments 1..7 (snapshot.ts); the newest two kept
//   lock.N              the data directory's lock (lock.ts)
//
// A snapshot seals the active segment (rename to journal.NNNNNN, a new empty journal), so a
// start loads the newest good snapshot and replays only the segments after it.
//
// With a cipher (an encrypted store, store-identity.ts) every segment is in the encrypted format
// (sealed-journal.ts), also holds store.id, and its segments must be numbered 1..N without gaps:
// a segment missing from the middle would otherwise be history silently gone.
import { constants } from 'node:fs';
import { open, readdir, readFile, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { StoreCipher } from './cipher.js';
import { Journal, MAGIC, encodeRecord, readRecordAt, readSealedRecordAt, scanRecords, syncDir, type ScanResult } from './journal.js';
import { SEGMENT_HEADER, scanSealedSegment } from './sealed-journal.js';
import { STORE_ID_FILE } from './store-identity.js';

/** Where a version is: segment number, offset of its record's frame, index of the op in the record. */
export type Loc = [seg: number, offset: number, index: number];

const SEGMENT = /^journal\.(\d{6,})$/;
const SNAPSHOT = /^snapshot\.(\d{6,})$/;
const pad = (n: number): string => String(n).padStart(6, '0');
export const segmentName = (seg: number): string => `journal.${pad(seg)}`;
export const snapshotName = (seg: number): string => `snapshot.${pad(seg)}`;
const MAX_OPEN_SEGMENTS = 32;

export type ActiveOpen<T> = { records: T[]; offsets: number[]; droppedBytes: number; version: 1 | 2 | 3; firstSeq?: number };
/** A segment's records; encrypted ones also say which record numbers it holds. */
export type SegmentScan<T> = ScanResult<T> & { firstSeq?: number; nextSeq?: number };

export class Store<T> {
  /** Read handles of sealed segments (history reads), least recently used first. */
  private readonly segments = new Map<number, Promise<FileHandle>>();
  /** Bytes of sealed segments not covered by the newest snapshot. */
  private sealedTail = 0;

  private constructor(
    readonly dir: string,
    private journal: Journal<T>,
    private activeSeg: number,
    /** Sealed segment numbers, ascending. */
    readonly sealed: number[],
    /** Snapshot segment numbers, newest first. */
    readonly snapshots: number[],
    /** The newest snapshot the repository loaded (0: none), set by it. */
    public snapshotSeg: number,
    public snapshotBytes: number,
    /** The store's cipher when it is encrypted. */
    readonly cipher?: StoreCipher,
  ) {}

  /** Opens the directory's files; the active journal's records come back for replay. */
  static async open<T>(dir: string, cipher?: StoreCipher): Promise<{ store: Store<T>; active: ActiveOpen<T> }> {
    const names = await readdir(dir);
    for (const name of names.filter((n) => n.endsWith('.tmp'))) await rm(join(dir, name), { force: true });
    if (!cipher && names.includes(STORE_ID_FILE))
      throw new Error(`data directory ${dir} holds an encrypted store: set HAKO_FHIR_KEY_FILE to its key file`);
    const sealed = numbered(names, SEGMENT);
    const snapshots = numbered(names, SNAPSHOT).reverse();
    const activeSeg = (sealed.at(-1) ?? 0) + 1;
    let firstSeq = 1;
    if (cipher) {
      const gap = sealed.findIndex((seg, i) => seg !== i + 1);
      if (gap >= 0) throw new Error(`journal segment ${join(dir, segmentName(gap + 1))} is missing: the store's history has a hole`);
      // A new active segment continues the numbering where the last sealed one ended.
      const size = (await stat(join(dir, 'journal')).catch(() => undefined))?.size ?? 0;
      if (size < SEGMENT_HEADER && sealed.length) {
        const seg = sealed.at(-1)!;
        const path = join(dir, segmentName(seg));
        firstSeq = scanSealedSegment(cipher, await readFile(path), seg, `journal segment ${path}`, false).nextSeq;
      }
    }
    const opened = await Journal.open<T>(join(dir, 'journal'), cipher && { cipher, seg: activeSeg, firstSeq });
    if (opened.version === 1 && sealed.length > 0) {
      await opened.journal.close();
      throw new Error(`journal ${join(dir, 'journal')} is in the first format but sealed segments exist beside it`);
    }
    const store = new Store<T>(dir, opened.journal, activeSeg, sealed, snapshots, 0, 0, cipher);
    return { store, active: opened };
  }

  get active(): Journal<T> {
    return this.journal;
  }

  get activeSegment(): number {
    return this.activeSeg;
  }

  /** Journal bytes a start would replay: sealed segments after the newest snapshot, and the active one. */
  get tailBytes(): number {
    return this.sealedTail + this.journal.size;
  }

  /** Called by the repository once it knows which snapshot it loaded. */
  async measureTail(): Promise<void> {
    this.sealedTail = 0;
    for (const seg of this.sealed.filter((s) => s > this.snapshotSeg)) this.sealedTail += (await stat(this.path(seg))).size;
  }

  path(seg: number): string {
    return seg === this.activeSeg ? join(this.dir, 'journal') : join(this.dir, segmentName(seg));
  }

  /** Records of a sealed segment, all of them whole: a sealed segment was complete and synced. */
  async scanSealed(seg: number): Promise<SegmentScan<T>> {
    const data = await readFile(this.path(seg));
    if (this.cipher) return { ...scanSealedSegment<T>(this.cipher, data, seg, `journal segment ${this.path(seg)}`, false), version: 3 };
    const scan = scanRecords<T>(data);
    if (scan.validLength !== data.length)
      throw new Error(`journal segment ${this.path(seg)} is corrupt at byte ${scan.validLength} of ${data.length}`);
    return scan;
  }

  /** Records of any segment, the active one up to what is synced (for type and system history). */
  async scanAny(seg: number): Promise<ScanResult<T>> {
    if (seg !== this.activeSeg) return this.scanSealed(seg);
    // Up to what is written and synced: what is queued may not be on disk yet.
    const data = (await readFile(this.path(seg))).subarray(0, this.journal.size);
    if (this.cipher) return { ...scanSealedSegment<T>(this.cipher, data, seg, `journal ${this.path(seg)}`, true), version: 3 };
    return scanRecords<T>(data);
  }

  /** The record at a location. */
  async read(seg: number, offset: number): Promise<T> {
    if (seg === this.activeSeg) return this.journal.read(offset);
    let handle = this.segments.get(seg);
    if (handle) {
      this.segments.delete(seg); // most recently used goes last
    } else {
      handle = open(this.path(seg), constants.O_RDONLY);
      handle.catch(() => this.segments.delete(seg));
      if (this.segments.size >= MAX_OPEN_SEGMENTS) {
        const [oldest, fh] = this.segments.entries().next().value as [number, Promise<FileHandle>];
        this.segments.delete(oldest);
        fh.then((f) => f.close()).catch(() => {});
      }
    }
    this.segments.set(seg, handle);
    const what = `journal segment ${this.path(seg)}`;
    if (this.cipher) return readSealedRecordAt<T>(await handle, offset, this.cipher, seg, what);
    return readRecordAt<T>(await handle, offset, what);
  }

  /**
   * Seals the active segment and starts a new one; the caller makes sure no append is in
   * flight. Returns the sealed segment's number. A crash between the rename and the new file
   * leaves no `journal`: the next start creates it with the next number.
   */
  async rotate(): Promise<number> {
    const seg = this.activeSeg;
    const old = this.journal;
    await old.seal();
    await rename(join(this.dir, 'journal'), join(this.dir, segmentName(seg)));
    // Journal.open creates the file, writes the magic, syncs it and the directory (and so the rename).
    const sealing = this.cipher && { cipher: this.cipher, seg: seg + 1, firstSeq: old.nextSeq };
    const { journal } = await Journal.open<T>(join(this.dir, 'journal'), sealing);
    this.journal = journal;
    this.activeSeg = seg + 1;
    this.sealed.push(seg);
    this.sealedTail += old.size;
    await old.close();
    return seg;
  }

  /** A snapshot covering segments 1..seg was written: they need no replay any more. */
  snapshotWritten(seg: number, bytes: number): void {
    this.snapshots.unshift(seg);
    this.snapshotSeg = seg;
    this.snapshotBytes = bytes;
    this.sealedTail = 0;
  }

  /**
   * Rewrites a first-format active journal in this format, atomically (temp file, fsync,
   * rename, fsync the directory): build(i, offset) gives record i as it lands at offset.
   */
  async rewriteActive(count: number, build: (i: number, offset: number) => T): Promise<void> {
    const tmp = join(this.dir, 'journal.tmp');
    const file = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o600);
    try {
      let offset = MAGIC.length;
      const chunks: Buffer[] = [MAGIC];
      let pending = MAGIC.length;
      for (let i = 0; i < count; i++) {
        const frame = encodeRecord(build(i, offset));
        chunks.push(frame);
        offset += frame.length;
        pending += frame.length;
        if (pending > 8 << 20 || i === count - 1) {
          await file.write(Buffer.concat(chunks));
          chunks.length = 0;
          pending = 0;
        }
      }
      if (chunks.length) await file.write(Buffer.concat(chunks));
      await file.sync();
    } finally {
      await file.close();
    }
    await this.journal.close();
    await rename(tmp, join(this.dir, 'journal'));
    await syncDir(this.dir);
    this.journal = (await Journal.open<T>(join(this.dir, 'journal'))).journal;
  }

  async close(): Promise<void> {
    await this.journal.close();
    for (const handle of this.segments.values()) await handle.then((f) => f.close()).catch(() => {});
    this.segments.clear();
  }
}

function numbered(names: string[], pattern: RegExp): number[] {
  return names
    .map((n) => pattern.exec(n)?.[1])
    .filter((n): n is string => n !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
}
