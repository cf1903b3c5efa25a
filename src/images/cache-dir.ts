/**
 * The cache's files as one serving process sees them: it opens entries to serve them, writes the
 * fills it was given a ticket for, and follows fills that another process writes. What is stored
 * and who fills what is the book's (cache-book.ts), reached directly or over IPC; the layout of
 * the files is cache-layout.ts. Fills are in fill.ts, the streams in readers.ts.
 *
 * A fill streams one upstream body into a temporary file, and becomes an entry by one rename,
 * only after the byte count equals the Content-Length and the file is fsynced. Until then it is
 * readable: any number of clients stream from the growing file (positional reads), each at its
 * own pace, in this process or in another one, so a boot storm costs one upstream download and
 * nobody waits for the download to finish before getting their first byte. If the upstream dies,
 * the temporary file is deleted and every reader fails, so each client sees a truncated
 * transfer; nothing partial is ever stored.
 *
 * A follower in another process opens the fill's file by its name and learns how much of it is
 * written from the book's events (at least every {@link PROGRESS_STEP} bytes). If the fill has
 * been stored by the time it opens it, it finds the file under its entry name, which the fill's
 * id determines.
 */
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { FastifyBaseLogger } from 'fastify';
import type { Book, FillEvent, FillInfo, SharedError } from './cache-book.js';
import { encodeEntryHeader, entryFileName, type EntryMeta } from './cache-entry.js';
import type { IndexedEntry } from './cache-index.js';
import type { CacheLayout } from './cache-layout.js';
import { MetalbootError } from '../base/errors.js';
import { errorCode } from '../relay/upstream-failure.js';
import { Fill } from './fill.js';
import { EntryReader, FillReader, ReadStreams, type GrowingFile, type StoredObject } from './readers.js';

export interface CacheDirOptions {
  readonly layout: CacheLayout;
  readonly book: Book;
  readonly logger: FastifyBaseLogger;
  /** Called with each chunk length written by a fill (the upstream bytes metric). */
  readonly onFillBytes?: (n: number) => void;
  readonly onFillEnd?: (outcome: FillOutcome) => void;
}

export type FillOutcome = 'complete' | 'failed' | 'aborted';

/** The most bytes a fill writes before it tells the book how far it got. */
export const PROGRESS_STEP = 1024 * 1024;

/** An error as the book carries it to other processes. */
export function shareError(err: unknown): SharedError {
  return { code: errorCode(err), message: err instanceof Error ? err.message : String(err) };
}

/** The error a shared one stands for: its code is what the client's answer depends on (errors.ts). */
export function sharedToError(e: SharedError): Error {
  return Object.assign(new Error(e.message), e.code === undefined ? {} : { code: e.code });
}

export class CacheDir {
  readonly #o: CacheDirOptions;
  readonly #layout: CacheLayout;
  /** Streams of this process's entries and fills; their reads share one budget. */
  readonly #reads = new ReadStreams();
  /** Fills this process writes and that are not yet over, by id. */
  readonly #running = new Map<string, Fill>();
  /** Fills of other processes that this process reads, by id, until their end. */
  readonly #followed = new Map<string, FollowedFill>();
  #closed = false;

  constructor(o: CacheDirOptions) {
    this.#o = o;
    this.#layout = o.layout;
  }

  /** Fills this process writes: still downloading, or storing, or cleaning up after a failure. */
  get fillsRunning(): number {
    return this.#running.size;
  }

  /** A stored entry as something to serve from. */
  object(entry: IndexedEntry): StoredObject {
    const file = this.#layout.entryPath(entry.file);
    return {
      meta: entry.meta,
      open: async (start, end) => {
        let handle: FileHandle;
        try {
          handle = await open(file, 'r');
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
          this.#o.book.remove(entry.meta.key, entry.file);
          return undefined;
        }
        if (end < start) {
          await handle.close();
          return Readable.from([]);
        }
        return new EntryReader(handle, this.#reads, entry.headerLength + start, entry.headerLength + end);
      },
    };
  }

