// OCI linux.seccomp -> a classic-BPF seccomp program.
//
// Shape: load seccomp_data.arch and dispatch to one section per AUDIT_ARCH value (the
// running architecture first, so it pays one comparison); reject other arches. A section
// loads the syscall number and walks a balanced tree of JGE jumps over the intervals of
// numbers that share an outcome, so a decision costs O(log n) steps; calls with argument
// rules continue into a block of comparisons, first matching rule winning.
import { actionValue, RET_KILL_PROCESS, RET_USER_NOTIF } from './actions.js';
import { ARCH_INFO, nativeArch, X32_SYSCALL_BIT, type ArchInfo } from './arch.js';
import { emitComparison } from './compare.js';
import { JEQ, JGE, ReverseEmitter, type Target } from './emit.js';
import { SeccompError } from './errors.js';
import { knownAnywhere, parseRules, resolve, rulesFor, type Rule } from './rules.js';
import { ARCHITECTURES, type NodeArch, type OciSeccomp, type SeccompArch } from './types.js';

/** BPF_MAXINSNS: the kernel refuses longer programs. */
export const MAX_INSTRUCTIONS = 4096;

/**
 * What a call from an architecture the filter does not cover gets. runc keeps libseccomp's
 * default (kill the thread); hako kills the process, as the kernel documentation advises,
 * rather than leave a process with a thread missing.
 */
export const BAD_ARCH_ACTION = RET_KILL_PROCESS;

const NR_OFFSET = 0; // offsetof(struct seccomp_data, nr)
const ARCH_OFFSET = 4; // offsetof(struct seccomp_data, arch)
const U32_END = 2 ** 32;

export const FILTER_FLAGS: Readonly<Record<string, number>> = {
  SECCOMP_FILTER_FLAG_TSYNC: 1,
  SECCOMP_FILTER_FLAG_LOG: 2,
  SECCOMP_FILTER_FLAG_SPEC_ALLOW: 4,
  SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: 32,
};
/** TSYNC together with NEW_LISTENER is refused by the kernel unless TSYNC_ESRCH is set too. */
const FLAG_TSYNC_ESRCH = 16;

export interface CompileOptions {
  /** The architecture the container runs on (default: process.arch). */
  arch?: NodeArch;
  log?: (msg: string) => void;
}

export interface CompileStats {
  instructions: number;
  /** One per AUDIT_ARCH value the filter accepts. */
  sections: number;
  /** Syscall numbers with a rule, summed over architectures. */
  syscalls: number;
  /** JA trampolines inserted for jumps over 255 instructions. */
  longJumps: number;
  /** Names no supported architecture knows. */
  unknownNames: string[];
}

export interface CompiledSeccomp {
  program: Uint8Array;
  /** SECCOMP_FILTER_FLAG_* to pass to seccomp(2); NEW_LISTENER is the executor's to add. */
  flags: number;
  /** Whether some action is SCMP_ACT_NOTIFY. */
  listener: boolean;
  stats: CompileStats;
}

/** A run of syscall numbers [start, next start) with one outcome. */
interface Segment {
  start: number;
  outcome: Outcome;
}
type Outcome = { ret: number } | { rules: Rule[] };

function architectures(seccomp: OciSeccomp, native: SeccompArch): ArchInfo[] {
  const list = seccomp.architectures ?? [];
  if (!Array.isArray(list)) throw new SeccompError('linux.seccomp.architectures: must be an array');
  const names = new Set<SeccompArch>([native]);
  list.forEach((a, i) => {
    if (!(ARCHITECTURES as readonly unknown[]).includes(a)) {
      throw new SeccompError(
        `linux.seccomp.architectures[${i}]: unknown architecture ${JSON.stringify(a)} (hako knows ${ARCHITECTURES.join(', ')})`,
      );
    }
    names.add(a as SeccompArch);
  });
  return [...names].map((n) => ARCH_INFO[n]);
}

