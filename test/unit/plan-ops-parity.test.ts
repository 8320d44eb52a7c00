// native/plan_ops.def is THE op table: the C side expands it (plan_format.h,
// the executor's SIGNATURE); src/plan/ops.ts is its TypeScript copy. This test
// parses the .def file and fails on any difference, naming the entry.
import fs from 'node:fs';
import path from 'node:path';
import { describe, it, expect } from 'vitest';
import { REPO } from '../helpers/env.js';
import { OPS, OP, RETIRED_OPS, MSG, MNT_OPT, FORMAT, LIMIT, signature, maxVariadic, type OpName } from '../../src/plan/ops.js';
import { encodeSteps, stepMismatch } from '../../src/plan/encode.js';
import { HakoError } from '../../src/errors.js';

const DEF = fs.readFileSync(path.join(REPO, 'native/plan_ops.def'), 'utf8');
// Comments out, so a macro named in prose is not an entry.
const CODE = DEF.replace(/\/\*[\s\S]*?\*\//g, '');

function entries(macro: string): Array<[string, string[]]> {
  const out: Array<[string, string[]]> = [];
  const re = new RegExp(`^\\s*${macro}\\(([^)]*)\\)`, 'gm');
  for (const m of CODE.matchAll(re)) {
    const [name, ...rest] = m[1]!.split(',').map((x) => x.trim());
    out.push([name!, rest]);
  }
  return out;
}
const numbers = (macro: string) => Object.fromEntries(entries(macro).map(([n, [v]]) => [n, Number(v)]));

describe('the op table (native/plan_ops.def) and src/plan/ops.ts', () => {
  const defOps = entries('HAKO_OP').map(([name, [num, kinds]]) => ({ name, num: Number(num), kinds: JSON.parse(kinds!) as string }));

  it('parses the .def file (every HAKO_ line is an entry)', () => {
    const lines = CODE.split('\n').filter((l) => /^\s*HAKO_[A-Z_]+\(/.test(l));
    const parsed = ['HAKO_OP', 'HAKO_RETIRED', 'HAKO_MSG', 'HAKO_MNT_OPT', 'HAKO_CONST', 'HAKO_LIMIT'].reduce(
      (n, m) => n + entries(m).length,
      0,
    );
    expect(parsed).toBe(lines.length);
    expect(defOps.length).toBeGreaterThan(40);
  });

  it('has the same ops, numbers and argument kinds', () => {
    const fromDef = Object.fromEntries(defOps.map((o) => [o.name, [o.num, o.kinds]]));
    expect(OPS).toEqual(fromDef);
    for (const o of defOps) expect(OP[o.name as OpName]).toBe(o.num);
  });

  it('keeps numbers unique and ascending, kinds well formed, retired numbers unused', () => {
    const nums = defOps.map((o) => o.num);
    expect(nums).toEqual([...nums].sort((a, b) => a - b));
    expect(new Set(nums).size).toBe(nums.length);
    for (const o of defOps) expect(o.kinds, o.name).toMatch(/^[is]*([is]\+)?$/);
    expect(RETIRED_OPS).toEqual(numbers('HAKO_RETIRED'));
    expect(RETIRED_OPS).toMatchObject({ WAIT_PARENT: 1 });
    for (const n of Object.values(RETIRED_OPS)) expect(nums).not.toContain(n);
  });

  it('has the same messages, mount option bits, format constants and limits', () => {
    expect(MSG).toEqual(numbers('HAKO_MSG'));
    expect(MNT_OPT).toEqual(numbers('HAKO_MNT_OPT'));
    expect(FORMAT).toEqual(numbers('HAKO_CONST'));
    expect(LIMIT).toEqual(numbers('HAKO_LIMIT'));
  });

  it("derives the variadic ops' room from the table: RUN_HOOK carries MAX_ARGS - 2 strings", () => {
    expect(signature('RUN_HOOK')).toEqual({ fixed: 'ii', rest: 's' });
    expect(signature('MOUNT')).toEqual({ fixed: 'sssisi', rest: '' });
    expect(maxVariadic('RUN_HOOK')).toBe(LIMIT.MAX_ARGS - 2);
    expect(maxVariadic('FIND_EXEC')).toBe(LIMIT.MAX_ARGS);
  });
});

describe('encodeSteps checks each step against the table', () => {
  it('refuses a step the executor would refuse, in words', () => {
    expect(stepMismatch({ op: 'MOUNT', args: ['a', 'b'], what: 'x' })).toMatch(/MOUNT takes 6 arguments, not 2/);
    expect(stepMismatch({ op: 'UMASK', args: ['022'], what: 'x' })).toMatch(/argument 1 must be an integer/);
    expect(stepMismatch({ op: 'FIND_EXEC', args: [], what: 'x' })).toMatch(/at least 1/);
    expect(stepMismatch({ op: 'RUN_HOOK', args: [0, 2, '/bin/true'], what: 'x' })).toMatch(/argc 2/);
    const many = Array.from({ length: LIMIT.MAX_ARGS }, (_, i) => `/p${i}`);
    expect(stepMismatch({ op: 'FIND_EXEC', args: many, what: 'x' })).toBeNull();
    expect(stepMismatch({ op: 'FIND_EXEC', args: [...many, '/one-more'], what: 'x' })).toMatch(/at most 64 arguments/);
    expect(stepMismatch({ op: 'EXEC', args: [1, 'sh', ...many, ...many], what: 'x' })).toBeNull();
    expect(() =>
      encodeSteps([
        { op: 'UMASK', args: [0o22], what: 'set the umask' },
        { op: 'CHDIR', args: [], what: 'change to /' },
      ]),
    ).toThrow(new HakoError('the launch plan cannot be run: step 2 of 2 (change to /): CHDIR takes 1 arguments, not 0'));
  });

  it('writes the header and steps as plan_format.h describes', () => {
    const b = encodeSteps([
      { op: 'UMASK', args: [0o22], what: 'u' },
      { op: 'CHDIR', args: ['/'], what: 'c' },
    ]);
    expect(b.subarray(0, 4).toString()).toBe('HAKO');
    expect([b.readUInt32LE(4), b.readUInt32LE(8), b.readUInt32LE(12), b.readUInt32LE(16), b.readUInt32LE(20)]).toEqual([
      FORMAT.PLAN_VERSION,
      2,
      OP.UMASK,
      1,
      FORMAT.ARG_INT,
    ]);
  });
});
