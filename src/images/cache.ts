/**
 * The read-through cache's storage: a directory of entries, the fills that create them, and the
 * readers that stream from both. The shell around cache-index.ts (accounting, eviction)
 * and cache-entry.ts (file format); which responses are stored and when they are
 * revalidated is decided by the proxy (plugin.ts, cache-policy.ts).
 *
 * Layout under `dir`:
 * ```
 * entries/<sha256(key)[0..32]>-<generation>   complete entries (header + body)
 * tmp/<generation>                            fills in progress; emptied at start-up
 * ```
 *
 * A fill streams one upstream body into a temporary file, and becomes an entry by one rename,
 * only after the byte count equals the Content-Length and the file is fsynced. Until then it is
 * readable: any number of clients stream from the growing file (positional reads on the fill's
 * own descriptor), each at its own pace, so a boot storm costs one upstream download and
 * nobody waits for the download to finish before getting their first byte. If the upstream dies,
 * the temporary file is deleted and every reader fails, so each client sees a truncated
 * transfer; nothing partial is ever stored.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FastifyBaseLogger } from 'fastify';
import { CacheIndex, diskBytes, type IndexedEntry } from './cache-index.js';
import {
  decodeEntryHeader,
  encodeEntryHeader,
  ENTRY_FILE_NAME,
  entryFileName,
  entryHeaderLength,
  FIXED_HEADER_LENGTH,
  keyDigest,
  type EntryMeta,
} from './cache-entry.js';
import { IMAGE_PROXY_ERROR_CODES, ImageProxyError } from './errors.js';

/**
 * Bytes per read when streaming from the cache: large reads when few clients download (fewer
 * system calls and event-loop turns per byte), small ones in a boot storm, where each stream
 * holds about two chunks and hundreds of them would otherwise hold hundreds of MiB.
 * READ_BUDGET / open streams, rounded down to a power of two, within [READ_CHUNK_MIN, READ_CHUNK_MAX],
 * computed at every read, so streams opened before a storm shrink their reads when it comes.
 */
const READ_BUDGET = 32 * 1024 * 1024;
const READ_CHUNK_MIN = 64 * 1024;
const READ_CHUNK_MAX = 1024 * 1024;

/** The read size for one of `streams` open streams (exported for tests). */
export function readChunkFor(streams: number): number {
  const share = READ_BUDGET / Math.max(1, streams);
  if (share >= READ_CHUNK_MAX) return READ_CHUNK_MAX;
  if (share <= READ_CHUNK_MIN) return READ_CHUNK_MIN;
  return 2 ** Math.floor(Math.log2(share));
}

/** One cache's open read streams, which share READ_BUDGET between them. */
class ReadStreams {
  #open = 0;

