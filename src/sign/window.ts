// Between the check and the container's use of its rootfs there is a window: files are read
// (executed, loaded, opened) long after they were hashed. --require-signed narrows who can use
// it: the rootfs is mounted read-only, so the container cannot change what was verified, and
// nobody but the caller and root may change it from outside: no path in it, or on the way to
// it, that another user owns or that group or others may write. What remains is said in
// docs/signing.md.
import fs from 'node:fs';
import path from 'node:path';
import { HakoError } from '../errors.js';
import type { Config } from '../oci/config.js';
import { modeString, type Entry } from './manifest.js';

const STICKY = 0o1000;

/** Why someone other than `uid` and root could change this, or undefined. */
function openTo(type: string, mode: number, owner: number, uid: number): string | undefined {
  if (owner !== uid && owner !== 0) return `it belongs to uid ${owner}`;
  if (type === 'symlink' || !(mode & 0o022)) return undefined;
  // A sticky directory lets others add names, never replace or remove the ones it holds.
  if (type === 'dir' && mode & STICKY) return undefined;
  return `group or others may write to it (mode ${modeString(mode)})`;
}

export function checkWindow(cfg: Config, rootfs: string, entries: Entry[], shown: string, uid = process.geteuid!()): void {
  if (!cfg.root!.readonly)
    throw new HakoError(
      'config.json: root.readonly: must be true for a signed bundle: the container could otherwise change what was verified',
    );
  const tail = `, so it could change after the check; a signed rootfs may be changed only by you (uid ${uid}) and root`;
  for (const e of entries) {
    const why = openTo(e.type, parseInt(e.mode, 8), e.uid, uid);
    if (why) throw new HakoError(`${e.path === '.' ? shown : `${shown}/${e.path}`}: ${why}${tail}`);
  }
  // The directories on the way to it, as named and as resolved (a symlink on the way leads
  // through other directories): whoever may rename one may put another tree in its place.
  const above = tail.replace('a signed rootfs', 'the directories above a signed rootfs');
  for (const start of new Set([path.dirname(rootfs), fs.realpathSync(path.dirname(rootfs))]))
    for (let dir = start; ; dir = path.dirname(dir)) {
      const st = fs.lstatSync(dir);
      const why = st.isSymbolicLink() ? undefined : openTo('dir', st.mode, st.uid, uid);
      if (why) throw new HakoError(`${dir}: ${why}${above}`);
      if (dir === path.dirname(dir)) break;
    }
}
