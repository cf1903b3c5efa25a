/**
 * How many log lines of one kind a shell may write: a token bucket per key (a drop or refusal
 * reason), so that a flood of bad packets costs a few lines a second, not one line each. The
 * metrics still count every packet; the budget only spares the log.
 */
export interface LogBudgetOptions {
  /** Lines per second per key, once the burst is spent. */
  readonly perSecond: number;
  /** Lines a key may write at once. */
  readonly burst: number;
  readonly now: () => number;
}

export class LogBudget<K> {
  readonly #o: LogBudgetOptions;
  readonly #buckets = new Map<K, { tokens: number; at: number; suppressed: number }>();

  constructor(o: LogBudgetOptions) {
    this.#o = o;
  }

  /**
   * Whether a line for `key` may be written now. When it may, `suppressed` says how many were
   * not written since the last one (to report once); when it may not, the line is counted.
   */
  take(key: K): { readonly ok: boolean; readonly suppressed: number } {
    const now = this.#o.now();
    let b = this.#buckets.get(key);
    if (b === undefined) {
      b = { tokens: this.#o.burst, at: now, suppressed: 0 };
      this.#buckets.set(key, b);
    } else {
      b.tokens = Math.min(this.#o.burst, b.tokens + ((now - b.at) / 1000) * this.#o.perSecond);
      b.at = now;
    }
    if (b.tokens < 1) {
      b.suppressed++;
      return { ok: false, suppressed: b.suppressed };
    }
    b.tokens -= 1;
    const suppressed = b.suppressed;
    b.suppressed = 0;
    return { ok: true, suppressed };
  }
}
