/**
 * A prom-client counter with one label, incremented on the packet path: `counter.inc({ label })`
 * hashes a labels object on every call, so the child of each label value is looked up once and
 * kept (label values are a small closed set: message types, drop reasons).
 */
import type { Counter } from 'prom-client';

export class LabelledCounter<V extends string = string> {
  readonly #counter: Counter;
  readonly #children = new Map<V, Counter.Internal>();

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
}
