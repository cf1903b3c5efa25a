/**
 * What the read-through cache stores and when it asks the upstream again. Pure.
 *
 * Stored: a 200 answer to a plain GET (no Range, no conditional, no query string) with a
 * Content-Length, no Content-Encoding, no `Cache-Control: no-store|private`, no `Vary: *`, and no
 * larger than the cache. Everything else is relayed untouched and never stored.
 *
 * Freshness is ours, not the upstream's: Ironic's httpd sends no Cache-Control, and an artifact
 * can be replaced in place (a new IPA image, a re-created per-node kernel). An entry is served
 * without asking the upstream for `revalidateAfterMs` after it was stored or last validated;
 * after that the next request asks with a conditional GET (If-None-Match / If-Modified-Since).
 * Entries found on disk at start-up count as never validated.
 */
import { headerValue, type HeaderMap } from './headers.js';

export type NotCacheable = 'status' | 'no-length' | 'encoded' | 'no-store' | 'vary' | 'too-large';

export type Cacheability =
  | { readonly cacheable: true; readonly size: number }
  | { readonly cacheable: false; readonly reason: NotCacheable };

const CONTENT_LENGTH = /^\d+$/;

/** Whether an upstream answer to a plain GET may become an entry of a cache of `maxBytes`. */
export function cacheability(status: number, headers: HeaderMap, maxBytes: number): Cacheability {
  if (status !== 200) return { cacheable: false, reason: 'status' };
  const length = headerValue(headers, 'content-length');
  if (length === undefined || !CONTENT_LENGTH.test(length.trim())) return { cacheable: false, reason: 'no-length' };
  const encoding = headerValue(headers, 'content-encoding');
  if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity')
    return { cacheable: false, reason: 'encoded' };
  const cc = (headerValue(headers, 'cache-control') ?? '').toLowerCase();
  if (/(^|[,\s])(no-store|private)($|[,\s=])/.test(cc)) return { cacheable: false, reason: 'no-store' };
  if ((headerValue(headers, 'vary') ?? '').split(',').some((v) => v.trim() === '*'))
    return { cacheable: false, reason: 'vary' };
  const size = Number(length.trim());
  if (!Number.isSafeInteger(size) || size > maxBytes) return { cacheable: false, reason: 'too-large' };
  return { cacheable: true, size };
}

/** True when an entry validated at `validatedAt` may be served without asking the upstream. */
export const isFresh = (validatedAt: number, now: number, revalidateAfterMs: number): boolean =>
  now - validatedAt < revalidateAfterMs;

/** The validators to send when revalidating an entry; empty when it has none. */
export function revalidationHeaders(
  etag: string | undefined,
  lastModified: string | undefined,
): Record<string, string> {
  const out: Record<string, string> = {};
  if (etag !== undefined) out['if-none-match'] = etag;
  if (lastModified !== undefined) out['if-modified-since'] = lastModified;
  return out;
}

/**
 * What the answer to a revalidation means. `stale` (serve what we have) on an upstream server
 * error: during a boot storm a known-good kernel beats a 502; `gone` on 404/410 drops the entry;
 * a 200 is a new version.
 */
export type RevalidationOutcome = 'unchanged' | 'replaced' | 'gone' | 'stale' | 'relay';

export function revalidationOutcome(status: number): RevalidationOutcome {
  if (status === 304) return 'unchanged';
  if (status === 200) return 'replaced';
  if (status === 404 || status === 410) return 'gone';
  if (status >= 500) return 'stale';
  return 'relay';
}
