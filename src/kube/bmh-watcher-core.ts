/**
 * The pure core of the BareMetalHost watcher: how long to wait before the next attempt, what to
 * do after each list or watch outcome, how API objects and watch events change the host index,
 * and what /readyz says. No sockets, no timers, no logging: bmh-watcher.ts is the shell.
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
import type { Logger } from 'pino';
import { bmhId, bmhToHost, type BareMetalHostObject } from '../leases/bmh.js';
import type { Conflict, HostIndex } from '../leases/host-index.js';
import type { HostRecord } from '../leases/host.js';

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
export function backoffDelay(failures: number, timing: Pick<WatchTiming, 'backoffBaseMs' | 'backoffCapMs'>, random: () => number): number {
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
export const RESTART_REASONS = ['list-failed', 'watch-failed', 'connection-lost', 'stalled', 'short-watch', 'expired', 'error-event'] as const;
export type RestartReason = (typeof RESTART_REASONS)[number];

/** What one list or watch attempt came to. */
export type AttemptOutcome =
  | { readonly kind: 'listed'; readonly resourceVersion: string }
  | { readonly kind: 'list-failed'; readonly error: unknown }
  /** The stream ended cleanly (timeoutSeconds, or the server closed it). */
  | { readonly kind: 'watch-ended'; readonly resourceVersion: string; readonly events: number; readonly openMs: number }
  /** The watch request failed, or its stream broke or stalled; `openMs` 0 if it never opened. */
  | { readonly kind: 'watch-failed'; readonly reason: 'watch-failed' | 'connection-lost' | 'stalled'; readonly error: unknown; readonly resourceVersion: string; readonly events: number; readonly openMs: number }
  /** 410 Gone: the resourceVersion is older than the server's history. */
  | { readonly kind: 'watch-expired'; readonly events: number; readonly openMs: number }
  /** An ERROR event other than 410: the stream's state is unknown. */
  | { readonly kind: 'watch-error-event'; readonly status: WatchStatus; readonly events: number; readonly openMs: number };

export interface WatchStatus {
  readonly code: number | undefined;
  readonly reason: string | undefined;
  readonly message: string | undefined;
}

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
export function supervise(state: SupervisorState, outcome: AttemptOutcome, timing: WatchTiming, random: () => number): Supervision {
  const healthy = (openMs: number): number => (openMs >= timing.healthyAfterMs ? 0 : state.failures);
  const fail = (base: number, reason: RestartReason, next: (delayMs: number) => NextStep, rv: string | undefined): Supervision => {
    const failures = base + 1;
    return { state: { resourceVersion: rv, failures }, next: next(backoffDelay(failures, timing, random)), restart: reason };
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
      if (outcome.events === 0 && outcome.openMs < timing.minWatchMs) return fail(state.failures, 'short-watch', rewatch, rv);
      return { state: { resourceVersion: rv, failures: healthy(outcome.openMs) }, next: rewatch(0), restart: undefined };
    }
    case 'watch-failed': {
      const rv = outcome.resourceVersion;
      return fail(healthy(outcome.openMs), outcome.reason, (delayMs) => ({ kind: 'watch', resourceVersion: rv, delayMs }), rv);
    }
    case 'watch-expired': {
      // Compaction after a while (or after a reconnect) is routine: relist at once. A 410 on a
      // watch that made no progress right after a list is not, and backs off.
      const progressed = outcome.events > 0 || outcome.openMs >= timing.minWatchMs;
      if (progressed || state.failures === 0) {
        return { state: { resourceVersion: undefined, failures: progressed ? healthy(outcome.openMs) : state.failures + 1 }, next: relist(0), restart: 'expired' };
      }
      return fail(state.failures, 'expired', relist, undefined);
    }
    case 'watch-error-event':
      return fail(healthy(outcome.openMs), 'error-event', relist, undefined);
  }
}

// ---------------------------------------------------------------- errors

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

// ---------------------------------------------------------------- the index mirror

/** A BareMetalHost as the API serves it: what bmhToHost reads, plus the identity Events need. */
export type KubeBareMetalHost = BareMetalHostObject & {
  readonly metadata?: BareMetalHostObject['metadata'] & { readonly uid?: string };
};

/** What an Event's involvedObject needs. */
export interface BmhRef {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string | undefined;
}

export type MirrorChange =
  | { readonly kind: 'upsert'; readonly id: string; readonly host: HostRecord; readonly added: boolean; readonly problemChanged: boolean; readonly conflicts: readonly Conflict[] }
  | { readonly kind: 'delete'; readonly id: string; readonly existed: boolean }
  /** Not servable at all (no usable boot MAC): removed from the index if it was there. */
  | { readonly kind: 'skip'; readonly id: string; readonly reason: string; readonly removed: boolean };

