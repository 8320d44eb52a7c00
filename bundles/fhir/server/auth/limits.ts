// Limits on robots: token buckets keyed by client or source address. A bucket holds `burst`
// requests and refills at `perMinute`/60 a second; an empty one answers with how long until
// the next request is allowed (Retry-After, whole seconds, at least 1).
//
//   token endpoint   per source address and per client_id   HAKO_FHIR_RATE_TOKEN   (default 30/60: 30 a minute)
//   login page       per source address and per user name    HAKO_FHIR_RATE_LOGIN   (default 20/60)
//   FHIR API         per client, its registered budget (hako-fhir clients add --budget N, per minute)
//   401 answers      per source address                       HAKO_FHIR_RATE_UNAUTH  (default 120/60)

export type Rate = { count: number; seconds: number };

export function parseRate(text: string | undefined, fallback: Rate, name: string): Rate {
  if (text === undefined) return fallback;
  const m = /^(\d+)\/(\d+)$/.exec(text);
  if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) throw new Error(`${name}=${text} is not COUNT/SECONDS (e.g. 30/60)`);
  return { count: Number(m[1]), seconds: Number(m[2]) };
}

type Bucket = { tokens: number; at: number };

export class Limiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(private readonly maxKeys = 100_000) {}

  /** Takes one request from KEY's bucket of `rate`: 0 when allowed, else the seconds to wait. */
  take(key: string, rate: Rate, now = Date.now()): number {
    const perMs = rate.count / (rate.seconds * 1000);
    let b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size >= this.maxKeys) this.prune(now, perMs);
      b = { tokens: rate.count, at: now };
      this.buckets.set(key, b);
    } else {
      b.tokens = Math.min(rate.count, b.tokens + (now - b.at) * perMs);
      b.at = now;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / perMs / 1000));
  }

  /** Drops the buckets that would be full again (they hold no information). */
  private prune(now: number, perMs: number): void {
    for (const [k, b] of this.buckets) if ((now - b.at) * perMs >= 1 || this.buckets.size > this.maxKeys) this.buckets.delete(k);
  }
}
