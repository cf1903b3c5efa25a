/**
 * Durable storage of dynamic-range leases: an append-only journal of JSON lines.
 *
 * - append() resolves only after the whole record is on disk (every byte written, then
 *   fdatasync). Appends that arrive while a sync is in flight are batched into the next write,
 *   so a storm of ACKs costs one fsync per batch, not one per lease.
 * - A write that fails or comes up short (a full disk) rejects its batch, and the file is cut
 *   back to its last complete record at once, or before the next append if that cut failed
 *   too: a torn tail never swallows the record after it.
 * - compaction writes the live state to a temporary file, fsyncs it, reads it back and compares
 *   it with what it meant to write, and only then renames it over the journal and fsyncs the
 *   directory: a crash or a full disk at any moment leaves either the old or the new journal,
 *   never a short one, and no temporary file.
 * - open() compacts; when it cannot (a full disk), it keeps the journal as it is, cut to its
 *   last complete record, and appends to it: the range starts with every lease it had.
 * - load() tolerates a torn last line (a kill -9 mid-write): only records whose append never
 *   resolved can be lost.
 */
import { open, readFile, rename, unlink, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { JournalRecord } from './pool.js';
import { MetalbootError } from '../base/errors.js';

export interface JournalLoad {
  readonly records: JournalRecord[];
  /** Complete lines that could not be parsed (damage). */
  readonly skipped: number;
  /** True when the file ended in a partial line (a kill -9 mid-write); it is ignored. */
  readonly torn: boolean;
}

/** How open() went: compacted, or appending to the journal as it was (the reason why). */
export type JournalOpen = { readonly compacted: true } | { readonly compacted: false; readonly error: unknown };

/** A write that failed for lack of space: ENOSPC, EDQUOT, or a write the kernel cut short. */
export function isNoSpace(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT' || code === 'LEASE_ERR_SHORT_WRITE';
}

/** Writes all of `buf`; a write that makes no progress is a full disk. */
async function writeFully(fh: FileHandle, buf: Buffer): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesWritten } = await fh.write(buf, off, buf.length - off);
    if (bytesWritten <= 0) {
      throw new MetalbootError('LEASE_ERR_SHORT_WRITE', `wrote ${off} of ${buf.length} bytes: no space left`);
    }
    off += bytesWritten;
  }
}

/**
 * Writes, syncs and compactions run one at a time on one queue, so a compaction never closes
 * the file under a write, and its snapshot (taken when it runs) includes every record queued
 * before it.
 */