  /** A fill under way, written here or by another process, as something to serve from. */
  follow(info: FillInfo): StoredObject {
    const own = this.#running.get(info.id);
    if (own !== undefined) return own;
    let followed = this.#followed.get(info.id);
    if (followed === undefined) {
      followed = new FollowedFill(info, this.#layout, this.#reads, () => this.#followed.delete(info.id));
      this.#followed.set(info.id, followed);
    } else {
      followed.advance(info.written);
    }
    return followed;
  }

  /** What the book says of a fill another process writes (IPC). */
  onFillEvent(e: FillEvent): void {
    const f = this.#followed.get(e.id);
    if (f === undefined) return;
    if (e.kind === 'progress') {
      f.advance(e.written);
      return;
    }
    this.#followed.delete(e.id);
    f.end(e.written, e.stored, e.error);
  }

  /**
   * Starts storing `body` as the new version of `meta.key`, for the holder of `ticket`. Resolves
   * with the fill once its header is on disk (readers may attach at once), or with undefined when
   * it cannot be stored: no room (other fills hold the space), the file cannot be made, or the
   * cache is closing. The caller then owns `body` and settles the ticket.
   */
  async startFill(ticket: number, meta: EntryMeta, body: Readable): Promise<Fill | undefined> {
    if (this.#closed) return undefined;
    const book = this.#o.book;
    const header = encodeEntryHeader(meta);
    const id = await book.startFill(ticket, meta, header.length);
    if (id === undefined) return undefined;
    const tmp = this.#layout.fillPath(id);
    let handle: FileHandle;
    try {
      handle = await open(tmp, 'w+');
      await handle.write(header, 0, header.length, 0);
    } catch (err) {
      book.filled(id, undefined, shareError(err));
      this.#o.logger.error({ err, key: meta.key }, 'image cache: cannot create a fill');
      await rm(tmp, { force: true }).catch(() => {});
      return undefined;
    }
    if (this.#closed) {
      book.filled(id, undefined, undefined);
      await handle.close();
      await rm(tmp, { force: true });
      return undefined;
    }
    let told = 0;
    const fill = new Fill(id, meta, header.length, handle, this.#reads, (written) => {
      if (written - told < PROGRESS_STEP && written < meta.size) return;
      told = written;
      book.progress(id, written);
    });
    this.#running.set(id, fill);
    book.filling(ticket, id);
    void this.#runFill(fill, body, tmp);
    return fill;
  }

  async #runFill(fill: Fill, body: Readable, tmp: string): Promise<void> {
    const log = this.#o.logger;
    const book = this.#o.book;
    try {
      await fill.receive(body, this.#o.onFillBytes);
      const name = entryFileName(fill.meta.key, fill.id);
      await rename(tmp, this.#layout.entryPath(name));
      // The book's commit and finish() in one synchronous step: whoever looks the key up in this
      // process finds the fill still filling or the entry, never neither.
      book.filled(fill.id, name, undefined);
      fill.finish();
      this.#o.onFillEnd?.('complete');
      log.info({ key: fill.meta.key, bytes: fill.meta.size }, 'image cache: stored');
    } catch (err) {
      fill.fail(err as Error);
      fill.abort();
      book.filled(fill.id, undefined, shareError(err));
      this.#o.onFillEnd?.(this.#closed ? 'aborted' : 'failed');
      log.warn(
        { err, key: fill.meta.key, written: fill.written, size: fill.meta.size },
        'image cache: fill failed, nothing stored',
      );
      await rm(tmp, { force: true }).catch(() => {});
    } finally {
      await fill.releaseWriter();
      this.#running.delete(fill.id);
    }
  }

  /** Aborts fills in progress and waits for them to clean up. Entries stay on disk. */
  async close(): Promise<void> {
    this.#closed = true;
    const fills = [...this.#running.values()].filter((f) => f.state === 'filling');
    for (const f of fills) f.abort(new MetalbootError('IMAGE_CACHE_ERR_CLOSED', 'image cache closed'));
    await Promise.all(fills.map((f) => f.settled));
  }
}

/**
 * A fill written by another process, as this one reads it: its own descriptor of the file, and
 * what the book's events say of how far it got. The descriptor is opened by the first reader and
 * closed with the last one.
 */
class FollowedFill implements StoredObject, GrowingFile {
  #written: number;
  #state: 'filling' | 'complete' | 'failed' = 'filling';
  #error: Error | undefined;
  #handle: Promise<FileHandle | undefined> | undefined;
  #refs = 0;
  readonly #waiters = new Set<() => void>();

  constructor(
    readonly info: FillInfo,
    readonly layout: CacheLayout,
    readonly reads: ReadStreams,
    readonly onEnd: () => void,
  ) {
    this.#written = info.written;
  }

  get meta(): EntryMeta {
    return this.info.meta;
  }

  get written(): number {
    return this.#written;
  }

  get state(): 'filling' | 'complete' | 'failed' {
    return this.#state;
  }

  get error(): Error | undefined {
    return this.#error;
  }

  async open(start: number, end: number): Promise<Readable | undefined> {
    this.#refs++;
    this.#handle ??= this.#openFile();
    if ((await this.#handle) === undefined) {
      await this.release();
      return undefined;
    }
    return new FillReader(this, this.reads, start, end);
  }

  /** The fill's file: still under its fill name, or already stored under its entry name. */
  async #openFile(): Promise<FileHandle | undefined> {
    for (const file of [
      this.layout.fillPath(this.info.id),
      this.layout.entryPath(entryFileName(this.info.meta.key, this.info.id)),
    ]) {
      try {
        return await open(file, 'r');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    return undefined;
  }

  advance(written: number): void {
    if (written <= this.#written) return;
    this.#written = written;
    this.#wake();
  }

  end(written: number, stored: boolean, error: SharedError | undefined): void {
    this.#written = Math.max(this.#written, written);
    this.#state = stored ? 'complete' : 'failed';
    if (!stored)
      this.#error =
        error === undefined
          ? new MetalbootError('IMAGE_CACHE_ERR_CLOSED', 'fill failed in another image worker')
          : sharedToError(error);
    this.onEnd();
    this.#wake();
  }

  async read(buf: Buffer, length: number, position: number): Promise<number> {
    const handle = await this.#handle;
    if (handle === undefined) throw new MetalbootError('IMAGE_CACHE_ERR_CLOSED', 'fill file gone');
    const { bytesRead } = await handle.read(buf, 0, length, this.info.headerLength + position);
    return bytesRead;
  }

  wait(fn: () => void): void {
    this.#waiters.add(fn);
  }

  unwait(fn: () => void): void {
    this.#waiters.delete(fn);
  }

  async release(): Promise<void> {
    if (--this.#refs > 0) return;
    const handle = this.#handle;
    this.#handle = undefined;
    const h = await handle?.catch(() => undefined);
    await h?.close().catch(() => {});
  }

  #wake(): void {
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const fn of waiters) fn();
  }
}
