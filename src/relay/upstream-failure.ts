/**
 * Why a request to another server (Ironic's httpd, the Ironic API, IPA) failed, from the error
 * undici or the socket raised: the one mapping from `UND_ERR_*`, `E*` and OpenSSL codes to a
 * reason label and an HTTP status, shared by the image proxy and the Ironic proxies. Pure.
 */

export type UpstreamFailureReason =
  | 'connect-timeout'
  | 'headers-timeout'
  | 'body-timeout'
  | 'refused'
  | 'reset'
  | 'dns'
  | 'unreachable'
  | 'tls-verify'
  | 'tls'
  | 'aborted'
  | 'other';

const BY_CODE: Readonly<Record<string, UpstreamFailureReason>> = {
  UND_ERR_CONNECT_TIMEOUT: 'connect-timeout',
  UND_ERR_HEADERS_TIMEOUT: 'headers-timeout',
  UND_ERR_BODY_TIMEOUT: 'body-timeout',
  UND_ERR_SOCKET: 'reset',
  UND_ERR_CLOSED: 'reset',
  UND_ERR_DESTROYED: 'aborted',
  UND_ERR_ABORTED: 'aborted',
  UND_ERR_ABORT: 'aborted',
  ABORT_ERR: 'aborted',
  ERR_STREAM_PREMATURE_CLOSE: 'aborted',
  ECONNREFUSED: 'refused',
  ECONNRESET: 'reset',
  EPIPE: 'reset',
  ECONNABORTED: 'reset',
  ETIMEDOUT: 'connect-timeout',
  ENOTFOUND: 'dns',
  EAI_AGAIN: 'dns',
  EAI_FAIL: 'dns',
  EHOSTUNREACH: 'unreachable',
  ENETUNREACH: 'unreachable',
  EHOSTDOWN: 'unreachable',
  ENETDOWN: 'unreachable',
};

/** Certificate verification failures (OpenSSL's X509_V_ERR names and Node's host check). */
const TLS_VERIFY_CODE = /^(UNABLE_TO_|SELF_SIGNED_|DEPTH_ZERO_|CERT_|ERR_TLS_CERT_ALTNAME_INVALID|HOSTNAME_MISMATCH)/;
const TLS_CODE = /^(ERR_TLS|ERR_SSL|EPROTO)/;

/** The first string `code` on an error or along its `cause` chain (undici wraps socket errors). */
export function errorCode(err: unknown, depth = 0): string | undefined {
  if (typeof err !== 'object' || err === null || depth > 5) return undefined;
  const code = (err as { code?: unknown }).code;
  const inner = errorCode((err as { cause?: unknown }).cause, depth + 1);
  // Prefer the most specific code: a TLS or socket cause beats undici's generic wrapper.
  if (inner !== undefined && (typeof code !== 'string' || code === 'UND_ERR_SOCKET' || code === 'UND_ERR_CONNECT'))
    return inner;
  return typeof code === 'string' ? code : inner;
}

/** The reason for an error code; `undefined` code (no code at all) is 'other'. */
export function upstreamFailureReason(code: string | undefined): UpstreamFailureReason {
  if (code === undefined) return 'other';
  return BY_CODE[code] ?? (TLS_VERIFY_CODE.test(code) ? 'tls-verify' : TLS_CODE.test(code) ? 'tls' : 'other');
}

/** 504 when the other side was too slow, 502 when it failed. */
export function upstreamFailureStatus(reason: string): 502 | 504 {
  return reason === 'connect-timeout' || reason === 'headers-timeout' || reason === 'body-timeout' ? 504 : 502;
}
