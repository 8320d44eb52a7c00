// Serialises a launch plan into the buffer the C executor reads
// (format: native/plan_format.h; ops, kinds and limits: native/plan_ops.def).
import { HakoError } from '../errors.js';
import { FORMAT, LIMIT, OP, signature, type Arg, type Step } from './ops.js';

const MAGIC = Buffer.from('HAKO');

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

const isInt = (a: Arg): boolean => typeof a === 'number' || typeof a === 'bigint';

function encodeArg(a: Arg): Buffer[] {
  if (typeof a === 'number' || typeof a === 'bigint') {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt.asUintN(64, BigInt(a)));
    return [u32(FORMAT.ARG_INT), b];
  }
  const bytes = typeof a === 'string' ? Buffer.from(a, 'utf8') : Buffer.from(a);
  return [u32(FORMAT.ARG_BYTES), u32(bytes.length), bytes, Buffer.alloc(1)];
}

/** Why the executor would refuse this step (it checks the same table), or null. */
export function stepMismatch(s: Step): string | null {
  const { fixed, rest } = signature(s.op);
  const n = s.args.length;
  if (rest ? n < fixed.length + 1 : n !== fixed.length)
    return `${s.op} takes ${rest ? `at least ${fixed.length + 1}` : fixed.length} arguments, not ${n}`;
  for (let i = 0; i < n; i++) {
    const want = i < fixed.length ? fixed[i] : rest;
    if ((want === 'i') !== isInt(s.args[i]!)) return `${s.op}'s argument ${i + 1} must be ${want === 'i' ? 'an integer' : 'bytes'}`;
  }
  if (s.op === 'EXEC') {
    const argc = Number(s.args[0]);
    if (argc < 1 || argc > n - 1) return `EXEC's argc ${argc} does not fit its ${n - 1} strings`;
    if (argc > LIMIT.EXEC_MAX || n - 1 - argc > LIMIT.EXEC_MAX)
      return `EXEC takes at most ${LIMIT.EXEC_MAX} arguments and ${LIMIT.EXEC_MAX} environment entries`;
  } else if (n > LIMIT.MAX_ARGS) {
    return `${s.op} takes at most ${LIMIT.MAX_ARGS} arguments in one step, not ${n}`;
  }
  if (s.op === 'RUN_HOOK') {
    const argc = Number(s.args[1]);
    if (argc < 1 || argc > n - 2) return `RUN_HOOK's argc ${argc} does not fit its ${n - 2} strings`;
  }
  return null;
}

export function encodeSteps(steps: Step[]): Buffer {
  const parts: Buffer[] = [MAGIC, u32(FORMAT.PLAN_VERSION), u32(steps.length)];
  steps.forEach((s, i) => {
    // Refused here with the step's words, rather than as EINVAL from the child.
    const why = stepMismatch(s);
    if (why) throw new HakoError(`the launch plan cannot be run: step ${i + 1} of ${steps.length} (${s.what}): ${why}`);
    parts.push(u32(OP[s.op]), u32(s.args.length));
    for (const a of s.args) parts.push(...encodeArg(a));
  });
  return Buffer.concat(parts);
}
