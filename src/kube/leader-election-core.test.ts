import { describe, expect, it } from 'vitest';
import {
  acquireDelay,
  decide,
  type ElectionTiming,
  type LeaderRecord,
  observe,
  recordOfLease,
  releaseRecord,
  renewExpired,
  timingProblem,
} from './leader-election-core.js';

const T: ElectionTiming = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 };
const ME = 'pod-a_1234';
const OTHER = 'pod-b_5678';

const held = (holder: string, renewTime: number, transitions = 3): LeaderRecord => ({
  holderIdentity: holder,
  leaseDurationSeconds: 15,
  acquireTime: 1_000,
  renewTime,
  leaseTransitions: transitions,
});

describe('decide (tryAcquireOrRenew)', () => {
  it.each([
    {
      name: 'no lease: create it, transitions 0',
      current: undefined,
      seenAt: 0,
      now: 50_000,
      want: {
        kind: 'create',
        record: {
          holderIdentity: ME,
          leaseDurationSeconds: 15,
          acquireTime: 50_000,
          renewTime: 50_000,
          leaseTransitions: 0,
        },
      },
    },
    {
      name: 'held by another, seen 14 s ago: wait until our sighting + 15 s',
      current: held(OTHER, 40_000),
      seenAt: 36_000,
      now: 50_000,
      want: { kind: 'wait', holder: OTHER, expiresAt: 51_000 },
    },
    {
      name: 'held by another, unchanged for 16 s by our clock: take over, transitions + 1',
      current: held(OTHER, 40_000),
      seenAt: 34_000,
      now: 50_000,
      want: {
        kind: 'update',
        action: 'acquire',
        record: {
          holderIdentity: ME,
          leaseDurationSeconds: 15,
          acquireTime: 50_000,
          renewTime: 50_000,
          leaseTransitions: 4,
        },
      },
    },
    {
      name: 'held by us: renew, acquireTime and transitions kept',
      current: held(ME, 48_000),
      seenAt: 48_000,
      now: 50_000,
      want: {
        kind: 'update',
        action: 'renew',
        record: {
          holderIdentity: ME,
          leaseDurationSeconds: 15,
          acquireTime: 1_000,
          renewTime: 50_000,
          leaseTransitions: 3,
        },
      },
    },
    {
      name: 'released (no holder), however fresh: take it',
      current: { ...held('', 49_000), leaseDurationSeconds: 1 },
      seenAt: 49_999,
      now: 50_000,
      want: { kind: 'update', action: 'acquire' },
    },
    {
      // We lost a write race (409 Conflict); the re-read shows the winner's fresh record.
      name: 'after a conflict the winner holds it: wait, however stale its renewTime by its clock',
      current: held(OTHER, 1_000),
      seenAt: 50_000,
      now: 50_000,
      want: { kind: 'wait', holder: OTHER, expiresAt: 65_000 },
    },
  ])('$name', ({ current, seenAt, now, want }) => {
    const observation = current === undefined ? undefined : observe(undefined, current, seenAt);
    expect(decide(ME, current, observation, now, T)).toMatchObject(want);
  });
});

describe('observe', () => {
  it('keeps the first sighting of an unchanged record and restarts the clock on any change', () => {
    const first = observe(undefined, held(OTHER, 1_000), 10_000);
    expect(observe(first, held(OTHER, 1_000), 20_000).observedAt).toBe(10_000);
    expect(observe(first, held(OTHER, 3_000), 20_000).observedAt).toBe(20_000);
  });

  it('uses the duration in the record (whole seconds)', () => {
    const o = observe(undefined, { ...held(OTHER, 0), leaseDurationSeconds: 2 }, 10_000);
    expect(decide(ME, o.record, o, 11_999, T)).toMatchObject({ kind: 'wait', expiresAt: 12_000 });
    expect(decide(ME, o.record, o, 12_000, T)).toMatchObject({ kind: 'update', action: 'acquire' });
  });
});

describe('release, renew deadline, jitter, timing', () => {
  it('a release empties the holder and keeps the transitions', () => {
    expect(releaseRecord(held(ME, 1), 9_000)).toEqual({
      holderIdentity: '',
      leaseDurationSeconds: 1,
      acquireTime: 9_000,
      renewTime: 9_000,
      leaseTransitions: 3,
    });
  });

  it('steps down only after the renew deadline', () => {
    expect(renewExpired(0, 10_000, T)).toBe(false);
    expect(renewExpired(0, 10_001, T)).toBe(true);
  });

  it('jitters acquire attempts between retryPeriod and 2.2 × retryPeriod', () => {
    expect(acquireDelay(T, 0)).toBe(2_000);
    expect(acquireDelay(T, 1)).toBe(4_400);
  });

  it.each([
    [{ leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 }, undefined],
    [{ leaseDurationMs: 10_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 }, 'renew deadline'],
    [{ leaseDurationMs: 15_000, renewDeadlineMs: 2_000, retryPeriodMs: 2_000 }, 'retry period'],
  ])('timing %j → %s', (t, problem) => {
    const got = timingProblem(t);
    if (problem === undefined) expect(got).toBeUndefined();
    else expect(got).toContain(problem);
  });

  it('reads a Lease spec with MicroTime strings or Dates, absent fields as empty', () => {
    expect(
      recordOfLease({
        holderIdentity: 'x',
        leaseDurationSeconds: 15,
        renewTime: '2026-01-01T00:00:01.500000Z',
        acquireTime: new Date(5),
      }),
    ).toEqual({
      holderIdentity: 'x',
      leaseDurationSeconds: 15,
      renewTime: Date.UTC(2026, 0, 1, 0, 0, 1, 500),
      acquireTime: 5,
      leaseTransitions: 0,
    });
    expect(recordOfLease(undefined).holderIdentity).toBe('');
  });
});
