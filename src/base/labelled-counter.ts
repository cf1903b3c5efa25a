/**
 * A prom-client counter with one label (or several, incLabels), incremented on the packet path: `counter.inc({ label })`
 * hashes a labels object on every call, so the child of each label value is looked up once and
 * kept (label values are a small closed set: message types, drop reasons).
 */
import type { Counter } from 'prom-client';

export class LabelledCounter<V extends string = string> {
  readonly #counter: Counter;
  readonly #children = new Map<V, Counter.Internal>();
  /** Children of several label values, by the values joined. */
  readonly #tuples = new Map<string, Counter.Internal>();

  constructor(counter: Counter) {
    this.#counter = counter;
  }

  inc(value: V, by = 1): void {
    let child = this.#children.get(value);
    if (child === undefined) {
      child = this.#counter.labels(value);
      this.#children.set(value, child);
    }
    child.inc(by);
  }

  /** For a counter of several labels: the values in the order of its labelNames. */
  incLabels(values: readonly string[], by = 1): void {
    const key = values.join('\u0000');
    let child = this.#tuples.get(key);
    if (child === undefined) {
      child = this.#counter.labels(...values);
      this.#tuples.set(key, child);
    }
    child.inc(by);
  }
}
