/**
 * The image store: the read-through cache behind one question, "what do I send for this
 * artifact?" ({@link ImageStore.get}). The answer is a stored object to serve (an entry, or a
 * download still being stored), "relay it", or the failure of the upstream request it waited
 * for. The store is the only place that looks entries up, asks the upstream for a cached path,
 * shares those requests, starts fills and revalidates; the HTTP side (plugin.ts) only turns
 * its answers into responses.
 *
 * Per key, at most one thing is under way ({@link Pending}): an upstream request waiting for
 * its headers (`asking`), then, if its answer is stored, the fill it became (`filling`). The
 * first request for a missing or stale artifact starts the upstream request; requests that
 * arrive before its headers share its outcome; requests that arrive while it fills read the
 * fill as it grows. A revalidation (a conditional GET) is shared the same way. The policy
 * (what is stored, when an entry is stale, what a revalidation answer means) is cache-policy.ts;
 * the files are cache-dir.ts.
 *
 * The store's upstream requests belong to no client: they wait for a connection ahead of relays
 * and are never refused for a client's share (upstream-slots.ts). A fill writes to disk at the
 * upstream's pace and its readers read the file, so a reader that stops reading holds neither
 * the fill nor its connection; a fill that waits past the queue timeout fails every request
 * waiting for it with a 503.
 */
import type { Readable } from 'node:stream';
import type { FastifyBaseLogger } from 'fastify';
import type { Dispatcher } from 'undici';
import type { EntryMeta } from './cache-entry.js';
import type { IndexedEntry } from './cache-index.js';
import { CacheDir } from './cache-dir.js';
import { cacheability, isFresh, revalidationHeaders, revalidationOutcome } from './cache-policy.js';
import { classifyRefusal, classifyUpstreamError } from './errors.js';
import type { Fill } from './fill.js';
import { headerValue } from './headers.js';
import type { CacheFigures, ImageProxyMetrics, RequestResult } from './metrics.js';
import { answerObjectRequest, bodyRange, type ObjectAnswer, type ObjectRequest } from './ranges.js';
import type { StoredObject } from './readers.js';
import type { Upstream } from './upstream.js';

export interface ImageStoreOptions {
  /** Directory for entries (created if missing; `entries/` and `tmp/` inside are ours). */
  readonly dir: string;
  /** Upper bound of the bytes on disk. */
  readonly maxBytes: number;
  /** How long an entry is served without asking the upstream. */
  readonly revalidateAfterMs: number;
  readonly upstream: Upstream;
  readonly metrics: ImageProxyMetrics;
  /** For events outside a request: fills, revalidations. */
  readonly logger: FastifyBaseLogger;
  /** Epoch milliseconds. */
  readonly now: () => number;
}

/** What the store needs to know of a request for a cached path. */
export interface ImageRequest {
  /** Method, preconditions and Range, answered from the stored object (ranges.ts). */
  readonly conditions: ObjectRequest;
  /** Range or a conditional header is present: for an artifact not stored, relayed without starting a download. */
  readonly partial: boolean;
  /** Sent upstream with a download or revalidation this request starts. */
  readonly userAgent: string | undefined;
}

/** How a request was answered from the cache (the `result` label, metrics.ts). */
export type StoreResult = Extract<RequestResult, 'hit' | 'miss' | 'coalesced' | 'revalidated' | 'stale'>;

export type StoreAnswer =
  /**
   * From a stored object: `answer` to the conditions, and for a GET answered 200 or 206 with
   * bytes to send, `body`, already open (the caller owns it); otherwise `body` is undefined.
   */
  | {
      readonly kind: 'object';
      readonly result: StoreResult;
      readonly meta: EntryMeta;
      readonly answer: ObjectAnswer;
      readonly body: Readable | undefined;
    }
  /**
   * Not from the cache. `response` is the upstream's answer to the request this one started,
   * which is not stored: send it as it is (the caller owns it). Undefined: relay the request.
   */
  | { readonly kind: 'relay'; readonly response: Dispatcher.ResponseData | undefined }
  /** The upstream request this one started or waited for failed before its headers (counted already). */
  | { readonly kind: 'failure'; readonly error: unknown };

