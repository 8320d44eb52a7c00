// The trust directory: the identities (*.id.json) whose signatures hako accepts. A directory
// others may write to would let anyone add themselves to it, so it is refused.
import fs from 'node:fs';
import path from 'node:path';
import { HakoError } from '../errors.js';
import { loadIdentity, type Identity } from '../seal/keys.js';
import { modeString } from './manifest.js';

export function loadTrust(dir: string): Identity[] {
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch {
    throw new HakoError(`--trust ${dir}: no such directory`);
  }
  if (!st.isDirectory()) throw new HakoError(`--trust ${dir}: not a directory`);
  if (st.mode & 0o022)
    throw new HakoError(`--trust ${dir}: others may write to it (mode ${modeString(st.mode)}), so anyone could add an identity to trust`);
  const ids: Identity[] = [];
  for (const name of fs.readdirSync(dir).sort()) {
    if (!name.endsWith('.id.json')) continue;
    const file = path.join(dir, name);
    const fst = fs.lstatSync(file);
    if (fst.isFile() && fst.mode & 0o022)
      throw new HakoError(`${file}: others may write to it (mode ${modeString(fst.mode)}), so anyone could change whom it trusts`);
    ids.push(loadIdentity(file));
  }
  if (!ids.length) throw new HakoError(`--trust ${dir}: holds no identity (NAME.id.json, from hako keys new)`);
  return ids;
}
