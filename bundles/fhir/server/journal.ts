// The write-ahead journal: every accepted write is appended here and fsync'd before the
// client hears about it, and replayed on start. The data directory holds several journal
// files (segments, see store.ts); this is one of them.
//
// File layout: an 8-byte magic, then records. A record is
//   u32 LE payload length | u32 LE crc32(payload) | payload (UTF-8 JSON)
// A crash can leave a torn last record; scanning stops at the first record that is short
// or fails its checksum, and everything from there on is cut off.
//
// Magic "HAKOFJ2\n": records carry the location of the resource's previous version (the
// history chain, repository.ts). "HAKOFJ1\n" is the first format (no chain); store.ts
// rewrites such a journal once, on the first start of this version.
//
// Magic "HAKOFJ3\n": the encrypted format (sealed-journal.ts), used when the server has a data
// key (HAKO_FHIR_KEY_FILE); without one the plain format stays the default.
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { crc32 } from 'node:zlib';
import type { StoreCipher } from './cipher.js';
import {
  MAGIC_V3,
  RECORD_HEADER,
  openRecordFrame,
  scanSealedSegment,
  sealRecord,
  sealedFrameSize,
  segmentHeader,
} from './sealed-journal.js';

export const MAGIC = Buffer.from('HAKOFJ2\n', 'latin1');
export const MAGIC_V1 = Buffer.from('HAKOFJ1\n', 'latin1');
export const HEADER = 8;
// A length beyond this is corruption, not a record (transactions are bounded well below).
export const MAX_RECORD = 256 * 1024 * 1024;

export function encodeRecord(record: unknown): Buffer {
  const payload = Buffer.from(JSON.stringify(record), 'utf8');
  const frame = Buffer.allocUnsafe(HEADER + payload.length);
  frame.writeUInt32LE(payload.length, 0);
  frame.writeUInt32LE(crc32(payload), 4);
  payload.copy(frame, HEADER);
  return frame;
}

export type ScanResult<T> = {
  records: T[];
  /** Where each record's frame starts in the file (its location for history reads). */
  offsets: number[];
  /** Offset just past the last whole record: where the file must be cut and appends go. */
  validLength: number;
  /** 1: the first format (no history chain); 2: this one; 3: encrypted. */
  version: 1 | 2 | 3;
};

/** An encrypted segment: the store's cipher, the segment's number, and the first record number of a new file. */
export type Sealing = { cipher: StoreCipher; seg: number; firstSeq: number };

/** Decodes whole records from a journal image; stops at the first torn or corrupt one. */
export function scanRecords<T = unknown>(data: Buffer): ScanResult<T> {
  const records: T[] = [];
  const offsets: number[] = [];
  const head = data.subarray(0, MAGIC.length);
  const version = head.equals(MAGIC_V1) ? 1 : 2;
  if (data.length < MAGIC.length || !(head.equals(MAGIC) || head.equals(MAGIC_V1))) {
    if (data.length === 0) return { records, offsets, validLength: 0, version };
    if (head.equals(MAGIC_V3)) throw new Error("it is encrypted: set HAKO_FHIR_KEY_FILE to the store's key file");
    throw new Error(`the file does not start with the journal magic ${JSON.stringify(MAGIC.toString('latin1'))}`);
  }
  let offset = MAGIC.length;
  for (;;) {
    const frame = decodeFrame(data, offset);
    if (!frame) break;
    let record: T;
    try {
      record = JSON.parse(frame.payload.toString('utf8')) as T;
    } catch {
      break; // A checksum collision on garbage: treat as corruption too.
    }
    records.push(record);
    offsets.push(offset);
    offset = frame.end;
  }
  return { records, offsets, validLength: offset, version };
}

/** The frame at offset if it is whole and its checksum holds. */
export function decodeFrame(data: Buffer, offset: number): { payload: Buffer; end: number } | undefined {
  if (offset + HEADER > data.length) return undefined;
  const length = data.readUInt32LE(offset);
  const end = offset + HEADER + length;
  if (length > MAX_RECORD || end > data.length) return undefined;
  const payload = data.subarray(offset + HEADER, end);
  if (crc32(payload) !== data.readUInt32LE(offset + 4)) return undefined;
  return { payload, end };
}

