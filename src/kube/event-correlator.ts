/**
 * The pure core of BareMetalHost Events: what to send to the API server for each boot
 * milestone, after aggregation and rate limiting. No I/O; the clock is passed in.
 *
 * Modelled on client-go's EventCorrelator, simplified to what a boot server needs:
 * - aggregation: a repeat of the same (object, reason, message) within `aggregateWindowMs`
 *   of its last occurrence bumps `count`/`lastTimestamp` of the existing Event (a PATCH)
 *   instead of creating a new one;
 * - rate limiting: a token bucket per object and one for the whole process; an occurrence
 *   with no token is suppressed (counted locally, so the next PATCH carries the true count).
 */

export type EventType = 'Normal' | 'Warning';

export interface EventRef {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string | undefined;
}

export interface EventInput {
  readonly ref: EventRef;
  /** CamelCase, e.g. DHCPLeaseOffered. */
  readonly reason: string;
  readonly message: string;
  readonly type: EventType;
}

export interface BucketLimit {
  /** Tokens available at once. */
  readonly burst: number;
  /** Tokens added per second. */
  readonly perSecond: number;
}

export interface EventLimits {
  readonly perObject: BucketLimit;
  readonly global: BucketLimit;
  readonly aggregateWindowMs: number;
  /** Aggregation entries and per-object buckets kept (least recently used go first). */
  readonly maxTracked: number;
}

/** A boot loop gets ~15 events at once and then one per 20 s; the process 100, then 10/s. */
export const DEFAULT_EVENT_LIMITS: EventLimits = {
  perObject: { burst: 15, perSecond: 1 / 20 },
  global: { burst: 100, perSecond: 10 },
  aggregateWindowMs: 10 * 60_000,
  maxTracked: 4096,
};

export const MAX_MESSAGE_LENGTH = 1024;

export class TokenBucket {
  readonly #limit: BucketLimit;
  #tokens: number;
  #at: number;

  constructor(limit: BucketLimit, now: number) {
    this.#limit = limit;
    this.#tokens = limit.burst;
    this.#at = now;
  }

  /** Takes one token if there is one. */
  take(now: number): boolean {
    this.#refill(now);
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  #refill(now: number): void {
    const elapsed = Math.max(0, now - this.#at);
    this.#tokens = Math.min(this.#limit.burst, this.#tokens + (elapsed / 1000) * this.#limit.perSecond);
    this.#at = now;
  }
}

/** The core/v1 Event fields metalboot fills; timestamps in ms since the epoch. */
export interface EventRecord {
  readonly name: string;
  readonly namespace: string;
  readonly ref: EventRef;
  readonly reason: string;
  readonly message: string;
  readonly type: EventType;
  readonly count: number;
  readonly firstTimestamp: number;
  readonly lastTimestamp: number;
}

export type EventAction =
  | { readonly kind: 'create'; readonly event: EventRecord }
  /** Bump count/lastTimestamp of the Event `event.name` (recreate it if it is gone). */
  | { readonly kind: 'patch'; readonly event: EventRecord }
  | { readonly kind: 'suppress'; readonly why: 'object-rate' | 'global-rate' };

type Entry = {
  name: string;
  count: number;
  first: number;
  last: number;
  /** Has a create been issued for `name`? */
  created: boolean;
};

/**
 * Decides, per occurrence, whether to create an Event, patch one, or suppress. `newName` makes
 * the object name of a new Event (client-go: `<object>.<hex unix nanos>`).
 */
export class EventCorrelator {
  readonly #limits: EventLimits;
  readonly #newName: (ref: EventRef, now: number) => string;
  readonly #entries = new Map<string, Entry>();
  readonly #buckets = new Map<string, TokenBucket>();
  readonly #global: TokenBucket;

  constructor(limits: EventLimits, now: number, newName: (ref: EventRef, now: number) => string = defaultEventName()) {
    this.#limits = limits;
    this.#newName = newName;
    this.#global = new TokenBucket(limits.global, now);
  }

  /** Aggregation entries held (for tests and bounds). */
  get tracked(): number {
    return this.#entries.size;
  }

  observe(input: EventInput, now: number): EventAction {
    const message =
      input.message.length > MAX_MESSAGE_LENGTH ? `${input.message.slice(0, MAX_MESSAGE_LENGTH - 1)}…` : input.message;
    const objectKey = `${input.ref.namespace}/${input.ref.name}/${input.ref.uid ?? ''}`;
    const key = `${objectKey}\u0000${input.reason}\u0000${input.type}\u0000${message}`;

    let entry = this.#entries.get(key);
    if (entry !== undefined && now - entry.last > this.#limits.aggregateWindowMs) entry = undefined;
    if (entry === undefined)
      entry = { name: this.#newName(input.ref, now), count: 0, first: now, last: now, created: false };
    entry.count += 1;
    entry.last = now;
    // Re-insert: Map order is then least recently used first.
    this.#entries.delete(key);
    this.#entries.set(key, entry);

    let bucket = this.#buckets.get(objectKey);
    if (bucket === undefined) bucket = new TokenBucket(this.#limits.perObject, now);
    this.#buckets.delete(objectKey);
    this.#buckets.set(objectKey, bucket);
    this.#evict(now);

    if (!bucket.take(now)) return { kind: 'suppress', why: 'object-rate' };
    if (!this.#global.take(now)) return { kind: 'suppress', why: 'global-rate' };

    const event: EventRecord = {
      name: entry.name,
      namespace: input.ref.namespace,
      ref: input.ref,
      reason: input.reason,
      message,
      type: input.type,
      count: entry.count,
      firstTimestamp: entry.first,
      lastTimestamp: entry.last,
    };
    if (entry.created) return { kind: 'patch', event };
    entry.created = true;
    return { kind: 'create', event };
  }

  #evict(now: number): void {
    for (const [k, e] of this.#entries) {
      if (this.#entries.size <= this.#limits.maxTracked && now - e.last <= this.#limits.aggregateWindowMs) break;
      this.#entries.delete(k);
    }
    for (const k of this.#buckets.keys()) {
      if (this.#buckets.size <= this.#limits.maxTracked) break;
      this.#buckets.delete(k);
    }
  }
}

/** `<object name>.<hex ms><hex sequence>`: unique per process, sortable, a valid name. */
export function defaultEventName(): (ref: EventRef, now: number) => string {
  let seq = 0;
  return (ref, now) => {
    seq = (seq + 1) % 0x10000;
    // Object names are at most 253 characters; the suffix takes at most 17.
    return `${ref.name.slice(0, 236)}.${Math.floor(now).toString(16)}${seq.toString(16).padStart(4, '0')}`;
  };
}
