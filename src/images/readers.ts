/**
 * The streams that serve cached bytes: {@link EntryReader} reads a complete entry,
 * {@link FillReader} follows an object being filled (fill.ts) as it grows. Both read with one
 * positional read into a fresh buffer per chunk, pushed as is (no copy), and size their reads by
 * the load ({@link readChunkFor}).
 */
import type { FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { EntryMeta } from './cache-entry.js';
import { MetalbootError } from '../base/errors.js';

/** Something a response can be served from: a stored entry, or an object being filled. */
export interface StoredObject {
  readonly meta: EntryMeta;
  /** A stream of body bytes start..end (inclusive), or undefined when the entry vanished. */
  open(start: number, end: number): Promise<Readable | undefined>;
}

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
export class ReadStreams {
  #open = 0;

  /** Counts `stream` while it is open. */
  track(stream: Readable): void {
    this.#open++;
    stream.once('close', () => {
      this.#open--;
    });
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
function pushRead(
  stream: Readable,
  read: Promise<number>,
  buf: Buffer,
  short: string,
  advance: (bytesRead: number) => void,
): void {
  read.then(
    (bytesRead) => {
      if (stream.destroyed) return;
      if (bytesRead === 0) {
        stream.destroy(new MetalbootError('IMAGE_CACHE_ERR_LENGTH_MISMATCH', short));
        return;
      }
      advance(bytesRead);
      stream.push(bytesRead === buf.length ? buf : buf.subarray(0, bytesRead));
    },
    (err: Error) => stream.destroy(err),
  );
}

/** A complete entry's body from `start` to `end` (inclusive, file offsets); closes the handle. */
export class EntryReader extends Readable {
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
    this.#handle.close().then(
      () => cb(err),
      () => cb(err),
    );
  }
}

/** What a {@link FillReader} follows: a file being written (a Fill, fill.ts). */
export interface GrowingFile {
  /** Body bytes on disk so far. */
  readonly written: number;
  readonly state: 'filling' | 'complete' | 'failed';
  readonly error: Error | undefined;
  /** Reads body bytes at `position` (body offset). */
  read(buf: Buffer, length: number, position: number): Promise<number>;
  /** Calls `fn` once, at the next change of `written` or `state`. */
  wait(fn: () => void): void;
  unwait(fn: () => void): void;
  /** Gives back the reference the reader was created with. */
  release(): Promise<void>;
}

/** Body bytes `start` to `end` (inclusive) of a file being written, read as they arrive. */
export class FillReader extends Readable {
  readonly #fill: GrowingFile;
  readonly #reads: ReadStreams;
  #pos: number;
  readonly #end: number;
  #released = false;
  readonly #retry = (): void => this.#pump();
  #wanted = false;

  constructor(fill: GrowingFile, reads: ReadStreams, start: number, end: number) {
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
      pushRead(
        this,
        this.#fill.read(buf, buf.length, this.#pos),
        buf,
        'cache file shorter than written',
        (bytesRead) => {
          this.#pos += bytesRead;
        },
      );
      return;
    }
    if (this.#fill.state === 'failed') {
      this.destroy(this.#fill.error ?? new MetalbootError('IMAGE_CACHE_ERR_CLOSED', 'fill failed'));
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
