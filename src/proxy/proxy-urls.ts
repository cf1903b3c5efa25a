/**
 * URLs the proxies take apart and build. Pure.
 *
 * A base URL (`--ironic-api-url`, `--api-advertise-url`, `--callback-advertise-url`) is an
 * http(s) origin with an optional base path, no query, fragment or credentials. Upstream
 * targets are always built from such a base plus a path the proxy chose (never the raw request
 * target), so nothing a caller sends can steer a request to another path or host.
 */
import { MetalbootError } from '../base/errors.js';
import { sameOriginReference } from '../relay/location.js';

export interface BaseUrl {
  readonly protocol: 'http:' | 'https:';
  /** `http://host:port`, lower-case scheme and host as WHATWG URL prints them. */
  readonly origin: string;
  /** `''` or `/some/path` without a trailing slash. */
  readonly basePath: string;
  /** The host name or IP literal (IPv6 without brackets). */
  readonly hostname: string;
}

export function parseBaseUrl(raw: string, what: string): BaseUrl {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new MetalbootError('PROXY_ERR_BAD_OPTIONS', `${what} ${JSON.stringify(raw)} is not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new MetalbootError('PROXY_ERR_BAD_OPTIONS', `${what} must be http or https`);
  if (u.search !== '' || u.hash !== '')
    throw new MetalbootError('PROXY_ERR_BAD_OPTIONS', `${what} must not have a query or fragment`);
  if (u.username !== '' || u.password !== '')
    throw new MetalbootError('PROXY_ERR_BAD_OPTIONS', `${what} must not carry credentials`);
  const hostname = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  return { protocol: u.protocol, origin: u.origin, basePath: u.pathname.replace(/\/+$/, ''), hostname };
}

/** The same base with another scheme (the default port follows the scheme only if none was given). */
export function withProtocol(base: BaseUrl, protocol: 'http:' | 'https:'): BaseUrl {
  if (base.protocol === protocol) return base;
  const u = new URL(base.origin);
  u.protocol = protocol;
  return { ...base, protocol, origin: u.origin };
}

export function formatBaseUrl(base: BaseUrl): string {
  return `${base.origin}${base.basePath}`;
}

/**
 * Ironic node identifiers as the heartbeat URL carries them: a UUID or a logical name, which
 * Ironic restricts to RFC 3986 unreserved characters. `.` and `..` are refused.
 */
export function isNodeIdent(s: string): boolean {
  return /^[A-Za-z0-9._~-]{1,255}$/.test(s) && s !== '.' && s !== '..';
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(s: string): boolean {
  return UUID.test(s);
}

/**
 * Rewrites `href` values (and Location headers) that point under `from` to point under `to`.
 * A relative reference stays on our origin: `//evil/x` or `/\evil/x` becomes `/evil/x`.
 */
export function rewriteHref(href: string, from: BaseUrl, to: BaseUrl): string {
  let u: URL;
  try {
    u = new URL(href);
  } catch {
    return sameOriginReference(href);
  }
  if (u.origin !== from.origin) return href;
  const path = u.pathname;
  if (from.basePath !== '' && path !== from.basePath && !path.startsWith(`${from.basePath}/`)) return href;
  return `${to.origin}${to.basePath}${path.slice(from.basePath.length)}${u.search}${u.hash}`;
}

/**
 * A copy of a version-discovery document with every `href` under `from` moved under `to`
 * (Ironic's `links` arrays in `versions`, `default_version`, `version` and every resource).
 * Depth-bounded; other values unchanged.
 */
export function rewriteLinks(doc: unknown, from: BaseUrl, to: BaseUrl, depth = 0): unknown {
  if (depth > 16 || doc === null || typeof doc !== 'object') return doc;
  if (Array.isArray(doc)) return doc.map((v) => rewriteLinks(v, from, to, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(doc))
    out[k] = k === 'href' && typeof v === 'string' ? rewriteHref(v, from, to) : rewriteLinks(v, from, to, depth + 1);
  return out;
}

/** `X-OpenStack-Ironic-API-Version: 1.68` → [1, 68]; `latest` → Infinity minor; else undefined. */
export function parseMicroversion(header: string | undefined): readonly [number, number] | undefined {
  if (header === undefined) return undefined;
  const v = header.trim().toLowerCase();
  if (v === 'latest') return [1, Number.POSITIVE_INFINITY];
  const m = /^(\d{1,3})\.(\d{1,4})$/.exec(v);
  return m === null ? undefined : [Number(m[1]), Number(m[2])];
}

/** Whether a parsed microversion is at least `major.minor`. */
export function microversionAtLeast(v: readonly [number, number] | undefined, major: number, minor: number): boolean {
  if (v === undefined) return false;
  return v[0] > major || (v[0] === major && v[1] >= minor);
}

/**
 * Keeps only the `allowed` parameters of a raw query string (`?a=1&b=2`), values unchanged,
 * and returns `''` or `?…`. What the proxy forwards is what Ironic's ramdisk endpoints take.
 */
export function allowedQuery(search: string, allowed: readonly string[]): string {
  const params = new URLSearchParams(search.startsWith('?') ? search.slice(1) : search);
  const out = new URLSearchParams();
  for (const [k, v] of params) if (allowed.includes(k)) out.append(k, v);
  const s = out.toString();
  return s === '' ? '' : `?${s}`;
}
