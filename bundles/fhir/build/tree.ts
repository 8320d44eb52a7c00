// Making a built tree reproducible and describing it: fixed times on every entry, and a
// sorted manifest (path, type, mode, content hash or link target) to compare two builds.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, lutimes, readdir, readlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';

/** 2000-01-01T00:00:00Z, or SOURCE_DATE_EPOCH when the caller sets it (the reproducible-builds convention). */
export function fixedTime(): Date {
  const epoch = process.env.SOURCE_DATE_EPOCH;
  return new Date(epoch && /^\d+$/.test(epoch) ? Number(epoch) * 1000 : Date.UTC(2000, 0, 1));
}

/** Sets every entry's atime and mtime to TIME, children before their directory. */
export async function fixTimes(root: string, time: Date = fixedTime()): Promise<void> {
  for (const entry of await readdir(root, { withFileTypes: true })) {
    const path = join(root, entry.name);
    if (entry.isDirectory()) await fixTimes(path, time);
    else if (entry.isSymbolicLink()) await lutimes(path, time, time);
    else await utimes(path, time, time);
  }
  await utimes(root, time, time);
}

export type ManifestEntry = { path: string; type: 'dir' | 'file' | 'symlink'; mode: string; mtime: number; content: string };

/** Every entry under ROOT, sorted by path; files carry their sha256, symlinks their target. */
export async function treeManifest(root: string): Promise<ManifestEntry[]> {
  const entries: ManifestEntry[] = [];
  const walk = async (rel: string): Promise<void> => {
    const names = (await readdir(join(root, rel))).sort();
    for (const name of names) {
      const path = rel ? `${rel}/${name}` : name;
      const info = await lstat(join(root, path));
      const mode = (info.mode & 0o7777).toString(8);
      const mtime = info.mtimeMs;
      if (info.isDirectory()) {
        entries.push({ path, type: 'dir', mode, mtime, content: '' });
        await walk(path);
      } else if (info.isSymbolicLink()) {
        entries.push({ path, type: 'symlink', mode, mtime, content: await readlink(join(root, path)) });
      } else {
        entries.push({ path, type: 'file', mode, mtime, content: await sha256(join(root, path)) });
      }
    }
  };
  await walk('');
  return entries;
}

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
