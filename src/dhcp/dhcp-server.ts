/**
 * The DHCP shell: owns the sockets, decodes, asks decide(), makes range leases durable, sends.
 *
 * Sockets (docs/architecture.md, "Node.js networking facts"): dgram has no IP_PKTINFO and no
 * SO_BINDTODEVICE. When listening on 0.0.0.0, a receive socket there gets every broadcast, and a
 * second socket bound to SERVER_IP:port (SO_REUSEADDR) sends every reply: Linux routes a limited
 * broadcast out of the interface that owns the socket's bound source address, so replies to
 * address-less clients leave on the provisioning interface even when the default route points
 * elsewhere. That socket also receives the unicast renewals addressed to SERVER_IP.
 *
 * Listening on a unicast ADDR (not loopback) means: serve the interface that owns ADDR, and
 * only it (docs/decisions/0009-dhcp-on-one-interface.md). The socket bound to ADDR:port receives
 * unicast to ADDR (relays, renewals) and sends every reply, out of that interface; the
 * interface's broadcasts, which no socket bound to a unicast address hears, come from socat
 * bound to the device, through a DeviceFeed.
 */
import type dgram from 'node:dgram';
import { networkInterfaces } from 'node:os';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { decode, encode } from './codec.js';
import { DecodeError } from '../base/errors.js';
import { decide, type DhcpOutcome, type DhcpState, type DropReason } from './decide.js';
import type { DhcpPolicy } from './policy.js';
import { messageTypeName } from './options.js';
import { formatIpv4 } from '../net/ipv4.js';
import type { ListenAddress } from '../net/listen-address.js';
import type { LeaseBackend } from '../leases/lease-store.js';
import { isNoSpace } from '../leases/lease-journal.js';
import { INFINITE_LEASE } from '../leases/range.js';
import { withLeaseTime } from './reply.js';
import type { Readiness, ReadinessCheck, Service } from '../base/service.js';
import { LogBudget } from '../base/log-budget.js';
import { DeviceFeed, type DeviceFeedOptions } from '../net/device-feed.js';
import { feedInterface, needsDeviceFeed, type InterfaceTable } from '../net/interfaces.js';
import { DhcpMetrics } from './dhcp-metrics.js';
import { bindDhcpSocket, DEFAULT_DHCP_RECV_BUFFER_BYTES, recvBufferShortfall, sendBindError } from './dhcp-sockets.js';

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
  /** The interfaces and their addresses (tests). Default os.networkInterfaces(). */
  readonly interfaces?: () => InterfaceTable;
  /** DeviceFeed settings for a unicast listen address (tests: the socat path, short delays). */
  readonly feed?: Pick<DeviceFeedOptions, 'socat' | 'readyTimeoutMs' | 'restartDelayMs'>;
}

export { DEFAULT_DHCP_RECV_BUFFER_BYTES } from './dhcp-sockets.js';

export class DhcpServer implements Service {
  readonly name = 'dhcp';
  readonly readiness: readonly ReadinessCheck[];
  readonly #o: DhcpServerOptions;
  readonly #log: Logger;
  readonly #sockets: dgram.Socket[] = [];
  readonly #recvBufferBytes: number;
  #sender: dgram.Socket | undefined;
  #feed: DeviceFeed | undefined;
  #inFlight = new Set<Promise<void>>();
  readonly #m: DhcpMetrics;
  readonly #logBudget: LogBudget<DropReason>;
  /** The last destination address and its dotted-quad string: replies mostly go to one relay or broadcast. */
  #lastTo = -1;
  #lastToText = '';

