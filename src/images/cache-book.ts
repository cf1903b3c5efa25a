/**
 * The cache's book: what is stored and what is under way, kept once per cache directory however
 * many processes serve from it. It owns the directory's layout (cache-layout.ts: the marker,
 * start-up clean-up and scan), the index (cache-index.ts: recency, byte accounting, eviction)
 * and, per key, the one upstream request or fill under way. The bytes are not its business: the
 * serving processes read entries, write fills and follow each other's fills through the files
 * (cache-dir.ts); the book only says who does what.
 *
 * Per key, at most one thing is under way: an upstream request waiting for its headers
 * (`asking`), then, if its answer is stored, the fill it became (`filling`). {@link CacheBook.claim}
 * answers a request with the stored entry, the fill to follow, the outcome of the request it
 * waited for, or a ticket to ask the upstream itself; the holder of a ticket reports what came
 * of it ({@link CacheBook.settle}, or {@link CacheBook.startFill} then {@link CacheBook.filling}).
 *
 * In one process the image store calls a CacheBook directly. With image worker processes the
 * main process holds the book and the workers reach it over IPC (book-ipc.ts), so that a boot
 * storm costs one upstream download per artifact, not one per worker. A worker that exits with
 * fills or tickets outstanding has them failed here ({@link CacheBook.abandon}), so that nobody
 * waits for it.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { CacheIndex, type IndexedEntry } from './cache-index.js';
import { entryFileName, type EntryMeta } from './cache-entry.js';
import { CacheLayout } from './cache-layout.js';
import { isFresh } from './cache-policy.js';

/** A fill as any process can follow it: its file is `tmp/<id>` until it is stored. */
export interface FillInfo {
  readonly id: string;
  readonly meta: EntryMeta;
  readonly headerLength: number;
  /** Body bytes on disk when this was sent; later figures come as {@link FillEvent}s. */
  readonly written: number;
}

/** What happened to a fill since its FillInfo: more bytes on disk, or its end. */
export type FillEvent =
  | { readonly kind: 'progress'; readonly id: string; readonly written: number }
  | {
      readonly kind: 'end';
      readonly id: string;
      readonly written: number;
      readonly stored: boolean;
      readonly error: SharedError | undefined;
    };

/** An error as it crosses processes: its code (what the client is told depends on it) and message. */
export interface SharedError {
  readonly code: string | undefined;
  readonly message: string;
}

/** How a request for a key is to be answered (see the file comment). */
export type Claim =
  | { readonly kind: 'fill'; readonly fill: FillInfo }
  | { readonly kind: 'entry'; readonly entry: IndexedEntry; readonly result: 'hit' | 'revalidated' | 'stale' }
  /** Ask the upstream (a revalidation of `stale` when given), then report with the ticket. */
  | { readonly kind: 'ask'; readonly ticket: number; readonly stale: IndexedEntry | undefined }
  /** Not from the cache: relay it. */
  | { readonly kind: 'relay' }
  /** The upstream request this one waited for failed before its headers. */
  | { readonly kind: 'failed'; readonly error: SharedError };

/** What came of an upstream request, other than a fill (those go through startFill). */
export type Settled =
  | { readonly kind: 'entry'; readonly entry: IndexedEntry; readonly result: 'revalidated' | 'stale' }
  | { readonly kind: 'relay' }
  | { readonly kind: 'failed'; readonly error: SharedError };

/** What a claim needs to know of its request. */
export interface ClaimRequest {
  /** A HEAD never starts a download. */
  readonly head: boolean;
  /** A Range or conditional request for what is not stored is relayed without starting one. */
  readonly partial: boolean;
}

/** The book as the image store sees it: a CacheBook in this process, or one reached over IPC. */
export interface Book {
  claim(key: string, request: ClaimRequest, owner?: number): Promise<Claim>;
  settle(ticket: number, outcome: Settled): void;
  /**
   * Turns a ticket into a fill of `meta`: reserves its bytes on disk (evicting as needed) and
   * names its file. Undefined when there is no room; the caller then settles the ticket.
   */
  startFill(ticket: number, meta: EntryMeta, headerLength: number): Promise<string | undefined>;
  /** The fill's file exists with its header: requests waiting for the ticket follow it. */
  filling(ticket: number, id: string): void;
  progress(id: string, written: number): void;
  /** The fill is over: `file` is its entry's file name when it was stored, undefined when not. */
  filled(id: string, file: string | undefined, error: SharedError | undefined): void;
  /** An entry's file is gone (evicted by another version, or deleted by hand), or gone upstream. */
  remove(key: string, file: string): void;
}

