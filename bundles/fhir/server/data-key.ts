// The store's data key: 32 random bytes, written as 64 hex digits in a file the container gets
// read-only (HAKO_FHIR_KEY_FILE, e.g. /run/secrets/fhir-store.key), never in config.json or
// the environment. The file must be its owner's alone: a key others can read protects nothing.
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';

export const DATA_KEY_BYTES = 32;

/** A new data key as the key file holds it. */
export function newDataKeyText(): string {
  return `${randomBytes(DATA_KEY_BYTES).toString('hex')}\n`;
}

/** Reads and checks the key file; every refusal is one sentence naming the file. */
export async function loadDataKey(path: string): Promise<Uint8Array> {
  let file;
  try {
    file = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new Error(`key file ${path} does not exist (HAKO_FHIR_KEY_FILE names the store's data key)`);
    if (code === 'ELOOP') throw new Error(`key file ${path} is a symbolic link: name the key file itself`);
    if (code === 'EACCES')
      throw new Error(`key file ${path} is not readable by uid ${process.getuid?.()}: it must belong to the server's user`);
    throw new Error(`key file ${path} cannot be read: ${(err as Error).message}`);
  }
  try {
    const info = await file.stat();
    if (!info.isFile()) throw new Error(`key file ${path} is not a regular file`);
    if ((info.mode & 0o077) !== 0)
      throw new Error(
        `key file ${path} can be read by others (mode ${(info.mode & 0o777).toString(8).padStart(4, '0')}): make it the owner's alone (chmod 600 ${path})`,
      );
    const text = (await file.readFile('latin1')).trim();
    if (!/^[0-9a-fA-F]*$/.test(text) || text.length !== DATA_KEY_BYTES * 2)
      throw new Error(
        `key file ${path} holds ${/^[0-9a-fA-F]*$/.test(text) ? `${text.length} hex digits` : 'something other than hex digits'}: a data key is ${DATA_KEY_BYTES} bytes written as ${DATA_KEY_BYTES * 2} hex digits`,
      );
    return Uint8Array.from(Buffer.from(text, 'hex'));
  } finally {
    await file.close();
  }
}
