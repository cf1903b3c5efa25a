import { describe, expect, it } from 'vitest';
import { LogBudget } from './log-budget.js';

describe('LogBudget', () => {
  it('lets a burst through, then a few lines a second, and reports what it held back', () => {
    let t = 0;
    const budget = new LogBudget<string>({ perSecond: 2, burst: 3, now: () => t });
    const oks = Array.from({ length: 10 }, () => budget.take('malformed').ok);
    expect(oks).toEqual([true, true, true, false, false, false, false, false, false, false]);
    t += 500; // one token back
    expect(budget.take('malformed')).toEqual({ ok: true, suppressed: 7 });
    expect(budget.take('malformed').ok).toBe(false);
    // Keys are independent.
    expect(budget.take('not-found')).toEqual({ ok: true, suppressed: 0 });
  });

  it('never holds more than the burst', () => {
    let t = 0;
    const budget = new LogBudget<string>({ perSecond: 100, burst: 2, now: () => t });
    t += 60_000;
    expect([budget.take('k').ok, budget.take('k').ok, budget.take('k').ok]).toEqual([true, true, false]);
  });
});
