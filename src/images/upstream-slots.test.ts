import { describe, expect, it } from 'vitest';
import { UpstreamSlots, type Admission, type Schedule } from './upstream-slots.js';

/** A queue timer that fires only when the test says so. */
function manualSchedule(): { schedule: Schedule; fire(): void; pending(): number } {
  const timers = new Set<() => void>();
  return {
    schedule: (_ms, fn) => {
      timers.add(fn);
      return () => timers.delete(fn);
    },
    fire() {
      const due = [...timers];
      timers.clear();
      for (const fn of due) fn();
    },
    pending: () => timers.size,
  };
}

const granted = (a: Admission): (() => void) => {
  if (a.kind !== 'granted') throw new Error(`expected a connection, got ${JSON.stringify(a)}`);
  return a.release;
};

/** Lets settled promises run their callbacks. */
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('UpstreamSlots', () => {
  it('grants up to the connections, queues the rest and hands freed ones over in order', async () => {
    const slots = new UpstreamSlots({ connections: 2, perClient: 10, queueTimeoutMs: 1000 }, manualSchedule().schedule);
    const a = granted(await slots.acquire('10.0.0.1'));
    granted(await slots.acquire('10.0.0.2'));
    const order: string[] = [];
    const c = slots.acquire('10.0.0.3').then((x) => {
      order.push('c');
      return x;
    });
    const d = slots.acquire('10.0.0.4').then((x) => {
      order.push('d');
      return x;
    });
    await tick();
    expect([slots.inUse, slots.waiting, order]).toEqual([2, 2, []]);
    a();
    a(); // release is idempotent
    granted(await c);
    expect([slots.inUse, slots.waiting, order]).toEqual([2, 1, ['c']]);
    slots.close();
    expect((await d).kind).toBe('aborted');
  });

  it.each<[string, number, number, readonly Admission['kind'][]]>([
    // one address may take half the pool alone, then only its share
    ['one address, share 1', 8, 1, ['granted', 'granted', 'granted', 'granted', 'refused']],
    [
      'one address, share above half',
      8,
      6,
      ['granted', 'granted', 'granted', 'granted', 'granted', 'granted', 'refused'],
    ],
    ['a pool of one', 1, 1, ['granted', 'refused']],
  ])('applies the per-client share once half the pool is in use: %s', async (_name, connections, perClient, kinds) => {
    const slots = new UpstreamSlots({ connections, perClient, queueTimeoutMs: 1000 }, manualSchedule().schedule);
    const got: Admission['kind'][] = [];
    for (const _ of kinds) got.push((await slots.acquire('10.0.0.1')).kind);
    expect(got).toEqual(kinds);
    const refused = await slots.acquire('10.0.0.1');
    expect(refused).toEqual({ kind: 'refused', reason: 'client-limit' });
    // another address still gets a connection while one is free
    if (slots.inUse < connections) expect((await slots.acquire('10.0.0.2')).kind).toBe('granted');
  });

  it('counts waiting requests against the share and frees the share when they leave', async () => {
    const clock = manualSchedule();
    const slots = new UpstreamSlots({ connections: 2, perClient: 2, queueTimeoutMs: 1000 }, clock.schedule);
    granted(await slots.acquire('10.0.0.1'));
    granted(await slots.acquire('10.0.0.2'));
    const waiting = slots.acquire('10.0.0.1');
    expect(slots.held('10.0.0.1')).toBe(2);
    expect(await slots.acquire('10.0.0.1')).toEqual({ kind: 'refused', reason: 'client-limit' });
    clock.fire();
    expect(await waiting).toEqual({ kind: 'refused', reason: 'queue-timeout' });
    expect([slots.held('10.0.0.1'), slots.waiting, clock.pending()]).toEqual([1, 0, 0]);
  });

  it('never refuses a shared request for its client and serves it before relays', async () => {
    const slots = new UpstreamSlots({ connections: 2, perClient: 1, queueTimeoutMs: 1000 }, manualSchedule().schedule);
    const a = granted(await slots.acquire('10.0.0.1'));
    granted(await slots.acquire(undefined));
    const relay = slots.acquire('10.0.0.2');
    const fill = slots.acquire(undefined);
    a();
    expect((await fill).kind).toBe('granted');
    expect(slots.waiting).toBe(1);
    slots.close();
    expect((await relay).kind).toBe('aborted');
  });

  it('drops a waiter whose client left, and hands the connection to the next', async () => {
    const clock = manualSchedule();
    const slots = new UpstreamSlots({ connections: 1, perClient: 5, queueTimeoutMs: 1000 }, clock.schedule);
    const a = granted(await slots.acquire('10.0.0.1'));
    const gone = new AbortController();
    const first = slots.acquire('10.0.0.2', gone.signal);
    const second = slots.acquire('10.0.0.3');
    gone.abort();
    expect(await first).toEqual({ kind: 'aborted' });
    expect([slots.waiting, slots.held('10.0.0.2'), clock.pending()]).toEqual([1, 0, 1]);
    a();
    granted(await second);
    expect(clock.pending()).toBe(0);
    expect((await slots.acquire('10.0.0.4', AbortSignal.abort())).kind).toBe('aborted');
  });

  it('refuses everything once closed', async () => {
    const slots = new UpstreamSlots({ connections: 1, perClient: 1, queueTimeoutMs: 1000 }, manualSchedule().schedule);
    slots.close();
    expect(await slots.acquire(undefined)).toEqual({ kind: 'aborted' });
  });
});
