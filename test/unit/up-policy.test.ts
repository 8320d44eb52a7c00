// The restart policy of `hako up`: when to restart, the backoff, and when to give up.
import { describe, expect, it } from 'vitest';
import { DEFAULT_POLICY, decide, parseRestartMode, type RestartPolicy } from '../../src/up/policy.js';

const policy: RestartPolicy = { ...DEFAULT_POLICY, maxRestarts: 4, baseDelayMs: 100, maxDelayMs: 500, stableMs: 10_000 };
const crash = { signal: 9, ranMs: 50 };

describe('restart policy', () => {
  it('restarts a crash with a delay that doubles, bounded, and gives up after maxRestarts in a row', () => {
    let streak = 0;
    const delays: number[] = [];
    for (;;) {
      const d = decide(policy, crash, streak);
      if (!d.restart) {
        expect(d.reason).toBe('exhausted');
        break;
      }
      delays.push(d.delayMs);
      streak = d.streak;
    }
    expect(delays).toEqual([100, 200, 400, 500]);
  });

  it('starts the backoff over after a run that lasted stableMs', () => {
    expect(decide(policy, { code: 1, ranMs: 10_000 }, 4)).toEqual({ restart: true, delayMs: 100, streak: 1 });
    expect(decide(policy, { code: 1, ranMs: 9_999 }, 4)).toEqual({ restart: false, reason: 'exhausted', streak: 4 });
  });

  it('on-failure leaves a clean exit alone; always restarts it; no restarts nothing', () => {
    expect(decide(policy, { code: 0, ranMs: 5 }, 0)).toEqual({ restart: false, reason: 'policy', streak: 0 });
    expect(decide(policy, { code: 2, ranMs: 5 }, 0).restart).toBe(true);
    expect(decide({ ...policy, mode: 'always' }, { code: 0, ranMs: 5 }, 0).restart).toBe(true);
    expect(decide({ ...policy, mode: 'no' }, crash, 0)).toEqual({ restart: false, reason: 'policy', streak: 0 });
  });

  it('with --max-restarts 0 never restarts', () => {
    expect(decide({ ...policy, maxRestarts: 0 }, crash, 0)).toEqual({ restart: false, reason: 'exhausted', streak: 0 });
  });

  it('parses the mode or names the flag', () => {
    expect(parseRestartMode('always')).toBe('always');
    expect(() => parseRestartMode('sometimes')).toThrow('--restart: "sometimes" is not one of no, on-failure, always');
  });
});
