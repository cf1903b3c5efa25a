/**
 * Range and conditional requests answered from a stored object (a cache entry or an object
 * being filled): RFC 9110 §13.2.2 precedence, §14 byte ranges. Pure.
 *
 * One range per response: a multi-range request is answered with the whole object (200), which
 * RFC 9110 §14.2 allows. A Range header that does not parse is ignored, as the RFC asks.
 */

export type ByteRange = { readonly start: number; readonly end: number };

export type RangeRequest =
  | { readonly kind: 'none' }
  | { readonly kind: 'range'; readonly range: ByteRange }
  | { readonly kind: 'unsatisfiable' };

const SPEC = /^(\d*)-(\d*)$/;

/** Parses a Range header against an object of `size` bytes. End positions are inclusive. */
export function parseRange(header: string | undefined, size: number): RangeRequest {
  if (header === undefined) return { kind: 'none' };
  const eq = header.indexOf('=');
  if (eq === -1 || header.slice(0, eq).trim().toLowerCase() !== 'bytes') return { kind: 'none' };
  const specs = header
    .slice(eq + 1)
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (specs.length !== 1) return { kind: 'none' };
  const m = SPEC.exec(specs[0]!);
  if (m === null) return { kind: 'none' };
  const [, first, last] = m as unknown as [string, string, string];
  if (first === '' && last === '') return { kind: 'none' };
  if (first === '') {
    // suffix range: the last N bytes
    const n = Number(last);
    if (!Number.isSafeInteger(n)) return { kind: 'none' };
    if (n === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'range', range: { start: Math.max(0, size - n), end: size - 1 } };
  }
  const start = Number(first);
  const end = last === '' ? Number.MAX_SAFE_INTEGER : Number(last);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || end < start) return { kind: 'none' };
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'range', range: { start, end: Math.min(end, size - 1) } };
}

/** What a stored object is known by. */
export interface Validators {
  readonly size: number;
  readonly etag: string | undefined;
  readonly lastModified: string | undefined;
}

/** The request fields that matter here. */
export interface ObjectRequest {
  readonly method: 'GET' | 'HEAD';
  readonly range?: string | undefined;
  readonly ifMatch?: string | undefined;
  readonly ifNoneMatch?: string | undefined;
  readonly ifModifiedSince?: string | undefined;
  readonly ifUnmodifiedSince?: string | undefined;
  readonly ifRange?: string | undefined;
}

export type ObjectAnswer =
  | { readonly status: 200 }
  | { readonly status: 206; readonly range: ByteRange }
  | { readonly status: 304 }
  | { readonly status: 412 }
  | { readonly status: 416 };

const isWeak = (tag: string): boolean => tag.startsWith('W/');
const opaque = (tag: string): string => (isWeak(tag) ? tag.slice(2) : tag);

/** Splits an entity-tag list (`"a", W/"b"`), keeping `*` as is. */
export function parseEtagList(header: string): string[] {
  const out: string[] = [];
  const re = /\s*(\*|(?:W\/)?"[^"]*")\s*(?:,|$)/gy;
  for (let m = re.exec(header); m !== null && m[0] !== ''; m = re.exec(header)) out.push(m[1]!);
  return out;
}

function matchesAny(header: string, etag: string | undefined, strong: boolean): boolean {
  const tags = parseEtagList(header);
  if (tags.includes('*')) return true;
  if (etag === undefined) return false;
  if (strong) return !isWeak(etag) && tags.some((t) => !isWeak(t) && t === etag);
  return tags.some((t) => opaque(t) === opaque(etag));
}

const parseDate = (s: string | undefined): number | undefined => {
  if (s === undefined) return undefined;
  const t = Date.parse(s);
  return Number.isNaN(t) ? undefined : t;
};

/** Evaluates preconditions then Range, in the order RFC 9110 §13.2.2 gives. */
export function answerObjectRequest(req: ObjectRequest, v: Validators): ObjectAnswer {
  const lastModified = parseDate(v.lastModified);
  // 1-2: If-Match, else If-Unmodified-Since
  if (req.ifMatch !== undefined) {
    if (!matchesAny(req.ifMatch, v.etag, true)) return { status: 412 };
  } else if (req.ifUnmodifiedSince !== undefined) {
    const since = parseDate(req.ifUnmodifiedSince);
    if (since !== undefined && lastModified !== undefined && lastModified > since) return { status: 412 };
  }
  // 3-4: If-None-Match, else If-Modified-Since (GET and HEAD only, which is all we serve)
  if (req.ifNoneMatch !== undefined) {
    if (matchesAny(req.ifNoneMatch, v.etag, false)) return { status: 304 };
  } else if (req.ifModifiedSince !== undefined) {
    const since = parseDate(req.ifModifiedSince);
    if (since !== undefined && lastModified !== undefined && lastModified <= since) return { status: 304 };
  }
  // 5: Range, for GET, guarded by If-Range
  if (req.method !== 'GET' || req.range === undefined) return { status: 200 };
  if (req.ifRange !== undefined && !ifRangeHolds(req.ifRange, v)) return { status: 200 };
  const r = parseRange(req.range, v.size);
  if (r.kind === 'none') return { status: 200 };
  if (r.kind === 'unsatisfiable') return { status: 416 };
  return { status: 206, range: r.range };
}

/** If-Range: a strong ETag equal to ours, or a date equal to our Last-Modified (§13.1.5). */
function ifRangeHolds(ifRange: string, v: Validators): boolean {
  const value = ifRange.trim();
  if (value.startsWith('"') || value.startsWith('W/')) {
    return v.etag !== undefined && !isWeak(value) && !isWeak(v.etag) && value === v.etag;
  }
  const date = parseDate(value);
  const lm = parseDate(v.lastModified);
  return date !== undefined && lm !== undefined && date === lm;
}

/** The bytes a 200 or 206 answer sends: its range, or the whole object. */
export function bodyRange(
  answer: { readonly status: 200 } | { readonly status: 206; readonly range: ByteRange },
  size: number,
): ByteRange {
  return answer.status === 206 ? answer.range : { start: 0, end: size - 1 };
}

/** `Content-Range` for a 206, or for a 416 (`bytes *\/size`). */
export function contentRange(size: number, range?: ByteRange): string {
  return range === undefined ? `bytes */${size}` : `bytes ${range.start}-${range.end}/${size}`;
}
