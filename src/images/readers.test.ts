import { describe, expect, it } from 'vitest';
import { readChunkFor } from './readers.js';

describe('readChunkFor', () => {
  it('reads 1 MiB at a time for a few clients and shrinks to 64 KiB in a storm', () => {
    expect(readChunkFor(1)).toBe(1024 * 1024);
    expect(readChunkFor(32)).toBe(1024 * 1024);
    expect(readChunkFor(33)).toBe(512 * 1024);
    expect(readChunkFor(100)).toBe(256 * 1024);
    expect(readChunkFor(500)).toBe(64 * 1024);
    expect(readChunkFor(100_000)).toBe(64 * 1024);
  });

  it('keeps the memory of all open streams near the budget', () => {
    for (const n of [1, 10, 50, 200, 512])
      expect(n * readChunkFor(n)).toBeLessThanOrEqual(Math.max(32 * 1024 * 1024, n * 64 * 1024));
  });
});
