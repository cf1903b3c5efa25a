/**
 * The leader-election shell: one loop that reads the Lease and acts on decide()
 * (leader-election-core.ts) every retry period, with client-go's timing: acquire attempts are
 * jittered, a leader renews every retry period, and one that cannot renew within the renew
 * deadline steps down. close() gives the lease up (empties holderIdentity) when we hold it, so
 * another replica takes over at once instead of after the lease duration.
 *
 * Leadership is advisory for now: every replica serves, and /readyz never depends on it.
 */
import { CoordinationV1Api, type KubeConfig, type V1Lease, V1MicroTime } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { MetalbootError } from '../base/errors.js';
import type { ReadinessCheck, Service } from '../base/service.js';
import { describeError, httpStatusOf } from './api-errors.js';
import {
  acquireDelay,
  DEFAULT_ELECTION_TIMING,
  decide,
  type ElectionTiming,
  type LeaderRecord,
  type Observation,
  observe,
  recordOfLease,
  releaseRecord,
  renewExpired,
  timingProblem,
} from './leader-election-core.js';

/** The Lease as read: its election record and the version to update it from. */
export interface ReadLease {
  readonly record: LeaderRecord;
  readonly resourceVersion: string;
}

/** The three Lease calls; kubeLeaseApi() is the real one. Failures reject with an HTTP status where there is one. */
export interface LeaseApi {
  /** undefined when the Lease does not exist. */
  get(): Promise<ReadLease | undefined>;
  create(record: LeaderRecord): Promise<ReadLease>;
  /** Rejects with 409 when resourceVersion is stale. */
  update(record: LeaderRecord, resourceVersion: string): Promise<ReadLease>;
}

function leaseSpec(r: LeaderRecord): NonNullable<V1Lease['spec']> {
  // MicroTime: six fractional digits (the API server refuses toISOString()'s three).
  const t = (ms: number | undefined) => (ms === undefined ? undefined : new V1MicroTime(ms));
  return {
    ...(r.holderIdentity === '' ? {} : { holderIdentity: r.holderIdentity }),
    leaseDurationSeconds: r.leaseDurationSeconds,
    acquireTime: t(r.acquireTime),
    renewTime: t(r.renewTime),
    leaseTransitions: r.leaseTransitions,
  };
}

function readLease(l: V1Lease): ReadLease {
  return {
    record: recordOfLease(l.spec as Record<string, unknown> | undefined),
    resourceVersion: l.metadata?.resourceVersion ?? '',
  };
}

export function kubeLeaseApi(kc: KubeConfig, namespace: string, name: string): LeaseApi {
  const api = kc.makeApiClient(CoordinationV1Api);
  return {
    async get() {
      try {
        return readLease(await api.readNamespacedLease({ namespace, name }));
      } catch (err) {
        if (httpStatusOf(err) === 404) return undefined;
        throw err;
      }
    },
    async create(record) {
      const body: V1Lease = { metadata: { name, namespace }, spec: leaseSpec(record) };
      return readLease(await api.createNamespacedLease({ namespace, body }));
    },
    async update(record, resourceVersion) {
      const body: V1Lease = { metadata: { name, namespace, resourceVersion }, spec: leaseSpec(record) };
      return readLease(await api.replaceNamespacedLease({ namespace, name, body }));
    },
  };
}

export interface LeaderElectorOptions {
  readonly api: LeaseApi;
  /** Unique per replica: the pod name and a random suffix. */
  readonly identity: string;
  /** namespace/name, for logs and readiness. */
  readonly lease: string;
  readonly timing?: ElectionTiming;
  readonly logger: Logger;
  readonly registry: Registry;
  /** Called when this replica becomes leader (true) or stops being it (false). */
  readonly onChange?: (leading: boolean) => void;
  /** false: close() just stops (a crash, as far as the others can tell). Default true. */
  readonly releaseOnClose?: boolean;
  readonly now?: () => number;
  readonly random?: () => number;
}

