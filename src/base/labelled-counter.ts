/**
 * A prom-client counter incremented on the packet path. prom-client's `inc()` hashes and checks a
 * labels object on every call, even through a labelled child, so this one counts in plain
 * numbers, per label value (or pair of values), and adds them to the counter when it is
 * collected: a scrape, or a test reading the registry. The exposition is the counter's own.
 * Label values are a small closed set (message types, drop reasons, lease sources).
 */
import { Counter, type CounterConfiguration } from 'prom-client';

interface Pending {
  readonly child: Counter.Internal;
  n: number;
}

export class LabelledCounter<V extends string = string> {
  /** The registered counter (to give series a 0 up front, or read it). */
  readonly counter: Counter;
  readonly #one = new Map<string, Pending>();
  /** For a counter of two labels: by the first value, then the second. */
  readonly #two = new Map<string, Map<string, Pending>>();

  /** Registers the counter `config` describes; its `collect`, if any, runs after the counts are added. */
  constructor(config: CounterConfiguration<string>) {
    const one = this.#one;
    const two = this.#two;
    const collect = config.collect;
    this.counter = new Counter({
      ...config,
      collect() {
        for (const p of one.values()) flush(p);
        for (const byFirst of two.values()) for (const p of byFirst.values()) flush(p);
        return collect?.call(this);
      },
    });
  }

  inc(value: V, by = 1): void {
    let p = this.#one.get(value);
    if (p === undefined) {
      p = { child: this.counter.labels(value), n: 0 };
      this.#one.set(value, p);
    }
    p.n += by;
  }

  /** For a counter of two labels: their values in the order of its labelNames. */
  incPair(first: string, second: string, by = 1): void {
    let byFirst = this.#two.get(first);
    if (byFirst === undefined) {
      byFirst = new Map();
      this.#two.set(first, byFirst);
    }
    let p = byFirst.get(second);
    if (p === undefined) {
      p = { child: this.counter.labels(first, second), n: 0 };
      byFirst.set(second, p);
    }
    p.n += by;
  }
}

function flush(p: Pending): void {
  if (p.n === 0) return;
  p.child.inc(p.n);
  p.n = 0;
}
