// /etc/subuid and /etc/subgid: the one parser create, doctor and `hako up` share, read
// as newuidmap reads them (owner by name or by uid, "#" lines and malformed ones skipped),
// so doctor cannot say yes where create says no.
export interface SubIdEntry {
  owner: string;
  start: number;
  count: number;
}

export interface SubIdRange {
  start: number;
  count: number;
}

/** Every well-formed entry of /etc/subuid-style text. */
export function parseSubIdFile(text: string): SubIdEntry[] {
  const out: SubIdEntry[] = [];
  for (const line of text.split('\n')) {
    const [owner, start, count, ...rest] = line.trim().split(':');
    if (!owner || owner.startsWith('#') || rest.length || !/^\d+$/.test(start ?? '') || !/^\d+$/.test(count ?? '')) continue;
    out.push({ owner, start: Number(start), count: Number(count) });
  }
  return out;
}

const owns = (e: SubIdEntry, user: string | null, uid: number | undefined) =>
  e.owner === user || (uid !== undefined && e.owner === String(uid));

/** A user's ranges (by name or uid), in file order. */
export function rangesOf(text: string, user: string | null, uid: number): SubIdRange[] {
  return parseSubIdFile(text)
    .filter((e) => owns(e, user, uid))
    .map(({ start, count }) => ({ start, count }));
}

/** The first usable entry of a user, by name or by uid (as newuidmap reads the files). */
export function entryFor(entries: SubIdEntry[], user: string, uid: number | undefined): SubIdEntry | undefined {
  return entries.find((e) => e.count > 0 && owns(e, user, uid));
}
