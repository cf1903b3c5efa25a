/**
 * The DHCPv6 shell: owns the socket, decodes, asks decide6(), makes range bindings durable,
 * sends.
 *
 * One udp6 socket on the listen address (`[::]:547`), joined to All_DHCP_Relay_Agents_and_Servers
 * (ff02::1:2) on the provisioning interface. Unlike DHCPv4, nothing here needs a helper process:
 * clients send from a link-local address, and Node reports its scope (`fe80::…%eth0`), so a
 * request's interface is known, and the reply goes back to that address and port, out of that
 * interface. Relays send from and are answered at their own (global) address.
 */
import dgram from 'node:dgram';
import type { Logger } from 'pino';
import { Histogram, type Registry } from 'prom-client';
import { DecodeError } from '../base/errors.js';
import { LabelledCounter } from '../base/labelled-counter.js';
import { LogBudget } from '../base/log-budget.js';
import type { Readiness, ReadinessCheck, Service } from '../base/service.js';
import { isNoSpace } from '../leases/lease-journal.js';
import type { LeaseBackend } from '../leases/lease-store.js';
import { formatIpv6, parseIpv6 } from '../net/ipv6.js';
import type { ListenAddress } from '../net/listen-address.js';
import { decode6, encode6 } from './codec.js';
import { decide6, type Dhcp6State } from './decide.js';
import { DROP_REASONS6, type Dhcp6Outcome, type DropReason6 } from './outcome.js';
import { OPT6, findOption, msg6Name, parseBootFileUrl } from './options.js';
import type { Dhcp6Policy } from './policy.js';

/**
 * SO_RCVBUF of the DHCPv6 socket, as DHCPv4's (dhcp/dhcp-sockets.ts): it holds a burst of
 * Solicits that arrives while the JavaScript thread is busy. With the kernel's default (208 KiB)
 * the DHCPv6 benchmark lost multicast Solicits to receive-buffer overflows at 2,000–3,000/s.
 * Linux caps it at net.core.rmem_max.
 */
export const DEFAULT_DHCP6_RECV_BUFFER_BYTES = 2 * 1024 * 1024;

/** All_DHCP_Relay_Agents_and_Servers (RFC 8415 §7.1). */
export const ALL_DHCP_SERVERS = 'ff02::1:2';

export interface Dhcp6ServerOptions {
  readonly listen: ListenAddress;
  /** The interface whose link is served: ff02::1:2 is joined there, and link-local requests from other interfaces are dropped. */
  readonly interface: string | undefined;
  readonly policy: Dhcp6Policy;
  readonly state: Dhcp6State;
  readonly leases: LeaseBackend;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly onOutcome?: (outcome: Dhcp6Outcome) => void;
  /** SO_RCVBUF asked for (0: the kernel's default). Default DEFAULT_DHCP6_RECV_BUFFER_BYTES. */
  readonly recvBufferBytes?: number;
}

export class Dhcp6Server implements Service {
  readonly name = 'dhcp6';
  readonly readiness: readonly ReadinessCheck[];
  readonly #o: Dhcp6ServerOptions;
  readonly #log: Logger;
  #socket: dgram.Socket | undefined;
  readonly #inFlight = new Set<Promise<void>>();
  readonly #received: LabelledCounter;
  readonly #drops: LabelledCounter<DropReason6>;
  readonly #replies: LabelledCounter;
  readonly #latency: Histogram;
  readonly #logBudget: LogBudget<DropReason6>;