function filterFlags(seccomp: OciSeccomp, listener: boolean): number {
  const list = seccomp.flags ?? [];
  if (!Array.isArray(list)) throw new SeccompError('linux.seccomp.flags: must be an array');
  let flags = 0;
  list.forEach((f, i) => {
    const bit = typeof f === 'string' && Object.hasOwn(FILTER_FLAGS, f) ? FILTER_FLAGS[f] : undefined;
    if (bit === undefined) throw new SeccompError(`linux.seccomp.flags[${i}]: unknown flag ${JSON.stringify(f)}`);
    flags |= bit;
  });
  if (listener && flags & FILTER_FLAGS.SECCOMP_FILTER_FLAG_TSYNC!) flags |= FLAG_TSYNC_ESRCH;
  return flags;
}

/**
 * The syscall-number ranges an architecture decides within its AUDIT_ARCH value. x86_64 and
 * x32 share one: x32 numbers carry X32_SYSCALL_BIT, and -1 (a tracer's skipped call) stays
 * x86_64's, as libseccomp does.
 */
function ownedRanges(arch: ArchInfo, sharing: ArchInfo[]): Array<[number, number]> {
  const both = sharing.length > 1;
  if (arch.name === 'SCMP_ARCH_X86_64')
    return [
      [0, X32_SYSCALL_BIT],
      [U32_END - 1, U32_END],
    ];
  if (arch.name === 'SCMP_ARCH_X32') return [[X32_SYSCALL_BIT, both ? U32_END - 1 : U32_END]];
  return [[0, U32_END]];
}

function sameOutcome(a: Outcome, b: Outcome): boolean {
  if ('ret' in a || 'ret' in b) return 'ret' in a && 'ret' in b && a.ret === b.ret;
  return a.rules === b.rules;
}

/** The outcome of every syscall number for the arches sharing one AUDIT_ARCH value. */
function segments(sharing: ArchInfo[], rules: Map<ArchInfo, Map<number, Rule[]>>, defaultAction: number): Segment[] {
  const points: Array<{ start: number; end: number; outcome: Outcome }> = [];
  for (const arch of sharing) {
    const byNr = rules.get(arch)!;
    for (const [start, end] of ownedRanges(arch, sharing)) {
      const inRange = [...byNr.keys()].filter((nr) => nr >= start && nr < end).sort((a, b) => a - b);
      let at = start;
      for (const nr of inRange) {
        if (nr > at) points.push({ start: at, end: nr, outcome: { ret: defaultAction } });
        const resolved = resolve(byNr.get(nr)!, defaultAction);
        const outcome: Outcome =
          resolved.length === 0
            ? { ret: defaultAction }
            : resolved.length === 1 && resolved[0]!.args.length === 0
              ? { ret: resolved[0]!.action }
              : { rules: resolved };
        points.push({ start: nr, end: nr + 1, outcome });
        at = nr + 1;
      }
      if (at < end) points.push({ start: at, end, outcome: { ret: defaultAction } });
    }
  }
  points.sort((a, b) => a.start - b.start);
  // Numbers no arch owns belong to none of them.
  const out: Segment[] = [];
  let at = 0;
  const add = (start: number, outcome: Outcome): void => {
    const last = out[out.length - 1];
    if (!last || !sameOutcome(last.outcome, outcome)) out.push({ start, outcome });
  };
  for (const p of points) {
    if (p.start > at) add(at, { ret: BAD_ARCH_ACTION });
    add(p.start, p.outcome);
    at = p.end;
  }
  if (at < U32_END) add(at, { ret: BAD_ARCH_ACTION });
  return out;
}

/** First matching rule wins; none matching gives the default action. */
function emitRules(e: ReverseEmitter, rules: Rule[], bits: 32 | 64, defaultAction: number): Target {
  let next: Target = { ret: defaultAction };
  for (const rule of [...rules].reverse()) {
    let match: Target = { ret: rule.action };
    for (const cmp of [...rule.args].reverse()) match = emitComparison(e, cmp, bits, match, next);
    next = match;
  }
  return next;
}

