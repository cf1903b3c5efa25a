/**
 * The cache's book across processes: image worker processes reach the one {@link CacheBook}
 * the main process keeps over their IPC channel, so that all of them share one index, one
 * upstream request per key and one fill per artifact.
 *
 * - {@link RemoteBook} (in a worker) implements the book's calls as messages: `claim` and
 *   `startFill` wait for their reply, the rest are told and not answered.
 * - {@link BookServer} (in the main process) answers them from the CacheBook, and sends a
 *   worker the progress and end of every fill it was handed to follow.
 *
 * One channel carries a worker's messages in order, so a fill's progress never overtakes the
 * reply that named it. A worker that exits is {@link BookServer.detach}ed: the book fails its
 * tickets and fills, so that requests in the other workers stop waiting for it.
 */
import type { Book, CacheBook, Claim, ClaimRequest, FillEvent, Settled, SharedError } from './cache-book.js';
import type { EntryMeta } from './cache-entry.js';
import type { SharedBook } from './store.js';

/** A worker's call of the book. */
export type BookCall =
  | { readonly op: 'claim'; readonly rid: number; readonly key: string; readonly request: ClaimRequest }
  | {
      readonly op: 'startFill';
      readonly rid: number;
      readonly ticket: number;
      readonly meta: EntryMeta;
      readonly headerLength: number;
    }
  | { readonly op: 'settle'; readonly ticket: number; readonly outcome: Settled }
  | { readonly op: 'filling'; readonly ticket: number; readonly id: string }
  | { readonly op: 'progress'; readonly id: string; readonly written: number }
  | {
      readonly op: 'filled';
      readonly id: string;
      readonly file: string | undefined;
      readonly error: SharedError | undefined;
    }
  | { readonly op: 'remove'; readonly key: string; readonly file: string };

/** The book's answer to a call, or an event of a fill the worker follows. */
export type BookReply =
  | { readonly op: 'reply'; readonly rid: number; readonly value: Claim | string | undefined }
  | { readonly op: 'fill-event'; readonly event: FillEvent };

/** A book kept by the main process, as a worker calls it. */
export class RemoteBook implements SharedBook {
  readonly #send: (call: BookCall) => void;
  readonly #waiting = new Map<number, (value: Claim | string | undefined) => void>();
  #nextRid = 1;
  #onFillEvent: ((e: FillEvent) => void) | undefined;

  constructor(send: (call: BookCall) => void) {
    this.#send = send;
  }

  /** Hands a message from the main process to the book. */
  receive(m: BookReply): void {
    if (m.op === 'fill-event') {
      this.#onFillEvent?.(m.event);
      return;
    }
    const done = this.#waiting.get(m.rid);
    this.#waiting.delete(m.rid);
    done?.(m.value);
  }

  onFillEvent(listener: (e: FillEvent) => void): void {
    this.#onFillEvent = listener;
  }

  claim(key: string, request: ClaimRequest): Promise<Claim> {
    return this.#call((rid) => ({ op: 'claim', rid, key, request })) as Promise<Claim>;
  }

  startFill(ticket: number, meta: EntryMeta, headerLength: number): Promise<string | undefined> {
    return this.#call((rid) => ({ op: 'startFill', rid, ticket, meta, headerLength })) as Promise<string | undefined>;
  }

  settle(ticket: number, outcome: Settled): void {
    this.#send({ op: 'settle', ticket, outcome });
  }

  filling(ticket: number, id: string): void {
    this.#send({ op: 'filling', ticket, id });
  }

  progress(id: string, written: number): void {
    this.#send({ op: 'progress', id, written });
  }

  filled(id: string, file: string | undefined, error: SharedError | undefined): void {
    this.#send({ op: 'filled', id, file, error });
  }

  remove(key: string, file: string): void {
    this.#send({ op: 'remove', key, file });
  }

  #call(make: (rid: number) => BookCall): Promise<Claim | string | undefined> {
    const rid = this.#nextRid++;
    return new Promise((resolve) => {
      this.#waiting.set(rid, resolve);
      this.#send(make(rid));
    });
  }
}

/** The main process's side: one CacheBook, answered to every worker attached. */
export class BookServer {
  readonly #book: CacheBook;
  /** Per worker: how to reach it, and the fills it follows (fill id → listener). */
  readonly #workers = new Map<
    number,
    { readonly send: (m: BookReply) => void; readonly watching: Map<string, (e: FillEvent) => void> }
  >();

  constructor(book: CacheBook) {
    this.#book = book;
  }

  /** Worker `owner` is up and reached by `send`. */
  attach(owner: number, send: (m: BookReply) => void): void {
    this.#workers.set(owner, { send, watching: new Map() });
  }

  /** Worker `owner` is gone: nothing more is sent to it, and its tickets and fills fail. */
  detach(owner: number): void {
    const w = this.#workers.get(owner);
    if (w === undefined) return;
    this.#workers.delete(owner);
    for (const [id, listener] of w.watching) this.#book.unwatch(id, listener);
    this.#book.abandon(owner);
  }

  /** Answers a call of worker `owner`; a call that arrives after its worker was detached is dropped. */
  handle(owner: number, call: BookCall): void {
    // A ticket for a worker already gone would never be settled, and its waiters would wait.
    if (!this.#workers.has(owner)) return;
    const book: Book = this.#book;
    switch (call.op) {
      case 'claim':
        void this.#claim(owner, call.key, call.request).then((value) => this.#reply(owner, call.rid, value));
        return;
      case 'startFill':
        void book
          .startFill(call.ticket, call.meta, call.headerLength)
          .then((value) => this.#reply(owner, call.rid, value));
        return;
      case 'settle':
        book.settle(call.ticket, call.outcome);
        return;
      case 'filling':
        book.filling(call.ticket, call.id);
        return;
      case 'progress':
        book.progress(call.id, call.written);
        return;
      case 'filled':
        book.filled(call.id, call.file, call.error);
        return;
      case 'remove':
        book.remove(call.key, call.file);
        return;
    }
  }

  /**
   * The claim, with the worker following the fill it names from now on. A fill that ended
   * between the claim and the watch is claimed again (its entry, or whatever comes next).
   */
  async #claim(owner: number, key: string, request: ClaimRequest): Promise<Claim> {
    for (;;) {
      const claim = await this.#book.claim(key, request, owner);
      if (claim.kind !== 'fill' || this.#watch(owner, claim.fill.id)) return claim;
    }
  }

  #watch(owner: number, id: string): boolean {
    const w = this.#workers.get(owner);
    if (w === undefined) return true;
    if (w.watching.has(id)) return true;
    const listener = (e: FillEvent): void => {
      if (e.kind === 'end') w.watching.delete(id);
      w.send({ op: 'fill-event', event: e });
    };
    if (!this.#book.watch(id, listener)) return false;
    w.watching.set(id, listener);
    return true;
  }

  #reply(owner: number, rid: number, value: Claim | string | undefined): void {
    this.#workers.get(owner)?.send({ op: 'reply', rid, value });
  }
}