/** Reads and checks the record whose frame starts at offset (a history read). */
export async function readRecordAt<T>(file: FileHandle, offset: number, what: string): Promise<T> {
  const header = Buffer.allocUnsafe(HEADER);
  const { bytesRead } = await file.read(header, 0, HEADER, offset);
  const length = header.readUInt32LE(0);
  if (bytesRead < HEADER || length > MAX_RECORD) throw new Error(`${what}: no record at offset ${offset}`);
  const payload = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const r = await file.read(payload, done, length - done, offset + HEADER + done);
    if (r.bytesRead === 0) throw new Error(`${what}: the record at offset ${offset} is short`);
    done += r.bytesRead;
  }
  if (crc32(payload) !== header.readUInt32LE(4)) throw new Error(`${what}: the record at offset ${offset} fails its checksum`);
  return JSON.parse(payload.toString('utf8')) as T;
}

/** Reads and opens the encrypted record whose frame starts at offset (a history read). */
export async function readSealedRecordAt<T>(file: FileHandle, offset: number, cipher: StoreCipher, seg: number, what: string): Promise<T> {
  const header = Buffer.allocUnsafe(RECORD_HEADER);
  const { bytesRead } = await file.read(header, 0, RECORD_HEADER, offset);
  const length = header.readUInt32LE(0);
  if (bytesRead < RECORD_HEADER || length > MAX_RECORD) throw new Error(`${what}: no record at offset ${offset}`);
  const frame = Buffer.allocUnsafe(RECORD_HEADER + length);
  header.copy(frame);
  let done = 0;
  while (done < length) {
    const r = await file.read(frame, RECORD_HEADER + done, length - done, offset + RECORD_HEADER + done);
    if (r.bytesRead === 0) throw new Error(`${what}: the record at offset ${offset} is short`);
    done += r.bytesRead;
  }
  return JSON.parse(openRecordFrame(cipher, frame, seg, offset, what).toString('utf8')) as T;
}

/** A queued append: its frame (plain), or its payload and number to seal once its batch is known. */
type Pending = { frame?: Buffer; payload?: Buffer; seq?: number; offset?: number; resolve: () => void; reject: (err: Error) => void };

export class Journal<T = unknown> {
  private queue: Pending[] = [];
  private flushing: Promise<void> | undefined;
  private failed: Error | undefined;
  /** Where the next appended record goes: past what is on disk and what is queued. */
  private end: number;

  private constructor(
    private readonly file: FileHandle,
    readonly path: string,
    private position: number,
    private readonly sealing?: Sealing,
    /** The number the next appended record gets (encrypted only). */
    private seq = 0,
  ) {
    this.end = position;
  }

  /**
   * Opens (or creates) the journal, returns the records it holds and how many bytes of torn
   * tail were cut off. The file is truncated to its last whole record before any append.
   * A first-format journal (version 1) is returned as it is, for store.ts to rewrite.
   */
  static async open<T>(path: string, sealing?: Sealing): Promise<OpenedJournal<T>> {
    const file = await open(path, constants.O_RDWR | constants.O_CREAT, 0o600);
    try {
      const data = await file.readFile();
      let scan: ScanResult<T> & { firstSeq?: number; nextSeq?: number };
      if (sealing && data.length > 0) {
        // A sealing error names the segment and the byte; it stops the start.
        scan = { ...scanSealedSegment<T>(sealing.cipher, data, sealing.seg, `journal ${path}`, true), version: 3 };
      } else {
        try {
          scan = scanRecords<T>(data);
        } catch (err) {
          throw new Error(`journal ${path} is not a hako FHIR journal: ${(err as Error).message}`);
        }
        if (sealing && data.length === 0) scan = { ...scan, version: 3, firstSeq: sealing.firstSeq, nextSeq: sealing.firstSeq };
      }
      const droppedBytes = data.length - scan.validLength;
      let position = scan.validLength;
      if (droppedBytes > 0) await file.truncate(position);
      if (position === 0) {
        const head = sealing ? segmentHeaderOf(sealing) : MAGIC;
        await file.write(head, 0, head.length, 0);
        position = head.length;
      }
      if (droppedBytes > 0 || data.length === 0) await file.sync();
      if (data.length === 0) await syncDir(dirname(path)); // the new file's name must survive a crash too
      const journal = new Journal<T>(file, path, position, sealing, scan.nextSeq ?? 0);
      return {
        journal,
        records: scan.records,
        offsets: scan.offsets,
        droppedBytes,
        version: scan.version,
        firstSeq: scan.firstSeq,
      };
    } catch (err) {
      await file.close();
      throw err;
    }
  }

