/**
 * The read-through cache's storage: a directory of entries and the fills that add to it. The
 * shell around cache-index.ts (accounting, eviction) and cache-entry.ts (file format); which
 * responses are stored, when they are revalidated and which request reads what is decided by
 * the image store (store.ts, cache-policy.ts). Fills are in fill.ts, the streams in readers.ts.
 *
 * Layout under `dir` (--image-cache-dir): one directory of its own, so that metalboot never
 * deletes what it did not create, whatever `dir` is. It holds a marker file; a directory of
 * that name that is not empty and has no marker is refused, and so are system directories as
 * `dir` ({@link cacheDirProblem}).
 * ```
 * metalboot-image-cache/.metalboot-image-cache        the marker
 * metalboot-image-cache/entries/<sha256(key)[0..32]>-<generation>   complete entries
 * metalboot-image-cache/tmp/<generation>              fills in progress; emptied at start-up
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
import { existsSync } from 'node:fs';
import { mkdir, open, readdir, rename, rm, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
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
import { MetalbootError } from '../base/errors.js';
import { Fill } from './fill.js';
import { EntryReader, ReadStreams, type StoredObject } from './readers.js';

export interface CacheDirOptions {
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

const generation = (): string => `${Date.now().toString(36)}${randomBytes(6).toString('hex')}`;

/** The cache's own directory under --image-cache-dir, and the marker that says it is ours. */
export const CACHE_SUBDIR = 'metalboot-image-cache';
const MARKER = '.metalboot-image-cache';

/** Directories never taken as --image-cache-dir: the cache would sit among system files. */
const SYSTEM_DIRS = new Set([
  '/',
  '/bin',
  '/boot',
  '/dev',
  '/etc',
  '/home',
  '/lib',
  '/lib64',
  '/opt',
  '/proc',
  '/root',
  '/run',
  '/sbin',
  '/srv',
  '/sys',
  '/tmp',
  '/usr',
  '/var',
  '/var/lib',
  '/var/tmp',
]);

/** Why `dir` cannot hold the image cache, or undefined. Pure. */
export function cacheDirProblem(dir: string): string | undefined {
  const resolved = path.resolve(dir);
  if (SYSTEM_DIRS.has(resolved)) return `image cache directory ${resolved} is a system directory; give one of its own`;
  return undefined;
}

export class CacheDir {
  readonly #o: CacheDirOptions;
  readonly #index: CacheIndex;
  readonly #root: string;
  readonly #entriesDir: string;
  readonly #tmpDir: string;
  /** Streams of this cache's entries and fills; their reads share one budget. */
  readonly #reads = new ReadStreams();
  /** Fills not yet over, for close() and the metrics; the store finds them by key. */
  readonly #running = new Set<Fill>();
  #closed = false;

  constructor(o: CacheDirOptions) {
    this.#o = o;
    this.#index = new CacheIndex(o.maxBytes);
    this.#root = path.join(o.dir, CACHE_SUBDIR);
    this.#entriesDir = path.join(this.#root, 'entries');
    this.#tmpDir = path.join(this.#root, 'tmp');
  }

  get bytes(): number {
    return this.#index.bytes;
  }

  get entries(): number {
    return this.#index.size;
  }

  /** Fills not yet over: still downloading, or storing, or cleaning up after a failure. */
  /** Makes sure the cache's directory is its own before anything in it is deleted. */
  async #claim(): Promise<void> {
    const problem = cacheDirProblem(this.#o.dir);
    if (problem !== undefined) throw new MetalbootError('IMAGE_PROXY_ERR_BAD_CACHE_OPTIONS', problem);
    await mkdir(this.#root, { recursive: true, mode: 0o700 });
    const marker = path.join(this.#root, MARKER);
    if (existsSync(marker)) return;
    if ((await readdir(this.#root)).length > 0) {
      throw new MetalbootError(
        'IMAGE_PROXY_ERR_BAD_CACHE_OPTIONS',
        `${this.#root} is not empty and has no ${MARKER}: not a metalboot image cache, nothing in it is touched`,
      );
    }
    await writeFile(marker, 'metalboot image cache: metalboot may delete anything in this directory\n', {
      mode: 0o600,
    });
  }

  get fillsRunning(): number {
    return this.#running.size;
  }

  /** Creates the directories, clears interrupted fills and indexes what is on disk. */
  async open(): Promise<void> {
    await this.#claim();
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

  /** The stored entry of `key`, without changing its recency. */
  peek(key: string): IndexedEntry | undefined {
    return this.#index.peek(key);
  }

  /** A stored entry as something to serve from; marks it most recently used. */
  object(entry: IndexedEntry): StoredObject {
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

  /** The upstream confirmed the entry: it is fresh again from now. */
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
   * One fill per key at a time is the caller's to ensure.
   */
  async startFill(meta: EntryMeta, body: Readable): Promise<Fill | undefined> {
    if (this.#closed) return undefined;
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
    this.#running.add(fill);
    void this.#runFill(fill, body, tmp, gen, reservation);
    return fill;
  }

  async #runFill(fill: Fill, body: Readable, tmp: string, gen: string, reservation: number): Promise<void> {
    const log = this.#o.logger;
    try {
      await fill.receive(body, this.#o.onFillBytes);
      const name = entryFileName(fill.meta.key, gen);
      await rename(tmp, path.join(this.#entriesDir, name));
      const entry: IndexedEntry = {
        meta: fill.meta,
        file: name,
        headerLength: fill.headerLength,
        validatedAt: this.#o.now(),
      };
      // From the commit to finish() in one synchronous step: whoever looks the key up finds
      // the fill still filling or the entry, never neither.
      const { previous, evicted } = this.#index.commit(entry, reservation);
      this.#unlinkAll(previous === undefined ? evicted : [previous, ...evicted]);
      this.#o.onEvict?.(evicted.length);
      fill.finish();
      this.#o.onFillEnd?.('complete');
      log.info({ key: fill.meta.key, bytes: fill.meta.size, disk: diskBytes(entry) }, 'image cache: stored');
    } catch (err) {
      this.#index.release(reservation);
      fill.fail(err as Error);
      fill.abort();
      this.#o.onFillEnd?.(this.#closed ? 'aborted' : 'failed');
      log.warn(
        { err, key: fill.meta.key, written: fill.written, size: fill.meta.size },
        'image cache: fill failed, nothing stored',
      );
      await rm(tmp, { force: true }).catch(() => {});
    } finally {
      await fill.releaseWriter();
      this.#running.delete(fill);
    }
  }

  /** Aborts fills in progress and waits for them to clean up. Entries stay on disk. */
  async close(): Promise<void> {
    this.#closed = true;
    const fills = [...this.#running].filter((f) => f.state === 'filling');
    for (const f of fills) f.abort(new MetalbootError('IMAGE_CACHE_ERR_CLOSED', 'image cache closed'));
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
