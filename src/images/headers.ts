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
 * reach the upstream directly.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { HOP_BY_HOP, headerValue, type HeaderMap } from '../relay/http-headers.js';

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
 * A Location under `origin` + `basePath` as an absolute path on our side; any other value
 * unchanged.
 */
export function rewriteLocation(location: string, origin: string, basePath: string): string {
  const prefix = `${origin}${basePath}`;
  if (!location.startsWith(prefix)) return location;
  const rest = location.slice(prefix.length);
  if (rest === '') return '/';
  if (rest.startsWith('?')) return `/${rest}`;
  return rest.startsWith('/') ? rest : location; // 'http://host:61800' is not under 'http://host:6180'
}

/** The upstream response headers a client may see: hop-by-hop fields removed. */
export function clientResponseHeaders(upstream: HeaderMap, origin?: string, basePath = ''): Record<string, string | string[]> {
  const named = new Set<string>();
  const connection = upstream['connection'];
  for (const v of Array.isArray(connection) ? connection : connection === undefined ? [] : [connection]) {
    for (const token of v.split(',')) named.add(token.trim().toLowerCase());
  }
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(upstream)) {
    if (value === undefined || HOP_BY_HOP.has(name) || named.has(name)) continue;
    out[name] = name === 'location' && origin !== undefined && typeof value === 'string' ? rewriteLocation(value, origin, basePath) : value;
  }
  return out;
}

/** True when the request carries Range or any conditional header. */
export function isConditionalOrPartial(client: IncomingHttpHeaders): boolean {
  return client['range'] !== undefined || CONDITIONAL.some((h) => client[h] !== undefined);
}
