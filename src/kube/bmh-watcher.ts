/**
 * Longer than ~350 lines (most of it the metrics' and log lines' declarations): the shell of
 * one supervised loop; its decisions are in bmh-watcher-core.ts, the stream in
 * watch-attempt.ts, the index mirror in bmh-mirror.ts, the API in bmh-api.ts.
 *
 * The Kubernetes BareMetalHost source: a supervised list/watch of metal3.io/v1alpha1
 * baremetalhosts (one namespace, or all) that keeps the `kubernetes` partition of the host
 * index equal to the cluster. The decisions live in bmh-watcher-core.ts; this shell owns the
 * API calls, the timers, the logs and the metrics.
 *
 * It never gives up: any failure is retried with capped, jittered backoff, and meanwhile the
 * index keeps the last known hosts, so DHCP/TFTP/HTTP keep answering. `ready` turns true once
 * the first list has loaded and stays true; `connected` says whether a watch is open now.
 *
 * client-node's own ListWatch is not used: it stops for good on any error but 410, never asks
 * for bookmarks, and cannot notice a silent stream. The watch here asks for bookmarks and a
 * server-side timeoutSeconds, and abandons a stream the server failed to end by then.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { HostIndex } from '../leases/host-index.js';
import { unservable, type HostRecord } from '../leases/host.js';
import type { ReadinessCheck, Service } from '../base/service.js';
import type { BmhApi } from './bmh-api.js';
import {
  DEFAULT_WATCH_TIMING,
  INITIAL_SUPERVISOR_STATE,
  RESTART_REASONS,
  statusDetail,
  supervise,
  watchTimeoutSeconds,
  type AttemptOutcome,
  type NextStep,
  type SupervisorState,
  type WatchTiming,
} from './bmh-watcher-core.js';
import { describeError } from './api-errors.js';
import { BmhMirror, logReplace, type BmhRef, type KubeBareMetalHost } from './bmh-mirror.js';
import { WatchAttempt } from './watch-attempt.js';

export interface BmhWatcherOptions {
  readonly api: BmhApi;
  readonly index: HostIndex;
  readonly annotationPrefix: string;
  /** The namespace watched (for status text; the api is already scoped). undefined: all. */
  readonly namespace: string | undefined;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly timing?: Partial<WatchTiming>;
  /**
   * How long start() waits for the first list before returning anyway (the loop keeps trying
   * and readiness stays false). 0: do not wait.
   */
  readonly initialSyncTimeoutMs?: number;
  readonly now?: () => number;
  /** Resolves after ms, or early when the signal aborts. */
  readonly sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  readonly random?: () => number;
}

export interface BmhWatcherStatus {
  /** The first list has loaded (stays true while the API server is away). */
  readonly ready: boolean;
  /** One line for /readyz. */
  readonly detail: string;
  /** In sync with the API server: a watch stream is open (or a list just loaded and the watch is opening). */
  readonly connected: boolean;
  /** Hosts in the index from the cluster. */
  readonly hosts: number;
  /** Last time the state was known current (list, watch event or bookmark, watch opened); ms. */
  readonly lastSyncAt: number | undefined;
  readonly lastError: string | undefined;
  /** Failed attempts retried since start. */
  readonly restarts: number;
}

const defaultSleep = (ms: number, signal: AbortSignal): Promise<void> =>
  delay(ms, undefined, { signal }).catch(() => undefined);

export class BmhWatcher implements Service {
  readonly name = 'bmh-watcher';
  readonly readiness: readonly ReadinessCheck[] = [
    {
      name: 'kubernetes',
      check: () => {
        const s = this.status();
        return { ok: s.ready, detail: s.detail };
      },
    },
  ];
  readonly #o: BmhWatcherOptions;
  readonly #log: Logger;
  readonly #timing: WatchTiming;
  readonly #now: () => number;
  readonly #sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  readonly #random: () => number;
  readonly #mirror: BmhMirror;
  readonly #stop = new AbortController();
  #loop: Promise<void> | undefined;
  #state: SupervisorState = INITIAL_SUPERVISOR_STATE;
  #endAttempt: (() => void) | undefined;
  #firstSync: { promise: Promise<void>; resolve: () => void };

  #ready = false;
  #connected = false;
  #lastSyncAt: number | undefined;
  #disconnectedSince: number | undefined;
  #lastError: string | undefined;
  #restarts = 0;

  readonly #restartsTotal: Counter<'reason'>;
  readonly #eventsTotal: Counter<'type'>;