  constructor(o: DhcpServerOptions) {
    this.#o = o;
    this.#log = o.logger.child({ component: 'dhcp' });
    this.#recvBufferBytes = o.recvBufferBytes ?? DEFAULT_DHCP_RECV_BUFFER_BYTES;
    this.#m = new DhcpMetrics(o.registry);
    const listening = (): Readiness =>
      this.listening ? { ok: true, detail: 'listening' } : { ok: false, detail: 'not listening' };
    const feed = (): Readiness => this.#feed?.readiness.check() ?? { ok: false, detail: 'not started' };
    // dhcp-feed only where start() runs socat: /readyz shows whether it is up.
    this.readiness = [
      { name: 'dhcp', check: listening },
      ...(needsDeviceFeed(o.listen.host) ? [{ name: 'dhcp-feed', check: feed }] : []),
    ];
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
    // Before binding: an address no interface has gets this error, not bind's EADDRNOTAVAIL.
    const device = feedInterface(listen.host, (this.#o.interfaces ?? networkInterfaces)());
    const receiver = await this.#bind(listen.host, listen.port);
    this.#sockets.push(receiver);
    this.#sender = receiver;
    if (device !== undefined) await this.#startFeed(device, receiver.address().port);
    if (listen.host === '0.0.0.0') {
      const serverIp = formatIpv4(policy.serverIp);
      try {
        this.#sender = await this.#bind(serverIp, receiver.address().port);
        this.#sockets.push(this.#sender);
      } catch (err) {
        await this.close();
        throw sendBindError(serverIp, err);
      }
    }
    const short = recvBufferShortfall(this.#sockets, this.#recvBufferBytes);
    if (short !== undefined) this.#log.warn(short, 'dhcp receive buffer capped by the kernel; bursts may overflow it');
    this.#log.info(
      {
        listen: `${listen.host}:${this.address().port}`,
        serverIp: formatIpv4(policy.serverIp),
        recvBufferBytes: this.recvBufferSize(),
        interface: this.#feed === undefined ? undefined : device,
      },
      'dhcp listening',
    );
  }

  /**
   * socat hears the broadcasts of `device` on `port`. Its datagrams have socat's loopback
   * address as their source, not the client's; nothing here needs the client's: decide() takes
   * the reply's destination from giaddr, ciaddr and the broadcast flag (destination.ts), and
   * the peer is logged as the interface.
   */
  async #startFeed(device: string, port: number): Promise<void> {
    const peer = `${device} (socat)`;
    this.#feed = new DeviceFeed({
      ...this.#o.feed,
      device,
      port,
      recvBufferBytes: this.#recvBufferBytes,
      logger: this.#o.logger,
      name: 'dhcp-feed',
      onDatagram: (buf) => {
        this.#m.fed.inc();
        this.#onMessage(buf, peer);
      },
      onForeign: (from) => {
        const level = this.#drop('feed-foreign-source');
        if (level !== undefined)
          this.#log[level]({ reason: 'feed-foreign-source', peer: `${from.address}:${from.port}` }, 'dhcp drop');
      },
    });
    try {
      await this.#feed.start();
    } catch (err) {
      await this.close();
      throw err;
    }
  }

  async #bind(host: string, port: number): Promise<dgram.Socket> {
    const s = await bindDhcpSocket(host, port, this.#recvBufferBytes);
    s.on('error', (err) => this.#log.error({ err }, 'dhcp socket error'));
    s.on('message', (buf, rinfo) => this.#onMessage(buf, rinfo));
    return s;
  }

  /** `from`: the sender, or for datagrams of the device feed the interface they came in on. */
  #onMessage(buf: Buffer, from: dgram.RemoteInfo | string): void {
    const started = performance.now();
    let outcome: DhcpOutcome;
    try {
      const req = decode(buf);
      outcome = decide(req, this.#o.policy, this.#o.state);
      this.#m.received.inc(messageTypeName(outcome.facts?.messageType));
    } catch (err) {
      if (err instanceof DecodeError) {
        this.#m.received.inc('malformed');
        const level = this.#drop('malformed');
        if (level !== undefined)
          this.#log[level](
            {
              reason: 'malformed',
              peer: peerText(from),
              code: err.code,
              offset: err.offset,
              bytes: buf.length,
            },
            'dhcp drop',
          );
        return;
      }
      // A bug, not bad input: never let it take the server down.
      this.#m.drops.inc('malformed');
      this.#log.error({ err, peer: peerText(from) }, 'dhcp handler failed');
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
      this.#m.reply(type, d.source);
      this.#m.latency.observe((performance.now() - started) / 1000);
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
    this.#m.drops.inc(reason);
    const level = reason === 'unknown-host' || reason === 'other-server' || reason === 'released' ? 'debug' : 'info';
    if (!this.#log.isLevelEnabled(level)) return undefined;
    if (level === 'debug') return level;
    // A flood of bad or refused packets costs a few lines a second; the metric counts them all.
    const b = this.#logBudget.take(reason);
    if (b.ok && b.suppressed > 0) this.#log.info({ reason, suppressed: b.suppressed }, 'dhcp drops not logged');
    return b.ok ? level : undefined;
  }

  async close(): Promise<void> {
    const feed = this.#feed;
    this.#feed = undefined;
    await feed?.close();
    await Promise.allSettled([...this.#inFlight]);
    await Promise.all(this.#sockets.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    this.#sockets.length = 0;
    this.#sender = undefined;
  }
}

function peerText(from: dgram.RemoteInfo | string): string {
  return typeof from === 'string' ? from : `${from.address}:${from.port}`;
}

/** Whole seconds left of a lease held until `heldUntil` (infinite stays infinite); none if under one. */
function heldSeconds(heldUntil: number | undefined, now: number): number | undefined {
  if (heldUntil === undefined) return undefined;
  if (heldUntil === Infinity) return INFINITE_LEASE;
  const s = Math.floor((heldUntil - now) / 1000);
  return s >= 1 ? s : undefined;
}
