// A flood of refusals (src/up/audit-budget.ts): per second at most 10 events of one call and
// 200 in all, the rest summarised per call once the second is over — so a fork bomb's thousand
// refused clones neither swamp the server nor hide the next, different attempt.
import { describe, expect, it } from 'vitest';
import { AuditBudget, PER_CALL_PER_SECOND, TOTAL_PER_SECOND, type Overflow } from '../../src/up/audit-budget.js';

function budget() {
  let now = 5_000_000;
  const overflows: Overflow[] = [];
  const b = new AuditBudget(
    (o) => overflows.push(o),
    () => now,
  );
  return { b, overflows, advance: (ms: number) => (now += ms) };
}

describe('AuditBudget', () => {
  it('a flood of one call leaves room for the others, and is summarised', () => {
    const { b, overflows } = budget();
    const written = Array.from({ length: 600 }, () => b.take('clone')).filter(Boolean).length;
    expect(written).toBe(PER_CALL_PER_SECOND);
    expect(b.take('umount2')).toBe(true);
    expect(b.take('socket')).toBe(true);
    b.flush();
    expect(overflows).toHaveLength(1);
    expect([...overflows[0]!.counts]).toEqual([['clone', 600 - PER_CALL_PER_SECOND]]);
  });

  it('caps all calls together per second, and a new second starts afresh', () => {
    const { b, advance } = budget();
    let written = 0;
    for (let i = 0; i < 100; i++) for (let k = 0; k < 5; k++) written += b.take(`call${i}`) ? 1 : 0;
    expect(written).toBe(TOTAL_PER_SECOND);
    advance(1000);
    expect(b.take('call99')).toBe(true);
  });

  it('summarises at most 50 calls by name, the rest together', () => {
    const { b, overflows } = budget();
    for (let i = 0; i < 80; i++) for (let k = 0; k < 20; k++) b.take(`call${i}`);
    b.flush();
    const counts = overflows[0]!.counts;
    expect(counts.size).toBe(51);
    expect(counts.get('*')).toBeGreaterThan(0);
    expect([...counts.values()].reduce((a, c) => a + c, 0)).toBe(80 * 20 - TOTAL_PER_SECOND);
  });

  it('nothing over budget, nothing to summarise', () => {
    const { b, overflows } = budget();
    b.take('read');
    b.flush();
    expect(overflows).toEqual([]);
  });
});