/** The outcome of one upstream request, shared by the requests that waited for it. */
type Asked =
  | { readonly kind: 'fill'; readonly fill: Fill }
  | { readonly kind: 'entry'; readonly entry: IndexedEntry; readonly result: 'revalidated' | 'stale' }
  /** `response` goes to the request that asked (and is taken); the others relay on their own. */
  | { readonly kind: 'relay'; response: Dispatcher.ResponseData | undefined }
  | { readonly kind: 'failed'; readonly error: unknown };

/** What is under way for one key. A fill counts only while its state is `filling`. */
type Pending =
  | { readonly kind: 'asking'; readonly asked: Promise<Asked> }
  | { readonly kind: 'filling'; readonly fill: Fill };

export class ImageStore {
  readonly #o: ImageStoreOptions;
  readonly #dir: CacheDir;
  readonly #pending = new Map<string, Pending>();

  constructor(o: ImageStoreOptions) {
    this.#o = o;
    const m = o.metrics;
    this.#dir = new CacheDir({
      dir: o.dir,
      maxBytes: o.maxBytes,
      logger: o.logger,
      now: o.now,
      onFillBytes: (n) => m.upstreamBytes.inc(n),
      onEvict: (n) => (n > 0 ? m.evictions.inc(n) : undefined),
      onFillEnd: (outcome) => m.fills.inc({ outcome }),
    });
  }

  /** Bytes and entries on disk, fills running: for the gauges. */
  figures(): CacheFigures {
    return { bytes: this.#dir.bytes, entries: this.#dir.entries, fillsRunning: this.#dir.fillsRunning };
  }

  /** Creates the directory, clears interrupted fills and indexes what is on disk. */
  open(): Promise<void> {
    return this.#dir.open();
  }

  /** Aborts fills in progress and waits for them to clean up. Entries stay on disk. */
  close(): Promise<void> {
    return this.#dir.close();
  }

  /** How to answer a request for `key`, a canonical path (paths.ts) with no query. */
  async get(key: string, request: ImageRequest): Promise<StoreAnswer> {
    // Two rounds at most: an entry can vanish (evicted, replaced) between lookup and open.
    for (let round = 0; round < 2; round++) {
      const pending = this.#pending.get(key);
      if (pending?.kind === 'filling' && pending.fill.state === 'filling') {
        const answer = await this.#answer(pending.fill, request, 'coalesced');
        if (answer !== undefined) return answer;
        continue;
      }
      const entry = this.#dir.peek(key);
      if (entry !== undefined && isFresh(entry.validatedAt, this.#o.now(), this.#o.revalidateAfterMs)) {
        const answer = await this.#answer(this.#dir.object(entry), request, 'hit');
        if (answer !== undefined) return answer;
        continue;
      }
      const shared = pending?.kind === 'asking' ? pending.asked : undefined;
      const first = shared === undefined;
      // HEAD never starts a download; neither does a partial or conditional request for what is not stored.
      if (first && (request.conditions.method === 'HEAD' || (entry === undefined && request.partial))) break;
      const outcome = await (shared ?? this.#ask(key, entry, request.userAgent));
      switch (outcome.kind) {
        case 'fill': {
          const answer = await this.#answer(outcome.fill, request, first ? 'miss' : 'coalesced');
          if (answer !== undefined) return answer;
          continue;
        }
        case 'entry': {
          const answer = await this.#answer(this.#dir.object(outcome.entry), request, outcome.result);
          if (answer !== undefined) return answer;
          continue;
        }
        case 'relay': {
          const response = first ? outcome.response : undefined;
          if (first) outcome.response = undefined;
          return { kind: 'relay', response };
        }
        case 'failed':
          return { kind: 'failure', error: outcome.error };
      }
    }
    return { kind: 'relay', response: undefined };
  }

  /**
   * The answer from a stored object: preconditions, Range, and the body opened. Undefined when
   * the object vanished before it could be opened (look the key up again).
   */
  async #answer(object: StoredObject, request: ImageRequest, result: StoreResult): Promise<StoreAnswer | undefined> {
    const meta = object.meta;
    const answer = answerObjectRequest(request.conditions, meta);
    if ((answer.status !== 200 && answer.status !== 206) || request.conditions.method === 'HEAD' || meta.size === 0) {
      return { kind: 'object', result, meta, answer, body: undefined };
    }
    const range = bodyRange(answer, meta.size);
    const body = await object.open(range.start, range.end);
    return body === undefined ? undefined : { kind: 'object', result, meta, answer, body };
  }

  /** Starts the one upstream request for `key` (a revalidation of `stale` when given). */
  #ask(key: string, stale: IndexedEntry | undefined, userAgent: string | undefined): Promise<Asked> {
    const asked = this.#request(key, stale, userAgent).finally(() => {
      if (this.#pending.get(key) === pending) this.#pending.delete(key);
    });
    const pending: Pending = { kind: 'asking', asked };
    this.#pending.set(key, pending);
    return asked;
  }

  async #request(key: string, stale: IndexedEntry | undefined, userAgent: string | undefined): Promise<Asked> {
    const { metrics: m, logger: log } = this.#o;
    const headers: Record<string, string> = {
      'accept-encoding': 'identity',
      via: '1.1 metalboot',
      ...(stale === undefined ? {} : revalidationHeaders(stale.meta.etag, stale.meta.lastModified)),
    };
    if (userAgent !== undefined) headers['user-agent'] = userAgent;
    let res: Dispatcher.ResponseData;
    try {
      res = await this.#o.upstream.request({
        path: key,
        method: 'GET',
        headers,
        onSend: () => m.upstreamRequests.inc({ kind: stale === undefined ? 'fill' : 'revalidate' }),
      });
    } catch (err) {
      // A refusal of the pool's limits (no connection in time) never reached the upstream.
      const refusal = classifyRefusal(err);
      const reason = refusal?.reason ?? classifyUpstreamError(err).reason;
      if (refusal === undefined) m.upstreamFailures.inc({ reason });
      if (stale === undefined) return { kind: 'failed', error: err };
      log.warn({ err, key, reason }, 'image proxy: revalidation failed, serving the stored entry');
      return { kind: 'entry', entry: stale, result: 'stale' };
    }
    if (stale !== undefined) {
      switch (revalidationOutcome(res.statusCode)) {
        case 'unchanged':
          await res.body.dump().catch(() => {});
          this.#dir.markValidated(stale);
          return { kind: 'entry', entry: stale, result: 'revalidated' };
        case 'stale':
          await res.body.dump().catch(() => {});
          log.warn(
            { key, status: res.statusCode },
            'image proxy: upstream error on revalidation, serving the stored entry',
          );
          return { kind: 'entry', entry: stale, result: 'stale' };
        case 'gone':
          this.#dir.remove(stale);
          return { kind: 'relay', response: res };
        case 'relay':
          return { kind: 'relay', response: res };
        case 'replaced':
          break;
      }
    }
    const verdict = cacheability(res.statusCode, res.headers, this.#o.maxBytes);
    if (!verdict.cacheable) {
      if (res.statusCode === 200) log.info({ key, reason: verdict.reason }, 'image proxy: answer not stored');
      return { kind: 'relay', response: res };
    }
    const fill = await this.#dir.startFill(
      {
        key,
        size: verdict.size,
        etag: headerValue(res.headers, 'etag'),
        lastModified: headerValue(res.headers, 'last-modified'),
        contentType: headerValue(res.headers, 'content-type'),
        storedAt: this.#o.now(),
      },
      res.body,
    );
    if (fill === undefined) {
      log.info({ key, size: verdict.size }, 'image proxy: no room to store the answer');
      return { kind: 'relay', response: res };
    }
    const filling: Pending = { kind: 'filling', fill };
    this.#pending.set(key, filling);
    void fill.settled.then(() => {
      if (this.#pending.get(key) === filling) this.#pending.delete(key);
    });
    return { kind: 'fill', fill };
  }
}
