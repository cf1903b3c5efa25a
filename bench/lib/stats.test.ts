import { describe, expect, it } from 'vitest';
import { fmt, median, medianBy, quantile } from './stats.js';

describe('quantile', () => {
  it.each([
    ['the minimum', [4, 1, 3, 2], 0, 1],
    ['the maximum', [4, 1, 3, 2], 1, 4],
    ['between the two middle values', [4, 1, 3, 2], 0.5, 2.5],
    ['interpolated linearly', [10, 20], 0.25, 12.5],
    ['p99 of 1..100', Array.from({ length: 100 }, (_, i) => i + 1), 0.99, 99.01],
    ['the only value', [7], 0.99, 7],
  ])('is %s', (_what, values, q, expected) => {
    expect(quantile(values, q)).toBeCloseTo(expected, 10);
  });

  it('is NaN for no values', () => {
    expect(quantile([], 0.5)).toBeNaN();
  });

  it('leaves its input in order', () => {
    const values = [3, 1, 2];
    quantile(values, 0.5);
    expect(values).toEqual([3, 1, 2]);
  });
});

describe('median', () => {
  it('is the middle value, or the mean of the two middle values', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([5, 1, 3, 2])).toBe(2.5);
  });
});

describe('medianBy', () => {
  const runs = [
    { wallS: 9, ok: 3 },
    { wallS: 1, ok: 1 },
    { wallS: 5, ok: 2 },
    { wallS: 7, ok: 4 },
  ];

  it('returns the element with the lower middle key, fields together', () => {
    expect(medianBy(runs, (r) => r.wallS)).toBe(runs[2]);
    expect(medianBy(runs.slice(0, 3), (r) => r.wallS)).toBe(runs[2]);
  });

  it('is undefined for no elements', () => {
    expect(medianBy([], (r: { wallS: number }) => r.wallS)).toBeUndefined();
  });
});

describe('fmt', () => {
  it.each([
    [1234567.891, 0, '1,234,568'],
    [0.5, 2, '0.50'],
    [12.345, 1, '12.3'],
  ])('formats %d with %d digits as %s', (n, digits, expected) => {
    expect(fmt(n, digits)).toBe(expected);
  });

  it.each([[undefined], [NaN], [Infinity]])('prints a dash for %s', (n) => {
    expect(fmt(n)).toBe('–');
  });
});
