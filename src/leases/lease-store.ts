/**
 * The dynamic-range lease store: the pool's state made durable by the journal. Loads and
 * replays the journal at start, persists each change (resolving once it is on disk), and
 * compacts when the journal has grown well past the live state.
 */
import type { Logger } from 'pino';
import { LeaseJournal } from './lease-journal.js';
import type { JournalRecord, RecordPool } from './pool.js';
import type { Service } from '../base/service.js';

/** Where range leases are made durable: this journal, or the Kubernetes API (kube/range-leases.ts). */
export interface LeaseBackend extends Service {
  /** Resolves when `rec` is durable; rejects if it is not (the ACK must not go out). */
  persist(rec: JournalRecord): Promise<void>;
}

export class LeaseStore implements LeaseBackend {
  readonly name = 'leases';
  readonly #pool: RecordPool;
  readonly #journal: LeaseJournal | undefined;
  readonly #now: () => number;
  readonly #log: Logger;
  #compacting: Promise<void> | undefined;
  /** Live records at the last compaction: the journal is compacted once it has grown well past them. */
  #liveAtCompaction = 0;

  constructor(pool: RecordPool, path: string | undefined, now: () => number, log: Logger) {
    this.#pool = pool;
    this.#journal = path === undefined ? undefined : new LeaseJournal(path);
    this.#now = now;
    this.#log = log;
  }

  async start(): Promise<void> {
    if (this.#journal === undefined) return;
    const loaded = await this.#journal.load();
    let outside = 0;
    for (const r of loaded.records) if (!this.#pool.restore(r) && r.t !== 'free') outside++;
    if (outside > 0) {
      this.#log.warn(
        { records: outside, file: this.#journal.path },
        'leases outside the configured ranges dropped (the range was changed)',
      );
    }
    if (loaded.skipped > 0)
      this.#log.warn({ skipped: loaded.skipped, file: this.#journal.path }, 'lease journal lines skipped');
    if (loaded.torn) this.#log.warn({ file: this.#journal.path }, 'lease journal ended in a partial write; ignored');
    const live = this.#pool.snapshot(this.#now());
    const opened = await this.#journal.open(live);
    this.#liveAtCompaction = live.length;
    if (!opened.compacted) {
      // A full disk must not take BareMetalHost and static DHCP down with the range: go on with
      // the journal as it is; new range leases are refused while writes fail.
      this.#log.warn(
        { err: opened.error, file: this.#journal.path },
        'lease journal not compacted, appending to it as it is',
      );
    }
    this.#log.info({ file: this.#journal.path, leases: live.length }, 'lease journal loaded');
  }

  /** Resolves when `rec` is durable; rejects if it could not be written (the ACK must not go out). */
  async persist(rec: JournalRecord): Promise<void> {
    if (this.#journal === undefined) return;
    await this.#journal.append(rec);
    // Counting the live state costs a pass over the pool, so it is done at compaction only: the
    // journal is compacted when it holds twice the live records of the last compaction + 1,000.
    if (this.#compacting === undefined && this.#journal.lineCount > 2 * this.#liveAtCompaction + 1000) {
      this.#compacting = this.#journal
        .compact(() => {
          const live = this.#pool.snapshot(this.#now());
          this.#liveAtCompaction = live.length;
          return live;
        })
        .catch((err: unknown) => this.#log.error({ err }, 'lease journal compaction failed'))
        .finally(() => {
          this.#compacting = undefined;
        });
    }
  }

  async close(): Promise<void> {
    await this.#compacting;
    await this.#journal?.close();
  }
}
