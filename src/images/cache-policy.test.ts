import { describe, expect, it } from 'vitest';
import {
  cacheability,
  isFresh,
  revalidationHeaders,
  revalidationOutcome,
  type Cacheability,
  type RevalidationOutcome,
} from './cache-policy.js';

describe('cacheability', () => {
  const ok = { 'content-length': '1000', etag: '"a"' };
  it.each<[string, number, Record<string, string>, Cacheability]>([
    ['a 200 with a length', 200, ok, { cacheable: true, size: 1000 }],
    ['an empty file', 200, { 'content-length': '0' }, { cacheable: true, size: 0 }],
    ['identity encoding', 200, { ...ok, 'content-encoding': 'identity' }, { cacheable: true, size: 1000 }],
    [
      'Cache-Control no-cache (we revalidate anyway)',
      200,
      { ...ok, 'cache-control': 'no-cache' },
      { cacheable: true, size: 1000 },
    ],
    ['a 206', 206, ok, { cacheable: false, reason: 'status' }],
    ['a 404', 404, ok, { cacheable: false, reason: 'status' }],
    ['no Content-Length (chunked)', 200, { etag: '"a"' }, { cacheable: false, reason: 'no-length' }],
    ['a bad Content-Length', 200, { 'content-length': '12x' }, { cacheable: false, reason: 'no-length' }],
    ['gzip', 200, { ...ok, 'content-encoding': 'gzip' }, { cacheable: false, reason: 'encoded' }],
    ['no-store', 200, { ...ok, 'cache-control': 'max-age=0, no-store' }, { cacheable: false, reason: 'no-store' }],
    ['private', 200, { ...ok, 'cache-control': 'private' }, { cacheable: false, reason: 'no-store' }],
    ['Vary: *', 200, { ...ok, vary: 'Accept, *' }, { cacheable: false, reason: 'vary' }],
    ['larger than the cache', 200, { 'content-length': '1001' }, { cacheable: false, reason: 'too-large' }],
  ])('%s', (_name, status, headers, want) => {
    expect(cacheability(status, headers, 1000)).toEqual(want);
  });
});

describe('freshness and revalidation', () => {
  it('is fresh strictly within the window', () => {
    expect(isFresh(1000, 1999, 1000)).toBe(true);
    expect(isFresh(1000, 2000, 1000)).toBe(false);
    expect(isFresh(0, 1, 0)).toBe(false);
  });

  it('sends the validators the entry has', () => {
    expect(revalidationHeaders('"a"', 'date')).toEqual({ 'if-none-match': '"a"', 'if-modified-since': 'date' });
    expect(revalidationHeaders(undefined, 'date')).toEqual({ 'if-modified-since': 'date' });
    expect(revalidationHeaders(undefined, undefined)).toEqual({});
  });

  it.each<[number, RevalidationOutcome]>([
    [304, 'unchanged'],
    [200, 'replaced'],
    [404, 'gone'],
    [410, 'gone'],
    [500, 'stale'],
    [503, 'stale'],
    [403, 'relay'],
    [206, 'relay'],
  ])('reads %i as %s', (status, want) => {
    expect(revalidationOutcome(status)).toBe(want);
  });
});
