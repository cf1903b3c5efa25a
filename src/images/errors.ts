/**
 * Stable error codes of the image proxy and its cache, and the mapping from an upstream failure
 * (undici's `UND_ERR_*`, the socket's `E*`) to what the client is told. Pure.
 */
import { errorCode, upstreamFailureReason, upstreamFailureStatus, type UpstreamFailureReason } from '../relay/upstream-failure.js';

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
export type UpstreamFailure = Exclude<UpstreamFailureReason, 'tls-verify'> | 'length-mismatch';

export interface FailureAnswer {
  readonly reason: UpstreamFailure;
  /** 504 when the upstream was too slow, 502 when it failed. */
  readonly status: 502 | 504;
  /** One line of plain text for the client. */
  readonly message: string;
}

/** Codes of our own and undici's that say the body had the wrong length, or the cache closed. */
const OWN_CODES: Readonly<Record<string, UpstreamFailure>> = {
  UND_ERR_RES_CONTENT_LENGTH_MISMATCH: 'length-mismatch',
  IMAGE_CACHE_ERR_LENGTH_MISMATCH: 'length-mismatch',
  IMAGE_CACHE_ERR_CLOSED: 'aborted',
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

/** Maps an error thrown by undici (or our cache) to a reason, a status and a message. */
export function classifyUpstreamError(err: unknown): FailureAnswer {
  const code = errorCode(err);
  const general = upstreamFailureReason(code);
  // For images a certificate that does not verify is one more TLS failure.
  const reason: UpstreamFailure = (code === undefined ? undefined : OWN_CODES[code]) ?? (general === 'tls-verify' ? 'tls' : general);
  const status = upstreamFailureStatus(reason);
  return { reason, status, message: code === undefined ? MESSAGES[reason] : `${MESSAGES[reason]} (${code})` };
}
