import { describe, expect, it } from 'vitest';
import {
  answerObjectRequest,
  contentRange,
  parseEtagList,
  parseRange,
  type ObjectRequest,
  type RangeRequest,
  type Validators,
} from './ranges.js';

describe('parseRange', () => {
  it.each<[string, string | undefined, number, RangeRequest]>([
    ['no header', undefined, 100, { kind: 'none' }],
    ['closed range', 'bytes=0-9', 100, { kind: 'range', range: { start: 0, end: 9 } }],
    ['open range', 'bytes=90-', 100, { kind: 'range', range: { start: 90, end: 99 } }],
    ['end clamped', 'bytes=90-1000', 100, { kind: 'range', range: { start: 90, end: 99 } }],
    ['suffix', 'bytes=-10', 100, { kind: 'range', range: { start: 90, end: 99 } }],
    ['suffix longer than object', 'bytes=-1000', 100, { kind: 'range', range: { start: 0, end: 99 } }],
    ['unit in capitals, spaces', ' Bytes = 5-6 ', 100, { kind: 'range', range: { start: 5, end: 6 } }],
    ['start past the end', 'bytes=100-', 100, { kind: 'unsatisfiable' }],
    ['zero-length suffix', 'bytes=-0', 100, { kind: 'unsatisfiable' }],
    ['any range of an empty object', 'bytes=0-', 0, { kind: 'unsatisfiable' }],
    ['suffix of an empty object', 'bytes=-5', 0, { kind: 'unsatisfiable' }],
    ['end before start (invalid: ignored)', 'bytes=9-5', 100, { kind: 'none' }],
    ['other unit', 'items=0-5', 100, { kind: 'none' }],
    ['garbage', 'bytes=a-b', 100, { kind: 'none' }],
    ['empty spec', 'bytes=-', 100, { kind: 'none' }],
    ['multiple ranges (whole object)', 'bytes=0-1,5-6', 100, { kind: 'none' }],
    ['huge number', 'bytes=0-99999999999999999999', 100, { kind: 'none' }],
  ])('%s', (_name, header, size, want) => {
    expect(parseRange(header, size)).toEqual(want);
  });
});

describe('parseEtagList', () => {
  it('splits strong, weak and * tags', () => {
    expect(parseEtagList('"a", W/"b" ,"c,d"')).toEqual(['"a"', 'W/"b"', '"c,d"']);
    expect(parseEtagList('*')).toEqual(['*']);
    expect(parseEtagList('garbage')).toEqual([]);
  });
});

describe('answerObjectRequest', () => {
  const LM = 'Tue, 01 Jul 2025 10:00:00 GMT';
  const v: Validators = { size: 100, etag: '"abc"', lastModified: LM };
  const get = (over: Partial<ObjectRequest> = {}): ObjectRequest => ({ method: 'GET', ...over });
  const before = 'Mon, 30 Jun 2025 10:00:00 GMT';
  const after = 'Wed, 02 Jul 2025 10:00:00 GMT';

  it.each<[string, ObjectRequest, number]>([
    ['plain GET', get(), 200],
    ['HEAD ignores Range', { method: 'HEAD', range: 'bytes=0-1' }, 200],
    ['Range', get({ range: 'bytes=0-1' }), 206],
    ['unsatisfiable Range', get({ range: 'bytes=100-' }), 416],
    ['If-None-Match match', get({ ifNoneMatch: '"abc"' }), 304],
    ['If-None-Match weak match', get({ ifNoneMatch: 'W/"abc"' }), 304],
    ['If-None-Match *', get({ ifNoneMatch: '*' }), 304],
    ['If-None-Match other', get({ ifNoneMatch: '"x"' }), 200],
    ['If-None-Match wins over If-Modified-Since', get({ ifNoneMatch: '"x"', ifModifiedSince: after }), 200],
    ['If-Modified-Since later', get({ ifModifiedSince: after }), 304],
    ['If-Modified-Since equal', get({ ifModifiedSince: LM }), 304],
    ['If-Modified-Since earlier', get({ ifModifiedSince: before }), 200],
    ['If-Modified-Since garbage', get({ ifModifiedSince: 'yesterday' }), 200],
    ['If-Match match', get({ ifMatch: '"abc"' }), 200],
    ['If-Match weak (strong comparison fails)', get({ ifMatch: 'W/"abc"' }), 412],
    ['If-Match other', get({ ifMatch: '"x"' }), 412],
    ['If-Unmodified-Since earlier', get({ ifUnmodifiedSince: before }), 412],
    ['If-Unmodified-Since later', get({ ifUnmodifiedSince: after }), 200],
    ['If-Range etag holds', get({ range: 'bytes=0-1', ifRange: '"abc"' }), 206],
    ['If-Range etag differs', get({ range: 'bytes=0-1', ifRange: '"x"' }), 200],
    ['If-Range weak etag', get({ range: 'bytes=0-1', ifRange: 'W/"abc"' }), 200],
    ['If-Range date equal', get({ range: 'bytes=0-1', ifRange: LM }), 206],
    ['If-Range date differs', get({ range: 'bytes=0-1', ifRange: after }), 200],
  ])('%s → %i', (_name, req, status) => {
    expect(answerObjectRequest(req, v).status).toBe(status);
  });

  it('gives the range of a 206', () => {
    expect(answerObjectRequest(get({ range: 'bytes=-3' }), v)).toEqual({ status: 206, range: { start: 97, end: 99 } });
  });

  it('treats an object without validators as never matching', () => {
    const bare: Validators = { size: 10, etag: undefined, lastModified: undefined };
    expect(answerObjectRequest(get({ ifNoneMatch: '"abc"' }), bare).status).toBe(200);
    expect(answerObjectRequest(get({ ifMatch: '"abc"' }), bare).status).toBe(412);
    expect(answerObjectRequest(get({ ifModifiedSince: after }), bare).status).toBe(200);
  });
});

describe('contentRange', () => {
  it('formats 206 and 416 forms', () => {
    expect(contentRange(100, { start: 0, end: 9 })).toBe('bytes 0-9/100');
    expect(contentRange(100)).toBe('bytes */100');
  });
});
