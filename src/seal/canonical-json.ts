// The JSON Canonicalization Scheme (RFC 8785) for what an envelope holds: objects, arrays,
// strings and integers. Members sorted by UTF-16 code units and strings escaped as
// ECMAScript's JSON.stringify does are exactly RFC 8785's rules for these types.
export function canonicalJson(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new Error('canonical JSON here holds integers only');
    return String(v);
  }
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (typeof v === 'object' && v !== null) {
    const keys = Object.keys(v).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  throw new Error(`canonical JSON here has no ${v === null ? 'null' : typeof v}`);
}