interface Asking {
  readonly kind: 'asking';
  readonly ticket: number;
  readonly owner: number;
  readonly outcome: Promise<Claim>;
  readonly resolve: (c: Claim) => void;
  readonly stale: IndexedEntry | undefined;
}

interface Filling {
  readonly kind: 'filling';
  readonly fill: FillRecord;
}

interface FillRecord {
  readonly id: string;
  readonly key: string;
  readonly meta: EntryMeta;
  readonly headerLength: number;
  readonly reservation: number;
  readonly owner: number;
  written: number;
  /** Told of every event of this fill (IPC followers). */
  readonly listeners: Set<(e: FillEvent) => void>;
}

export interface CacheBookOptions {
  readonly dir: string;
  readonly maxBytes: number;
  /** How long an entry is served without asking the upstream. */
  readonly revalidateAfterMs: number;
  readonly logger: FastifyBaseLogger;
  /** Epoch milliseconds. */
  readonly now: () => number;
  readonly onEvict?: (n: number) => void;
}

const generation = (): string => `${Date.now().toString(36)}${randomBytes(6).toString('hex')}`;

/** The owner of the local process's requests, for {@link CacheBook.abandon}. */
export const LOCAL_OWNER = 0;

export class CacheBook implements Book {
  readonly #o: CacheBookOptions;
  readonly #index: CacheIndex;
  readonly #layout: CacheLayout;
  readonly #pending = new Map<string, Asking | Filling>();
  /** Tickets out, by number: the key they are for. */
  readonly #tickets = new Map<number, string>();
  /** Fills named by startFill and not yet over (filling or not yet following). */
  readonly #fills = new Map<string, FillRecord>();
  #nextTicket = 1;

  constructor(o: CacheBookOptions) {
    this.#o = o;
    this.#index = new CacheIndex(o.maxBytes);
    this.#layout = new CacheLayout(o.dir);
  }

  get layout(): CacheLayout {
    return this.#layout;
  }

  get bytes(): number {
    return this.#index.bytes;
  }

  get entries(): number {
    return this.#index.size;
  }

  /** Fills named and not yet over. */
  get fillsRunning(): number {
    return this.#fills.size;
  }

  /** Claims the directory, clears interrupted fills and indexes what is on disk. */
  async open(): Promise<void> {
    const found = await this.#layout.open(this.#o.logger);
    for (const entry of found) {
      const { previous, evicted } = this.#index.load(entry);
      this.#unlinkAll(previous === undefined ? evicted : [previous, ...evicted]);
      this.#o.onEvict?.(evicted.length);
    }
    this.#o.logger.info({ entries: this.#index.size, bytes: this.#index.bytes }, 'image cache opened');
  }

  async claim(key: string, request: ClaimRequest, owner = LOCAL_OWNER): Promise<Claim> {
    const pending = this.#pending.get(key);
    if (pending?.kind === 'filling') return { kind: 'fill', fill: this.#info(pending.fill) };
    const entry = this.#index.peek(key);
    if (entry !== undefined && isFresh(entry.validatedAt, this.#o.now(), this.#o.revalidateAfterMs)) {
      this.#index.use(key);
      return { kind: 'entry', entry, result: 'hit' };
    }
    if (pending?.kind === 'asking') return pending.outcome;
    if (request.head || (entry === undefined && request.partial)) return { kind: 'relay' };
    const ticket = this.#nextTicket++;
    let resolve!: (c: Claim) => void;
    const outcome = new Promise<Claim>((r) => (resolve = r));
    this.#pending.set(key, { kind: 'asking', ticket, owner, outcome, resolve, stale: entry });
    this.#tickets.set(ticket, key);
    return { kind: 'ask', ticket, stale: entry };
  }

  settle(ticket: number, outcome: Settled): void {
    const asking = this.#asking(ticket);
    if (asking === undefined) return;
    const key = this.#tickets.get(ticket)!;
    this.#tickets.delete(ticket);
    this.#pending.delete(key);
    if (outcome.kind === 'entry') {
      // The revalidated entry, as the index holds it (the asker's copy may have crossed a process).
      const entry = this.#index.peek(key);
      if (entry !== undefined && entry.file === outcome.entry.file) {
        if (outcome.result === 'revalidated') entry.validatedAt = this.#o.now();
        this.#index.use(key);
        asking.resolve({ kind: 'entry', entry, result: outcome.result });
        return;
      }
      asking.resolve({ kind: 'relay' });
      return;
    }
    asking.resolve(outcome);
  }

  async startFill(ticket: number, meta: EntryMeta, headerLength: number): Promise<string | undefined> {
    const asking = this.#asking(ticket);
    if (asking === undefined) return undefined;
    const reservation = headerLength + meta.size;
    const evicted = this.#index.reserve(reservation);
    if (evicted === undefined) return undefined;
    this.#unlinkAll(evicted);
    this.#o.onEvict?.(evicted.length);
    const id = generation();
    this.#fills.set(id, {
      id,
      key: meta.key,
      meta,
      headerLength,
      reservation,
      owner: asking.owner,
      written: 0,
      listeners: new Set(),
    });
    return id;
  }

