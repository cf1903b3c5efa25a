/**
 * One watch of the BareMetalHost API from a resourceVersion, until it ends, fails, stalls or is
 * ended: the state of one stream (the resourceVersion reached, the events seen, when it opened,
 * the stall timer) in one object. It tells the watcher what happens through a WatchListener
 * and settles with the AttemptOutcome that the supervisor (bmh-watcher-core.ts) decides on.
 */
import type { Logger } from 'pino';
import type { BmhApi, WatchEventType } from './bmh-api.js';
import type { KubeBareMetalHost } from './bmh-mirror.js';
import type { AttemptOutcome } from './bmh-watcher-core.js';
import { describeError, httpStatusOf, isExpired, watchStatusOf } from './api-errors.js';

export interface WatchListener {
  /** The stream's response started at `at`: in sync from then. */
  opened(at: number): void;
  /** An event arrived (any type, counted before it is handled). */
  received(type: WatchEventType): void;
  /** An ADDED, MODIFIED or DELETED event to apply; what it throws ends the attempt for a relist. */
  apply(type: 'ADDED' | 'MODIFIED' | 'DELETED', obj: KubeBareMetalHost): void;
  /** The state is current as of now (an event or a bookmark was handled). */
  synced(): void;
  /** What went wrong, for /readyz (`watch: …`). */
  failed(text: string): void;
  /** The stream is over, however it ended. */
  closed(): void;
}

export interface WatchAttemptOptions {
  readonly api: BmhApi;
  readonly resourceVersion: string;
  /** Asked of the server, which ends the watch cleanly after it. */
  readonly timeoutSeconds: number;
  /** How long after timeoutSeconds a stream the server failed to end is abandoned. */
  readonly stallGraceMs: number;
  readonly now: () => number;
  readonly listener: WatchListener;
  readonly log: Logger;
}

export class WatchAttempt {
  /** Settles once, with how the attempt ended. */
  readonly outcome: Promise<AttemptOutcome>;
  readonly #o: WatchAttemptOptions;
  #rv: string;
  #events = 0;
  #openedAt: number | undefined;
  #handle: { abort(): void } | undefined;
  #settled = false;
  #resolve!: (o: AttemptOutcome) => void;
  readonly #stallTimer: ReturnType<typeof setTimeout>;

  constructor(o: WatchAttemptOptions) {
    this.#o = o;
    this.#rv = o.resourceVersion;
    this.outcome = new Promise<AttemptOutcome>((resolve) => {
      this.#resolve = resolve;
    });
    const stallMs = o.timeoutSeconds * 1000 + o.stallGraceMs;
    this.#stallTimer = setTimeout(
      () =>
        this.#fail(
          'stalled',
          new Error(`watch still open ${stallMs} ms after asking for timeoutSeconds=${o.timeoutSeconds}`),
        ),
      stallMs,
    );
    o.api
      .watch(
        { resourceVersion: o.resourceVersion, timeoutSeconds: o.timeoutSeconds },
        (t, obj) => this.#onEvent(t, obj),
        (err) => this.#onDone(err),
      )
      .then(
        (h) => this.#onOpened(h),
        (err: unknown) => this.#fail('watch-failed', err),
      );
  }

  /** Ends the attempt as if the server had ended the watch (the watcher is closing). */
  end(): void {
    this.#finish({ kind: 'watch-ended', resourceVersion: this.#rv, events: this.#events, openMs: this.#openMs() });
  }

  #onOpened(h: { abort(): void }): void {
    this.#handle = h;
    if (this.#settled) {
      h.abort();
      return;
    }
    this.#openedAt = this.#o.now();
    this.#o.listener.opened(this.#openedAt);
  }

  #onEvent(type: WatchEventType, object: unknown): void {
    if (this.#settled) return;
    const l = this.#o.listener;
    l.received(type);
    if (type === 'ERROR') {
      const status = watchStatusOf(object);
      l.failed(
        `watch: ${status.code ?? ''} ${status.reason ?? ''} ${status.message ?? ''}`.replace(/\s+/g, ' ').trim(),
      );
      const done = { events: this.#events, openMs: this.#openMs() };
      this.#finish(
        isExpired(status) ? { kind: 'watch-expired', ...done } : { kind: 'watch-error-event', status, ...done },
      );
      return;
    }
    this.#events++;
    const obj = object as KubeBareMetalHost;
    const next = obj?.metadata?.resourceVersion;
    try {
      if (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED') l.apply(type, obj);
    } catch (err) {
      // client-node swallows what its callback throws: an event would be lost silently.
      // Relist instead, which brings the index back in line with the server.
      this.#o.log.error({ err, event: type }, 'baremetalhost watch event not applied, relisting');
      l.failed(`watch: InternalError ${describeError(err)}`);
      const status = { code: undefined, reason: 'InternalError', message: describeError(err) };
      this.#finish({ kind: 'watch-error-event', status, events: this.#events, openMs: this.#openMs() });
      return;
    }
    if (typeof next === 'string' && next !== '') this.#rv = next;
    l.synced();
  }

  #onDone(err: unknown): void {
    if (this.#settled) return;
    if (err === null || err === undefined) this.end();
    else if (httpStatusOf(err) === 410)
      this.#finish({ kind: 'watch-expired', events: this.#events, openMs: this.#openMs() });
    else this.#fail(this.#openedAt === undefined ? 'watch-failed' : 'connection-lost', err);
  }

  #fail(reason: 'watch-failed' | 'connection-lost' | 'stalled', error: unknown): void {
    if (this.#settled) return;
    this.#o.listener.failed(`watch: ${describeError(error)}`);
    this.#finish({
      kind: 'watch-failed',
      reason,
      error,
      resourceVersion: this.#rv,
      events: this.#events,
      openMs: this.#openMs(),
    });
  }

  #finish(o: AttemptOutcome): void {
    if (this.#settled) return;
    this.#settled = true;
    clearTimeout(this.#stallTimer);
    this.#handle?.abort();
    this.#o.listener.closed();
    this.#resolve(o);
  }

  #openMs(): number {
    return this.#openedAt === undefined ? 0 : this.#o.now() - this.#openedAt;
  }
}
