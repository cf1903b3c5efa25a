import { describe, expect, it } from 'vitest';
import {
  DEFAULT_EVENT_LIMITS,
  EventCorrelator,
  TokenBucket,
  defaultEventName,
  type EventInput,
  type EventLimits,
} from './event-correlator.js';

const ref = (name: string) => ({ namespace: 'metal3', name, uid: `uid-${name}` });
const offered = (name = 'h1', message = 'offered 10.0.0.10/24'): EventInput => ({
  ref: ref(name),
  reason: 'DHCPLeaseOffered',
  message,
  type: 'Normal',
});
const limits = (over: Partial<EventLimits> = {}): EventLimits => ({
  perObject: { burst: 3, perSecond: 1 / 10 },
  global: { burst: 100, perSecond: 100 },
  aggregateWindowMs: 60_000,
  maxTracked: 100,
  ...over,
});
const names = () => {
  let n = 0;
  return () => `ev-${++n}`;
};

describe('TokenBucket', () => {
  it('gives a burst, then refills at its rate, never above the burst', () => {
    const b = new TokenBucket({ burst: 2, perSecond: 1 }, 0);
    expect([b.take(0), b.take(0), b.take(0)]).toEqual([true, true, false]);
    expect(b.take(500)).toBe(false);
    expect(b.take(1000)).toBe(true);
    expect([b.take(100_000), b.take(100_000), b.take(100_000)]).toEqual([true, true, false]);
  });
});

describe('EventCorrelator', () => {
  it('creates the first occurrence and patches repeats with the running count', () => {
    const c = new EventCorrelator(limits(), 0, names());
    expect(c.observe(offered(), 1_000)).toEqual({
      kind: 'create',
      event: {
        name: 'ev-1',
        namespace: 'metal3',
        ref: ref('h1'),
        reason: 'DHCPLeaseOffered',
        message: 'offered 10.0.0.10/24',
        type: 'Normal',
        count: 1,
        firstTimestamp: 1_000,
        lastTimestamp: 1_000,
      },
    });
    expect(c.observe(offered(), 2_000)).toMatchObject({
      kind: 'patch',
      event: { name: 'ev-1', count: 2, firstTimestamp: 1_000, lastTimestamp: 2_000 },
    });
  });

  it.each([
    ['another message', offered('h1', 'offered 10.0.0.11/24')],
    ['another host', offered('h2')],
    ['another reason', { ...offered(), reason: 'DHCPLeaseAcknowledged' }],
    ['another type', { ...offered(), type: 'Warning' as const }],
    ['another uid (the host was recreated)', { ...offered(), ref: { ...ref('h1'), uid: 'uid-new' } }],
  ])('does not aggregate %s', (_n, other) => {
    const c = new EventCorrelator(limits(), 0, names());
    c.observe(offered(), 0);
    expect(c.observe(other, 1)).toMatchObject({ kind: 'create', event: { name: 'ev-2', count: 1 } });
  });

  it('starts a new Event once the last repeat is older than the window', () => {
    const c = new EventCorrelator(limits({ aggregateWindowMs: 60_000 }), 0, names());
    c.observe(offered(), 0);
    expect(c.observe(offered(), 60_000)).toMatchObject({ kind: 'patch', event: { name: 'ev-1', count: 2 } });
    expect(c.observe(offered(), 120_001)).toMatchObject({
      kind: 'create',
      event: { name: 'ev-2', count: 1, firstTimestamp: 120_001 },
    });
  });

  it('rate-limits a boot loop per host; suppressed repeats still count toward the next patch', () => {
    const c = new EventCorrelator(limits({ perObject: { burst: 3, perSecond: 1 / 10 } }), 0, names());
    const kinds = Array.from({ length: 10 }, (_, i) => c.observe(offered(), i).kind);
    expect(kinds).toEqual([
      'create',
      'patch',
      'patch',
      'suppress',
      'suppress',
      'suppress',
      'suppress',
      'suppress',
      'suppress',
      'suppress',
    ]);
    expect(c.observe(offered(), 5_000)).toEqual({ kind: 'suppress', why: 'object-rate' });
    expect(c.observe(offered(), 10_010)).toMatchObject({ kind: 'patch', event: { count: 12 } });
    // Another host is not held back by the first one's loop.
    expect(c.observe(offered('h2'), 10_010)).toMatchObject({ kind: 'create' });
  });

  it('rate-limits globally across hosts', () => {
    const c = new EventCorrelator(limits({ global: { burst: 2, perSecond: 1 } }), 0, names());
    const got = ['a', 'b', 'c', 'd'].map((n) => c.observe(offered(n), 0));
    expect(got.map((a) => (a.kind === 'suppress' ? a.why : a.kind))).toEqual([
      'create',
      'create',
      'global-rate',
      'global-rate',
    ]);
    expect(c.observe(offered('c'), 1_000)).toMatchObject({ kind: 'create', event: { count: 2 } });
  });

  it('keeps a bounded number of entries', () => {
    const c = new EventCorrelator(limits({ maxTracked: 5 }), 0, names());
    for (let i = 0; i < 50; i++) c.observe(offered(`h${i}`), i);
    expect(c.tracked).toBe(5);
  });

  it('truncates long messages to what the API accepts', () => {
    const c = new EventCorrelator(DEFAULT_EVENT_LIMITS, 0, names());
    const a = c.observe(offered('h1', 'x'.repeat(5000)), 0);
    expect(a.kind === 'create' && a.event.message.length).toBe(1024);
  });

  it('names events <object>.<hex time><hex sequence>, unique within a millisecond', () => {
    const name = defaultEventName();
    const a = name(ref('h1'), 0x18c0000000);
    const b = name(ref('h1'), 0x18c0000000);
    expect(a).toBe('h1.18c00000000001');
    expect(b).not.toBe(a);
  });
});
