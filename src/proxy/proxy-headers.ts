/**
 * Which headers cross the proxies, in each direction. Pure.
 *
 * Both proxies carry end-to-end headers unchanged — the Ironic microversion headers
 * (`X-OpenStack-Ironic-API-Version` on requests, `…-Minimum-Version`/`…-Maximum-Version` on
 * answers), `X-OpenStack-Request-Id`, `Content-Type`, `Accept`, and any credentials IPA or
 * Ironic send (Authorization, X-Auth-Token: forwarded, never logged) — and drop the hop-by-hop
 * ones of RFC 9110 §7.6.1 plus any field a Connection header names. Host is set by the client
 * towards the peer; Content-Length stays when the body passes unchanged (Ironic's WSGI servers
 * want a length, not chunks) and is recomputed when the proxy rewrites the body.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { HOP_BY_HOP, headerValue, type HeaderMap } from '../relay/http-headers.js';

export { headerValue, type HeaderMap };

/** Request headers that describe our hop to the peer, set by the HTTP client itself. */
const CLIENT_OWNED = new Set(['host', 'expect', 'content-length']);

function connectionTokens(headers: HeaderMap | IncomingHttpHeaders): Set<string> {
  const raw = headers['connection'];
  const list = Array.isArray(raw) ? raw.join(',') : (raw ?? '');
  return new Set(
    list
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter((s) => s !== ''),
  );
}

function endToEnd(
  headers: HeaderMap | IncomingHttpHeaders,
  skip: ReadonlySet<string>,
): Record<string, string | string[]> {
  const named = connectionTokens(headers);
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    const n = name.toLowerCase();
    if (value === undefined || HOP_BY_HOP.has(n) || named.has(n) || skip.has(n)) continue;
    out[n] = value;
  }
  return out;
}

export interface ForwardRequestContext {
  /** The caller's address, appended to X-Forwarded-For. */
  readonly clientIp: string;
  /** The length of the body that will be sent, when it is known (rewritten or passed through). */
  readonly contentLength?: number | undefined;
  /** The pseudonym this hop adds to Via (RFC 9110 §7.6.3). Default `metalboot`. */
  readonly via?: string | undefined;
}

/**
 * Request headers for the peer: the caller's end-to-end headers, X-Forwarded-For extended, a
 * Via entry, and Content-Length when the body length is known.
 */
export function forwardRequestHeaders(
  incoming: IncomingHttpHeaders,
  ctx: ForwardRequestContext,
): Record<string, string | string[]> {
  const out = endToEnd(incoming, CLIENT_OWNED);
  const xff = headerValue(incoming, 'x-forwarded-for');
  out['x-forwarded-for'] = xff === undefined ? ctx.clientIp : `${xff}, ${ctx.clientIp}`;
  const via = headerValue(incoming, 'via');
  const hop = `1.1 ${ctx.via ?? 'metalboot'}`;
  out['via'] = via === undefined ? hop : `${via}, ${hop}`;
  if (ctx.contentLength !== undefined) out['content-length'] = String(ctx.contentLength);
  return out;
}

/**
 * Whether a request has already passed through the hop named `pseudonym`: one of its Via
 * entries (`[protocol/]version received-by [comment]`, comma-separated) was received by it. RFC 9110 §7.6.3 names loop detection as a use of Via.
 */
export function viaIncludes(incoming: IncomingHttpHeaders, pseudonym: string): boolean {
  // Node joins repeated Via fields with ", ".
  return (incoming['via'] ?? '')
    .split(',')
    .some((entry) => entry.trim().split(/\s+/)[1]?.toLowerCase() === pseudonym.toLowerCase());
}

/**
 * Response headers for the caller: the peer's end-to-end headers. With `rewrittenBody` the
 * Content-Length (and any validator of the old body) is dropped: the proxy sets a new one.
 */
export function forwardResponseHeaders(
  upstream: HeaderMap,
  opts: { readonly rewrittenBody?: boolean } = {},
): Record<string, string | string[]> {
  return endToEnd(
    upstream,
    opts.rewrittenBody === true ? new Set(['content-length', 'etag', 'content-md5']) : new Set(),
  );
}

/**
 * The declared request body length: a number, `undefined` when none is declared (no body, or
 * chunked), or `'invalid'` for a malformed value.
 */
export function declaredLength(headers: IncomingHttpHeaders): number | undefined | 'invalid' {
  const v = headers['content-length'];
  if (v === undefined) return undefined;
  if (!/^\d{1,15}$/.test(v)) return 'invalid';
  return Number(v);
}

/** Whether a request carries a body (RFC 9112 §6.1: Content-Length or Transfer-Encoding). */
export function hasRequestBody(headers: IncomingHttpHeaders): boolean {
  const len = declaredLength(headers);
  return headers['transfer-encoding'] !== undefined || (typeof len === 'number' && len > 0);
}
