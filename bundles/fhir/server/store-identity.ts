// An encrypted store's identity: DATA/store.id holds its random id and a check that the data
// key opens it, so a wrong key is one sentence at start instead of "every record fails".
//
//   "HAKOFK1\n" | store id (16 bytes) | HMAC-SHA256(header subkey, the 24 bytes before)
//
// The id salts every subkey (cipher.ts) and is in every segment's and snapshot's header: a
// record, segment or snapshot copied in from another store does not open in this one.
import { constants } from 'node:fs';
import { open, readFile, readdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { MAC_BYTES, STORE_ID_BYTES, StoreCipher, newStoreId } from './cipher.js';
import { syncDir } from './journal.js';

export const STORE_ID_FILE = 'store.id';
const MAGIC = Buffer.from('HAKOFK1\n', 'latin1');
const PLAIN_JOURNAL = /^HAKOFJ[12]\n$/;

/** The cipher of the store in dir, created with a new id when dir holds no store yet. */
export async function openStoreIdentity(dir: string, dataKey: Uint8Array, keyFile: string): Promise<StoreCipher> {
  const found = await readStoreIdentity(dir, dataKey, keyFile);
  if (found) return found;
  return createStoreIdentity(dir, dataKey);
}

/** The cipher of an existing encrypted store in dir; undefined when it has no store.id. */
export async function readStoreIdentity(dir: string, dataKey: Uint8Array, keyFile: string): Promise<StoreCipher | undefined> {
  const file = join(dir, STORE_ID_FILE);
  const data = await readFile(file).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (data) {
    if (data.length !== MAGIC.length + STORE_ID_BYTES + MAC_BYTES || !data.subarray(0, MAGIC.length).equals(MAGIC))
      throw new Error(`${file} is not a hako FHIR store identity (torn or altered)`);
    const cipher = new StoreCipher(dataKey, data.subarray(MAGIC.length, MAGIC.length + STORE_ID_BYTES));
    if (!cipher.mac(data.subarray(0, MAGIC.length + STORE_ID_BYTES)).equals(data.subarray(MAGIC.length + STORE_ID_BYTES)))
      throw new Error(
        `the key in ${keyFile} does not open the store in ${dir} (${STORE_ID_FILE}'s check fails): it was made with another key`,
      );
    return cipher;
  }
  return undefined;
}

async function createStoreIdentity(dir: string, dataKey: Uint8Array): Promise<StoreCipher> {
  const file = join(dir, STORE_ID_FILE);
  await refuseUnencrypted(dir);
  const cipher = new StoreCipher(dataKey, newStoreId());
  const head = Buffer.concat([MAGIC, cipher.storeId]);
  const tmp = `${file}.tmp`;
  const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o600);
  try {
    await fh.write(Buffer.concat([head, cipher.mac(head)]));
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
  await syncDir(dir);
  return cipher;
}

/** A data directory with journal files but no store.id: a plain store, or an encrypted one that lost its id. */
async function refuseUnencrypted(dir: string): Promise<void> {
  for (const name of await readdir(dir)) {
    if (!/^(journal(\.\d+)?|snapshot\.\d+)$/.test(name)) continue;
    const fh = await open(join(dir, name), constants.O_RDONLY);
    const head = Buffer.alloc(8);
    try {
      await fh.read(head, 0, 8, 0);
    } finally {
      await fh.close();
    }
    if (head.every((b) => b === 0)) continue; // an empty active journal
    if (PLAIN_JOURNAL.test(head.toString('latin1')) || head.toString('latin1') === 'HAKOFS1\n')
      throw new Error(
        `data directory ${dir} holds a plain (unencrypted) store and HAKO_FHIR_KEY_FILE is set: it is not encrypted in place: serve it without HAKO_FHIR_KEY_FILE, or start the encrypted store in an empty data directory and copy the resources over (docs/storage-encryption.md)`,
      );
    throw new Error(
      `data directory ${dir} holds encrypted journal files but no ${STORE_ID_FILE}: it was removed or the files were copied in without it`,
    );
  }
}
