/** HTTP header helpers shared by the image proxy and the Ironic proxies (RFC 9110 §7.6.1). */
import type { IncomingHttpHeaders } from 'node:http';

/** Headers as undici and node:http hand them over: lower-case names. */
export type HeaderMap = Record<string, string | string[] | undefined>;

/** Hop-by-hop headers: about one connection, never forwarded (plus any the Connection header names). */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** The first value of a header, or undefined. */
export function headerValue(headers: HeaderMap | IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}