  constructor(o: Dhcp6ServerOptions) {
    this.#o = o;
    this.#log = o.logger.child({ component: 'dhcp6' });
    const r = o.registry;
    this.#received = new LabelledCounter({
      name: 'metalboot_dhcp6_received_total',
      help: 'DHCPv6 messages received, by message type (of the client message inside any relay)',
      labelNames: ['type'],
      registers: [r],
    });
    this.#replies = new LabelledCounter({
      name: 'metalboot_dhcp6_replies_total',
      help: 'DHCPv6 replies sent, by message type and lease source (bmh, static, range; none without an address)',
      labelNames: ['type', 'source'],
      registers: [r],
    });
    this.#drops = new LabelledCounter({
      name: 'metalboot_dhcp6_dropped_total',
      help: 'DHCPv6 messages not answered, by reason',
      labelNames: ['reason'],
      registers: [r],
    });
    for (const reason of DROP_REASONS6) this.#drops.counter.inc({ reason }, 0);
    this.#latency = new Histogram({
      name: 'metalboot_dhcp6_reply_seconds',
      help: 'Time from receipt to DHCPv6 reply sent (includes the lease fsync for range bindings)',
      buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5],
      registers: [r],
    });
    this.#logBudget = new LogBudget({ perSecond: 5, burst: 20, now: o.state.now });
    this.readiness = [
      {
        name: 'dhcp6',
        check: (): Readiness =>
          this.#socket !== undefined ? { ok: true, detail: 'listening' } : { ok: false, detail: 'not listening' },
      },
    ];
  }

  address(): ListenAddress {
    const a = this.#socket!.address();
    return { host: a.address, port: a.port };
  }

  async start(): Promise<void> {
    const { listen } = this.#o;
    const asked = this.#o.recvBufferBytes ?? DEFAULT_DHCP6_RECV_BUFFER_BYTES;
    const recvBufferSize = asked > 0 ? asked : undefined;
    const s = dgram.createSocket({ type: 'udp6', reuseAddr: true, ipv6Only: true, recvBufferSize });
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind({ address: listen.host, port: listen.port, exclusive: true }, () => {
        s.off('error', reject);
        resolve();
      });
    });
    const ifname = this.#o.interface;
    if (ifname !== undefined) {
      try {
        s.addMembership(ALL_DHCP_SERVERS, `::%${ifname}`);
      } catch (err) {
        s.close();
        throw new Error(`cannot join ${ALL_DHCP_SERVERS} on ${ifname}: ${(err as Error).message}`, { cause: err });
      }
    }
    s.on('error', (err) => this.#log.error({ err }, 'dhcp6 socket error'));
    s.on('message', (buf, rinfo) => this.#onMessage(buf, rinfo));
    this.#socket = s;
    this.#log.info(
      {
        listen: `[${listen.host}]:${s.address().port}`,
        interface: ifname,
        serverIp: formatIpv6(this.#o.policy.serverIp),
      },
      'dhcp6 listening',
    );
  }

  #onMessage(buf: Buffer, rinfo: dgram.RemoteInfo): void {
    const started = performance.now();
    const [addr, scope] = rinfo.address.split('%') as [string, string | undefined];
    const peer = `[${rinfo.address}]:${rinfo.port}`;
    // A link-local request from another interface is not this link's (the scope names its interface).
    if (scope !== undefined && this.#o.interface !== undefined && scope !== this.#o.interface) {
      this.#received.inc('other');
      this.#dropLog('other-interface', { peer });
      return;
    }
    let outcome: Dhcp6Outcome;
    try {
      // The source matters only as a link-local (fe80::/10) EUI-64 address (identity.ts): others are not parsed.
      const from = addr.charCodeAt(0) === 0x66 && addr.charCodeAt(1) === 0x65 ? parseIpv6(addr) : undefined;
      outcome = decide6(decode6(buf), from, this.#o.policy, this.#o.state);
    } catch (err) {
      this.#received.inc('malformed');
      if (err instanceof DecodeError)
        this.#dropLog('malformed', { peer, code: err.code, offset: err.offset, bytes: buf.length });
      else {
        // A bug, not bad input: never let it take the server down.
        this.#drops.inc('malformed');
        this.#log.error({ err, peer }, 'dhcp6 handler failed');
      }
      return;
    }
    this.#received.inc(outcome.facts === undefined ? 'other' : msg6Name(outcome.facts.messageType));
    if (outcome.kind === 'ignore') {
      const d = outcome.facts;
      this.#dropLog(outcome.reason, {
        mac: d?.mac,
        type: d === undefined ? undefined : msg6Name(d.messageType),
        host: d?.host?.origin.name,
        detail: outcome.detail,
        peer,
      });
      if (outcome.persist !== undefined)
        this.#track(
          this.#o.leases
            .persist(outcome.persist)
            .catch((err: unknown) => this.#log.error({ err }, 'dhcp6 lease journal write failed')),
        );
      this.#o.onOutcome?.(outcome);
      return;
    }
    const send = () => this.#send(outcome, rinfo, started);
    if (outcome.persist === undefined) {
      send();
      return;
    }
    this.#track(this.#o.leases.persist(outcome.persist).then(send, (err: unknown) => this.#notDurable(outcome, err)));
  }

  /** The binding could not be written: undo it and stay silent (the client retries). */
  #notDurable(outcome: Extract<Dhcp6Outcome, { kind: 'reply' }>, err: unknown): void {
    const conflict = (err as { code?: unknown }).code === 'LEASE_ERR_CONFLICT';
    if (!conflict) this.#log.error({ err, mac: outcome.facts.mac }, 'dhcp6 lease journal write failed');
    if (outcome.commit !== undefined) this.#o.state.pool.revert(outcome.commit.undo);
    const reason = conflict ? 'lease-conflict' : isNoSpace(err) ? 'journal-full' : 'journal-failed';
    this.#dropLog(reason, { mac: outcome.facts.mac, detail: conflict ? (err as Error).message : undefined });
  }

  #send(outcome: Extract<Dhcp6Outcome, { kind: 'reply' }>, to: dgram.RemoteInfo, started: number): void {
    const s = this.#socket;
    if (s === undefined) return;
    const bytes = encode6(outcome.reply);
    const d = outcome.facts;
    s.send(bytes, to.port, to.address, (err) => {
      if (err) {
        this.#dropLog('send-failed', { mac: d.mac, err });
        return;
      }
      const type = msg6Name(outcome.inner.msgType);
      this.#replies.incPair(type, outcome.address === undefined ? 'none' : (d.source ?? 'none'));
      this.#latency.observe((performance.now() - started) / 1000);
      if (this.#log.isLevelEnabled('info'))
        this.#log.info(
          {
            xid: d.transactionId,
            mac: d.mac,
            macFrom: d.via,
            type,
            ip: outcome.address === undefined ? undefined : formatIpv6(outcome.address),
            source: d.source,
            host: d.host?.origin.name,
            client: d.client.kind,
            arch: 'archCode' in d.client ? d.client.archCode : undefined,
            boot:
              outcome.boot === undefined
                ? undefined
                : outcome.boot.kind === 'none'
                  ? `none (${outcome.boot.reason})`
                  : bootText(outcome),
            relays: d.relays,
            to: `[${to.address}]:${to.port}`,
          },
          'dhcp6 reply',
        );
      this.#o.onOutcome?.(outcome);
    });
  }

  #track(p: Promise<void>): void {
    this.#inFlight.add(p);
    void p.finally(() => this.#inFlight.delete(p));
  }

  /** Counts a drop and logs it within the log budget; unknown hosts and other servers at debug. */
  #dropLog(reason: DropReason6, fields: Record<string, unknown>): void {
    this.#drops.inc(reason);
    const level = reason === 'unknown-host' || reason === 'other-server' ? 'debug' : 'info';
    if (!this.#log.isLevelEnabled(level)) return;
    if (level === 'info') {
      const b = this.#logBudget.take(reason);
      if (b.ok && b.suppressed > 0) this.#log.info({ reason, suppressed: b.suppressed }, 'dhcp6 drops not logged');
      if (!b.ok) return;
    }
    this.#log[level]({ reason, ...fields }, 'dhcp6 drop');
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.#inFlight]);
    const s = this.#socket;
    this.#socket = undefined;
    if (s !== undefined) await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}

/** The Boot File URL the reply carries (option 59), as sent. */
function bootText(outcome: Extract<Dhcp6Outcome, { kind: 'reply' }>): string | undefined {
  const url = findOption(outcome.inner.options, OPT6.BOOTFILE_URL);
  return url === undefined ? undefined : parseBootFileUrl(url);
}
