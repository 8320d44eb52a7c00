// What changed between a signed manifest and the rootfs as it is now, one phrase per path and
// field: "rootfs/bin/sh: content changed", "rootfs/etc/x: mode 0644 → 0755", "…: added".
import type { Entry } from './manifest.js';

export function diffManifests(signed: Entry[], now: Entry[], shown: string): string[] {
  const where = (p: string) => (p === '.' ? shown : `${shown}/${p}`);
  const before = new Map(signed.map((e) => [e.path, e]));
  const out: string[] = [];
  for (const cur of now) {
    const old = before.get(cur.path);
    before.delete(cur.path);
    if (!old) {
      out.push(`${where(cur.path)}: added`);
      continue;
    }
    const changes: string[] = [];
    if (old.type !== cur.type) changes.push(`type ${old.type} → ${cur.type}`);
    else if (cur.type === 'file' && (old.sha256 !== cur.sha256 || old.size !== cur.size))
      changes.push(old.size === cur.size ? 'content changed' : `content changed (size ${old.size} → ${cur.size} bytes)`);
    else if (cur.type === 'symlink' && old.target !== cur.target)
      changes.push(`symlink target ${JSON.stringify(old.target)} → ${JSON.stringify(cur.target)}`);
    if (old.mode !== cur.mode) changes.push(`mode ${old.mode} → ${cur.mode}`);
    if (old.uid !== cur.uid || old.gid !== cur.gid) changes.push(`owner ${old.uid}:${old.gid} → ${cur.uid}:${cur.gid}`);
    if (changes.length) out.push(`${where(cur.path)}: ${changes.join(', ')}`);
  }
  for (const gone of before.keys()) out.push(`${where(gone)}: removed`);
  return out;
}

/** One sentence from the differences: the first few, and how many more. */
export function summarize(diffs: string[], max = 3): string {
  const shown = diffs.slice(0, max).join('; ');
  return diffs.length > max ? `${shown}; and ${diffs.length - max} more` : shown;
}
