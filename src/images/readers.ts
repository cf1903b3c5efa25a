/**
 * The streams that serve cached bytes: {@link EntryReader} reads a complete entry,
 * {@link FillReader} follows an object being filled (fill.ts) as it grows. Both size their reads
 * by the load ({@link readChunkFor}) and can be used two ways:
 * - as a Readable: one positional read into a fresh buffer per chunk, pushed as is (the consumer
 *   owns it);
 * - written straight into an HTTP response ({@link CacheBody.writeTo}), which is how the image
 *   proxy serves them: a few buffers per response, taken from the cache's pool and given back
 *   when the socket has taken their bytes (the write callback), so that a byte costs one read
 *   and one write and no allocation, page fault or garbage; the next read runs while the
 *   previous buffer is written. Each chunk written is also emitted as `data`, so listeners that
 *   count bytes or watch for a stalled client (client-idle.ts) see what they see when it is
 *   piped.
 */
import { read as fsRead } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
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

/**
 * Buffers one response written with {@link CacheBody.writeTo} holds at once: one being written
 * while the next is read.
 */
const WRITE_DEPTH = 2;

/** Free buffers the pool keeps, in bytes; more are left to the garbage collector. */
const POOL_MAX_BYTES = 8 * 1024 * 1024;

/** The read size for one of `streams` open streams (exported for tests). */
export function readChunkFor(streams: number): number {
  const share = READ_BUDGET / Math.max(1, streams);
  if (share >= READ_CHUNK_MAX) return READ_CHUNK_MAX;
  if (share <= READ_CHUNK_MIN) return READ_CHUNK_MIN;
  return 2 ** Math.floor(Math.log2(share));
}

/**
 * One cache's open read streams, which share READ_BUDGET between them, and its pool of read
 * buffers: a buffer comes back once a response's socket has taken its bytes, and the next read
 * of any stream reuses it (the most recently freed first: its memory is mapped and likely still
 * in the CPU's cache). Buffers of another size than the current chunk are dropped.
 */
export class ReadStreams {
  #open = 0;
  readonly #free: Buffer[] = [];
  #freeBytes = 0;

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

  /** A buffer of {@link chunk} bytes for a read whose bytes are written with a callback, not pushed. */
  take(): Buffer {
    const size = this.chunk();
    for (;;) {
      const b = this.#free.pop();
      if (b === undefined) return Buffer.allocUnsafeSlow(size);
      this.#freeBytes -= b.length;
      if (b.length === size) return b;
    }
  }

