/**
 * Stable error codes of the image proxy and its cache, and the mapping from an upstream failure
 * (undici's `UND_ERR_*`, the socket's `E*`) to what the client is told. Pure.
 */

export const IMAGE_PROXY_ERROR_CODES = {
  /** The `upstream` option is not an http(s) origin with an optional base path. */
  BAD_UPSTREAM: 'IMAGE_PROXY_ERR_BAD_UPSTREAM',
  /** A configured prefix is not a clean absolute path. */
  BAD_PREFIX: 'IMAGE_PROXY_ERR_BAD_PREFIX',
  /** A cache option is out of range. */
  BAD_CACHE_OPTIONS: 'IMAGE_PROXY_ERR_BAD_CACHE_OPTIONS',
  /** The upstream body ended with a byte count other than its Content-Length. */
  LENGTH_MISMATCH: 'IMAGE_CACHE_ERR_LENGTH_MISMATCH',
  /** The cache was closed while an object was being filled. */
  CLOSED: 'IMAGE_CACHE_ERR_CLOSED',
  /** A cache file does not start with a valid entry header. */
  BAD_ENTRY: 'IMAGE_CACHE_ERR_BAD_ENTRY',
} as const;

export type ImageProxyErrorCode = (typeof IMAGE_PROXY_ERROR_CODES)[keyof typeof IMAGE_PROXY_ERROR_CODES];

export class ImageProxyError extends Error {
  override readonly name = 'ImageProxyError';
  constructor(
    readonly code: ImageProxyErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Why the upstream failed: the `reason` label of the failure metric. */
export type UpstreamFailure =
  | 'connect-timeout'
  | 'headers-timeout'
  | 'body-timeout'
  | 'refused'
  | 'reset'
  | 'dns'
  | 'unreachable'
  | 'tls'
  | 'length-mismatch'
  | 'aborted'
  | 'other';

export interface FailureAnswer {
  readonly reason: UpstreamFailure;
  /** 504 when the upstream was too slow, 502 when it failed. */
  readonly status: 502 | 504;
  /** One line of plain text for the client. */
  readonly message: string;
}

const BY_CODE: Readonly<Record<string, UpstreamFailure>> = {
  UND_ERR_CONNECT_TIMEOUT: 'connect-timeout',
  UND_ERR_HEADERS_TIMEOUT: 'headers-timeout',
  UND_ERR_BODY_TIMEOUT: 'body-timeout',
  UND_ERR_SOCKET: 'reset',
  UND_ERR_CLOSED: 'reset',
  UND_ERR_DESTROYED: 'aborted',
  UND_ERR_ABORTED: 'aborted',
  UND_ERR_ABORT: 'aborted',
  UND_ERR_RES_CONTENT_LENGTH_MISMATCH: 'length-mismatch',
  IMAGE_CACHE_ERR_LENGTH_MISMATCH: 'length-mismatch',
  IMAGE_CACHE_ERR_CLOSED: 'aborted',
  ABORT_ERR: 'aborted',
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

const MESSAGES: Readonly<Record<UpstreamFailure, string>> = {
  'connect-timeout': 'timed out connecting to the upstream',
  'headers-timeout': 'timed out waiting for the upstream to answer',
  'body-timeout': 'the upstream stopped sending',
  refused: 'the upstream refused the connection',
  reset: 'the upstream closed the connection',
  dns: 'the upstream host name does not resolve',
  unreachable: 'the upstream is unreachable',
  tls: 'TLS with the upstream failed',
  'length-mismatch': 'the upstream sent a body of the wrong length',
  aborted: 'the upstream request was aborted',
  other: 'the upstream request failed',
};

/** OpenSSL and Node TLS verification codes. */
const TLS_CODE = /^(ERR_TLS|ERR_SSL|UNABLE_TO_|SELF_SIGNED_|DEPTH_ZERO_|CERT_)/;

const codeOf = (err: unknown): string | undefined => {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') return code;
  // undici wraps connect errors: the socket's code is on the cause
  return codeOf((err as { cause?: unknown }).cause);
};

/** Maps an error thrown by undici (or our cache) to a reason, a status and a message. */
export function classifyUpstreamError(err: unknown): FailureAnswer {
  const code = codeOf(err);
  const reason: UpstreamFailure = code === undefined ? 'other' : (BY_CODE[code] ?? (TLS_CODE.test(code) ? 'tls' : 'other'));
  const status = reason === 'connect-timeout' || reason === 'headers-timeout' || reason === 'body-timeout' ? 504 : 502;
  return { reason, status, message: code === undefined ? MESSAGES[reason] : `${MESSAGES[reason]} (${code})` };
}
