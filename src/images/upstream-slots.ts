/**
 * Admission to the upstream pool (upstream.ts): which request gets one of its connections, in
 * what order, and which is turned away. No I/O; the queue timer is injected.
 *
 * A relayed download holds its connection for as long as its client takes to read it, so the
 * pool is shared by rules rather than first come, first served forever:
 * - At most `connections` requests hold a connection; the pool itself never queues.
 * - Fair share: a client address may hold connections freely while less than half of them are
 *   in use; past that, only while it holds (or waits for) fewer than `perClient`. Beyond it
 *   the request is refused at once (`client-limit`). One address alone (a NAT in front of a
 *   rack) can take half the pool, never the half the others need.
 * - A request with no client (a cache fill or revalidation, shared by every client) is never
 *   refused for its client and waits ahead of relays: one fill serves a whole boot storm.
 * - Waiters are served first in, first out; one that waits `queueTimeoutMs` is refused
 *   (`queue-timeout`), so the client gets an answer it can retry on instead of a hang.
 * - A waiter whose signal aborts (its client left) leaves the queue.
 */

/** Why a request got no connection: the `reason` label of the limits metric (metrics.ts). */
export type SlotRefusal = 'client-limit' | 'queue-timeout';

export interface SlotLimits {
  /** Connections of the pool. */
  readonly connections: number;
  /** Connections one client address may hold or wait for while half the pool or more is in use. */
  readonly perClient: number;
  /** Longest wait for a connection. */
  readonly queueTimeoutMs: number;
}

export type Admission =
  /** Holds a connection until `release` (idempotent). */
  | { readonly kind: 'granted'; readonly release: () => void }
  | { readonly kind: 'refused'; readonly reason: SlotRefusal }
  /** The signal aborted, or the slots closed, before a connection was free. */
  | { readonly kind: 'aborted' };

/** Runs `fn` after `ms`; returns what cancels it. */
export type Schedule = (ms: number, fn: () => void) => () => void;

export const realSchedule: Schedule = (ms, fn) => {
  const t = setTimeout(fn, ms);
  t.unref();
  return () => clearTimeout(t);
};

interface Waiter {
  readonly client: string | undefined;
  /** Hands over the outcome; the waiter is out of the queue already. */
  readonly settle: (a: Admission) => void;
}

export class UpstreamSlots {
  readonly #limits: SlotLimits;
  readonly #schedule: Schedule;
  #inUse = 0;
  /** Per client address: connections held plus requests waiting. */
  readonly #clients = new Map<string, number>();
  /** Fills and revalidations: served before relays. */
  readonly #shared: Waiter[] = [];
  readonly #relays: Waiter[] = [];
  #closed = false;

  constructor(limits: SlotLimits, schedule: Schedule = realSchedule) {
    this.#limits = limits;
    this.#schedule = schedule;
  }

  /** Connections held. */
  get inUse(): number {
    return this.#inUse;
  }

  /** Requests waiting for a connection. */
  get waiting(): number {
    return this.#shared.length + this.#relays.length;
  }

  /** Connections held and requests waiting for one client address. */
  held(client: string): number {
    return this.#clients.get(client) ?? 0;
  }

  /** A connection for a request of `client` (undefined: a request shared by every client). */
  acquire(client: string | undefined, signal?: AbortSignal): Promise<Admission> {
    if (this.#closed || signal?.aborted === true) return Promise.resolve({ kind: 'aborted' });
    const l = this.#limits;
    if (client !== undefined && this.held(client) >= l.perClient && this.#inUse * 2 >= l.connections) {
      return Promise.resolve({ kind: 'refused', reason: 'client-limit' });
    }
    this.#count(client, 1);
    if (this.#inUse < l.connections && this.waiting === 0) return Promise.resolve(this.#grant(client));
    return new Promise((resolve) => {
      const queue = client === undefined ? this.#shared : this.#relays;
      const leave = (a: Admission): void => {
        const i = queue.indexOf(waiter);
        if (i >= 0) queue.splice(i, 1);
        this.#count(client, -1);
        settle(a);
      };
      const onAbort = (): void => leave({ kind: 'aborted' });
      const cancelTimer = this.#schedule(l.queueTimeoutMs, () => leave({ kind: 'refused', reason: 'queue-timeout' }));
      signal?.addEventListener('abort', onAbort, { once: true });
      const settle = (a: Admission): void => {
        cancelTimer();
        signal?.removeEventListener('abort', onAbort);
        resolve(a);
      };
      const waiter: Waiter = { client, settle };
      queue.push(waiter);
    });
  }

  /** Refuses every waiter and every later request (the pool is closing). */
  close(): void {
    this.#closed = true;
    for (const w of [...this.#shared.splice(0), ...this.#relays.splice(0)]) {
      this.#count(w.client, -1);
      w.settle({ kind: 'aborted' });
    }
  }

  #grant(client: string | undefined): Admission {
    this.#inUse++;
    let released = false;
    return {
      kind: 'granted',
      release: () => {
        if (released) return;
        released = true;
        this.#inUse--;
        this.#count(client, -1);
        this.#next();
      },
    };
  }

  /** Hands free connections to the waiters, shared ones first. */
  #next(): void {
    while (this.#inUse < this.#limits.connections) {
      const w = this.#shared.shift() ?? this.#relays.shift();
      if (w === undefined) return;
      // The waiter's count stays: it moves from waiting to holding.
      w.settle(this.#grant(w.client));
    }
  }

  #count(client: string | undefined, delta: number): void {
    if (client === undefined) return;
    const n = this.held(client) + delta;
    if (n <= 0) this.#clients.delete(client);
    else this.#clients.set(client, n);
  }
}