  /** Gives back a buffer from {@link take} once nothing refers to its bytes any more. */
  give(buf: Buffer): void {
    if (buf.length !== this.chunk() || this.#freeBytes + buf.length > POOL_MAX_BYTES) return;
    this.#free.push(buf);
    this.#freeBytes += buf.length;
  }

  /** Free buffers held (for tests). */
  get pooled(): number {
    return this.#free.length;
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

/** Bytes that can be read at a position now, or why not. */
type Available =
  | { readonly kind: 'bytes'; readonly n: number }
  | { readonly kind: 'wait' }
  | { readonly kind: 'failed'; readonly error: Error };

type ReadDone = (err: Error | null, bytesRead: number) => void;

/** A body being written into a response: its buffers out, and the first chunk until the response starts. */
interface Direct {
  out: ServerResponse | undefined;
  /** Buffers taken from the pool and not given back yet (being read into or written). */
  held: number;
  first: { readonly buf: Buffer; readonly n: number } | undefined;
}

/**
 * The body bytes `start` to `end` (inclusive) of something in the cache: a Readable, or written
 * straight into a response with {@link writeTo}. Subclasses say how to read at a position and
 * how much is there to read.
 */
export abstract class CacheBody extends Readable {
  protected readonly reads: ReadStreams;
  #pos: number;
  readonly #end: number;
  /** A read is running (at most one at a time: positions follow each other). */
  #reading = false;
  /** Readable mode: the consumer asked for more. */
  #wanted = false;
  #direct: Direct | undefined;
  /** Resolves {@link firstChunk}. */
  #firstDone: (() => void) | undefined;
  readonly #retry = (): void => this.#next();
  /** Set by _destroy while a read runs: the read's end releases the file. */
  #closeAfterRead: (() => void) | undefined;
  /** A short read means the file is shorter than it should be: the message says which. */
  protected abstract readonly shortMessage: string;

  constructor(reads: ReadStreams, start: number, end: number) {
    super({ highWaterMark: READ_CHUNK_MIN });
    reads.track(this);
    this.reads = reads;
    this.#pos = start;
    this.#end = end;
  }

  /** Reads `length` bytes at body position `position` into `buf`. */
  protected abstract readAt(buf: Buffer, length: number, position: number, done: ReadDone): void;
  /** How many bytes can be read at `position` now (at most `wanted`). */
  protected abstract available(position: number, wanted: number): Available;
  /** Called when waiting for more bytes (`available` said wait); `cancelWait` undoes it. */
  protected abstract waitForMore(fn: () => void): void;
  protected abstract cancelWait(fn: () => void): void;
  /** Releases what the body holds (once no read runs). */
  protected abstract release(): Promise<void>;

  override _read(): void {
    if (this.#direct !== undefined) return;
    this.#wanted = true;
    this.#next();
  }

  /**
   * Switches to writing into a response instead of being read, and reads the first chunk.
   * Resolves once it is in (or the body turns out empty); rejects if the body fails first,
   * so that the caller can still answer with an error status. Then call {@link writeTo}.
   */
  firstChunk(): Promise<void> {
    if (this.#direct !== undefined || this.#reading || this.readableLength > 0 || this.destroyed)
      return Promise.reject(new MetalbootError('IMAGE_CACHE_ERR_CLOSED', 'body already read'));
    this.#direct = { out: undefined, held: 0, first: undefined };
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => {
        this.off('close', onClose);
        reject(err);
      };
      const onClose = (): void => {
        this.off('error', onError);
        reject(this.errored ?? new MetalbootError('IMAGE_CACHE_ERR_CLOSED', 'body closed'));
      };
      this.once('error', onError);
      this.once('close', onClose);
      this.#firstDone = () => {
        this.off('error', onError);
        this.off('close', onClose);
        resolve();
      };
      this.#next();
    });
  }

  /**
   * Writes the body into `out` (headers already set or written by the caller), each chunk with
   * a callback that gives its buffer back, at most WRITE_DEPTH chunks at a time; ends `out` after
   * the last one. A read error destroys the body (its `error` event) and `out`; `out` closing
   * first destroys the body. The body is destroyed (`close`) when done.
   */
  writeTo(out: ServerResponse): void {
    const d = this.#direct;
    if (d === undefined || d.out !== undefined)
      throw new MetalbootError('IMAGE_CACHE_ERR_CLOSED', 'call firstChunk() first');
    d.out = out;
    if (out.destroyed) {
      this.destroy();
      return;
    }
    out.once('close', () => {
      if (!this.destroyed) this.destroy();
    });
    const first = d.first;
    d.first = undefined;
    if (first !== undefined) this.#write(d, first.buf, first.n);
    this.#next();
  }

  /** Starts the next read if it may: Readable mode when wanted, direct mode while a buffer is free. */
  #next(): void {
    if (this.destroyed || this.#reading) return;
    const d = this.#direct;
    if (d === undefined && !this.#wanted) return;
    if (d !== undefined && (d.first !== undefined || d.held >= WRITE_DEPTH)) return;
    if (this.#pos > this.#end) {
      this.#finish();
      return;
    }
    const a = this.available(this.#pos, this.#end + 1 - this.#pos);
    if (a.kind === 'wait') {
      this.waitForMore(this.#retry);
      return;
    }
    if (a.kind === 'failed') {
      this.destroy(a.error);
      return;
    }
    const buf = d === undefined ? Buffer.allocUnsafe(Math.min(this.reads.chunk(), a.n)) : this.reads.take();
    const length = Math.min(buf.length, a.n);
    this.#reading = true;
    this.#wanted = false;
    if (d !== undefined) d.held++;
    this.readAt(buf, length, this.#pos, (err, bytesRead) => {
      this.#reading = false;
      const close = this.#closeAfterRead;
      if (close !== undefined) {
        this.#closeAfterRead = undefined;
        close();
        return;
      }
      if (this.destroyed) return;
      if (err !== null) {
        this.destroy(err);
        return;
      }
      if (bytesRead === 0) {
        this.destroy(new MetalbootError('IMAGE_CACHE_ERR_LENGTH_MISMATCH', this.shortMessage));
        return;
      }
      this.#pos += bytesRead;
      if (d === undefined) {
        this.push(bytesRead === buf.length ? buf : buf.subarray(0, bytesRead));
        return;
      }
      if (d.out === undefined) {
        d.first = { buf, n: bytesRead };
        this.#firstDone?.();
        this.#firstDone = undefined;
        return;
      }
      this.#write(d, buf, bytesRead);
      this.#next();
    });
  }

  #write(d: Direct, buf: Buffer, n: number): void {
    const chunk = n === buf.length ? buf : buf.subarray(0, n);
    this.emit('data', chunk);
    d.out!.write(chunk, (err) => {
      d.held--;
      if (err === null || err === undefined) this.reads.give(buf);
      this.#next();
    });
  }

  #finish(): void {
    const d = this.#direct;
    if (d === undefined) {
      this.push(null);
      return;
    }
    if (d.out === undefined) {
      // Empty: nothing to read before the response starts.
      this.#firstDone?.();
      this.#firstDone = undefined;
      return;
    }
    if (!d.out.writableEnded) d.out.end();
    this.destroy();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.cancelWait(this.#retry);
    const release = (): void => {
      this.release().then(
        () => cb(err),
        () => cb(err),
      );
    };
    // A read still running keeps the descriptor until it is done.
    if (this.#reading) this.#closeAfterRead = release;
    else release();
    const out = this.#direct?.out;
    if (err !== null && out !== undefined && !out.destroyed) out.destroy();
  }
}

/** A complete entry's body from `start` to `end` (inclusive, file offsets); closes the handle. */
export class EntryReader extends CacheBody {
  readonly #handle: FileHandle;
  protected readonly shortMessage = 'cache entry shorter than its header says';

  constructor(handle: FileHandle, reads: ReadStreams, start: number, end: number) {
    super(reads, start, end);
    this.#handle = handle;
  }

  protected readAt(buf: Buffer, length: number, position: number, done: ReadDone): void {
    // The callback form: one event-loop turn per read, no promise or result object.
    fsRead(this.#handle.fd, buf, 0, length, position, (err, bytesRead) => done(err, bytesRead));
  }

  protected available(_position: number, wanted: number): Available {
    return { kind: 'bytes', n: wanted };
  }

  protected waitForMore(): void {}
  protected cancelWait(): void {}

  protected release(): Promise<void> {
    return this.#handle.close();
  }
}

/** Body bytes `start` to `end` (inclusive) of a file being written, read as they arrive. */
export class FillReader extends CacheBody {
  readonly #fill: GrowingFile;
  #released = false;
  protected readonly shortMessage = 'cache file shorter than written';

  constructor(fill: GrowingFile, reads: ReadStreams, start: number, end: number) {
    super(reads, start, end);
    this.#fill = fill;
  }

  protected readAt(buf: Buffer, length: number, position: number, done: ReadDone): void {
    this.#fill.read(buf, length, position).then(
      (n) => done(null, n),
      (err: Error) => done(err, 0),
    );
  }

  protected available(position: number, wanted: number): Available {
    const written = this.#fill.written;
    if (position < written) return { kind: 'bytes', n: Math.min(wanted, written - position) };
    if (this.#fill.state === 'failed')
      return { kind: 'failed', error: this.#fill.error ?? new MetalbootError('IMAGE_CACHE_ERR_CLOSED', 'fill failed') };
    return { kind: 'wait' };
  }

  protected waitForMore(fn: () => void): void {
    this.#fill.wait(fn);
  }

  protected cancelWait(fn: () => void): void {
    this.#fill.unwait(fn);
  }

  protected release(): Promise<void> {
    if (this.#released) return Promise.resolve();
    this.#released = true;
    return this.#fill.release();
  }
}
