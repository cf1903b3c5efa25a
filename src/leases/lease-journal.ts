/**
 * Durable storage of dynamic-range leases: an append-only journal of JSON lines.
 *
 * - append() resolves only after the record is on disk (write + fdatasync). Appends that arrive
 *   while a sync is in flight are batched into the next write, so a storm of ACKs costs one
 *   fsync per batch, not one per lease.
 * - compaction writes the live state to a temporary file, fsyncs it, renames it over the journal
 *   and fsyncs the directory: a crash at any moment leaves either the old or the new journal.
 * - load() tolerates a torn last line (a kill -9 mid-write): only records that were fully
 *   written, and therefore never acknowledged as durable if incomplete, can be lost.
 */
import { open, readFile, rename, type FileHandle } from 'node:fs/promises';
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

/**
 * Writes, syncs and compactions run one at a time on one queue, so a compaction never closes
 * the file under a write, and its snapshot (taken when it runs) includes every record queued
 * before it.
 */
export class LeaseJournal {
  readonly #path: string;
  #fh: FileHandle | undefined;
  #lines = 0;
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
    let text = '';
    try {
      text = await readFile(this.#path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const records: JournalRecord[] = [];
    let skipped = 0;
    const lines = text.split('\n');
    // The element after the last newline is '' for a clean file, or a torn partial write.
    const torn = lines.pop() !== '';
    for (const line of lines) {
      if (line === '') continue;
      const rec = parseRecord(line);
      if (rec === undefined) skipped++;
      else records.push(rec);
    }
    this.#lines = records.length;
    return { records, skipped, torn };
  }

  /** Opens for appending, first rewriting the journal compactly (which also drops a torn tail). */
  async open(initial: readonly JournalRecord[]): Promise<void> {
    await this.compact(() => initial);
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
      await fh.write(batch.map((b) => b.line).join(''));
      await fh.datasync();
      this.#lines += batch.length;
      for (const b of batch) b.resolve();
    } catch (err) {
      for (const b of batch) b.reject(err as Error);
    }
  }

  /**
   * Replaces the journal with the live state atomically (write temp, fsync, rename, fsync the
   * directory). `live` is called when the compaction runs, after every earlier write.
   */
  compact(live: () => readonly JournalRecord[]): Promise<void> {
    return this.#run(async () => {
      const records = live();
      const tmp = `${this.#path}.tmp`;
      const fh = await open(tmp, 'w', 0o600);
      try {
        await fh.write(records.map((r) => `${JSON.stringify(r)}\n`).join(''));
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, this.#path);
      const dir = await open(dirname(this.#path), 'r');
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
      await this.#fh?.close();
      this.#fh = await open(this.#path, 'a', 0o600);
      this.#lines = records.length;
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
