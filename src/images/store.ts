/**
 * The image store: the read-through cache behind one question, "what do I send for this
 * artifact?" ({@link ImageStore.get}). The answer is a stored object to serve (an entry, or a
 * download still being stored), "relay it", or the failure of the upstream request it waited
 * for. The store is the only place that looks entries up, asks the upstream for a cached path,
 * shares those requests, starts fills and revalidates; the HTTP side (plugin.ts) only turns
 * its answers into responses.
 *
 * Per key, at most one thing is under way, and the book (cache-book.ts) keeps it: an upstream
 * request waiting for its headers, then, if its answer is stored, the fill it became. The first
 * request for a missing or stale artifact gets a ticket and asks the upstream; requests that
 * arrive before its headers share its outcome; requests that arrive while it fills read the
 * fill as it grows, in this process or in another image worker. A revalidation (a conditional
 * GET) is shared the same way. The policy (what is stored, when an entry is stale, what a
 * revalidation answer means) is cache-policy.ts; the files are cache-dir.ts.
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
import { CacheBook, type Book, type Claim, type FillEvent } from './cache-book.js';
import { CacheDir, shareError, sharedToError } from './cache-dir.js';
import { CacheLayout } from './cache-layout.js';
import { cacheability, revalidationHeaders, revalidationOutcome } from './cache-policy.js';
import { classifyRefusal, classifyUpstreamError } from './errors.js';
import { headerValue } from './headers.js';
import type { CacheFigures, ImageProxyMetrics, RequestResult } from './metrics.js';
import { answerObjectRequest, bodyRange, type ObjectAnswer, type ObjectRequest } from './ranges.js';
import type { StoredObject } from './readers.js';
import type { Upstream } from './upstream.js';

/** A book kept by another process (the main one, for image workers), and its fills' events. */
export interface SharedBook extends Book {
  /** Registers the one listener of the events of fills this process follows. */
  onFillEvent(listener: (e: FillEvent) => void): void;
}

export interface ImageStoreOptions {
  /** Directory for entries (created if missing; `entries/` and `tmp/` inside are ours). */
  readonly dir: string;
  /** Upper bound of the bytes on disk. */
  readonly maxBytes: number;
  /** How long an entry is served without asking the upstream. */
  readonly revalidateAfterMs: number;
  /**
   * The book of another process, which has opened the directory (image workers); by default the
   * store keeps its own and opens the directory itself.
   */
  readonly book?: SharedBook;
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

/** What a request is answered from: a stored object, or the relay or failure it gets. */
type Next =
  | { readonly kind: 'object'; readonly object: StoredObject; readonly result: StoreResult }
  | Exclude<StoreAnswer, { kind: 'object' }>;

export class ImageStore {
  readonly #o: ImageStoreOptions;
  /** The book this store keeps itself; undefined when another process keeps it. */
  readonly #ownBook: CacheBook | undefined;
  readonly #book: Book;
  readonly #dir: CacheDir;

  constructor(o: ImageStoreOptions) {
    this.#o = o;
    const m = o.metrics;
    const layout = new CacheLayout(o.dir);
    this.#ownBook =
      o.book === undefined
        ? new CacheBook({
            dir: o.dir,
            maxBytes: o.maxBytes,
            revalidateAfterMs: o.revalidateAfterMs,
            logger: o.logger,
            now: o.now,
            onEvict: (n) => (n > 0 ? m.evictions?.inc(n) : undefined),
          })
        : undefined;
    this.#book = o.book ?? this.#ownBook!;
    this.#dir = new CacheDir({
      layout,
      book: this.#book,
      logger: o.logger,
      onFillBytes: (n) => m.upstreamBytes.inc(n),
      onFillEnd: (outcome) => m.fills.inc({ outcome }),
    });
    o.book?.onFillEvent((e) => this.#dir.onFillEvent(e));
  }

