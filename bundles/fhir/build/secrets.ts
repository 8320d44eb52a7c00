// The store's data key for `hako up`: made once, by the build hook, in BUNDLE/secrets/ (outside
// the rootfs and the data volume, so a copy of the data is no copy of the key), which config.json
// bind-mounts read-only at /run/secrets; the server finds it by HAKO_FHIR_KEY_FILE (the path
// only). 0600 in a 0700 directory, owned by the container's user on the host: rootless the
// caller; as root the subordinate uid hako up runs the server as — the data volume's owner once
// up has handed it over, else the first id of user hako's range in /etc/subuid and /etc/subgid
// (up makes that user before it runs this hook). Nobody else can read it.
import { chown, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { newDataKeyText } from '../server/data-key.js';

export const KEY_NAME = 'fhir-store.key';

export async function ensureStoreKey(bundleDir: string, log: (sentence: string) => void): Promise<void> {
  const dir = join(bundleDir, 'secrets');
  const key = join(dir, KEY_NAME);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const made = await writeFile(key, newDataKeyText(), { mode: 0o600, flag: 'wx' }).then(
    () => true,
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'EEXIST') return false;
      throw err;
    },
  );
  if (made)
    log(`made the FHIR store's data key ${key} (keep a copy apart from the data: without it the store cannot be read)`);
  if (process.geteuid?.() !== 0) return;
  const owner = await containerOwner(bundleDir);
  if (!owner) return;
  for (const p of [dir, key]) {
    const st = await stat(p);
    if (st.uid !== owner.uid || st.gid !== owner.gid) await chown(p, owner.uid, owner.gid);
  }
}

async function containerOwner(bundleDir: string): Promise<{ uid: number; gid: number } | undefined> {
  const data = await stat(join(bundleDir, 'data')).catch(() => undefined);
  if (data && data.uid !== 0) return { uid: data.uid, gid: data.gid };
  const first = async (file: string): Promise<number | undefined> => {
    const text = await readFile(file, 'utf8').catch(() => '');
    const line = text.split('\n').find((l) => l.startsWith('hako:'));
    return line ? Number(line.split(':')[1]) : undefined;
  };
  const uid = await first('/etc/subuid');
  const gid = await first('/etc/subgid');
  return uid === undefined || gid === undefined ? undefined : { uid, gid };
}
