import { describe, expect, it } from 'vitest';
import { pinning } from './pinning.js';

describe('pinning', () => {
  it.each([
    { nproc: 2, server: 1, want: { server: '0', clients: '1', shared: false } },
    { nproc: 2, server: 2, want: { server: '0-1', clients: '0-1', shared: true } },
    { nproc: 8, server: 2, want: { server: '0-1', clients: '2-7', shared: false } },
    { nproc: 8, server: 7, want: { server: '0-6', clients: '7', shared: false } },
    { nproc: 1, server: 1, want: { server: '0', clients: '0', shared: true } },
  ])('$server server CPUs of $nproc', ({ nproc, server, want }) => {
    expect(pinning(nproc, server)).toEqual(want);
  });

  it.each([0, 3, 1.5])('refuses %s server CPUs of 2', (n) => {
    expect(() => pinning(2, n)).toThrow(/cannot pin/);
  });
});
