/**
 * The pure core of the BareMetalHost watcher: how long to wait before the next attempt, what to
 * do after each list or watch outcome, and what /readyz says
 * (bmh-mirror.ts: how API objects and watch events change the host index). No sockets, no timers, no logging: bmh-watcher.ts is the shell.
 *
 * The loop it drives (client-go's reflector, made explicit):
 *
 *   list ──ok──▶ replace the cluster partition ──▶ watch from the list's resourceVersion
 *     ▲                                               │ events: upsert / delete, rv advances
 *     │ 410 Gone, ERROR event                          │ clean end (timeoutSeconds) ─▶ watch from rv
 *     └────────────────────────────────────────────────┤ cut, 5xx, stall ─▶ backoff ─▶ watch from rv
 *                                                      (the server's history replays the gap;
 *                                                       a gap too old for it is a 410: relist)
 */
import type { WatchStatus } from './api-errors.js';

// ---------------------------------------------------------------- timing and backoff

export interface WatchTiming {
  /** First retry delay; each further consecutive failure doubles it. */
  readonly backoffBaseMs: number;
  /** Upper bound of the retry delay. */
  readonly backoffCapMs: number;
  /** A watch open this long counts as healthy: the failure streak (and backoff) starts over. */
  readonly healthyAfterMs: number;
  /** timeoutSeconds asked of the server for each watch; jittered up by up to half. */
  readonly watchTimeoutSeconds: number;
  /**
   * The server must end a watch by timeoutSeconds; one still open this long after that is a
   * silent, dead stream (client-node has no idle timeout of its own) and is abandoned.
   */
  readonly stallGraceMs: number;
  /** A list (every page) that takes longer is abandoned and retried. */
  readonly listTimeoutMs: number;
  /** Items per list page (limit/continue). */
  readonly listPageSize: number;
  /** A watch that ends sooner than this without a single event counts as a failure. */
  readonly minWatchMs: number;
}

export const DEFAULT_WATCH_TIMING: WatchTiming = {
  backoffBaseMs: 500,
  backoffCapMs: 30_000,
  healthyAfterMs: 60_000,
  watchTimeoutSeconds: 180,
  stallGraceMs: 30_000,
  listTimeoutMs: 60_000,
  listPageSize: 500,
  minWatchMs: 1_000,
};

/**
 * Delay before retry number `failures` (1 = the first retry): capped exponential with equal
 * jitter, so it lies in [d/2, d] where d = min(cap, base · 2^(failures-1)). The jitter keeps
 * replicas that lost the API server together from coming back in lockstep.
 */
export function backoffDelay(
  failures: number,
  timing: Pick<WatchTiming, 'backoffBaseMs' | 'backoffCapMs'>,
  random: () => number,
): number {
  if (failures <= 0) return 0;
  const exp = Math.min(timing.backoffCapMs, timing.backoffBaseMs * 2 ** Math.min(failures - 1, 30));
  const r = Math.min(Math.max(random(), 0), 1);
  return Math.round(exp / 2 + (r * exp) / 2);
}

/** timeoutSeconds for one watch: the configured value stretched by up to half, at least 1. */
export function watchTimeoutSeconds(timing: Pick<WatchTiming, 'watchTimeoutSeconds'>, random: () => number): number {
  return Math.max(1, Math.floor(timing.watchTimeoutSeconds * (1 + Math.min(Math.max(random(), 0), 1) / 2)));
}

// ---------------------------------------------------------------- supervision

/** Why an attempt failed: the label of metalboot_kube_watch_restarts_total. */
export const RESTART_REASONS = [
  'list-failed',
  'watch-failed',
  'connection-lost',
  'stalled',
  'short-watch',
  'expired',
  'error-event',
] as const;
export type RestartReason = (typeof RESTART_REASONS)[number];

/** What one list or watch attempt came to. */
export type AttemptOutcome =
  | { readonly kind: 'listed'; readonly resourceVersion: string }
  | { readonly kind: 'list-failed'; readonly error: unknown }
  /** The stream ended cleanly (timeoutSeconds, or the server closed it). */
  | { readonly kind: 'watch-ended'; readonly resourceVersion: string; readonly events: number; readonly openMs: number }
  /** The watch request failed, or its stream broke or stalled; `openMs` 0 if it never opened. */
  | {
      readonly kind: 'watch-failed';
      readonly reason: 'watch-failed' | 'connection-lost' | 'stalled';
      readonly error: unknown;
      readonly resourceVersion: string;
      readonly events: number;
      readonly openMs: number;
    }
  /** 410 Gone: the resourceVersion is older than the server's history. */
  | { readonly kind: 'watch-expired'; readonly events: number; readonly openMs: number }
  /** An ERROR event other than 410: the stream's state is unknown. */
  | {
      readonly kind: 'watch-error-event';
      readonly status: WatchStatus;
      readonly events: number;
      readonly openMs: number;
    };

