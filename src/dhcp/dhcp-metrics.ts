/**
 * The DHCP shell's metrics. The packet path counts through LabelledCounter (plain numbers,
 * added to the counters when they are collected).
 */
import { Counter, Histogram, type Registry } from 'prom-client';
import { LabelledCounter } from '../base/labelled-counter.js';
import { DROP_REASONS, type DropReason, type LeaseSource } from './decide.js';

export class DhcpMetrics {
  /** Requests received, by message type ('malformed' for what does not decode). */
  readonly received: LabelledCounter;
  readonly drops: LabelledCounter<DropReason>;
  readonly latency: Histogram;
  /** Datagrams socat passed on from the listen interface (--dhcp-listen with a unicast address). */
  readonly fed: Counter;
  /** By message type and lease source. */
  readonly #replies: LabelledCounter;

  constructor(registry: Registry) {
    this.received = new LabelledCounter({
      name: 'metalboot_dhcp_received_total',
      help: 'DHCP requests received, by message type',
      labelNames: ['type'],
      registers: [registry],
    });
    this.#replies = new LabelledCounter({
      name: 'metalboot_dhcp_replies_total',
      help: 'DHCP replies sent, by message type and lease source (bmh, static, range; none for a reply without a lease)',
      labelNames: ['type', 'source'],
      registers: [registry],
    });
    this.drops = new LabelledCounter({
      name: 'metalboot_dhcp_dropped_total',
      help: 'DHCP requests not answered, by reason',
      labelNames: ['reason'],
      registers: [registry],
    });
    for (const r of DROP_REASONS) this.drops.counter.inc({ reason: r }, 0);
    this.latency = new Histogram({
      name: 'metalboot_dhcp_reply_seconds',
      help: 'Time from receipt to reply sent (includes the lease fsync for range ACKs)',
      buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5],
      registers: [registry],
    });
    this.fed = new Counter({
      name: 'metalboot_dhcp_feed_datagrams_total',
      help: 'Datagrams socat received on the listen interface and passed on (--dhcp-listen with a unicast address)',
      registers: [registry],
    });
  }

  /** Counts a reply sent: its message type, and where its lease came from. */
  reply(type: string, source: LeaseSource | undefined): void {
    this.#replies.incPair(type, source ?? 'none');
  }
}
