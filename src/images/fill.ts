/**
 * One object being written to the cache: an upstream body streamed into a temporary file that
 * any number of readers (readers.ts) stream from while it grows; readers in other processes
 * follow it through the book's progress events (cache-dir.ts). The cache directory creates it,
 * renames the file into an entry once {@link Fill.receive} is done, and finishes or fails it;
 * the image store (store.ts) hands it to the requests that want it.
 *
 * The descriptor stays open until the writer and every reader are done with it, so a reader
 * never sees the file closed under it, even after the rename or an eviction.
 */
import type { FileHandle } from 'node:fs/promises';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { EntryMeta } from './cache-entry.js';
import { MetalbootError } from '../base/errors.js';
import { FillReader, type GrowingFile, type ReadStreams, type StoredObject } from './readers.js';

/** Upstream bytes buffered while a write to the fill's file is running. */
const WRITE_BATCH = 1024 * 1024;

export type FillState = 'filling' | 'complete' | 'failed';

export class Fill implements StoredObject, GrowingFile {
  readonly #reads: ReadStreams;
  #written = 0;
  #state: FillState = 'filling';
  #error: Error | undefined;
  #refs = 1; // the writer
  readonly #waiters = new Set<() => void>();
  readonly #handle: FileHandle;
  readonly #onWritten: ((written: number) => void) | undefined;
  #body: Readable | undefined;
  #settle!: () => void;
  /** Resolves when the writer is done (stored or failed). */
  readonly settled = new Promise<void>((r) => (this.#settle = r));

  /**
   * `id` names the fill's file (cache-layout.ts); `onWritten` is told the body bytes on disk
   * after every write (the book's progress, for readers in other processes).
   */
  constructor(
    readonly id: string,
    readonly meta: EntryMeta,
    readonly headerLength: number,
    handle: FileHandle,
    reads: ReadStreams,
    onWritten?: (written: number) => void,
  ) {
    this.#handle = handle;
    this.#reads = reads;
    this.#onWritten = onWritten;
  }

  /** Body bytes on disk so far. */
  get written(): number {
    return this.#written;
  }

  get state(): FillState {
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

  /**
   * Writes `body` to the file to its end, checks that it was exactly `meta.size` bytes and
   * syncs the file. `onBytes` gets the length of every write.
   */
  async receive(body: Readable, onBytes: ((n: number) => void) | undefined): Promise<void> {
    this.#body = body;
    await pipeline(body, new FillWriter(this, onBytes));
    if (this.#written !== this.meta.size) {
      throw new MetalbootError(
        'IMAGE_CACHE_ERR_LENGTH_MISMATCH',
        `upstream sent ${this.#written} of ${this.meta.size} bytes`,
      );
    }
    await this.#handle.sync();
  }

  /** Destroys the upstream body: {@link receive} fails with `err`. */
  abort(err?: Error): void {
    this.#body?.destroy(err);
  }

  /** Writes chunks at the end of what is written so far, in one call where possible. */
  async append(chunks: readonly Buffer[]): Promise<void> {
    const total = chunks.reduce((n, c) => n + c.length, 0);
    if (this.#written + total > this.meta.size) {
      throw new MetalbootError('IMAGE_CACHE_ERR_LENGTH_MISMATCH', `upstream sent more than ${this.meta.size} bytes`);
    }
    let pending = chunks;
    while (pending.length > 0) {
      const { bytesWritten } = await this.#handle.writev(pending, this.headerLength + this.#written);
      this.#written += bytesWritten;
      pending = dropBytes(pending, bytesWritten);
      this.#wake();
      this.#onWritten?.(this.#written);
    }
  }

  /** The entry is stored: readers read to the end. */
  finish(): void {
    this.#state = 'complete';
    this.#wake();
  }

  /** Nothing is stored: readers fail once they have read what was written. */
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
  readonly #fill: Fill;
  readonly #onBytes: ((n: number) => void) | undefined;

  constructor(fill: Fill, onBytes: ((n: number) => void) | undefined) {
    super({ highWaterMark: WRITE_BATCH });
    this.#fill = fill;
    this.#onBytes = onBytes;
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
    this.#fill.append(chunks).then(
      () => {
        this.#onBytes?.(chunks.reduce((n, c) => n + c.length, 0));
        cb();
      },
      (err: Error) => cb(err),
    );
  }
}
