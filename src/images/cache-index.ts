/**
 * The cache's in-memory index: entries in least-recently-used order, and the byte accounting that
 * keeps the directory under `maxBytes`. No I/O: callers delete the files of the entries this
 * hands back.
 *
 * Bytes are counted as on disk (header + body). An object being filled reserves its full size
 * up front, so eviction happens before the download, not after, and several fills at once can
 * never overshoot the limit. Evicting an entry that a client is still reading is safe: readers
 * hold an open file descriptor, and Linux keeps an unlinked file until the last one is closed.
 */
import type { EntryMeta } from './cache-entry.js';

export interface IndexedEntry {
  readonly meta: EntryMeta;
  /** File name inside the entries directory. */
  readonly file: string;
  /** Header bytes before the body. */
  readonly headerLength: number;
  /** Epoch ms of the last store or successful revalidation; 0 when never validated. */
  validatedAt: number;
}

export interface Committed {
  readonly previous: IndexedEntry | undefined;
  readonly evicted: IndexedEntry[];
}

export const diskBytes = (e: Pick<IndexedEntry, 'headerLength' | 'meta'>): number => e.headerLength + e.meta.size;

export class CacheIndex {
  /** Map order is recency: the first key is the least recently used. */
  readonly #entries = new Map<string, IndexedEntry>();
  #bytes = 0;
  #reserved = 0;

  constructor(readonly maxBytes: number) {}

  get bytes(): number {
    return this.#bytes;
  }

  get reserved(): number {
    return this.#reserved;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Looks an entry up without changing its recency. */
  peek(key: string): IndexedEntry | undefined {
    return this.#entries.get(key);
  }

  /** Looks an entry up and marks it most recently used. */
  use(key: string): IndexedEntry | undefined {
    const e = this.#entries.get(key);
    if (e !== undefined) {
      this.#entries.delete(key);
      this.#entries.set(key, e);
    }
    return e;
  }

  /** Entries from least to most recently used. */
  entries(): IndexedEntry[] {
    return [...this.#entries.values()];
  }

  /**
   * Reserves `bytes` for an object about to be filled, evicting least recently used entries as
   * needed. Returns the evicted entries (already out of the index), or undefined when the space
   * cannot be found even with every entry gone (other fills hold it); nothing changes then.
   */
  reserve(bytes: number): IndexedEntry[] | undefined {
    if (bytes + this.#reserved > this.maxBytes) return undefined;
    this.#reserved += bytes;
    return this.#evictOver();
  }

  /** Gives back a reservation whose fill failed. */
  release(bytes: number): void {
    this.#reserved = Math.max(0, this.#reserved - bytes);
  }

  /**
   * Turns a reservation into an entry. Returns the entries whose files are to be deleted: the
   * previous version of the same key, and anything evicted to stay under the limit.
   */
  commit(entry: IndexedEntry, reservedBytes: number): Committed {
    this.release(reservedBytes);
    const previous = this.remove(entry.meta.key);
    this.#entries.set(entry.meta.key, entry);
    this.#bytes += diskBytes(entry);
    return { previous, evicted: this.#evictOver(entry.meta.key) };
  }

  /** Adds an entry found on disk at start-up, as the most recently used so far. */
  load(entry: IndexedEntry): Committed {
    if (diskBytes(entry) > this.maxBytes) return { previous: undefined, evicted: [entry] };
    return this.commit(entry, 0);
  }

  /** Removes an entry; when `file` is given, only if the index still points at that file. */
  remove(key: string, file?: string): IndexedEntry | undefined {
    const e = this.#entries.get(key);
    if (e === undefined || (file !== undefined && e.file !== file)) return undefined;
    this.#entries.delete(key);
    this.#bytes -= diskBytes(e);
    return e;
  }

  #evictOver(keep?: string): IndexedEntry[] {
    const out: IndexedEntry[] = [];
    for (const [key, e] of this.#entries) {
      if (this.#bytes + this.#reserved <= this.maxBytes) break;
      if (key === keep) continue;
      this.remove(key);
      out.push(e);
    }
    return out;
  }
}