  constructor(o: BmhWatcherOptions) {
    this.#o = o;
    this.#log = o.logger.child({ component: 'bmh-watcher' });
    this.#timing = { ...DEFAULT_WATCH_TIMING, ...o.timing };
    this.#now = o.now ?? Date.now;
    this.#sleep = o.sleep ?? defaultSleep;
    this.#random = o.random ?? Math.random;
    this.#mirror = new BmhMirror(o.index, { annotationPrefix: o.annotationPrefix });
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    this.#firstSync = { promise, resolve };

    const registers = [o.registry];
    this.#restartsTotal = new Counter({
      name: 'metalboot_kube_watch_restarts_total',
      help: 'BareMetalHost list/watch attempts that failed and were retried, by reason',
      labelNames: ['reason'],
      registers,
    });
    for (const r of RESTART_REASONS) this.#restartsTotal.inc({ reason: r }, 0);
    this.#eventsTotal = new Counter({
      name: 'metalboot_kube_watch_events_total',
      help: 'BareMetalHost watch events received, by type',
      labelNames: ['type'],
      registers,
    });
    const self = this;
    new Gauge({
      name: 'metalboot_kube_connected',
      help: '1 while in sync with the API server (a BareMetalHost watch is open, or a list just loaded)',
      registers,
      collect() {
        this.set(self.#connected ? 1 : 0);
      },
    });
    new Gauge({
      name: 'metalboot_kube_ready',
      help: '1 once the first BareMetalHost list has loaded',
      registers,
      collect() {
        this.set(self.#ready ? 1 : 0);
      },
    });
    new Gauge({
      name: 'metalboot_kube_hosts',
      help: 'Hosts in the lease index from BareMetalHosts in the cluster',
      registers,
      collect() {
        this.set(self.#mirror.size);
      },
    });
    new Gauge({
      name: 'metalboot_kube_last_sync_timestamp_seconds',
      help: 'When the BareMetalHost state was last known current (list, watch event or bookmark)',
      registers,
      collect() {
        this.set(self.#lastSyncAt === undefined ? 0 : self.#lastSyncAt / 1000);
      },
    });
  }

  /** The cluster object behind a host from this watcher (what Events refer to); undefined for others. */
  refFor(host: HostRecord): BmhRef | undefined {
    return this.#mirror.refFor(host);
  }

  /** Resolves when the first list has loaded. */
  whenReady(): Promise<void> {
    return this.#firstSync.promise;
  }

  status(): BmhWatcherStatus {
    const snapshot = {
      ready: this.#ready,
      connected: this.#connected,
      hosts: this.#mirror.size,
      namespace: this.#o.namespace,
      lastSyncAt: this.#lastSyncAt,
      disconnectedSince: this.#disconnectedSince,
      lastError: this.#lastError,
    };
    return {
      ready: snapshot.ready,
      detail: statusDetail(snapshot),
      connected: snapshot.connected,
      hosts: snapshot.hosts,
      lastSyncAt: snapshot.lastSyncAt,
      lastError: snapshot.lastError,
      restarts: this.#restarts,
    };
  }

  async start(): Promise<void> {
    if (this.#loop !== undefined) return;
    this.#disconnectedSince = this.#now();
    this.#log.info({ namespace: this.#o.namespace ?? '(all)' }, 'watching baremetalhosts');
    this.#loop = this.#run().catch((err: unknown) => this.#log.fatal({ err }, 'baremetalhost watcher loop failed'));
    const wait = this.#o.initialSyncTimeoutMs ?? 10_000;
    if (wait <= 0) return;
    const waiting = new AbortController();
    const stopWaiting = (): void => waiting.abort();
    this.#stop.signal.addEventListener('abort', stopWaiting, { once: true });
    const timedOut = await Promise.race([
      this.#firstSync.promise.then(() => false),
      this.#sleep(wait, waiting.signal).then(() => true),
    ]);
    waiting.abort();
    this.#stop.signal.removeEventListener('abort', stopWaiting);
    if (timedOut && !this.#ready) {
      this.#log.warn(
        { waitedMs: wait, lastError: this.#lastError },
        'baremetalhosts not listed yet, starting anyway (not ready until they are)',
      );
    }
  }

  async close(): Promise<void> {
    this.#stop.abort();
    this.#endAttempt?.();
    await this.#loop;
  }

  async #run(): Promise<void> {
    let next: NextStep = { kind: 'list', delayMs: 0 };
    while (!this.#stop.signal.aborted) {
      if (next.delayMs > 0) await this.#sleep(next.delayMs, this.#stop.signal);
      if (this.#stop.signal.aborted) return;
      let outcome: AttemptOutcome;
      try {
        outcome = next.kind === 'list' ? await this.#list() : await this.#watch(next.resourceVersion);
      } catch (err) {
        // A bug, not the API server: never let it stop the watcher; relist after backoff.
        this.#log.error({ err }, 'baremetalhost watch attempt failed unexpectedly');
        outcome = { kind: 'list-failed', error: err };
      }
      if (this.#stop.signal.aborted) return;
      const s = supervise(this.#state, outcome, this.#timing, this.#random);
      this.#state = s.state;
      next = s.next;
      if (s.restart !== undefined) {
        this.#restarts++;
        this.#restartsTotal.inc({ reason: s.restart });
        const err = 'error' in outcome ? outcome.error : 'status' in outcome ? outcome.status : undefined;
        const fields = {
          reason: s.restart,
          err: err === undefined ? undefined : describeError(err),
          retryInMs: next.delayMs,
          next: next.kind,
          failures: s.state.failures,
        };
        if (s.restart === 'expired') this.#log.info(fields, 'baremetalhost watch expired, relisting');
        else this.#log.warn(fields, 'baremetalhost watch interrupted, retrying');
      }
    }
  }

  /** Lists every page, then replaces the cluster partition of the index in one step. */
  async #list(): Promise<AttemptOutcome> {
    const abort = new AbortController();
    const timer = setTimeout(
      () => abort.abort(new Error(`list took longer than ${this.#timing.listTimeoutMs} ms`)),
      this.#timing.listTimeoutMs,
    );
    this.#endAttempt = () => abort.abort(new Error('closed'));
    const onStop = (): void => abort.abort(new Error('closed'));
    this.#stop.signal.addEventListener('abort', onStop);
    try {
      const items: KubeBareMetalHost[] = [];
      let rv: string | undefined;
      let cont: string | undefined;
      do {
        const page = await abortable(
          this.#o.api.list({ limit: this.#timing.listPageSize, continue: cont, signal: abort.signal }),
          abort.signal,
        );
        rv ??= page.resourceVersion;
        items.push(...page.items);
        cont = page.continue;
      } while (cont !== undefined);
      if (this.#stop.signal.aborted) return { kind: 'list-failed', error: new Error('closed') };
      const r = this.#mirror.replace(items);
      logReplace(this.#log, r);
      this.#lastSyncAt = this.#now();
      // In sync with the server from here until the watch that follows fails.
      this.#connected = true;
      this.#disconnectedSince = undefined;
      this.#log.info(
        { hosts: r.hosts, added: r.added, removed: r.removed, skipped: r.skipped.length, resourceVersion: rv },
        'baremetalhosts listed',
      );
      if (!this.#ready) {
        this.#ready = true;
        this.#firstSync.resolve();
      }
      return { kind: 'listed', resourceVersion: rv ?? '' };
    } catch (err) {
      this.#lastError = `list: ${describeError(err)}`;
      return { kind: 'list-failed', error: err };
    } finally {
      clearTimeout(timer);
      this.#stop.signal.removeEventListener('abort', onStop);
      this.#endAttempt = undefined;
    }
  }

  /** One watch from `resourceVersion` until it ends, fails, stalls or the watcher closes. */
  #watch(resourceVersion: string): Promise<AttemptOutcome> {
    const attempt = new WatchAttempt({
      api: this.#o.api,
      resourceVersion,
      timeoutSeconds: watchTimeoutSeconds(this.#timing, this.#random),
      stallGraceMs: this.#timing.stallGraceMs,
      now: this.#now,
      log: this.#log,
      listener: {
        opened: (at) => {
          this.#connected = true;
          this.#disconnectedSince = undefined;
          this.#lastSyncAt = at;
        },
        received: (type) => this.#eventsTotal.inc({ type }),
        apply: (type, obj) => this.#applyEvent(type, obj),
        synced: () => {
          this.#lastSyncAt = this.#now();
        },
        failed: (text) => {
          this.#lastError = text;
        },
        closed: () => {
          this.#endAttempt = undefined;
          if (this.#connected) {
            this.#connected = false;
            this.#disconnectedSince = this.#now();
          }
        },
      },
    });
    this.#endAttempt = () => attempt.end();
    return attempt.outcome;
  }

  #applyEvent(type: 'ADDED' | 'MODIFIED' | 'DELETED', obj: KubeBareMetalHost): void {
    const c = this.#mirror.apply(type, obj);
    switch (c.kind) {
      case 'upsert':
        this.#log.debug(
          { host: c.id, event: type, state: c.host.provisioningState, macs: c.host.macs },
          c.added ? 'baremetalhost added' : 'baremetalhost updated',
        );
        if (c.problemChanged && unservable(c.host) !== undefined)
          this.#log.warn({ host: c.id, problem: unservable(c.host) }, 'host cannot be served');
        for (const x of c.conflicts)
          this.#log.error({ conflict: x.kind, key: x.key, owners: x.owners }, 'lease conflict');
        return;
      case 'delete':
        if (c.existed) this.#log.info({ host: c.id }, 'baremetalhost removed');
        return;
      case 'skip':
        this.#log.warn({ host: c.id, reason: c.reason, removedFromIndex: c.removed }, 'baremetalhost skipped');
    }
  }
}

/** Rejects with the signal's reason when it aborts, even if `p` never settles. */
function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
