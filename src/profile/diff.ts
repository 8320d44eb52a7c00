// `hako profile diff A B`, in words: what B allows that A did not, what it no longer allows,
// which calls moved between the serving set and start-up, and changed argument rules.
import type { OciSeccomp, OciSeccompSyscall } from '../seccomp/types.js';

type Kind = 'allowed' | 'start-up only' | 'answered with an error' | 'other';

function kindOf(rule: OciSeccompSyscall): Kind {
  if (rule.action === 'SCMP_ACT_ALLOW' || rule.action === 'SCMP_ACT_LOG') return 'allowed';
  if (rule.action === 'SCMP_ACT_NOTIFY') return 'start-up only';
  if (rule.action === 'SCMP_ACT_ERRNO') return 'answered with an error';
  return 'other';
}

function describeArgs(rule: OciSeccompSyscall): string {
  if (!rule.args?.length) return '';
  return rule.args
    .map(
      (a) =>
        // flags and masks read best in hex
        `arg${a.index} ${String(a.op).replace('SCMP_CMP_', '').toLowerCase()} 0x${a.value.toString(16)}${a.valueTwo !== undefined ? ` 0x${a.valueTwo.toString(16)}` : ''}`,
    )
    .join(', ');
}

/** name → how the profile treats it (kind, and argument conditions when there are some). */
function table(p: OciSeccomp): Map<string, { kind: Kind; conditions: string[] }> {
  const m = new Map<string, { kind: Kind; conditions: string[] }>();
  for (const rule of p.syscalls ?? []) {
    for (const name of rule.names) {
      const e = m.get(name) ?? { kind: kindOf(rule), conditions: [] };
      const c = describeArgs(rule);
      if (c) e.conditions.push(c);
      m.set(name, e);
    }
  }
  return m;
}

const list = (names: string[]) => names.sort().join(', ');

export function diffProfiles(a: OciSeccomp, b: OciSeccomp, names = { a: 'A', b: 'B' }): string[] {
  const out: string[] = [];
  if (a.defaultAction !== b.defaultAction) out.push(`The default action changes from ${a.defaultAction} to ${b.defaultAction}.`);
  const ta = table(a);
  const tb = table(b);
  const by = (k: Kind, t: Map<string, { kind: Kind }>) => new Set([...t].filter(([, v]) => v.kind === k).map(([n]) => n));
  for (const kind of ['allowed', 'start-up only', 'answered with an error'] as const) {
    const inA = by(kind, ta);
    const inB = by(kind, tb);
    const added = [...inB].filter((n) => !inA.has(n));
    const removed = [...inA].filter((n) => !inB.has(n));
    if (added.length) out.push(`${names.b} has ${added.length} ${kind} that ${names.a} does not: ${list(added)}.`);
    if (removed.length) out.push(`${names.b} no longer has ${removed.length} ${kind}: ${list(removed)}.`);
  }
  for (const [name, eb] of tb) {
    const ea = ta.get(name);
    if (!ea || ea.kind !== eb.kind) continue;
    const ca = ea.conditions.sort().join('; ');
    const cb = eb.conditions.sort().join('; ');
    if (ca !== cb) out.push(`${name}: the argument conditions change from ${ca || 'none'} to ${cb || 'none'}.`);
  }
  const arch = (p: OciSeccomp) => (p.architectures ?? []).join(', ');
  if (arch(a) !== arch(b)) out.push(`The architectures change from ${arch(a) || 'none'} to ${arch(b) || 'none'}.`);
  if (!out.length) out.push(`${names.a} and ${names.b} allow the same calls.`);
  return out;
}
