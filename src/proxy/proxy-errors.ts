/**
 * Stable error codes of the Ironic API proxy and the callback listener, and the mapping from a
 * failed forward (undici's `UND_ERR_*`, the socket's `E*`, OpenSSL's verification codes) to
 * what the caller is told. Pure.
 */

export const PROXY_ERROR_CODES = {
  /** An option (URL, limit) is unusable; thrown at construction. */
  BAD_OPTIONS: 'PROXY_ERR_BAD_OPTIONS',
  /** A request body grew past the configured bound while streaming. */
  BODY_TOO_LARGE: 'PROXY_ERR_BODY_TOO_LARGE',
  /** A persisted file in the state directory is unreadable or malformed. */
  BAD_STATE: 'PROXY_ERR_BAD_STATE',
  /** A configured or persisted certificate or key is unusable. */
  BAD_CERTIFICATE: 'PROXY_ERR_BAD_CERTIFICATE',
  /** address() was asked of a listener that is not listening. */
  NOT_LISTENING: 'PROXY_ERR_NOT_LISTENING',
} as const;

export type ProxyErrorCode = (typeof PROXY_ERROR_CODES)[keyof typeof PROXY_ERROR_CODES];

export class ProxyError extends Error {
  override readonly name = 'ProxyError';
  constructor(
    readonly code: ProxyErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Why a forward failed: the `reason` label of the failure metrics. */
export type ForwardFailure =
  | 'connect-timeout'
  | 'headers-timeout'
  | 'body-timeout'
  | 'refused'
  | 'reset'
  | 'dns'
  | 'unreachable'
  | 'tls-verify'
  | 'tls'
  | 'body-too-large'
  | 'aborted'
  | 'other';

export interface ForwardFailureAnswer {
  readonly reason: ForwardFailure;
  /** 413 for an oversized body, 504 when the peer was too slow, 502 when it failed. */
  readonly status: 413 | 502 | 504;
  /** One line for the caller, naming the underlying code. */
  readonly message: string;
}

const BY_CODE: Readonly<Record<string, ForwardFailure>> = {
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
  PROXY_ERR_BODY_TOO_LARGE: 'body-too-large',
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

const MESSAGES: Readonly<Record<ForwardFailure, string>> = {
  'connect-timeout': 'timed out connecting',
  'headers-timeout': 'timed out waiting for an answer',
  'body-timeout': 'stopped sending',
  refused: 'refused the connection',
  reset: 'closed the connection',
  dns: 'host name does not resolve',
  unreachable: 'is unreachable',
  'tls-verify': 'presented a certificate that does not verify',
  tls: 'TLS handshake failed',
  'body-too-large': 'request body is too large',
  aborted: 'request was aborted',
  other: 'request failed',
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
  if (inner !== undefined && (typeof code !== 'string' || code === 'UND_ERR_SOCKET' || code === 'UND_ERR_CONNECT')) return inner;
  return typeof code === 'string' ? code : inner;
}

/**
 * Maps a forwarding error to a reason, a status and a message; `peer` names who failed
 * ("Ironic API", "IPA at https://192.0.2.10:9999").
 */
export function classifyForwardError(err: unknown, peer: string): ForwardFailureAnswer {
  const code = errorCode(err);
  let reason: ForwardFailure = 'other';
  if (code !== undefined) reason = BY_CODE[code] ?? (TLS_VERIFY_CODE.test(code) ? 'tls-verify' : TLS_CODE.test(code) ? 'tls' : 'other');
  const status = reason === 'body-too-large' ? 413 : reason === 'connect-timeout' || reason === 'headers-timeout' || reason === 'body-timeout' ? 504 : 502;
  const what = reason === 'body-too-large' ? MESSAGES[reason] : `${peer} ${MESSAGES[reason]}`;
  return { reason, status, message: code === undefined ? what : `${what} (${code})` };
}
