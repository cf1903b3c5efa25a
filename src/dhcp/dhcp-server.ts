/**
 * The DHCP shell: owns the sockets, decodes, asks decide(), makes range leases durable, sends.
 *
 * Sockets (docs/architecture.md, "Node.js networking facts"): dgram has no IP_PKTINFO and no
 * SO_BINDTODEVICE. When listening on 0.0.0.0, a receive socket there gets every broadcast, and a
 * second socket bound to SERVER_IP:port (SO_REUSEADDR) sends every reply: Linux routes a limited
 * broadcast out of the interface that owns the socket's bound source address, so replies to
 * address-less clients leave on the provisioning interface even when the default route points
 * elsewhere. That socket also receives the unicast renewals addressed to SERVER_IP.
 */
import dgram from 'node:dgram';
import type { Logger } from 'pino';
import { Counter, Histogram, type Registry } from 'prom-client';
import { decode, encode } from './codec.js';
import { DecodeError, MetalbootError } from '../base/errors.js';
import { DROP_REASONS, decide, type DhcpOutcome, type DhcpState, type DropReason } from './decide.js';
import type { DhcpPolicy } from './policy.js';
import { messageTypeName } from './options.js';
import { formatIpv4 } from '../net/ipv4.js';
import type { ListenAddress } from '../net/listen-address.js';
import type { LeaseBackend } from '../leases/lease-store.js';
import { isNoSpace } from '../leases/lease-journal.js';
import { INFINITE_LEASE } from '../leases/range.js';
import { withLeaseTime } from './reply.js';
import type { ReadinessCheck, Service } from '../base/service.js';
import { LabelledCounter } from '../base/labelled-counter.js';
import { LogBudget } from '../base/log-budget.js';

export interface DhcpServerOptions {
  readonly listen: ListenAddress;
  readonly policy: DhcpPolicy;
  readonly state: DhcpState;
  readonly leases: LeaseBackend;
  readonly logger: Logger;
  readonly registry: Registry;
  /** Called with every outcome after it was acted on (Kubernetes events, tests). */
  readonly onOutcome?: (outcome: DhcpOutcome) => void;
  /**
   * Kernel receive buffer asked for on each DHCP socket (SO_RCVBUF): it holds the requests of a
   * burst that arrives while the JavaScript thread is busy (a GC pause, a journal write).
   * Linux caps it at net.core.rmem_max, and a warning says so. 0 keeps the kernel's default.
   * Default DEFAULT_DHCP_RECV_BUFFER_BYTES.
   */
  readonly recvBufferBytes?: number;
}

/**
 * 2 MiB: Linux doubles it for bookkeeping and charges a request about 1.3 KiB of that (payload,
 * sk_buff, slab rounding): 3,276 UEFI DISCOVERs of 347 bytes queued on loopback, half a second
 * of 6,000/s. The kernel's default (net.core.rmem_default, 208 KiB) held 332.
 */
export const DEFAULT_DHCP_RECV_BUFFER_BYTES = 2 * 1024 * 1024;

/** Linux reports twice the size set (socket(7): the kernel doubles it for bookkeeping); other kernels report it as set. */
const RCVBUF_REPORT_FACTOR = process.platform === 'linux' ? 2 : 1;

export class DhcpServer implements Service {
  readonly name = 'dhcp';
  readonly readiness: readonly ReadinessCheck[] = [
    {
      name: 'dhcp',
      check: () => (this.listening ? { ok: true, detail: 'listening' } : { ok: false, detail: 'not listening' }),
    },
  ];
  readonly #o: DhcpServerOptions;
  readonly #log: Logger;
  readonly #sockets: dgram.Socket[] = [];
  readonly #recvBufferBytes: number;
  #sender: dgram.Socket | undefined;
  #inFlight = new Set<Promise<void>>();
  readonly #received: Counter<'type'>;
  readonly #replies: Counter<'type'>;
  readonly #drops: Counter<'reason'>;
  readonly #latency: Histogram;
  // Labelled children, one per label value, so a packet does not build a labels object.
  readonly #receivedBy: LabelledCounter;
  readonly #repliesBy: LabelledCounter;
  readonly #dropsBy: LabelledCounter<DropReason>;
  readonly #logBudget: LogBudget<DropReason>;
  /** The last destination address and its dotted-quad string: replies mostly go to one relay or broadcast. */
  #lastTo = -1;
  #lastToText = '';

