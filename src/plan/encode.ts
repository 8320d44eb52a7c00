// Serialises a launch plan into the buffer the C executor reads
// (format: native/plan_format.h).
import { OP, type Arg, type Step } from './ops.js';

const MAGIC = Buffer.from('HAKO');
const VERSION = 1;
const KIND_INT = 0;
const KIND_BYTES = 1;

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

function encodeArg(a: Arg): Buffer[] {
  if (typeof a === 'number' || typeof a === 'bigint') {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt.asUintN(64, BigInt(a)));
    return [u32(KIND_INT), b];
  }
  const bytes = typeof a === 'string' ? Buffer.from(a, 'utf8') : Buffer.from(a);
  return [u32(KIND_BYTES), u32(bytes.length), bytes, Buffer.alloc(1)];
}

export function encodeSteps(steps: Step[]): Buffer {
  const parts: Buffer[] = [MAGIC, u32(VERSION), u32(steps.length)];
  for (const s of steps) {
    parts.push(u32(OP[s.op]), u32(s.args.length));
    for (const a of s.args) parts.push(...encodeArg(a));
  }
  return Buffer.concat(parts);
}