export class LeaderElector implements Service {
  readonly name = 'leader-election';
  readonly readiness: readonly ReadinessCheck[];
  readonly #o: LeaderElectorOptions;
  readonly #log: Logger;
  readonly #timing: ElectionTiming;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #leader: Gauge;
  readonly #transitions: Counter<'to'>;
  #observation: Observation | undefined;
  #held: ReadLease | undefined;
  #leading = false;
  #lastRenewAt = 0;
  #holder = '';
  #closed = false;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  readonly #listeners: ((leading: boolean) => void)[] = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(o: LeaderElectorOptions) {
    this.#o = o;
    this.#timing = o.timing ?? DEFAULT_ELECTION_TIMING;
    const problem = timingProblem(this.#timing);
    if (problem !== undefined) throw new MetalbootError('KUBE_ERR_LEADER_TIMING', problem);
    this.#log = o.logger.child({ component: 'leader-election', lease: o.lease, identity: o.identity });
    this.#now = o.now ?? Date.now;
    this.#random = o.random ?? Math.random;
    this.#leader = new Gauge({
      name: 'metalboot_leader',
      help: 'Whether this replica holds the leader-election Lease (1) or not (0)',
      registers: [o.registry],
    });
    this.#transitions = new Counter({
      name: 'metalboot_leader_transitions_total',
      help: 'Times this replica became leader (to="leader") or stopped being it (to="follower")',
      labelNames: ['to'],
      registers: [o.registry],
    });
    this.#leader.set(0);
    for (const to of ['leader', 'follower']) this.#transitions.inc({ to }, 0);
    this.readiness = [
      {
        name: 'leader-election',
        // Every replica serves: leadership is reported, never required.
        check: () => ({
          ok: true,
          detail: this.#leading
            ? `leader of ${this.#o.lease}`
            : `follower of ${this.#o.lease}${this.#holder === '' ? '' : ` (leader: ${this.#holder})`}`,
        }),
      },
    ];
  }

  isLeader(): boolean {
    return this.#leading;
  }

  /** Calls `fn` at every change of leadership, after onChange. */
  onLeadership(fn: (leading: boolean) => void): void {
    this.#listeners.push(fn);
  }

  /** The holder last seen ("" when none). */
  holder(): string {
    return this.#holder;
  }

  async start(): Promise<void> {
    if (this.#loop === undefined) this.#log.info({ timing: this.#timing }, 'leader election started');
    this.#loop ??= this.#run();
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#wake?.();
    await this.#loop;
    const held = this.#leading ? this.#held : undefined;
    // Not leader from here on, before the release lets another replica in.
    this.#set(false);
    if (held !== undefined && this.#o.releaseOnClose !== false) {
      try {
        await this.#bounded(this.#o.api.update(releaseRecord(held.record, this.#now()), held.resourceVersion));
        this.#log.info('lease released');
      } catch (err) {
        this.#log.warn({ err: describeError(err) }, 'lease not released; another replica takes over when it expires');
      }
    }
  }

  async #run(): Promise<void> {
    while (!this.#closed) {
      const ok = await this.#attempt();
      if (this.#closed) break;
      const now = this.#now();
      if (ok) {
        this.#lastRenewAt = now;
        this.#set(true);
      } else if (
        this.#leading &&
        (this.#holder !== this.#o.identity || renewExpired(this.#lastRenewAt, now, this.#timing))
      ) {
        this.#log.warn({ holder: this.#holder }, 'leadership lost: the lease was not renewed in time');
        this.#set(false);
      }
      await this.#sleep(this.#leading ? this.#timing.retryPeriodMs : acquireDelay(this.#timing, this.#random()));
    }
  }

  /** One tryAcquireOrRenew; true when we hold the lease afterwards. */
  async #attempt(): Promise<boolean> {
    const api = this.#o.api;
    try {
      const current = await this.#bounded(api.get());
      const now = this.#now();
      this.#observation = current === undefined ? undefined : observe(this.#observation, current.record, now);
      this.#holder = current?.record.holderIdentity ?? '';
      const d = decide(this.#o.identity, current?.record, this.#observation, now, this.#timing);
      if (d.kind === 'wait') return false;
      const written =
        d.kind === 'create'
          ? await this.#bounded(api.create(d.record))
          : await this.#bounded(api.update(d.record, current?.resourceVersion ?? ''));
      this.#held = written;
      this.#observation = observe(this.#observation, written.record, this.#now());
      this.#holder = this.#o.identity;
      if (d.kind === 'create' || d.action === 'acquire') this.#log.info({ record: d.record }, 'lease acquired');
      return true;
    } catch (err) {
      // 409: another replica wrote first (create or update); the next read shows who.
      const status = httpStatusOf(err);
      const level = status === 409 ? 'debug' : 'warn';
      this.#log[level]({ err: describeError(err), status }, 'lease not acquired or renewed');
      return false;
    }
  }

  #set(leading: boolean): void {
    if (leading === this.#leading) return;
    this.#leading = leading;
    this.#leader.set(leading ? 1 : 0);
    this.#transitions.inc({ to: leading ? 'leader' : 'follower' });
    this.#log.info({ leading }, leading ? 'became leader' : 'stopped leading');
    for (const fn of [this.#o.onChange, ...this.#listeners]) {
      try {
        fn?.(leading);
      } catch (err) {
        this.#log.error({ err }, 'leadership change handler failed');
      }
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = resolve;
      this.#timer = setTimeout(resolve, ms);
    });
  }

  /** An API call bounded by the renew deadline (client-go's per-attempt context timeout). */
  #bounded<T>(p: Promise<T>): Promise<T> {
    const ms = this.#timing.renewDeadlineMs;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new MetalbootError('KUBE_ERR_LEASE_TIMEOUT', `no answer within ${ms} ms`)), ms);
    });
    return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
  }
}
