/**
 * Leader election over a coordination.k8s.io/v1 Lease, the decisions of client-go's
 * tools/leaderelection as pure functions: given the Lease as read, what this replica saw of it
 * before, and the time, whether to create it, take it over, renew it, or wait.
 *
 * Expiry is judged the way client-go judges it, by *our* clock: a holder's lease runs
 * `leaseDurationSeconds` from the moment we first saw its record in its current form (a
 * renewal changes renewTime, so we see it anew). Clocks of the replicas never meet.
 */

/** The election fields of a Lease's spec; times in epoch milliseconds. */
export interface LeaderRecord {
  /** "" when nobody holds it (released). */
  readonly holderIdentity: string;
  readonly leaseDurationSeconds: number;
  readonly acquireTime: number | undefined;
  readonly renewTime: number | undefined;
  readonly leaseTransitions: number;
}

/** What this replica last saw of the record, and when (its own clock). */
export interface Observation {
  readonly record: LeaderRecord;
  /** Canonical form of the record: a change of any field is a new observation. */
  readonly key: string;
  readonly observedAt: number;
}

export type Decision =
  | { readonly kind: 'create'; readonly record: LeaderRecord }
  | { readonly kind: 'update'; readonly record: LeaderRecord; readonly action: 'acquire' | 'renew' }
  | { readonly kind: 'wait'; readonly holder: string; readonly expiresAt: number };

export interface ElectionTiming {
  readonly leaseDurationMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;
}

export const DEFAULT_ELECTION_TIMING: ElectionTiming = {
  leaseDurationMs: 15_000,
  renewDeadlineMs: 10_000,
  retryPeriodMs: 2_000,
};

function keyOf(r: LeaderRecord): string {
  return JSON.stringify([r.holderIdentity, r.leaseDurationSeconds, r.acquireTime, r.renewTime, r.leaseTransitions]);
}

/** The observation after reading `record` at `now`: unchanged records keep their first sighting. */
export function observe(prev: Observation | undefined, record: LeaderRecord, now: number): Observation {
  const key = keyOf(record);
  if (prev !== undefined && prev.key === key) return prev;
  return { record, key, observedAt: now };
}

/** When the observed holder's lease runs out by our clock (its own duration, else ours). */
export function expiresAt(o: Observation, timing: ElectionTiming): number {
  const seconds = o.record.leaseDurationSeconds;
  return o.observedAt + (seconds > 0 ? seconds * 1000 : timing.leaseDurationMs);
}

/**
 * tryAcquireOrRenew's decision. `current` is the Lease as just read (undefined: it does not
 * exist) and `observation` is observe() of it (undefined with it).
 */
export function decide(
  identity: string,
  current: LeaderRecord | undefined,
  observation: Observation | undefined,
  now: number,
  timing: ElectionTiming,
): Decision {
  const fresh = (acquireTime: number | undefined, transitions: number): LeaderRecord => ({
    holderIdentity: identity,
    leaseDurationSeconds: Math.ceil(timing.leaseDurationMs / 1000),
    acquireTime,
    renewTime: now,
    leaseTransitions: transitions,
  });
  if (current === undefined || observation === undefined) return { kind: 'create', record: fresh(now, 0) };
  const holder = current.holderIdentity;
  if (holder === identity) {
    return { kind: 'update', action: 'renew', record: fresh(current.acquireTime ?? now, current.leaseTransitions) };
  }
  const until = expiresAt(observation, timing);
  if (holder !== '' && until > now) return { kind: 'wait', holder, expiresAt: until };
  // Free (released) or expired: take it over, counting the transition.
  return { kind: 'update', action: 'acquire', record: fresh(now, current.leaseTransitions + 1) };
}

/** The record that gives the lease up (client-go's release): no holder, transitions kept. */
export function releaseRecord(held: LeaderRecord, now: number): LeaderRecord {
  return {
    holderIdentity: '',
    leaseDurationSeconds: 1,
    acquireTime: now,
    renewTime: now,
    leaseTransitions: held.leaseTransitions,
  };
}

/** A leader that has not renewed for longer than the renew deadline steps down. */
export function renewExpired(lastRenewAt: number, now: number, timing: ElectionTiming): boolean {
  return now - lastRenewAt > timing.renewDeadlineMs;
}

/** Acquire attempts wait retryPeriod × (1 + up to 1.2), as client-go's JitterUntil(…, 1.2). */
export function acquireDelay(timing: ElectionTiming, random: number): number {
  return Math.round(timing.retryPeriodMs * (1 + 1.2 * random));
}

/** Why the timing is unusable, or undefined (renewDeadline < leaseDuration, retry < renewDeadline). */
export function timingProblem(t: ElectionTiming): string | undefined {
  if (t.retryPeriodMs <= 0) return 'retry period must be positive';
  if (t.renewDeadlineMs >= t.leaseDurationMs) return 'renew deadline must be shorter than the lease duration';
  if (t.retryPeriodMs >= t.renewDeadlineMs) return 'retry period must be shorter than the renew deadline';
  return undefined;
}

/** The election fields of a Lease object as read (times as RFC 3339 strings or Dates). */
export function recordOfLease(spec: Readonly<Record<string, unknown>> | undefined): LeaderRecord {
  const time = (v: unknown): number | undefined => {
    if (v instanceof Date) return v.getTime();
    if (typeof v !== 'string') return undefined;
    const ms = Date.parse(v);
    return Number.isNaN(ms) ? undefined : ms;
  };
  const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
  return {
    holderIdentity: typeof spec?.['holderIdentity'] === 'string' ? spec['holderIdentity'] : '',
    leaseDurationSeconds: num(spec?.['leaseDurationSeconds']),
    acquireTime: time(spec?.['acquireTime']),
    renewTime: time(spec?.['renewTime']),
    leaseTransitions: num(spec?.['leaseTransitions']),
  };
}
