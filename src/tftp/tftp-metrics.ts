/** The TFTP server's Prometheus metrics (metalboot_tftp_*). */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { LabelledCounter } from '../base/labelled-counter.js';
import type { TftpDropReason } from './datagram.js';

export class Metrics {
  readonly started: Counter;
  readonly finished: Counter<'outcome'>;
  readonly failed: Counter<'reason'>;
  readonly refused: Counter<'reason'>;
  readonly bytes: Counter;
  readonly retransmits: Counter;
  readonly duration: Histogram;
  readonly active: Gauge;
  /** Datagrams dropped, by reason: counted on the packet path. */
  readonly #dropped: LabelledCounter<TftpDropReason>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.started = new Counter({
      name: 'metalboot_tftp_transfers_started_total',
      help: 'TFTP read transfers started',
      registers,
    });
    this.finished = new Counter({
      name: 'metalboot_tftp_transfers_finished_total',
      help: 'TFTP transfers that ended normally: complete, or options declined by the client (the EDK2 tsize probe)',
      labelNames: ['outcome'],
      registers,
    });
    this.failed = new Counter({
      name: 'metalboot_tftp_transfers_failed_total',
      help: 'TFTP transfers that failed, by reason',
      labelNames: ['reason'],
      registers,
    });
    this.refused = new Counter({
      name: 'metalboot_tftp_requests_refused_total',
      help: 'TFTP requests answered with an ERROR, by reason',
      labelNames: ['reason'],
      registers,
    });
    this.#dropped = new LabelledCounter({
      name: 'metalboot_tftp_packets_dropped_total',
      help: 'TFTP datagrams dropped, by reason',
      labelNames: ['reason'],
      registers,
    });
    this.bytes = new Counter({
      name: 'metalboot_tftp_bytes_sent_total',
      help: 'TFTP DATA payload bytes sent, retransmissions included',
      registers,
    });
    this.retransmits = new Counter({
      name: 'metalboot_tftp_retransmissions_total',
      help: 'TFTP packets sent again',
      registers,
    });
    this.duration = new Histogram({
      name: 'metalboot_tftp_transfer_duration_seconds',
      help: 'Duration of completed TFTP transfers',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers,
    });
    this.active = new Gauge({ name: 'metalboot_tftp_transfers_active', help: 'TFTP transfers running', registers });
  }

  drop(reason: TftpDropReason): void {
    this.#dropped.inc(reason);
  }
}