export class LeaseJournal {
  readonly #path: string;
  #fh: FileHandle | undefined;
  #lines = 0;
  /** Bytes of complete records in the file: where a torn tail is cut back to. */
  #size = 0;
  /** A failed write may have left bytes after #size that could not be cut yet. */
  #tornTail = false;
  #pending: { line: string; resolve: () => void; reject: (e: Error) => void }[] = [];
  #flushQueued = false;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(path: string) {
    this.#path = path;
  }

  get path(): string {
    return this.#path;
  }

  /** Lines in the journal file (for the compaction decision). */
  get lineCount(): number {
    return this.#lines;
  }

  async load(): Promise<JournalLoad> {
    let bytes = Buffer.alloc(0);
    try {
      bytes = await readFile(this.#path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const records: JournalRecord[] = [];
    let skipped = 0;
    const lines = bytes.toString('utf8').split('\n');
    // The element after the last newline is '' for a clean file, or a torn partial write.
    const torn = lines.pop() !== '';
    this.#size = bytes.lastIndexOf(0x0a) + 1;
    this.#tornTail = torn;
    for (const line of lines) {
      if (line === '') continue;
      const rec = parseRecord(line);
      if (rec === undefined) skipped++;
      else records.push(rec);
    }
    this.#lines = records.length;
    return { records, skipped, torn };
  }

  /**
   * Opens for appending, first rewriting the journal compactly (which also drops a torn tail).
   * If the compaction fails, appends to the journal as load() found it, cut to its last
   * complete record; throws only if even that cannot be opened.
   */
  async open(initial: readonly JournalRecord[]): Promise<JournalOpen> {
    try {
      await this.compact(() => initial);
      return { compacted: true };
    } catch (error) {
      await this.#run(async () => {
        // Open unless the compaction got as far as the new journal (only its directory sync failed).
        this.#fh ??= await open(this.#path, 'a', 0o600);
        if (this.#tornTail) await this.#cutTail(this.#fh).catch(() => undefined);
      });
      return { compacted: false, error };
    }
  }

  append(rec: JournalRecord): Promise<void> {
    if (this.#closed) return Promise.reject(new MetalbootError('LEASE_ERR_JOURNAL_CLOSED', 'lease journal is closed'));
    return new Promise((resolve, reject) => {
      this.#pending.push({ line: `${JSON.stringify(rec)}\n`, resolve, reject });
      if (!this.#flushQueued) {
        this.#flushQueued = true;
        void this.#run(() => this.#flushBatch());
      }
    });
  }

  #run<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.#queue.then(fn);
    this.#queue = p.catch(() => undefined);
    return p;
  }

  async #flushBatch(): Promise<void> {
    this.#flushQueued = false;
    const batch = this.#pending;
    this.#pending = [];
    try {
      const fh = this.#fh;
      if (fh === undefined) throw new MetalbootError('LEASE_ERR_JOURNAL_CLOSED', 'lease journal is not open');
      if (this.#tornTail) await this.#cutTail(fh);
      const buf = Buffer.from(batch.map((b) => b.line).join(''));
      try {
        await writeFully(fh, buf);
        await fh.datasync();
      } catch (err) {
        // Part of the batch may be in the file: cut it off now, or before the next append.
        this.#tornTail = true;
        await this.#cutTail(fh).catch(() => undefined);
        throw err;
      }
      this.#size += buf.length;
      this.#lines += batch.length;
      for (const b of batch) b.resolve();
    } catch (err) {
      for (const b of batch) b.reject(err as Error);
    }
  }

  /** Cuts the file back to its last complete record (a shrinking truncate needs no space). */
  async #cutTail(fh: FileHandle): Promise<void> {
    await fh.truncate(this.#size);
    await fh.datasync();
    this.#tornTail = false;
  }

  /**
   * Replaces the journal with the live state atomically (write temp, fsync, verify, rename,
   * fsync the directory). `live` is called when the compaction runs, after every earlier write.
   * On any failure the journal is left as it was and the temporary file is removed.
   */
  compact(live: () => readonly JournalRecord[]): Promise<void> {
    return this.#run(async () => {
      const records = live();
      const content = Buffer.from(records.map((r) => `${JSON.stringify(r)}\n`).join(''));
      const tmp = `${this.#path}.tmp`;
      try {
        const fh = await open(tmp, 'w', 0o600);
        try {
          await writeFully(fh, content);
          await fh.sync();
        } finally {
          await fh.close();
        }
        const written = await readFile(tmp);
        if (!written.equals(content)) {
          throw new MetalbootError(
            'LEASE_ERR_COMPACTION',
            `compacted journal reads back ${written.length} of ${content.length} bytes`,
          );
        }
        await rename(tmp, this.#path);
      } catch (err) {
        await unlink(tmp).catch(() => undefined);
        throw err;
      }
      // The journal is the new file from here: appends must go to it, whatever follows.
      await this.#fh?.close();
      this.#fh = await open(this.#path, 'a', 0o600);
      this.#lines = records.length;
      this.#size = content.length;
      this.#tornTail = false;
      const dir = await open(dirname(this.#path), 'r');
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#run(async () => {
      await this.#fh?.close();
      this.#fh = undefined;
    });
  }
}
function parseRecord(line: string): JournalRecord | undefined {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (v === null || typeof v !== 'object') return undefined;
  const r = v as Record<string, unknown>;
  if (typeof r.ip !== 'string') return undefined;
  if (r.t === 'bind' && typeof r.mac === 'string' && (r.exp === null || typeof r.exp === 'number'))
    return { t: 'bind', ip: r.ip, mac: r.mac, exp: r.exp };
  if (r.t === 'free') return { t: 'free', ip: r.ip };
  if (r.t === 'decline' && typeof r.until === 'number') return { t: 'decline', ip: r.ip, until: r.until };
  return undefined;
}