/** A balanced tree of JGE over the segment starts; leaves are outcomes. */
function emitTree(e: ReverseEmitter, segs: Segment[], lo: number, hi: number, leaf: (o: Outcome) => Target): Target {
  if (lo === hi) return leaf(segs[lo]!.outcome);
  const mid = (lo + hi + 1) >> 1;
  const right = emitTree(e, segs, mid, hi, leaf);
  const left = emitTree(e, segs, lo, mid - 1, leaf);
  return { label: e.jump(JGE, segs[mid]!.start, right, left) };
}

function emitSection(e: ReverseEmitter, segs: Segment[], bits: 32 | 64, defaultAction: number): number {
  // Rule blocks go after the tree; a block shared by several numbers is emitted once.
  const blocks = new Map<Rule[], Target>();
  for (const s of segs) {
    if ('rules' in s.outcome && !blocks.has(s.outcome.rules))
      blocks.set(s.outcome.rules, emitRules(e, s.outcome.rules, bits, defaultAction));
  }
  const root = emitTree(e, segs, 0, segs.length - 1, (o) => ('ret' in o ? o : blocks.get(o.rules)!));
  e.at(root);
  return e.load(NR_OFFSET);
}

export function compileSeccomp(seccomp: OciSeccomp, opts: CompileOptions = {}): CompiledSeccomp {
  if (typeof seccomp !== 'object' || seccomp === null) throw new SeccompError('linux.seccomp: must be an object');
  const log = opts.log ?? (() => {});
  const machine = opts.arch ?? process.arch;
  const native = nativeArch(machine);
  if (!native) throw new SeccompError(`linux.seccomp: hako cannot build seccomp filters for this machine (arch ${machine})`);

  const defaultAction = actionValue(
    seccomp.defaultAction,
    seccomp.defaultErrnoRet,
    'linux.seccomp.defaultAction',
    'linux.seccomp.defaultErrnoRet',
  );
  const arches = architectures(seccomp, native);
  const specs = parseRules(seccomp);
  const listener = defaultAction === RET_USER_NOTIF || specs.some((s) => s.action === RET_USER_NOTIF);
  const flags = filterFlags(seccomp, listener);

  const unknownNames = [...new Set(specs.flatMap((s) => s.names))].filter((n) => !knownAnywhere(n));
  for (const n of unknownNames) log(`seccomp: unknown syscall ${n} skipped (no supported architecture has it)`);
  const rules = new Map(arches.map((a) => [a, rulesFor(a, specs, log)] as const));

  // Sections in order of first appearance, so the running architecture comes first.
  const audits = [...new Set(arches.map((a) => a.audit))];
  const e = new ReverseEmitter();
  const starts: number[] = [];
  for (const audit of [...audits].reverse()) {
    const sharing = arches.filter((a) => a.audit === audit);
    const bits = sharing[0]!.bits;
    starts.unshift(emitSection(e, segments(sharing, rules, defaultAction), bits, defaultAction));
  }
  let miss: Target = { ret: BAD_ARCH_ACTION };
  for (let i = audits.length - 1; i >= 0; i--) miss = { label: e.jump(JEQ, audits[i]!, { label: starts[i]! }, miss) };
  e.load(ARCH_OFFSET);

  if (e.size > MAX_INSTRUCTIONS) {
    throw new SeccompError(`linux.seccomp: the compiled filter has ${e.size} instructions, over the kernel's limit of ${MAX_INSTRUCTIONS}`);
  }
  return {
    program: e.finish(),
    flags,
    listener,
    stats: {
      instructions: e.size,
      sections: audits.length,
      syscalls: [...rules.values()].reduce((n, m) => n + m.size, 0),
      longJumps: e.longJumps,
      unknownNames,
    },
  };
}
