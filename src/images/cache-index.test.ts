import { describe, expect, it } from 'vitest';
import type { EntryMeta } from './cache-entry.js';
import { CacheIndex, diskBytes, type IndexedEntry } from './cache-index.js';

const entry = (key: string, size: number, file = `${key.slice(1)}-1`): IndexedEntry => ({
  meta: {
    key,
    size,
    etag: undefined,
    lastModified: undefined,
    contentType: undefined,
    storedAt: 0,
  } satisfies EntryMeta,
  file,
  headerLength: 10,
  validatedAt: 0,
});

const keys = (es: readonly IndexedEntry[]): string[] => es.map((e) => e.meta.key);

describe('CacheIndex', () => {
  it('counts bytes as on disk, header included', () => {
    const i = new CacheIndex(1000);
    i.commit(entry('/a', 90), 0);
    expect(i.bytes).toBe(100);
    expect(diskBytes(entry('/a', 90))).toBe(100);
  });

  it('evicts least recently used entries to make room for a reservation', () => {
    const i = new CacheIndex(300);
    for (const k of ['/a', '/b', '/c']) i.commit(entry(k, 90), 0);
    i.use('/a');
    expect(keys(i.reserve(100)!)).toEqual(['/b']);
    expect(keys(i.entries())).toEqual(['/c', '/a']);
    expect([i.bytes, i.reserved]).toEqual([200, 100]);
  });

  it('counts reservations of fills running at once', () => {
    const i = new CacheIndex(300);
    expect(i.reserve(200)).toEqual([]);
    expect(i.reserve(150)).toBeUndefined();
    expect(i.reserved).toBe(200);
    i.release(200);
    expect(i.reserve(300)).toEqual([]);
  });

  it('turns a reservation into an entry and hands back the version it replaces', () => {
    const i = new CacheIndex(1000);
    const old = entry('/a', 90, 'a-1');
    i.commit(old, 0);
    i.reserve(100);
    const { previous, evicted } = i.commit(entry('/a', 90, 'a-2'), 100);
    expect(previous).toBe(old);
    expect(evicted).toEqual([]);
    expect([i.bytes, i.reserved, i.size]).toEqual([100, 0, 1]);
    expect(i.peek('/a')?.file).toBe('a-2');
  });

  it('removes an entry only if it still points at the given file', () => {
    const i = new CacheIndex(1000);
    i.commit(entry('/a', 90, 'a-2'), 0);
    expect(i.remove('/a', 'a-1')).toBeUndefined();
    expect(i.remove('/a', 'a-2')?.file).toBe('a-2');
    expect([i.bytes, i.size]).toEqual([0, 0]);
  });

  it('peek leaves recency alone, use refreshes it', () => {
    const i = new CacheIndex(1000);
    for (const k of ['/a', '/b']) i.commit(entry(k, 10), 0);
    i.peek('/a');
    expect(keys(i.entries())).toEqual(['/a', '/b']);
    i.use('/a');
    expect(keys(i.entries())).toEqual(['/b', '/a']);
  });

  it('loads entries found at start-up under a smaller limit, evicting the oldest', () => {
    const i = new CacheIndex(250);
    expect(i.load(entry('/a', 90)).evicted).toEqual([]);
    expect(i.load(entry('/b', 90)).evicted).toEqual([]);
    expect(keys(i.load(entry('/c', 90)).evicted)).toEqual(['/a']);
    expect(keys(i.load(entry('/huge', 500)).evicted)).toEqual(['/huge']);
    expect(i.bytes).toBe(200);
  });
});