  filling(ticket: number, id: string): void {
    const asking = this.#asking(ticket);
    const fill = this.#fills.get(id);
    if (asking === undefined || fill === undefined) return;
    this.#tickets.delete(ticket);
    this.#pending.set(fill.key, { kind: 'filling', fill });
    asking.resolve({ kind: 'fill', fill: this.#info(fill) });
  }

  progress(id: string, written: number): void {
    const fill = this.#fills.get(id);
    if (fill === undefined || written <= fill.written) return;
    fill.written = written;
    const event: FillEvent = { kind: 'progress', id, written };
    for (const l of fill.listeners) l(event);
  }

  filled(id: string, file: string | undefined, error: SharedError | undefined): void {
    const fill = this.#fills.get(id);
    if (fill === undefined) return;
    this.#fills.delete(id);
    const pending = this.#pending.get(fill.key);
    if (pending?.kind === 'filling' && pending.fill === fill) this.#pending.delete(fill.key);
    if (file === undefined) {
      this.#index.release(fill.reservation);
    } else {
      const entry: IndexedEntry = {
        meta: fill.meta,
        file,
        headerLength: fill.headerLength,
        validatedAt: this.#o.now(),
      };
      const { previous, evicted } = this.#index.commit(entry, fill.reservation);
      this.#unlinkAll(previous === undefined ? evicted : [previous, ...evicted]);
      this.#o.onEvict?.(evicted.length);
      fill.written = fill.meta.size;
    }
    const event: FillEvent = { kind: 'end', id, written: fill.written, stored: file !== undefined, error };
    for (const l of fill.listeners) l(event);
    fill.listeners.clear();
  }

  remove(key: string, file: string): void {
    const e = this.#index.remove(key, file);
    if (e !== undefined) this.#unlinkAll([e]);
  }

  /**
   * Calls `listener` with every later event of fill `id` until its end. False when the fill is
   * over already (whoever asked then finds its entry, or nothing, by claiming again).
   */
  watch(id: string, listener: (e: FillEvent) => void): boolean {
    const fill = this.#fills.get(id);
    if (fill === undefined) return false;
    fill.listeners.add(listener);
    return true;
  }

  unwatch(id: string, listener: (e: FillEvent) => void): void {
    this.#fills.get(id)?.listeners.delete(listener);
  }

  /**
   * `owner` (a worker process) is gone: its tickets fail and its fills end unstored, their files
   * deleted, so that nobody waits for it.
   */
  abandon(owner: number): void {
    const gone: SharedError = { code: 'IMAGE_CACHE_ERR_CLOSED', message: 'the image worker filling it exited' };
    for (const [ticket, key] of [...this.#tickets]) {
      const p = this.#pending.get(key);
      if (p?.kind === 'asking' && p.owner === owner) this.settle(ticket, { kind: 'failed', error: gone });
    }
    for (const fill of [...this.#fills.values()]) {
      if (fill.owner !== owner) continue;
      this.filled(fill.id, undefined, gone);
      // Wherever its file got to: still a fill, or renamed to its entry name just before the exit.
      this.#layout.removeFill(fill.id, this.#o.logger);
      this.#layout.removeEntry(entryFileName(fill.key, fill.id), this.#o.logger);
    }
  }

  #asking(ticket: number): Asking | undefined {
    const key = this.#tickets.get(ticket);
    const p = key === undefined ? undefined : this.#pending.get(key);
    return p?.kind === 'asking' && p.ticket === ticket ? p : undefined;
  }

  #info(fill: FillRecord): FillInfo {
    return { id: fill.id, meta: fill.meta, headerLength: fill.headerLength, written: fill.written };
  }

  #unlinkAll(entries: readonly IndexedEntry[]): void {
    for (const e of entries) this.#layout.removeEntry(e.file, this.#o.logger);
  }
}