export interface SupervisorState {
  /** Where the next watch starts; undefined: list first. */
  readonly resourceVersion: string | undefined;
  /** Consecutive failures; 0 after a healthy period. */
  readonly failures: number;
}

export type NextStep =
  | { readonly kind: 'list'; readonly delayMs: number }
  | { readonly kind: 'watch'; readonly resourceVersion: string; readonly delayMs: number };

export interface Supervision {
  readonly state: SupervisorState;
  readonly next: NextStep;
  /** Set when the outcome was a failure (counted as a restart). */
  readonly restart: RestartReason | undefined;
}

export const INITIAL_SUPERVISOR_STATE: SupervisorState = { resourceVersion: undefined, failures: 0 };

/** Decides the next attempt from the last one's outcome. Pure. */
export function supervise(
  state: SupervisorState,
  outcome: AttemptOutcome,
  timing: WatchTiming,
  random: () => number,
): Supervision {
  const healthy = (openMs: number): number => (openMs >= timing.healthyAfterMs ? 0 : state.failures);
  const fail = (
    base: number,
    reason: RestartReason,
    next: (delayMs: number) => NextStep,
    rv: string | undefined,
  ): Supervision => {
    const failures = base + 1;
    return {
      state: { resourceVersion: rv, failures },
      next: next(backoffDelay(failures, timing, random)),
      restart: reason,
    };
  };
  const relist = (delayMs: number): NextStep => ({ kind: 'list', delayMs });
  switch (outcome.kind) {
    case 'listed':
      return {
        state: { resourceVersion: outcome.resourceVersion, failures: state.failures },
        next: { kind: 'watch', resourceVersion: outcome.resourceVersion, delayMs: 0 },
        restart: undefined,
      };
    case 'list-failed':
      return fail(state.failures, 'list-failed', relist, undefined);
    case 'watch-ended': {
      const rv = outcome.resourceVersion;
      const rewatch = (delayMs: number): NextStep => ({ kind: 'watch', resourceVersion: rv, delayMs });
      // client-go's "very short watch": a server that closes at once must not be hammered.
      if (outcome.events === 0 && outcome.openMs < timing.minWatchMs)
        return fail(state.failures, 'short-watch', rewatch, rv);
      return {
        state: { resourceVersion: rv, failures: healthy(outcome.openMs) },
        next: rewatch(0),
        restart: undefined,
      };
    }
    case 'watch-failed': {
      const rv = outcome.resourceVersion;
      return fail(
        healthy(outcome.openMs),
        outcome.reason,
        (delayMs) => ({ kind: 'watch', resourceVersion: rv, delayMs }),
        rv,
      );
    }
    case 'watch-expired': {
      // Compaction after a while (or after a reconnect) is routine: relist at once. A 410 on a
      // watch that made no progress right after a list is not, and backs off.
      const progressed = outcome.events > 0 || outcome.openMs >= timing.minWatchMs;
      if (progressed || state.failures === 0) {
        return {
          state: { resourceVersion: undefined, failures: progressed ? healthy(outcome.openMs) : state.failures + 1 },
          next: relist(0),
          restart: 'expired',
        };
      }
      return fail(state.failures, 'expired', relist, undefined);
    }
    case 'watch-error-event':
      return fail(healthy(outcome.openMs), 'error-event', relist, undefined);
  }
}

export interface WatcherSnapshot {
  readonly ready: boolean;
  readonly connected: boolean;
  readonly hosts: number;
  readonly namespace: string | undefined;
  readonly lastSyncAt: number | undefined;
  readonly disconnectedSince: number | undefined;
  readonly lastError: string | undefined;
}

/** The one line /readyz shows for the Kubernetes source. */
export function statusDetail(s: WatcherSnapshot): string {
  const where = s.namespace === undefined ? 'all namespaces' : `namespace ${s.namespace}`;
  const err = s.lastError === undefined ? '' : ` (last error: ${s.lastError})`;
  if (!s.ready) return `waiting for the first list of baremetalhosts in ${where}${err}`;
  const hosts = `${s.hosts} host${s.hosts === 1 ? '' : 's'}`;
  if (s.connected) return `watching baremetalhosts in ${where}: ${hosts}`;
  const since = s.disconnectedSince === undefined ? '' : ` since ${new Date(s.disconnectedSince).toISOString()}`;
  return `not connected to the API server${since}; serving ${hosts} from the last known state${err}`;
}
