import { describe, expect, it } from 'vitest';
import { ReadBufferPool } from './image-cache.js';

describe('ReadBufferPool', () => {
  it('hands a buffer that came back out again, whole, for a view of it', () => {
    const pool = new ReadBufferPool(1024 * 1024);
    const a = pool.take(65536);
    expect(a.length).toBe(65536);
    pool.give(a.subarray(0, 100));
    expect(pool.pooledBytes).toBe(65536);
    const b = pool.take(65536);
    expect(b.buffer).toBe(a.buffer);
    expect(b.length).toBe(65536);
    expect(pool.pooledBytes).toBe(0);
    expect(pool.take(65536).buffer).not.toBe(a.buffer);
  });

  it('ignores buffers it did not make and buffers given back twice', () => {
    const pool = new ReadBufferPool(1024 * 1024);
    pool.give(Buffer.allocUnsafeSlow(65536));
    expect(pool.pooledBytes).toBe(0);
    const a = pool.take(65536);
    pool.give(a);
    pool.give(a);
    expect(pool.pooledBytes).toBe(65536);
    expect(pool.take(65536).buffer).toBe(a.buffer);
    expect(pool.take(65536).buffer).not.toBe(a.buffer);
  });

  it('keeps at most maxBytes for reuse', () => {
    const pool = new ReadBufferPool(100_000);
    const [a, b] = [pool.take(65536), pool.take(65536)];
    pool.give(a);
    pool.give(b);
    expect(pool.pooledBytes).toBe(65536);
  });
});
