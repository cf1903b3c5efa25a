/**
 * Which headers cross the proxy, in each direction. Pure.
 *
 * Towards the upstream an allow-list: the validators and Range that make GET/HEAD/conditional
 * and partial requests work end to end, plus User-Agent and Accept. Nothing else: no cookies,
 * no Authorization, no Host (the upstream origin sets it). `Accept-Encoding: identity` is always
 * sent, so Content-Length means bytes on disk and a compressed body never reaches the cache.
 *
 * Back to the client a deny-list: everything except the hop-by-hop fields of RFC 9110 §7.6.1
 * (and any field the upstream's Connection header names). A Location that points into the
 * upstream (Apache's trailing-slash redirect) is made relative, since booting hosts cannot
 * reach the upstream directly; a relative one never starts with `//` or `/\` (another host).
 *
 * An answer from the cache carries the stored validators and X-Cache, and for a body its type,
 * length and range ({@link storedObjectHeaders}).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { HOP_BY_HOP, headerValue, type HeaderMap } from '../relay/http-headers.js';
import { sameOriginReference } from '../relay/location.js';
import type { EntryMeta } from './cache-entry.js';
import { bodyRange, contentRange, type ObjectAnswer } from './ranges.js';

export { headerValue, type HeaderMap };

/** The type of the proxy's own plain-text answers: refusals, failures, 416. */
export const PLAIN_TEXT = 'text/plain; charset=utf-8';

const FORWARDED_REQUEST_HEADERS = [
  'range',
  'if-range',
  'if-none-match',
  'if-modified-since',
  'if-match',
  'if-unmodified-since',
  'user-agent',
  'accept',
] as const;

const CONDITIONAL = ['if-none-match', 'if-modified-since', 'if-match', 'if-unmodified-since', 'if-range'] as const;

export interface ForwardContext {
  /** The client's address, appended to X-Forwarded-For. */
  readonly clientIp: string;
  /** `http` or `https`: how the client reached us. */
  readonly protocol: string;
}

/** Builds the upstream request headers from the client's. */
export function upstreamRequestHeaders(client: IncomingHttpHeaders, ctx: ForwardContext): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of FORWARDED_REQUEST_HEADERS) {
    const v = client[name];
    if (v === undefined) continue;
    out[name] = Array.isArray(v) ? v.join(', ') : v;
  }
  const xff = headerValue(client, 'x-forwarded-for');
  out['x-forwarded-for'] = xff === undefined ? ctx.clientIp : `${xff}, ${ctx.clientIp}`;
  out['x-forwarded-proto'] = ctx.protocol;
  out['via'] = '1.1 metalboot';
  out['accept-encoding'] = 'identity';
  return out;
}

/**
 * A Location under `origin` + `basePath` as an absolute path on our side; any other absolute
 * URL unchanged. A relative result never names another host: `http://ironic//evil/x` and
 * `//evil/x` both become `/evil/x` (relay/location.ts).
 */
export function rewriteLocation(location: string, origin: string, basePath: string): string {
  const prefix = `${origin}${basePath}`;
  if (!location.startsWith(prefix)) return sameOriginReference(location);
  const rest = location.slice(prefix.length);
  if (rest === '') return '/';
  if (rest.startsWith('?')) return `/${rest}`;
  // 'http://host:61800' is not under 'http://host:6180'
  return rest.startsWith('/') || rest.startsWith('\\') ? sameOriginReference(rest) : location;
}

/** The upstream response headers a client may see: hop-by-hop fields removed. */
export function clientResponseHeaders(
  upstream: HeaderMap,
  origin?: string,
  basePath = '',
): Record<string, string | string[]> {
  const named = new Set<string>();
  const connection = upstream['connection'];
  for (const v of Array.isArray(connection) ? connection : connection === undefined ? [] : [connection]) {
    for (const token of v.split(',')) named.add(token.trim().toLowerCase());
  }
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(upstream)) {
    if (value === undefined || HOP_BY_HOP.has(name) || named.has(name)) continue;
    out[name] =
      name === 'location' && origin !== undefined && typeof value === 'string'
        ? rewriteLocation(value, origin, basePath)
        : value;
  }
  return out;
}

/** True when the request carries Range or any conditional header. */
export function isConditionalOrPartial(client: IncomingHttpHeaders): boolean {
  return client['range'] !== undefined || CONDITIONAL.some((h) => client[h] !== undefined);
}

/**
 * The headers of an answer from a stored object (`result` is its X-Cache): the validators on
 * every status, Content-Range `*` on a 416, and the body's type, length and range on a 200 or 206.
 */
export function storedObjectHeaders(meta: EntryMeta, answer: ObjectAnswer, result: string): Record<string, string> {
  const headers: Record<string, string> = { 'x-cache': result };
  if (meta.etag !== undefined) headers['etag'] = meta.etag;
  if (meta.lastModified !== undefined) headers['last-modified'] = meta.lastModified;
  if (answer.status === 304 || answer.status === 412) return headers;
  if (answer.status === 416) {
    headers['content-range'] = contentRange(meta.size);
    return headers;
  }
  const range = bodyRange(answer, meta.size);
  headers['accept-ranges'] = 'bytes';
  headers['content-type'] = meta.contentType ?? 'application/octet-stream';
  headers['content-length'] = String(range.end - range.start + 1);
  if (answer.status === 206) headers['content-range'] = contentRange(meta.size, range);
  return headers;
}
