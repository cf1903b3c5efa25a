/**
 * What a Kubernetes API failure says, for every client of the API here (the BareMetalHost
 * watcher, leader election, boot Events, the shared state of replicas): the HTTP status of a
 * @kubernetes/client-node failure, a short description, and the Status of a watch ERROR event.
 * Pure.
 */

export interface WatchStatus {
  readonly code: number | undefined;
  readonly reason: string | undefined;
  readonly message: string | undefined;
}

/** The HTTP status of a client-node failure: ApiException.code on calls, statusCode on Watch. */
export function httpStatusOf(err: unknown): number | undefined {
  if (err === null || typeof err !== 'object') return undefined;
  const e = err as { code?: unknown; statusCode?: unknown };
  if (typeof e.statusCode === 'number') return e.statusCode;
  if (typeof e.code === 'number') return e.code;
  return undefined;
}

/** A short, stable description for logs and /readyz: `HTTP 500`, `ECONNREFUSED`, or the message. */
export function describeError(err: unknown): string {
  const status = httpStatusOf(err);
  if (status !== undefined) return `HTTP ${status}`;
  if (err !== null && typeof err === 'object') {
    const e = err as { code?: unknown; message?: unknown };
    if (typeof e.code === 'string' && e.code !== '') return e.code;
    if (typeof e.message === 'string' && e.message !== '') return e.message;
  }
  return String(err);
}

/** A metav1.Status from an ERROR watch event. */
export function watchStatusOf(obj: unknown): WatchStatus {
  const s = (obj ?? {}) as { code?: unknown; reason?: unknown; message?: unknown };
  return {
    code: typeof s.code === 'number' ? s.code : undefined,
    reason: typeof s.reason === 'string' ? s.reason : undefined,
    message: typeof s.message === 'string' ? s.message : undefined,
  };
}

export function isExpired(status: WatchStatus): boolean {
  return status.code === 410 || status.reason === 'Expired' || status.reason === 'Gone';
}