  /** Where the next append lands (its location, for the history chain); set synchronously. */
  get nextOffset(): number {
    return this.end;
  }

  /** Bytes in the file once every queued append is written. */
  get size(): number {
    return this.end;
  }

  /** The number the next record gets (encrypted), i.e. the next segment's first. */
  get nextSeq(): number {
    return this.seq;
  }

  get poisoned(): Error | undefined {
    return this.failed;
  }

  /**
   * Appends a record; resolves once it is on stable storage. Appends that arrive while a
   * flush is in progress are written and synced together (group commit), and resolve in
   * the order they were appended.
   */
  append(record: T): Promise<void> {
    if (this.failed) return Promise.reject(this.failed);
    let pending: Omit<Pending, 'resolve' | 'reject'>;
    if (this.sealing) {
      // Sealed at flush time, when its batch (bound into the record) is known; its size is known now.
      const payload = Buffer.from(JSON.stringify(record), 'utf8');
      pending = { payload, seq: this.seq++, offset: this.end };
      this.end += sealedFrameSize(payload.length);
    } else {
      pending = { frame: encodeRecord(record) };
      this.end += pending.frame!.length;
    }
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ ...pending, resolve, reject });
      this.flushing ??= this.flush();
    });
  }

  /** Reads the record whose frame starts at offset. */
  read(offset: number): Promise<T> {
    if (this.sealing) return readSealedRecordAt<T>(this.file, offset, this.sealing.cipher, this.sealing.seg, `journal ${this.path}`);
    return readRecordAt<T>(this.file, offset, `journal ${this.path}`);
  }

  /** The frames of a batch: plain ones as they are, encrypted ones sealed with the batch's start. */
  private frames(batch: Pending[]): Buffer[] {
    const s = this.sealing;
    if (!s) return batch.map((p) => p.frame!);
    const batchStart = batch[0].seq!;
    return batch.map((p) => sealRecord(s.cipher, p.payload!, { seg: s.seg, offset: p.offset!, seq: p.seq!, batchStart }));
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      try {
        const frames = this.frames(batch);
        const buf = frames.length === 1 ? frames[0] : Buffer.concat(frames);
        let done = 0;
        while (done < buf.length) {
          const { bytesWritten } = await this.file.write(buf, done, buf.length - done, this.position + done);
          done += bytesWritten;
        }
        await this.file.datasync();
        this.position += buf.length;
        for (const p of batch) p.resolve();
      } catch (err) {
        // After a failed write or sync the file's state is unknown: refuse every later write.
        this.failed = new Error(`journal ${this.path} write failed: ${(err as Error).message}`);
        for (const p of [...batch, ...this.queue]) p.reject(this.failed);
        this.queue = [];
      }
    }
    this.flushing = undefined;
  }

  /** Takes no more appends and waits for the queued ones; the file stays open for reads. */
  async seal(): Promise<void> {
    this.failed ??= new Error(`journal ${this.path} is sealed (a later segment takes the appends)`);
    await this.flushing;
  }

  /** Waits for queued appends (no more are taken), then closes the file. */
  async close(): Promise<void> {
    this.failed ??= new Error(`journal ${this.path} is closed`);
    await this.flushing;
    await this.file.close();
  }
}

export type OpenedJournal<T> = {
  journal: Journal<T>;
  records: T[];
  offsets: number[];
  droppedBytes: number;
  version: 1 | 2 | 3;
  /** Encrypted: the segment's first record number (its header). */
  firstSeq?: number;
};

function segmentHeaderOf(s: Sealing): Buffer {
  return segmentHeader(s.cipher, s.seg, s.firstSeq);
}

export async function syncDir(path: string): Promise<void> {
  const dir = await open(path, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
