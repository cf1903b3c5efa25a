/**
 * A tiny timing loop for in-process benchmarks: warm up, then several timed trials of batches,
 * reporting the median rate. `fn` returns something so the work cannot be optimised away.
 */
import { median } from './stats.js';

export interface MicroResult {
  readonly name: string;
  readonly opsPerS: number;
  readonly nsPerOp: number;
  /** Slowest and fastest trial, ops/s. */
  readonly minOpsPerS: number;
  readonly maxOpsPerS: number;
  readonly trials: number;
}

let sink: unknown;

/** Keeps a value alive so V8 cannot drop the computation that produced it. */
export function consume(v: unknown): void {
  sink = v;
}

export function lastSink(): unknown {
  return sink;
}

export function bench(
  name: string,
  fn: (i: number) => unknown,
  opts: { trials?: number; trialMs?: number; warmupMs?: number; batch?: number } = {},
): MicroResult {
  const batch = opts.batch ?? 1000;
  const run = (ms: number): number => {
    let ops = 0;
    const start = process.hrtime.bigint();
    const limit = BigInt(ms) * 1_000_000n;
    let elapsed = 0n;
    let i = 0;
    do {
      for (let k = 0; k < batch; k++) sink = fn(i++);
      ops += batch;
      elapsed = process.hrtime.bigint() - start;
    } while (elapsed < limit);
    return ops / (Number(elapsed) / 1e9);
  };
  run(opts.warmupMs ?? 300);
  const rates: number[] = [];
  for (let t = 0; t < (opts.trials ?? 5); t++) rates.push(run(opts.trialMs ?? 500));
  const m = median(rates);
  return {
    name,
    opsPerS: m,
    nsPerOp: 1e9 / m,
    minOpsPerS: Math.min(...rates),
    maxOpsPerS: Math.max(...rates),
    trials: rates.length,
  };
}
