/**
 * Credentials never reach a log line: the agent token in query strings and JSON bodies, and
 * the Authorization/X-Auth-Token/Cookie headers. Pure; used only for what is logged — what is
 * forwarded is never changed by these.
 */

export const REDACTED = '***';

/** Query parameters and JSON keys whose values are secrets (also signed URLs: Swift's temp_url_sig, S3's X-Amz-Signature). */
const SECRET_KEY = /token|password|passwd|secret|passphrase|credential|signature|(^|_)sig$/i;

const SECRET_HEADERS = new Set([
  'authorization',
  'x-auth-token',
  'cookie',
  'set-cookie',
  'proxy-authorization',
  'x-subject-token',
]);

/**
 * A request target (`/path?query`) or absolute URL with every secret query value replaced.
 * Works on the raw text so that a malformed target is still redacted, never thrown on.
 */
export function redactUrl(target: string): string {
  const q = target.indexOf('?');
  if (q < 0) return target;
  const hash = target.indexOf('#', q);
  const query = hash < 0 ? target.slice(q + 1) : target.slice(q + 1, hash);
  const parts = query.split('&').map((pair) => {
    const eq = pair.indexOf('=');
    const rawName = eq < 0 ? pair : pair.slice(0, eq);
    let name = rawName;
    try {
      name = decodeURIComponent(rawName.replace(/\+/g, ' '));
    } catch {
      // keep the raw name: a bad escape must not hide a secret
    }
    return SECRET_KEY.test(name) && eq >= 0 ? `${rawName}=${REDACTED}` : pair;
  });
  return `${target.slice(0, q + 1)}${parts.join('&')}${hash < 0 ? '' : target.slice(hash)}`;
}

/** A copy of headers fit for a log line. */
export function redactHeaders(
  headers: Record<string, string | string[] | undefined>,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    out[name] = SECRET_HEADERS.has(name.toLowerCase()) ? REDACTED : value;
  }
  return out;
}

/**
 * A copy of a parsed JSON value with every secret-named key's value replaced and long strings
 * (certificates, logs) cut to their first characters. Depth-bounded.
 */
export function redactJson(value: unknown, depth = 0): unknown {
  if (depth > 8) return '…';
  if (typeof value === 'string') return value.length > 200 ? `${value.slice(0, 64)}… (${value.length} chars)` : value;
  if (Array.isArray(value)) return value.slice(0, 32).map((v) => redactJson(v, depth + 1));
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value))
    out[k] = SECRET_KEY.test(k) && v !== null && v !== undefined ? REDACTED : redactJson(v, depth + 1);
  return out;
}
