/**
 * Which request targets the image proxy forwards, and in what form. Pure.
 *
 * The proxy is not an open proxy: the upstream origin is fixed at start-up, and the path sent to
 * it is rebuilt here from decoded, checked segments, so nothing in a request can change which
 * host is contacted or escape the upstream's document root:
 *
 * - only origin-form targets (`/path?query`, RFC 9112 §3.2.1) are accepted; an absolute-URI
 *   target (`GET http://elsewhere/images/x`, §3.2.2), which Node and the router otherwise accept
 *   and route by its path, is refused;
 * - every segment is percent-decoded once; `.` and `..` (raw or encoded), an encoded `/` or `\`,
 *   a NUL or any other control character, a backslash, and a segment that still holds an
 *   encoded dot, slash, backslash or NUL after decoding (double encoding) are refused;
 * - repeated slashes are merged (Apache's MergeSlashes), then every segment is encoded again
 *   with one canonical spelling. The canonical path is the cache key: `/images/a%62c` and
 *   `/images/abc` are one artifact;
 * - the query string is passed through untouched after a check for control characters.
 */

/** Why a request target was refused (HTTP 400). Tests and metrics name these. */
export type TargetRefusal =
  | 'absolute-uri'
  | 'not-origin-form'
  | 'bad-encoding'
  | 'dot-segment'
  | 'encoded-slash'
  | 'backslash'
  | 'nul'
  | 'control-char'
  | 'double-encoding'
  | 'outside-prefixes';

export type TargetDecision =
  | {
      readonly kind: 'forward';
      /** Canonical percent-encoded path, always starting with `/`. The cache key. */
      readonly path: string;
      /** The raw query without its `?`, or undefined when the target had none. */
      readonly query: string | undefined;
    }
  | { readonly kind: 'refuse'; readonly reason: TargetRefusal };

const refuse = (reason: TargetRefusal): TargetDecision => ({ kind: 'refuse', reason });

// Bytes that never belong in a request line; Node's parser rejects most of them already.
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is what this does
const RAW_CONTROL = /[\u0000-\u0020\u007f]/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is what this does
const DECODED_CONTROL = /[\u0001-\u001f\u007f]/;
const ENCODED_SEPARATOR = /%(2f|5c)/i;
const STILL_ENCODED = /%(2e|2f|5c|00)/i;
const SCHEME = /^[a-z][a-z0-9+.-]*:/i;

/** RFC 3986 pchar minus pct-encoded: unreserved, sub-delims, ':' and '@'. */
const PCHAR = /^[A-Za-z0-9\-._~!$&'()*+,;=:@]$/;

/** Encodes one decoded segment with exactly one spelling for every byte sequence. */
export function encodeSegment(segment: string): string {
  let out = '';
  for (const ch of segment) {
    if (PCHAR.test(ch)) {
      out += ch;
      continue;
    }
    for (const byte of Buffer.from(ch, 'utf8')) out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/**
 * Checks a raw request target (`request.raw.url`) and returns the canonical path to forward, or
 * the reason it is refused. Does not look at prefixes: see {@link matchesPrefix}.
 */
export function parseTarget(rawUrl: string): TargetDecision {
  if (!rawUrl.startsWith('/')) return refuse(SCHEME.test(rawUrl) ? 'absolute-uri' : 'not-origin-form');
  if (RAW_CONTROL.test(rawUrl)) return refuse(rawUrl.includes('\u0000') ? 'nul' : 'control-char');
  if (rawUrl.includes('#')) return refuse('not-origin-form');

  const q = rawUrl.indexOf('?');
  const rawPath = q === -1 ? rawUrl : rawUrl.slice(0, q);
  const query = q === -1 ? undefined : rawUrl.slice(q + 1);

  const rawSegments = rawPath.split('/').slice(1);
  const trailingSlash = rawPath.length > 1 && rawPath.endsWith('/');
  const segments: string[] = [];
  for (const raw of rawSegments) {
    if (raw === '') continue; // merged slashes; a trailing slash is restored below
    if (raw.includes('\\')) return refuse('backslash');
    if (ENCODED_SEPARATOR.test(raw)) return refuse('encoded-slash');
    let decoded: string;
    try {
      decoded = decodeURIComponent(raw);
    } catch {
      return refuse('bad-encoding');
    }
    if (decoded.includes('\u0000')) return refuse('nul');
    if (DECODED_CONTROL.test(decoded)) return refuse('control-char');
    if (decoded === '.' || decoded === '..') return refuse('dot-segment');
    if (STILL_ENCODED.test(decoded)) return refuse('double-encoding');
    segments.push(decoded);
  }
  const path = `/${segments.map(encodeSegment).join('/')}${trailingSlash && segments.length > 0 ? '/' : ''}`;
  return { kind: 'forward', path, query };
}

/** Ironic's per-node directory under its HTTP root: `/<node-uuid>/…`. */
export const NODE_DIRECTORY = /^\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\/[^/]/;

/** The fastify route pattern for {@link NODE_DIRECTORY}. */
export const NODE_DIRECTORY_ROUTE = '/:node([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/*';

/**
 * Whether a canonical path lies under one of the prefixes (plain string prefixes: `/images/`
 * covers a directory, `/ironic-python-agent` any name starting so) or, when `nodeDirectories`
 * is set, inside a per-node directory.
 */
export function matchesPrefix(path: string, prefixes: readonly string[], nodeDirectories: boolean): boolean {
  if (nodeDirectories && NODE_DIRECTORY.test(path)) return true;
  return prefixes.some((p) => path.startsWith(p) && path.length > p.length);
}

/** Why a configured prefix is unusable (start-up error). */
export function prefixProblem(prefix: string): string | undefined {
  if (!prefix.startsWith('/') || prefix === '/') return 'must start with "/" and name something below the root';
  if (/[*?#:%\\\s]/.test(prefix)) return 'must not contain *, ?, #, :, %, \\ or spaces';
  const t = parseTarget(prefix);
  if (t.kind === 'refuse') return `is not a clean path (${t.reason})`;
  if (t.path !== prefix) return `is not canonical (would be ${t.path})`;
  return undefined;
}

/** The fastify route pattern that covers one prefix. */
export const prefixRoute = (prefix: string): string => `${prefix}*`;

/** Joins the upstream base path, the canonical path and the query into an origin-form target. */
export function upstreamTarget(basePath: string, path: string, query: string | undefined): string {
  return `${basePath}${path}${query === undefined ? '' : `?${query}`}`;
}
