// The write-ahead journal: every accepted write is appended here and fsync'd before the
// client hears about it, and replayed on start.
//
// File layout: an 8-byte magic, then records. A record is
//   u32 LE payload length | u32 LE crc32(payload) | payload (UTF-8 JSON)
// A crash can leave a torn last record; scanning stops at the first record that is short
// or fails its checksum, and everything from there on is cut off.
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { crc32 } from 'node:zlib';

export const MAGIC = Buffer.from('HAKOFJ1\n', 'latin1');
const HEADER = 8;
// A length beyond this is corruption, not a record (transactions are bounded well below).
const MAX_RECORD = 256 * 1024 * 1024;

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
  /** Offset just past the last whole record: where the file must be cut and appends go. */
  validLength: number;
};

/** Decodes whole records from a journal image; stops at the first torn or corrupt one. */
export function scanRecords<T = unknown>(data: Buffer): ScanResult<T> {
  const records: T[] = [];
  if (data.length < MAGIC.length || !data.subarray(0, MAGIC.length).equals(MAGIC)) {
    if (data.length === 0) return { records, validLength: 0 };
    throw new Error(`the file does not start with the journal magic ${JSON.stringify(MAGIC.toString('latin1'))}`);
  }
  let offset = MAGIC.length;
  while (offset + HEADER <= data.length) {
    const length = data.readUInt32LE(offset);
    const end = offset + HEADER + length;
    if (length > MAX_RECORD || end > data.length) break;
    const payload = data.subarray(offset + HEADER, end);
    if (crc32(payload) !== data.readUInt32LE(offset + 4)) break;
    let record: T;
    try {
      record = JSON.parse(payload.toString('utf8')) as T;
    } catch {
      break; // A checksum collision on garbage: treat as corruption too.
    }
    records.push(record);
    offset = end;
  }
  return { records, validLength: offset };
}

type Pending = { frame: Buffer; resolve: () => void; reject: (err: Error) => void };

export class Journal<T = unknown> {
  private queue: Pending[] = [];
  private flushing: Promise<void> | undefined;
  private failed: Error | undefined;

  private constructor(
    private readonly file: FileHandle,
    readonly path: string,
    private position: number,
  ) {}

  /**
   * Opens (or creates) the journal, returns the records it holds and how many bytes of torn
   * tail were cut off. The file is truncated to its last whole record before any append.
   */
  static async open<T>(path: string): Promise<{ journal: Journal<T>; records: T[]; droppedBytes: number }> {
    const file = await open(path, constants.O_RDWR | constants.O_CREAT, 0o600);
    try {
      const data = await file.readFile();
      let scan: ScanResult<T>;
      try {
        scan = scanRecords<T>(data);
      } catch (err) {
        throw new Error(`journal ${path} is not a hako FHIR journal: ${(err as Error).message}`);
      }
      const droppedBytes = data.length - scan.validLength;
      let position = scan.validLength;
      if (droppedBytes > 0) await file.truncate(position);
      if (position === 0) {
        await file.write(MAGIC, 0, MAGIC.length, 0);
        position = MAGIC.length;
      }
      if (droppedBytes > 0 || data.length === 0) await file.sync();
      if (data.length === 0) await syncDir(dirname(path)); // the new file's name must survive a crash too
      return { journal: new Journal<T>(file, path, position), records: scan.records, droppedBytes };
    } catch (err) {
      await file.close();
      throw err;
    }
  }

  /**
   * Appends a record; resolves once it is on stable storage. Appends that arrive while a
   * flush is in progress are written and synced together (group commit), and resolve in
   * the order they were appended.
   */
  append(record: T): Promise<void> {
    if (this.failed) return Promise.reject(this.failed);
    const frame = encodeRecord(record);
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ frame, resolve, reject });
      this.flushing ??= this.flush();
    });
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      const buf = batch.length === 1 ? batch[0].frame : Buffer.concat(batch.map((p) => p.frame));
      try {
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

  /** Waits for queued appends, then closes the file. */
  async close(): Promise<void> {
    await this.flushing;
    await this.file.close();
  }
}

async function syncDir(path: string): Promise<void> {
  const dir = await open(path, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
