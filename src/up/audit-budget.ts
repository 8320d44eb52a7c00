// How many AuditEvents a flood of refusals may write: a container that makes thousands of
// refused calls a second (a fork bomb) must neither swamp the server it attacks nor hide the
// next, different attempt behind its own noise. Per one-second window: at most PER_CALL events
// for one system call and TOTAL in all; what is over is counted per call and written once the
// window ends, one summary per call (at most SUMMARIES, then one for all the rest).
export const TOTAL_PER_SECOND = 200;
export const PER_CALL_PER_SECOND = 10;
export const SUMMARIES = 50;

export interface Overflow {
  /** The calls over budget and how often each was refused ('*' for all beyond SUMMARIES). */
  counts: Map<string, number>;
  from: Date;
  to: Date;
}

export class AuditBudget {
  private window = -1;
  private total = 0;
  private readonly perCall = new Map<string, number>();
  private over = new Map<string, number>();
  private overFrom = new Date();
  private timer: NodeJS.Timeout | undefined;

  /** onOverflow gets each ended window's excess (never an empty one). */
  constructor(
    private readonly onOverflow: (o: Overflow) => void,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether a refusal of this call may be written now; if not it is counted for the summary. */
  take(call: string): boolean {
    const second = Math.floor(this.now() / 1000);
    if (second !== this.window) {
      this.window = second;
      this.total = 0;
      this.perCall.clear();
    }
    const n = this.perCall.get(call) ?? 0;
    if (n < PER_CALL_PER_SECOND && this.total < TOTAL_PER_SECOND) {
      this.perCall.set(call, n + 1);
      this.total++;
      return true;
    }
    if (!this.over.size) {
      this.overFrom = new Date(this.now());
      // the summary follows the window that overflowed
      this.timer = setTimeout(() => this.flush(), 1000 - (this.now() % 1000) + 10);
      this.timer.unref();
    }
    const key = this.over.has(call) || this.over.size < SUMMARIES ? call : '*';
    this.over.set(key, (this.over.get(key) ?? 0) + 1);
    return false;
  }

  /** Writes what is counted (also when up stops). */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.over.size) return;
    const counts = this.over;
    this.over = new Map();
    this.onOverflow({ counts, from: this.overFrom, to: new Date(this.now()) });
  }
}
