/**
 * The mapping from a failed forward of the Ironic proxies (undici's `UND_ERR_*`, the socket's
 * `E*`, OpenSSL's verification codes, PROXY_ERR_BODY_TOO_LARGE) to what the caller is told.
 * Pure. The proxy's own error codes are in base/errors.ts.
 */
import {
  errorCode,
  upstreamFailureReason,
  upstreamFailureStatus,
  type UpstreamFailureReason,
} from '../relay/upstream-failure.js';

export { errorCode };

/** Why a forward failed: the `reason` label of the failure metrics. */
export type ForwardFailure = UpstreamFailureReason | 'body-too-large';

export interface ForwardFailureAnswer {
  readonly reason: ForwardFailure;
  /** 413 for an oversized body, 504 when the peer was too slow, 502 when it failed. */
  readonly status: 413 | 502 | 504;
  /** One line for the caller, naming the underlying code. */
  readonly message: string;
}

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

/**
 * Maps a forwarding error to a reason, a status and a message; `peer` names who failed
 * ("Ironic API", "IPA at https://192.0.2.10:9999").
 */
export function classifyForwardError(err: unknown, peer: string): ForwardFailureAnswer {
  const code = errorCode(err);
  const reason: ForwardFailure = code === 'PROXY_ERR_BODY_TOO_LARGE' ? 'body-too-large' : upstreamFailureReason(code);
  const status = reason === 'body-too-large' ? 413 : upstreamFailureStatus(reason);
  const what = reason === 'body-too-large' ? MESSAGES[reason] : `${peer} ${MESSAGES[reason]}`;
  return { reason, status, message: code === undefined ? what : `${what} (${code})` };
}
