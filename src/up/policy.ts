// When `hako up` restarts its container, and after how long: a pure function of how
// the last run ended, so the policy is unit-tested without containers.
import { HakoError } from '../errors.js';

export type RestartMode = 'no' | 'on-failure' | 'always';

export interface RestartPolicy {
  mode: RestartMode;
  /** Restarts in a row before giving up (a run that lasted stableMs resets the count). */
  maxRestarts: number;
  /** First delay; it doubles with every restart in a row, up to maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** A run at least this long counts as healthy: the next crash starts the backoff over. */
  stableMs: number;
}

export const DEFAULT_POLICY: RestartPolicy = {
  mode: 'on-failure',
  maxRestarts: 5,
  baseDelayMs: 100,
  maxDelayMs: 10_000,
  stableMs: 10_000,
};

export function parseRestartMode(v: string): RestartMode {
  if (v === 'no' || v === 'on-failure' || v === 'always') return v;
  throw new HakoError(`--restart: "${v}" is not one of no, on-failure, always`);
}

/** How a run ended: an exit code, or the signal that killed the init. */
export interface RunEnd {
  code?: number;
  signal?: number;
  ranMs: number;
}

export type Decision =
  { restart: true; delayMs: number; streak: number } | { restart: false; reason: 'policy' | 'exhausted'; streak: number };

/** streak: restarts in a row so far (before this run ended). */
export function decide(policy: RestartPolicy, end: RunEnd, streak: number): Decision {
  const failed = end.signal !== undefined || (end.code ?? 0) !== 0;
  if (policy.mode === 'no' || (policy.mode === 'on-failure' && !failed)) return { restart: false, reason: 'policy', streak };
  const next = end.ranMs >= policy.stableMs ? 1 : streak + 1;
  if (next > policy.maxRestarts) return { restart: false, reason: 'exhausted', streak };
  const delayMs = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (next - 1));
  return { restart: true, delayMs, streak: next };
}
