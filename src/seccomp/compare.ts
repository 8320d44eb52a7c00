// Code for one 64-bit argument comparison on 32-bit BPF words: the high word decides
// unless it is equal, then the low word decides. On 32-bit architectures the kernel
// zero-extends arguments, so the high-word test is decided here instead of at run time.
import { JEQ, JGE, JGT, type ReverseEmitter, type Target } from './emit.js';
import type { Comparison } from './rules.js';

const ARGS_OFFSET = 16; // offsetof(struct seccomp_data, args)
const WORD = 0xffffffffn;

const lo = (v: bigint): number => Number(v & WORD);
const hi = (v: bigint): number => Number((v >> 32n) & WORD);

/**
 * MASKED_EQ's expected bits. libseccomp (so runc and crun) compares with valueTwo & mask:
 * bits outside the mask are ignored rather than making the rule unmatchable. Same here.
 */
const expected = (c: Comparison): bigint => c.valueTwo & c.value;

/** How the high word decides: per outcome of (argHi vs valueHi), go on to the low word or not. */
interface HighWord {
  above: Target | 'low';
  equal: Target | 'low';
  below: Target | 'low';
}

/** Emits the low-word test and returns where it starts. */
function lowWord(e: ReverseEmitter, c: Comparison, offset: number, match: Target, fail: Target): Target {
  const v = lo(c.value);
  switch (c.op) {
    case 'SCMP_CMP_EQ':
      e.jump(JEQ, v, match, fail);
      break;
    case 'SCMP_CMP_NE':
      e.jump(JEQ, v, fail, match);
      break;
    case 'SCMP_CMP_GT':
      e.jump(JGT, v, match, fail);
      break;
    case 'SCMP_CMP_GE':
      e.jump(JGE, v, match, fail);
      break;
    case 'SCMP_CMP_LT':
      e.jump(JGE, v, fail, match);
      break;
    case 'SCMP_CMP_LE':
      e.jump(JGT, v, fail, match);
      break;
    case 'SCMP_CMP_MASKED_EQ':
      // value is the mask, valueTwo the expected bits; see expected() for the masking.
      e.jump(JEQ, lo(expected(c)), match, fail);
      if (v !== 0xffffffff) e.and(v);
      break;
  }
  return { label: e.load(offset) };
}

function highWord(c: Comparison, match: Target, fail: Target): HighWord {
  switch (c.op) {
    case 'SCMP_CMP_EQ':
    case 'SCMP_CMP_MASKED_EQ':
      return { above: fail, equal: 'low', below: fail };
    case 'SCMP_CMP_NE':
      return { above: match, equal: 'low', below: match };
    case 'SCMP_CMP_GT':
    case 'SCMP_CMP_GE':
      return { above: match, equal: 'low', below: fail };
    case 'SCMP_CMP_LT':
    case 'SCMP_CMP_LE':
      return { above: fail, equal: 'low', below: match };
  }
}

/** Emits `arg[index] op value` and returns where the test starts. */
export function emitComparison(e: ReverseEmitter, c: Comparison, bits: 32 | 64, match: Target, fail: Target): Target {
  const offset = ARGS_OFFSET + 8 * c.index;
  const masked = c.op === 'SCMP_CMP_MASKED_EQ';
  // The high-word operands: MASKED_EQ compares (argHi & maskHi) with the expected bits.
  const want = masked ? hi(expected(c)) : hi(c.value);
  const mask = masked ? hi(c.value) : 0xffffffff;
  const plan = highWord(c, match, fail);
  let low: Target | undefined;
  const lowTarget = (): Target => (low ??= lowWord(e, c, offset, match, fail));
  const pick = (t: Target | 'low'): Target => (t === 'low' ? lowTarget() : t);

  // The high word is known to be 0 on 32-bit arches; with a zero mask it is 0 everywhere.
  if (bits === 32 || mask === 0) return pick(want === 0 ? plan.equal : plan.below);
  if (masked) {
    e.jump(JEQ, want, pick(plan.equal), pick(plan.below));
    if (mask !== 0xffffffff) e.and(mask);
    return { label: e.load(offset + 4) };
  }
  const equalOrBelow = (): number => e.jump(JEQ, want, pick(plan.equal), pick(plan.below));
  if (want === 0xffffffff) {
    // Nothing is above the top value: one test.
    equalOrBelow();
  } else if (want === 0) {
    // Nothing is below zero: "not equal" means "above".
    e.jump(JEQ, want, pick(plan.equal), pick(plan.above));
  } else {
    const next = equalOrBelow();
    e.jump(JGT, want, pick(plan.above), { label: next });
  }
  return { label: e.load(offset + 4) };
}
