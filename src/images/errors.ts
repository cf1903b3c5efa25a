/**
 * The mapping from an upstream failure (undici's `UND_ERR_*`, the socket's `E*`,
 * IMAGE_CACHE_ERR_LENGTH_MISMATCH) to what the client is told, and from a refusal of the
 * proxy's own limits (upstream-slots.ts) to its 503. Pure. The image proxy's own error codes are
 * in base/errors.ts.
 */
import {
  errorCode,
  upstreamFailureReason,
  upstreamFailureStatus,
  type UpstreamFailureReason,
} from '../relay/upstream-failure.js';
import type { LimitReason } from './metrics.js';

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
  IMAGE_PROXY_ERR_ABORTED: 'aborted',
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
  const reason: UpstreamFailure =
    (code === undefined ? undefined : OWN_CODES[code]) ?? (general === 'tls-verify' ? 'tls' : general);
  const status = upstreamFailureStatus(reason);
  return { reason, status, message: code === undefined ? MESSAGES[reason] : `${MESSAGES[reason]} (${code})` };
}

/** A request the proxy's limits turned away: the `reason` label of the limits metric. */
export type RefusalReason = Extract<LimitReason, 'client-limit' | 'queue-timeout'>;

export interface RefusalAnswer {
  readonly reason: RefusalReason;
  readonly status: 503;
  /** Seconds for Retry-After. */
  readonly retryAfterS: number;
  /** One line of plain text for the client. */
  readonly message: string;
}

/**
 * Retry-After of a refusal. iPXE ignores it (metalboot's scripts retry after 1–9 s); curl and
 * IPA may honour it. A few seconds lets a slot free up without stretching a boot much.
 */
export const RETRY_AFTER_S = 5;

const REFUSALS: Readonly<Record<string, RefusalAnswer>> = {
  IMAGE_PROXY_ERR_CLIENT_LIMIT: {
    reason: 'client-limit',
    status: 503,
    retryAfterS: RETRY_AFTER_S,
    message: 'the image proxy is busy: too many downloads from this client at once',
  },
  IMAGE_PROXY_ERR_QUEUE_TIMEOUT: {
    reason: 'queue-timeout',
    status: 503,
    retryAfterS: RETRY_AFTER_S,
    message: 'the image proxy is busy: no upstream connection became free in time',
  },
};

/** The 503 for an error of the proxy's limits; undefined for any other error. */
export function classifyRefusal(err: unknown): RefusalAnswer | undefined {
  const code = errorCode(err);
  return code === undefined ? undefined : REFUSALS[code];
}
