import { mkdtemp, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Journal, MAGIC, encodeRecord, scanRecords } from '../server/journal.js';

let dir: string;
let path: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hako-journal-'));
  path = join(dir, 'journal');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function writeJournal(records: unknown[]): Promise<void> {
  const { journal } = await Journal.open(path);
  await Promise.all(records.map((r) => journal.append(r)));
  await journal.close();
}

describe('journal framing', () => {
  it('frames a record as length, crc32 and JSON payload', () => {
    const frame = encodeRecord({ a: 1 });
    const payload = Buffer.from('{"a":1}');
    expect(frame.readUInt32LE(0)).toBe(payload.length);
    expect(frame.subarray(8).equals(payload)).toBe(true);
    expect(scanRecords(Buffer.concat([MAGIC, frame]))).toEqual({
      records: [{ a: 1 }],
      offsets: [MAGIC.length],
      validLength: MAGIC.length + frame.length,
      version: 2,
    });
  });

  it('stops at a record whose checksum does not match', () => {
    const good = encodeRecord({ n: 1 });
    const bad = encodeRecord({ n: 2 });
    bad[bad.length - 2] ^= 0x01;
    const scan = scanRecords(Buffer.concat([MAGIC, good, bad, encodeRecord({ n: 3 })]));
    expect(scan.records).toEqual([{ n: 1 }]);
    expect(scan.validLength).toBe(MAGIC.length + good.length);
  });

  it('refuses a file that is not a journal', () => {
    expect(() => scanRecords(Buffer.from('not a journal at all'))).toThrow(/journal magic/);
  });
});

describe('journal file', () => {
  it('reads back every appended record in append order, including concurrent appends', async () => {
    const records = Array.from({ length: 200 }, (_, n) => ({ n, text: 'x'.repeat(n) }));
    await writeJournal(records);
    const { journal, records: read, droppedBytes } = await Journal.open(path);
    await journal.close();
    expect(droppedBytes).toBe(0);
    expect(read).toEqual(records);
  });

  it('recovers up to the last whole record and cuts a torn tail', async () => {
    await writeJournal([{ n: 1 }, { n: 2 }, { n: 3 }]);
    const whole = (await stat(path)).size;
    const lastFrame = encodeRecord({ n: 3 }).length;
    const tornAt = whole - lastFrame + 5; // inside the last record's header
    await truncate(path, tornAt);

    const { journal, records, droppedBytes } = await Journal.open(path);
    expect(records).toEqual([{ n: 1 }, { n: 2 }]);
    expect(droppedBytes).toBe(5);
    expect((await stat(path)).size).toBe(whole - lastFrame);

    // Appends after recovery land right after the last whole record.
    await journal.append({ n: 4 });
    await journal.close();
    const again = await Journal.open(path);
    await again.journal.close();
    expect(again.records).toEqual([{ n: 1 }, { n: 2 }, { n: 4 }]);
    expect(again.droppedBytes).toBe(0);
  });

  it('drops a tail of garbage bytes', async () => {
    await writeJournal([{ n: 1 }]);
    const before = await readFile(path);
    await writeFile(path, Buffer.concat([before, Buffer.from([0xff, 0xff, 0xff, 0x7f, 1, 2, 3, 4, 5, 6, 7])]));
    const { journal, records, droppedBytes } = await Journal.open(path);
    await journal.close();
    expect(records).toEqual([{ n: 1 }]);
    expect(droppedBytes).toBe(11);
    expect((await readFile(path)).equals(before)).toBe(true);
  });

  it('says which file is not a journal', async () => {
    await writeFile(path, 'hello');
    await expect(Journal.open(path)).rejects.toThrow(`journal ${path} is not a hako FHIR journal`);
  });
});