  /** Bytes and entries on disk, fills running: for the gauges (of the book this store keeps). */
  figures(): CacheFigures {
    const b = this.#ownBook;
    return { bytes: b?.bytes ?? 0, entries: b?.entries ?? 0, fillsRunning: this.#dir.fillsRunning };
  }

  /** With a book of its own: creates the directory, clears interrupted fills and indexes what is on disk. */
  async open(): Promise<void> {
    await this.#ownBook?.open();
  }

  /** Aborts fills in progress and waits for them to clean up. Entries stay on disk. */
  close(): Promise<void> {
    return this.#dir.close();
  }

  /** How to answer a request for `key`, a canonical path (paths.ts) with no query. */
  async get(key: string, request: ImageRequest): Promise<StoreAnswer> {
    const wants = { head: request.conditions.method === 'HEAD', partial: request.partial };
    // Two rounds at most: an entry can vanish (evicted, replaced) between the claim and the open.
    for (let round = 0; round < 2; round++) {
      const claim = await this.#book.claim(key, wants);
      const next =
        claim.kind === 'ask'
          ? await this.#request(key, claim.ticket, claim.stale, request.userAgent)
          : this.#claimed(claim);
      if (next.kind !== 'object') return next;
      const answer = await this.#answer(next.object, request, next.result);
      if (answer !== undefined) return answer;
    }
    return { kind: 'relay', response: undefined };
  }

  /** What a claim that is not a ticket says to serve. */
  #claimed(claim: Exclude<Claim, { kind: 'ask' }>): Next {
    switch (claim.kind) {
      case 'fill':
        return { kind: 'object', object: this.#dir.follow(claim.fill), result: 'coalesced' };
      case 'entry':
        return { kind: 'object', object: this.#dir.object(claim.entry), result: claim.result };
      case 'relay':
        return { kind: 'relay', response: undefined };
      case 'failed':
        return { kind: 'failure', error: sharedToError(claim.error) };
    }
  }

  /**
   * The answer from a stored object: preconditions, Range, and the body opened. Undefined when
   * the object vanished before it could be opened (claim the key again).
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

  /**
   * The one upstream request for `key` (a revalidation of `stale` when given), for the holder of
   * `ticket`: what came of it is told to the book, for the requests waiting for it.
   */
  async #request(
    key: string,
    ticket: number,
    stale: IndexedEntry | undefined,
    userAgent: string | undefined,
  ): Promise<Next> {
    const { metrics: m, logger: log } = this.#o;
    const book = this.#book;
    const headers: Record<string, string> = {
      'accept-encoding': 'identity',
      via: '1.1 metalboot',
      ...(stale === undefined ? {} : revalidationHeaders(stale.meta.etag, stale.meta.lastModified)),
    };
    if (userAgent !== undefined) headers['user-agent'] = userAgent;
    // What the book is told, for the requests waiting for this one; and what this one serves.
    const stored = (entry: IndexedEntry, result: 'revalidated' | 'stale'): Next => {
      book.settle(ticket, { kind: 'entry', entry, result });
      return { kind: 'object', object: this.#dir.object(entry), result };
    };
    const relay = (response: Dispatcher.ResponseData): Next => {
      book.settle(ticket, { kind: 'relay' });
      return { kind: 'relay', response };
    };
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
      if (stale === undefined) {
        book.settle(ticket, { kind: 'failed', error: shareError(err) });
        return { kind: 'failure', error: err };
      }
      log.warn({ err, key, reason }, 'image proxy: revalidation failed, serving the stored entry');
      return stored(stale, 'stale');
    }
    if (stale !== undefined) {
      switch (revalidationOutcome(res.statusCode)) {
        case 'unchanged':
          await res.body.dump().catch(() => {});
          return stored(stale, 'revalidated');
        case 'stale':
          await res.body.dump().catch(() => {});
          log.warn(
            { key, status: res.statusCode },
            'image proxy: upstream error on revalidation, serving the stored entry',
          );
          return stored(stale, 'stale');
        case 'gone':
          book.remove(key, stale.file);
          return relay(res);
        case 'relay':
          return relay(res);
        case 'replaced':
          break;
      }
    }
    const verdict = cacheability(res.statusCode, res.headers, this.#o.maxBytes);
    if (!verdict.cacheable) {
      if (res.statusCode === 200) log.info({ key, reason: verdict.reason }, 'image proxy: answer not stored');
      return relay(res);
    }
    const fill = await this.#dir.startFill(
      ticket,
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
      return relay(res);
    }
    return { kind: 'object', object: fill, result: 'miss' };
  }
}
