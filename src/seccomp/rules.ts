// Validates linux.seccomp.syscalls and turns each entry into rules keyed by syscall
// number for one architecture.
import { actionValue } from './actions.js';
import { ARCH_INFO, type ArchInfo } from './arch.js';
import { SeccompError } from './errors.js';
import { multiplexerRules, X86_MULTIPLEXED } from './multiplexed.js';
import { OPERATORS, type OciSeccomp, type SeccompOperator } from './types.js';

const MAX_ARGS = 6;
const U64_MAX = (1n << 64n) - 1n;

export interface Comparison {
  index: number;
  op: SeccompOperator;
  value: bigint;
  valueTwo: bigint;
}

export interface Rule {
  action: number;
  /** ANDed; empty means the rule always matches. */
  args: Comparison[];
}

/** A syscalls[] entry, validated. */
export interface RuleSpec extends Rule {
  names: string[];
  path: string;
}

function u64(v: unknown, path: string): bigint {
  if (typeof v === 'bigint' && v >= 0n && v <= U64_MAX) return v;
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= Number(U64_MAX)) return BigInt.asUintN(64, BigInt(v));
  throw new SeccompError(`${path}: ${String(v)} is not an unsigned 64-bit integer`);
}

function comparison(arg: unknown, path: string): Comparison {
  if (typeof arg !== 'object' || arg === null) throw new SeccompError(`${path}: must be an object`);
  const a = arg as Record<string, unknown>;
  if (typeof a.index !== 'number' || !Number.isInteger(a.index) || a.index < 0 || a.index >= MAX_ARGS) {
    throw new SeccompError(`${path}.index: ${JSON.stringify(a.index)} is out of range (0..${MAX_ARGS - 1})`);
  }
  if (!(OPERATORS as readonly unknown[]).includes(a.op)) throw new SeccompError(`${path}.op: unknown operator ${JSON.stringify(a.op)}`);
  return {
    index: a.index,
    op: a.op as SeccompOperator,
    value: u64(a.value, `${path}.value`),
    valueTwo: a.valueTwo === undefined ? 0n : u64(a.valueTwo, `${path}.valueTwo`),
  };
}

export function parseRules(seccomp: OciSeccomp): RuleSpec[] {
  const list = seccomp.syscalls ?? [];
  if (!Array.isArray(list)) throw new SeccompError('linux.seccomp.syscalls: must be an array');
  return list.map((entry, i) => {
    const path = `linux.seccomp.syscalls[${i}]`;
    if (!Array.isArray(entry.names) || entry.names.some((n) => typeof n !== 'string')) {
      throw new SeccompError(`${path}.names: must be an array of syscall names`);
    }
    const action = actionValue(entry.action, entry.errnoRet, `${path}.action`, `${path}.errnoRet`);
    const args = entry.args ?? [];
    if (!Array.isArray(args)) throw new SeccompError(`${path}.args: must be an array`);
    if (args.length > MAX_ARGS)
      throw new SeccompError(`${path}.args: a rule compares at most ${MAX_ARGS} arguments, this one has ${args.length}`);
    return { names: entry.names, path, action, args: args.map((a, j) => comparison(a, `${path}.args[${j}]`)) };
  });
}

/** Whether any supported architecture has this syscall. */
export function knownAnywhere(name: string): boolean {
  return Object.values(ARCH_INFO).some((a) => name in a.table);
}

/**
 * The rules of one architecture by syscall number, in profile order. Names the arch lacks
 * are skipped, as runc does: profiles list calls for every arch at once.
 */
export function rulesFor(arch: ArchInfo, specs: RuleSpec[], log: (msg: string) => void): Map<number, Rule[]> {
  const x86 = arch.name === 'SCMP_ARCH_X86';
  const byNr = new Map<number, Rule[]>();
  const add = (nr: number, rule: Rule) => byNr.set(nr, [...(byNr.get(nr) ?? []), rule]);
  for (const spec of specs) {
    for (const name of spec.names) {
      const nr = Object.hasOwn(arch.table, name) ? arch.table[name] : undefined;
      if (nr === undefined) {
        const viaMultiplexer = x86 && Object.hasOwn(X86_MULTIPLEXED, name);
        if (knownAnywhere(name) && !viaMultiplexer) log(`seccomp: ${spec.path}: ${name} does not exist on ${arch.name}, skipped`);
        continue;
      }
      add(nr, { action: spec.action, args: spec.args });
    }
  }
  if (x86) for (const [via, rules] of multiplexerRules(specs, log)) for (const r of rules) add(arch.table[via]!, r);
  return byNr;
}

/**
 * What one syscall does, as an ordered rule list (empty: the default action). Like runc,
 * rules that give the default action are dropped: libseccomp refuses them, so they mean
 * nothing to existing profiles. Like libseccomp, a rule without arguments overrides every
 * conditional rule for the call. Among conditional rules the first that matches wins;
 * libseccomp leaves that case to its rule tree (seccomp/libseccomp#118).
 */
export function resolve(rules: Rule[], defaultAction: number): Rule[] {
  const effective = rules.filter((r) => r.action !== defaultAction);
  const always = effective.find((r) => r.args.length === 0);
  return always ? [always] : effective;
}