export interface MirrorReplace {
  readonly hosts: number;
  readonly added: number;
  readonly removed: number;
  readonly skipped: readonly { readonly id: string; readonly reason: string }[];
  readonly problems: readonly { readonly id: string; readonly problem: string }[];
  readonly conflicts: readonly Conflict[];
}

export interface BmhMirrorOptions {
  readonly annotationPrefix: string;
  /** The index partition this mirror owns (default `kubernetes`). */
  readonly partition?: string;
  /** HostOrigin.from of its records (default `kubernetes`). */
  readonly from?: string;
}

/**
 * Keeps one partition of the index equal to the BareMetalHosts the API server has, using the
 * same conversion as manifest files (bmhToHost). Synchronous: every change is visible to the
 * next packet.
 */
export class BmhMirror {
  readonly #index: HostIndex;
  readonly #prefix: string;
  readonly #partition: string;
  readonly #from: string;
  readonly #refs = new Map<string, BmhRef>();
  readonly #records = new Map<string, HostRecord>();

  constructor(index: HostIndex, o: BmhMirrorOptions) {
    this.#index = index;
    this.#prefix = o.annotationPrefix;
    this.#partition = o.partition ?? 'kubernetes';
    this.#from = o.from ?? 'kubernetes';
  }

  get partition(): string {
    return this.#partition;
  }

  /** Hosts in the index from this mirror. */
  get size(): number {
    return this.#records.size;
  }

  /** The object behind a host id (`namespace/name`), if the cluster has it. */
  ref(id: string): BmhRef | undefined {
    return this.#refs.get(id);
  }

  /** The cluster object of a host record this mirror made; undefined for any other host. */
  refFor(host: HostRecord): BmhRef | undefined {
    if (host.origin.kind !== 'bmh' || host.origin.from !== this.#from) return undefined;
    return this.#refs.get(host.id);
  }

  /** Replaces the whole partition with a list's items: hosts that vanished meanwhile go. */
  replace(items: readonly KubeBareMetalHost[]): MirrorReplace {
    const records: HostRecord[] = [];
    const skipped: { id: string; reason: string }[] = [];
    const refs = new Map<string, BmhRef>();
    for (const obj of items) {
      const id = bmhId(obj);
      const r = bmhToHost(obj, { annotationPrefix: this.#prefix, from: this.#from });
      if (r.kind === 'skip') {
        skipped.push({ id, reason: r.reason });
        continue;
      }
      records.push(r.host);
      refs.set(id, refOf(obj));
    }
    const before = new Set(this.#records.keys());
    const conflicts = this.#index.replaceAll('bmh', records, this.#partition);
    this.#records.clear();
    this.#refs.clear();
    for (const h of records) this.#records.set(h.id, h);
    for (const [id, ref] of refs) this.#refs.set(id, ref);
    let added = 0;
    for (const id of this.#records.keys()) if (!before.delete(id)) added++;
    return {
      hosts: this.#records.size,
      added,
      removed: before.size,
      skipped,
      problems: records.filter((h) => h.problem !== undefined).map((h) => ({ id: h.id, problem: h.problem! })),
      conflicts,
    };
  }

  /** Applies one ADDED, MODIFIED or DELETED watch event. */
  apply(type: 'ADDED' | 'MODIFIED' | 'DELETED', obj: KubeBareMetalHost): MirrorChange {
    const id = bmhId(obj);
    if (type === 'DELETED') return { kind: 'delete', id, existed: this.#remove(id) };
    const r = bmhToHost(obj, { annotationPrefix: this.#prefix, from: this.#from });
    if (r.kind === 'skip') return { kind: 'skip', id, reason: r.reason, removed: this.#remove(id) };
    const prev = this.#records.get(id);
    const conflicts = this.#index.upsert(r.host, this.#partition);
    this.#records.set(id, r.host);
    this.#refs.set(id, refOf(obj));
    return { kind: 'upsert', id, host: r.host, added: prev === undefined, problemChanged: prev?.problem !== r.host.problem, conflicts };
  }

  #remove(id: string): boolean {
    this.#refs.delete(id);
    if (!this.#records.delete(id)) return false;
    this.#index.delete('bmh', id, this.#partition);
    return true;
  }
}

function refOf(obj: KubeBareMetalHost): BmhRef {
  return { namespace: obj.metadata?.namespace ?? 'default', name: obj.metadata?.name ?? '', uid: obj.metadata?.uid };
}

/** Logs what a relist changed, once per host problem (the shell's logger, the core's words). */
export function logReplace(log: Logger, r: MirrorReplace): void {
  for (const s of r.skipped) log.warn({ host: s.id, reason: s.reason }, 'baremetalhost skipped');
  for (const p of r.problems) log.warn({ host: p.id, problem: p.problem }, 'host cannot be served');
  for (const c of r.conflicts) log.error({ conflict: c.kind, key: c.key, owners: c.owners }, 'lease conflict');
}

// ---------------------------------------------------------------- status

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