  constructor(o: DhcpServerOptions) {
    this.#o = o;
    this.#log = o.logger.child({ component: 'dhcp' });
    this.#recvBufferBytes = o.recvBufferBytes ?? DEFAULT_DHCP_RECV_BUFFER_BYTES;
    this.#received = new Counter({
      name: 'metalboot_dhcp_received_total',
      help: 'DHCP requests received, by message type',
      labelNames: ['type'],
      registers: [o.registry],
    });
    this.#replies = new Counter({
      name: 'metalboot_dhcp_replies_total',
      help: 'DHCP replies sent, by message type',
      labelNames: ['type'],
      registers: [o.registry],
    });
    this.#drops = new Counter({
      name: 'metalboot_dhcp_dropped_total',
      help: 'DHCP requests not answered, by reason',
      labelNames: ['reason'],
      registers: [o.registry],
    });
    this.#latency = new Histogram({
      name: 'metalboot_dhcp_reply_seconds',
      help: 'Time from receipt to reply sent (includes the lease fsync for range ACKs)',
      buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5],
      registers: [o.registry],
    });
    for (const r of DROP_REASONS) this.#drops.inc({ reason: r }, 0);
    this.#receivedBy = new LabelledCounter(this.#received);
    this.#repliesBy = new LabelledCounter(this.#replies);
    this.#dropsBy = new LabelledCounter(this.#drops);
    this.#logBudget = new LogBudget({ perSecond: 5, burst: 20, now: o.state.now });
  }

  get listening(): boolean {
    return this.#sockets.length > 0;
  }

  /** The bound receive address (port 0 in tests resolves to the real port). */
  address(): ListenAddress {
    const a = this.#sockets[0]!.address();
    return { host: a.address, port: a.port };
  }

  /** The receive socket's kernel buffer as the kernel reports it (Linux: twice what was set). */
  recvBufferSize(): number {
    return this.#sockets[0]!.getRecvBufferSize();
  }

  async start(): Promise<void> {
    const { listen, policy } = this.#o;
    const receiver = await this.#bind(listen.host, listen.port);
    this.#sockets.push(receiver);
    this.#sender = receiver;
    if (listen.host === '0.0.0.0') {
      const serverIp = formatIpv4(policy.serverIp);
      try {
        this.#sender = await this.#bind(serverIp, receiver.address().port);
        this.#sockets.push(this.#sender);
      } catch (err) {
        await this.close();
        const code = (err as NodeJS.ErrnoException).code;
        throw new MetalbootError(
          'DHCP_ERR_BIND',
          code === 'EADDRNOTAVAIL'
            ? `server IP ${serverIp} is not on any interface of this host (check --server-ip / the NetworkAttachmentDefinition)`
            : `cannot bind the DHCP send socket to ${serverIp}: ${(err as Error).message}`,
          { cause: err },
        );
      }
    }
    this.#checkRecvBuffer();
    this.#log.info(
      {
        listen: `${listen.host}:${this.address().port}`,
        serverIp: formatIpv4(policy.serverIp),
        recvBufferBytes: this.recvBufferSize(),
      },
      'dhcp listening',
    );
  }

  /** One warning when the kernel granted less than asked (every socket gets the same cap). */
  #checkRecvBuffer(): void {
    const requested = this.#recvBufferBytes;
    if (requested <= 0) return;
    const granted = Math.min(...this.#sockets.map((s) => s.getRecvBufferSize()));
    if (granted >= requested * RCVBUF_REPORT_FACTOR) return;
    this.#log.warn(
      {
        requested,
        granted: granted / RCVBUF_REPORT_FACTOR,
        sysctl: 'net.core.rmem_max',
        fix: `sysctl -w net.core.rmem_max=${requested}`,
      },
      'dhcp receive buffer capped by the kernel; bursts may overflow it',
    );
  }

  #bind(host: string, port: number): Promise<dgram.Socket> {
    return new Promise((resolve, reject) => {
      const recvBufferSize = this.#recvBufferBytes > 0 ? this.#recvBufferBytes : undefined;
      const s = dgram.createSocket({ type: 'udp4', reuseAddr: true, recvBufferSize });
      s.once('error', reject);
      s.bind({ address: host, port, exclusive: true }, () => {
        s.off('error', reject);
        s.setBroadcast(true);
        s.on('error', (err) => this.#log.error({ err }, 'dhcp socket error'));
        s.on('message', (buf, rinfo) => this.#onMessage(buf, rinfo));
        resolve(s);
      });
    });
  }

  #onMessage(buf: Buffer, rinfo: dgram.RemoteInfo): void {
    const started = performance.now();
    let outcome: DhcpOutcome;
    try {
      const req = decode(buf);
      outcome = decide(req, this.#o.policy, this.#o.state);
      this.#receivedBy.inc(messageTypeName(outcome.facts?.messageType));
    } catch (err) {
      if (err instanceof DecodeError) {
        this.#receivedBy.inc('malformed');
        const level = this.#drop('malformed');
        if (level !== undefined)
          this.#log[level](
            {
              reason: 'malformed',
              peer: `${rinfo.address}:${rinfo.port}`,
              code: err.code,
              offset: err.offset,
              bytes: buf.length,
            },
            'dhcp drop',
          );
        return;
      }
      // A bug, not bad input: never let it take the server down.
      this.#dropsBy.inc('malformed');
      this.#log.error({ err, peer: `${rinfo.address}:${rinfo.port}` }, 'dhcp handler failed');
      return;
    }
    if (outcome.kind === 'ignore') {
      const d = outcome.facts;
      const level = this.#drop(outcome.reason);
      if (level !== undefined)
        this.#log[level](
          {
            reason: outcome.reason,
            mac: d?.mac,
            type: messageTypeName(d?.messageType),
            host: d?.host?.origin.name,
            detail: outcome.detail,
          },
          'dhcp drop',
        );
      if (outcome.persist !== undefined)
        this.#track(
          this.#o.leases
            .persist(outcome.persist)
            .catch((err: unknown) => this.#log.error({ err }, 'lease journal write failed')),
        );
      this.#o.onOutcome?.(outcome);
      return;
    }
    if (outcome.persist === undefined) {
      this.#send(outcome, started);
      return;
    }
    this.#track(
      this.#o.leases.persist(outcome.persist).then(
        () => this.#send(outcome, started),
        (err: unknown) => this.#notDurable(outcome, err, started),
      ),
    );
  }

  /**
   * The lease of an ACK could not be written. Nothing is promised that the journal does not
   * hold: the commit is undone, and a renewal is answered with the time the journal already
   * holds for it; anything else is dropped ('journal-full' when the disk is full).
   */
  #notDurable(outcome: Extract<DhcpOutcome, { kind: 'reply' }>, err: unknown, started: number): void {
    const mac = outcome.facts.mac;
    const conflict = (err as { code?: unknown }).code === 'LEASE_ERR_CONFLICT';
    // A lost race with another replica is an ordinary drop (logged below), not a failure.
    if (!conflict) this.#log.error({ err, mac }, 'lease journal write failed');
    if (outcome.commit !== undefined) this.#o.state.pool.revert(outcome.commit.undo);
    const held = heldSeconds(outcome.commit?.heldUntil, this.#o.state.now());
    if (held !== undefined) {
      this.#log.warn({ mac, leaseSeconds: held }, 'dhcp renewal answered with the lease the journal holds');
      this.#send({ ...outcome, reply: withLeaseTime(outcome.reply, held) }, started);
      return;
    }
    const reason = conflict ? 'lease-conflict' : isNoSpace(err) ? 'journal-full' : 'journal-failed';
    const level = this.#drop(reason);
    if (level !== undefined)
      this.#log[level]({ reason, mac, detail: conflict ? (err as Error).message : undefined }, 'dhcp drop');
  }

  #track(p: Promise<void>): void {
    this.#inFlight.add(p);
    void p.finally(() => this.#inFlight.delete(p));
  }

  #send(outcome: Extract<DhcpOutcome, { kind: 'reply' }>, started: number): void {
    const sender = this.#sender;
    if (sender === undefined) return;
    const bytes = encode(outcome.reply);
    const { facts: d, dest } = outcome;
    if (dest.address !== this.#lastTo) {
      this.#lastTo = dest.address;
      this.#lastToText = formatIpv4(dest.address);
    }
    // With a callback, so a failed send is counted: without one, Node drops send errors silently.
    sender.send(bytes, dest.port, this.#lastToText, (err) => {
      if (err) {
        const level = this.#drop('send-failed');
        if (level !== undefined) this.#log[level]({ reason: 'send-failed', mac: d.mac, err }, 'dhcp drop');
        return;
      }
      const type = messageTypeName(outcome.reply.options.get(53)?.[0]);
      this.#repliesBy.inc(type);
      this.#latency.observe((performance.now() - started) / 1000);
      if (this.#log.isLevelEnabled('info')) {
        this.#log.info(
          {
            xid: outcome.reply.xid,
            mac: d.mac,
            type,
            ip: formatIpv4(outcome.reply.yiaddr),
            source: d.source,
            host: d.host?.origin.name,
            client: d.client.kind,
            arch: 'archCode' in d.client ? d.client.archCode : undefined,
            boot:
              outcome.boot?.kind === 'none'
                ? `none (${outcome.boot.reason})`
                : outcome.reply.options.has(67)
                  ? Buffer.from(outcome.reply.options.get(67)!).toString('latin1')
                  : undefined,
            to: `${formatIpv4(dest.address)}:${dest.port}`,
          },
          'dhcp reply',
        );
      }
      this.#o.onOutcome?.(outcome);
    });
  }

  /**
   * Counts a dropped request and returns the level to log it at, or undefined when that level is
   * off (so the caller builds no log fields). Hosts we do not own are normal on a shared segment:
   * they are logged at debug.
   */
  #drop(reason: DropReason): 'info' | 'debug' | undefined {
    this.#dropsBy.inc(reason);
    const level = reason === 'unknown-host' || reason === 'other-server' || reason === 'released' ? 'debug' : 'info';
    if (!this.#log.isLevelEnabled(level)) return undefined;
    if (level === 'debug') return level;
    // A flood of bad or refused packets costs a few lines a second; the metric counts them all.
    const b = this.#logBudget.take(reason);
    if (b.ok && b.suppressed > 0) this.#log.info({ reason, suppressed: b.suppressed }, 'dhcp drops not logged');
    return b.ok ? level : undefined;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.#inFlight]);
    await Promise.all(this.#sockets.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    this.#sockets.length = 0;
    this.#sender = undefined;
  }
}

/** Whole seconds left of a lease held until `heldUntil` (infinite stays infinite); none if under one. */
function heldSeconds(heldUntil: number | undefined, now: number): number | undefined {
  if (heldUntil === undefined) return undefined;
  if (heldUntil === Infinity) return INFINITE_LEASE;
  const s = Math.floor((heldUntil - now) / 1000);
  return s >= 1 ? s : undefined;
}