  /** Counts `stream` while it is open. */
  track(stream: Readable): void {
    this.#open++;
    stream.once('close', () => { this.#open--; });
  }

  /** Bytes for the next read of one of them. */
  chunk(): number {
    return readChunkFor(this.#open);
  }
}

/**
 * Pushes what one positional read into `buf` returns. Zero bytes before the end means the file
 * is shorter than promised: the stream fails with `short`. `advance` runs before the push,
 * which may ask for the next read at once.
 */
function pushRead(stream: Readable, read: Promise<number>, buf: Buffer, short: string, advance: (bytesRead: number) => void): void {
  read.then(
    (bytesRead) => {
      if (stream.destroyed) return;
      if (bytesRead === 0) {
        stream.destroy(new ImageProxyError(IMAGE_PROXY_ERROR_CODES.LENGTH_MISMATCH, short));
        return;
      }
      advance(bytesRead);
      stream.push(bytesRead === buf.length ? buf : buf.subarray(0, bytesRead));
    },
    (err: Error) => stream.destroy(err),
  );
}

/** Upstream bytes buffered while a write to the fill's file is running. */
const WRITE_BATCH = 1024 * 1024;

export interface ImageCacheOptions {
  readonly dir: string;
  readonly maxBytes: number;
  readonly logger: FastifyBaseLogger;
  /** Epoch milliseconds. */
  readonly now: () => number;
  /** Called with each chunk length written by a fill (the upstream bytes metric). */
  readonly onFillBytes?: (n: number) => void;
  readonly onEvict?: (n: number) => void;
  readonly onFillEnd?: (outcome: FillOutcome) => void;
}

export type FillOutcome = 'complete' | 'failed' | 'aborted';

/** What a lookup finds: an object being filled (newest), a stored entry, or nothing. */
export type Lookup = { readonly kind: 'filling'; readonly fill: Fill } | { readonly kind: 'entry'; readonly entry: IndexedEntry } | undefined;

/** Something a response can be served from. */
export interface StoredObject {
  readonly meta: EntryMeta;
  /** A stream of body bytes start..end (inclusive), or undefined when the entry vanished. */
  open(start: number, end: number): Promise<Readable | undefined>;
}

const generation = (): string => `${Date.now().toString(36)}${randomBytes(6).toString('hex')}`;

export class ImageCache {
  readonly #o: ImageCacheOptions;
  readonly #index: CacheIndex;
  readonly #fills = new Map<string, Fill>();
  readonly #entriesDir: string;
  readonly #tmpDir: string;
  /** Streams of this cache's entries and fills; their reads share READ_BUDGET. */
  readonly #reads = new ReadStreams();
  #closed = false;
  #running = 0;

  constructor(o: ImageCacheOptions) {
    this.#o = o;
    this.#index = new CacheIndex(o.maxBytes);
    this.#entriesDir = path.join(o.dir, 'entries');
    this.#tmpDir = path.join(o.dir, 'tmp');
  }

  get bytes(): number {
    return this.#index.bytes;
  }

  get entries(): number {
    return this.#index.size;
  }

  /** Fills not yet over: still downloading, or storing, or cleaning up after a failure. */
  get fillsRunning(): number {
    return this.#running;
  }

  /** Creates the directories, clears interrupted fills and indexes what is on disk. */
  async open(): Promise<void> {
    await rm(this.#tmpDir, { recursive: true, force: true });
    await mkdir(this.#tmpDir, { recursive: true });
    await mkdir(this.#entriesDir, { recursive: true });
    const found: { entry: IndexedEntry; mtimeMs: number }[] = [];
    for (const name of await readdir(this.#entriesDir)) {
      const file = path.join(this.#entriesDir, name);
      const entry = ENTRY_FILE_NAME.test(name) ? await readEntry(file, name).catch(() => undefined) : undefined;
      if (entry === undefined) {
        this.#o.logger.warn({ file }, 'image cache: removing a broken entry');
        await rm(file, { recursive: true, force: true });
        continue;
      }
      found.push(entry);
    }
    // Oldest first, so the newest end up most recently used. A key stored twice (a crash
    // between a rename and the unlink of the old version) keeps its newest file.
    found.sort((a, b) => a.entry.meta.storedAt - b.entry.meta.storedAt || a.mtimeMs - b.mtimeMs);
    for (const { entry } of found) {
      const { previous, evicted } = this.#index.load(entry);
      this.#unlinkAll(previous === undefined ? evicted : [previous, ...evicted]);
      this.#o.onEvict?.(evicted.length);
    }
    this.#o.logger.info({ entries: this.#index.size, bytes: this.#index.bytes }, 'image cache opened');
  }

  lookup(key: string): Lookup {
    const fill = this.#fills.get(key);
    if (fill !== undefined) return { kind: 'filling', fill };
    const entry = this.#index.peek(key);
    return entry === undefined ? undefined : { kind: 'entry', entry };
  }

  /** A stored entry as something to serve from; marks it most recently used. */
  entryObject(entry: IndexedEntry): StoredObject {
    this.#index.use(entry.meta.key);
    const file = path.join(this.#entriesDir, entry.file);
    return {
      meta: entry.meta,
      open: async (start, end) => {
        let handle: FileHandle;
        try {
          handle = await open(file, 'r');
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
          this.#index.remove(entry.meta.key, entry.file);
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

  markValidated(entry: IndexedEntry): void {
    entry.validatedAt = this.#o.now();
  }

  /** Drops an entry the upstream no longer has. */
  remove(entry: IndexedEntry): void {
    const e = this.#index.remove(entry.meta.key, entry.file);
    if (e !== undefined) this.#unlinkAll([e]);
  }

  /**
   * Starts storing `body` as the new version of `meta.key`. Resolves with the fill once its
   * header is on disk (readers may attach at once), or with undefined when it cannot be stored:
   * no room (other fills hold the space) or the cache is closing. The caller then owns `body`.
   */
  async startFill(meta: EntryMeta, body: Readable): Promise<Fill | undefined> {
    if (this.#closed || this.#fills.has(meta.key)) return undefined;
    const header = encodeEntryHeader(meta);
    const reservation = header.length + meta.size;
    const evicted = this.#index.reserve(reservation);
    if (evicted === undefined) return undefined;
    this.#unlinkAll(evicted);
    this.#o.onEvict?.(evicted.length);
    const gen = generation();
    const tmp = path.join(this.#tmpDir, gen);
    let handle: FileHandle;
    try {
      handle = await open(tmp, 'w+');
      await handle.write(header, 0, header.length, 0);
    } catch (err) {
      this.#index.release(reservation);
      this.#o.logger.error({ err, key: meta.key }, 'image cache: cannot create a fill');
      await rm(tmp, { force: true }).catch(() => {});
      return undefined;
    }
    if (this.#closed) {
      this.#index.release(reservation);
      await handle.close();
      await rm(tmp, { force: true });
      return undefined;
    }
    const fill = new Fill(meta, header.length, handle, this.#reads);
    this.#fills.set(meta.key, fill);
    this.#running++;
    void this.#runFill(fill, body, tmp, gen, reservation);
    return fill;
  }

  async #runFill(fill: Fill, body: Readable, tmp: string, gen: string, reservation: number): Promise<void> {
    const log = this.#o.logger;
    fill.abort = (err) => body.destroy(err);
    try {
      await pipeline(body, new FillWriter(fill, this.#o.onFillBytes));
      if (fill.written !== fill.meta.size) {
        throw new ImageProxyError(IMAGE_PROXY_ERROR_CODES.LENGTH_MISMATCH, `upstream sent ${fill.written} of ${fill.meta.size} bytes`);
      }
      await fill.sync();
      const name = entryFileName(fill.meta.key, gen);
      await rename(tmp, path.join(this.#entriesDir, name));
      const entry: IndexedEntry = { meta: fill.meta, file: name, headerLength: fill.headerLength, validatedAt: this.#o.now() };
      this.#fills.delete(fill.meta.key);
      const { previous, evicted } = this.#index.commit(entry, reservation);
      this.#unlinkAll(previous === undefined ? evicted : [previous, ...evicted]);
      this.#o.onEvict?.(evicted.length);
      fill.finish();
      this.#o.onFillEnd?.('complete');
      log.info({ key: fill.meta.key, bytes: fill.meta.size, disk: diskBytes(entry) }, 'image cache: stored');
    } catch (err) {
      if (this.#fills.get(fill.meta.key) === fill) this.#fills.delete(fill.meta.key);
      this.#index.release(reservation);
      fill.fail(err as Error);
      body.destroy();
      this.#o.onFillEnd?.(this.#closed ? 'aborted' : 'failed');
      log.warn({ err, key: fill.meta.key, written: fill.written, size: fill.meta.size }, 'image cache: fill failed, nothing stored');
      await rm(tmp, { force: true }).catch(() => {});
    } finally {
      await fill.releaseWriter();
      this.#running--;
    }
  }

  /** Aborts fills in progress and waits for them to clean up. Entries stay on disk. */
  async close(): Promise<void> {
    this.#closed = true;
    const fills = [...this.#fills.values()];
    for (const f of fills) f.abort?.(new ImageProxyError(IMAGE_PROXY_ERROR_CODES.CLOSED, 'image cache closed'));
    await Promise.all(fills.map((f) => f.settled));
  }

  #unlinkAll(entries: readonly IndexedEntry[]): void {
    for (const e of entries) {
      unlink(path.join(this.#entriesDir, e.file)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') this.#o.logger.warn({ err, file: e.file }, 'image cache: cannot delete an entry');
      });
    }
  }
}

async function readEntry(file: string, name: string): Promise<{ entry: IndexedEntry; mtimeMs: number } | undefined> {
  const handle = await open(file, 'r');
  try {
    const st = await handle.stat();
    if (!st.isFile()) return undefined;
    const fixed = Buffer.alloc(FIXED_HEADER_LENGTH);
    await handle.read(fixed, 0, FIXED_HEADER_LENGTH, 0);
    const headerLength = entryHeaderLength(fixed);
    const header = Buffer.alloc(headerLength);
    const { bytesRead } = await handle.read(header, 0, headerLength, 0);
    if (bytesRead !== headerLength) return undefined;
    const meta = decodeEntryHeader(header);
    if (st.size !== headerLength + meta.size || !name.startsWith(`${keyDigest(meta.key)}-`)) return undefined;
    return { entry: { meta, file: name, headerLength, validatedAt: 0 }, mtimeMs: st.mtimeMs };
  } finally {
    await handle.close();
  }
}

/**
 * One object being written to the cache. Readers attach with {@link reader} while it fills;
 * the descriptor stays open until the writer and every reader are done with it.
 */
export class Fill implements StoredObject {
  readonly #reads: ReadStreams;
  #written = 0;
  #state: 'filling' | 'complete' | 'failed' = 'filling';
  #error: Error | undefined;
  #refs = 1; // the writer
  readonly #waiters = new Set<() => void>();
  readonly #handle: FileHandle;
  #settle!: () => void;
  /** Resolves when the writer is done (stored or failed). */
  readonly settled = new Promise<void>((r) => (this.#settle = r));
  /** Set by the cache: destroys the upstream body. */
  abort: ((err: Error) => void) | undefined;

  constructor(
    readonly meta: EntryMeta,
    readonly headerLength: number,
    handle: FileHandle,
    reads: ReadStreams,
  ) {
    this.#handle = handle;
    this.#reads = reads;
  }

  /** Body bytes on disk so far. */
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
    return this.reader(start, end);
  }

  /**
   * A stream of body bytes start..end (inclusive) that follows the fill as it grows, or
   * undefined when the fill is over and its descriptor closed (look the key up again).
   */
  reader(start: number, end: number): Readable | undefined {
    if (this.#refs === 0) return undefined;
    this.#refs++;
    return new FillReader(this, this.#reads, start, end);
  }

  /** Writes chunks at the end of what is written so far, in one call where possible. */
  async append(chunks: readonly Buffer[]): Promise<void> {
    const total = chunks.reduce((n, c) => n + c.length, 0);
    if (this.#written + total > this.meta.size) {
      throw new ImageProxyError(IMAGE_PROXY_ERROR_CODES.LENGTH_MISMATCH, `upstream sent more than ${this.meta.size} bytes`);
    }
    let pending = chunks;
    while (pending.length > 0) {
      const { bytesWritten } = await this.#handle.writev(pending, this.headerLength + this.#written);
      this.#written += bytesWritten;
      pending = dropBytes(pending, bytesWritten);
      this.#wake();
    }
  }

  async sync(): Promise<void> {
    await this.#handle.sync();
  }

  finish(): void {
    this.#state = 'complete';
    this.#wake();
  }

  fail(err: Error): void {
    this.#state = 'failed';
    this.#error = err;
    this.#wake();
  }

  async releaseWriter(): Promise<void> {
    await this.release();
    this.#settle();
  }

  async release(): Promise<void> {
    if (--this.#refs === 0) await this.#handle.close().catch(() => {});
  }

  /** Reads body bytes at `position` (body offset). */
  read(buf: Buffer, length: number, position: number): Promise<number> {
    return this.#handle.read(buf, 0, length, this.headerLength + position).then((r) => r.bytesRead);
  }

  wait(fn: () => void): void {
    this.#waiters.add(fn);
  }

  unwait(fn: () => void): void {
    this.#waiters.delete(fn);
  }

  #wake(): void {
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const fn of waiters) fn();
  }
}

/** What is left of `chunks` once its first `n` bytes are written. */
function dropBytes(chunks: readonly Buffer[], n: number): readonly Buffer[] {
  let i = 0;
  while (i < chunks.length && n >= chunks[i]!.length) n -= chunks[i++]!.length;
  if (i === chunks.length) return [];
  return [chunks[i]!.subarray(n), ...chunks.slice(i + 1)];
}

/**
 * The fill's sink. A Writable batches for free: chunks that arrive while a write is running are
 * handed over together to `_writev`, so a fast upstream means few, large writes.
 */
class FillWriter extends Writable {
  constructor(
    private readonly fill: Fill,
    private readonly onBytes: ((n: number) => void) | undefined,
  ) {
    super({ highWaterMark: WRITE_BATCH });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.#append([chunk], cb);
  }

  override _writev(chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void): void {
    this.#append(
      chunks.map((c) => c.chunk),
      cb,
    );
  }

  #append(chunks: Buffer[], cb: (err?: Error | null) => void): void {
    this.fill.append(chunks).then(
      () => {
        this.onBytes?.(chunks.reduce((n, c) => n + c.length, 0));
        cb();
      },
      (err: Error) => cb(err),
    );
  }
}

/** A complete entry's body from `start` to `end` (inclusive, file offsets); closes the handle. */
class EntryReader extends Readable {
  readonly #handle: FileHandle;
  readonly #reads: ReadStreams;
  #pos: number;
  readonly #end: number;
  #reading = false;

  constructor(handle: FileHandle, reads: ReadStreams, start: number, end: number) {
    super({ highWaterMark: READ_CHUNK_MIN });
    reads.track(this);
    this.#handle = handle;
    this.#reads = reads;
    this.#pos = start;
    this.#end = end;
  }

  override _read(): void {
    if (this.#reading) return;
    if (this.#pos > this.#end) {
      this.push(null);
      return;
    }
    const buf = Buffer.allocUnsafe(Math.min(this.#reads.chunk(), this.#end + 1 - this.#pos));
    this.#reading = true;
    const read = this.#handle.read(buf, 0, buf.length, this.#pos).then((r) => r.bytesRead);
    pushRead(this, read, buf, 'cache entry shorter than its header says', (bytesRead) => {
      this.#reading = false;
      this.#pos += bytesRead;
    });
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#handle.close().then(() => cb(err), () => cb(err));
  }
}

class FillReader extends Readable {
  readonly #fill: Fill;
  readonly #reads: ReadStreams;
  #pos: number;
  readonly #end: number;
  #released = false;
  readonly #retry = (): void => this.#pump();
  #wanted = false;

  constructor(fill: Fill, reads: ReadStreams, start: number, end: number) {
    super({ highWaterMark: READ_CHUNK_MIN });
    reads.track(this);
    this.#reads = reads;
    this.#fill = fill;
    this.#pos = start;
    this.#end = end;
  }

  override _read(): void {
    this.#wanted = true;
    this.#pump();
  }

  #pump(): void {
    if (this.destroyed || !this.#wanted) return;
    if (this.#pos > this.#end) {
      this.push(null);
      return;
    }
    const available = this.#fill.written;
    if (this.#pos < available) {
      const buf = Buffer.allocUnsafe(Math.min(this.#reads.chunk(), available - this.#pos, this.#end + 1 - this.#pos));
      this.#wanted = false;
      pushRead(this, this.#fill.read(buf, buf.length, this.#pos), buf, 'cache file shorter than written', (bytesRead) => {
        this.#pos += bytesRead;
      });
      return;
    }
    if (this.#fill.state === 'failed') {
      this.destroy(this.#fill.error ?? new ImageProxyError(IMAGE_PROXY_ERROR_CODES.CLOSED, 'fill failed'));
      return;
    }
    this.#fill.wait(this.#retry);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#fill.unwait(this.#retry);
    if (this.#released) {
      cb(err);
      return;
    }
    this.#released = true;
    this.#fill.release().then(
      () => cb(err),
      () => cb(err),
    );
  }
}
