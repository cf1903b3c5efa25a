/**
 * The TFTP server shell: owns the UDP sockets and the timers, and runs the pure parts
 * (datagram.ts → request.ts → transfer.ts) for every datagram.
 *
 * Two ways to use ports:
 * - Per-transfer ports (default, RFC 1350 §4): each transfer gets its own socket, bound to the
 *   listen address on an ephemeral port (its TID). The request port only takes requests.
 * - Single port (`singlePort`): every packet uses the listen port and transfers are keyed by
 *   the client's address:port. Needed behind Kubernetes Service NAT, which only forwards the
 *   one port (and its conntrack entry) the client sent its request to.
 *
 * Bind the listen address to the provisioning IP, not 0.0.0.0: without IP_PKTINFO a transfer
 * socket bound to 0.0.0.0 answers from whatever address the route picks, and firmware drops
 * packets from an address other than the one it sent its request to.
 *
 * Longer than most files here (~500 lines) on purpose: it is one class, the shell, whose
 * methods are the life of a transfer in both port modes (request, each datagram, timer, end);
 * the decisions are already out in the pure files, and the metrics and sockets in
 * tftp-metrics.ts and udp.ts.
 */
import dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { FileLookup, FileSource, IpxeFile } from '../boot/ipxe-files.js';
import type { ListenAddress } from '../net/listen-address.js';
import { MetalbootError } from '../base/errors.js';
import { LogBudget } from '../base/log-budget.js';
import { listening, type ReadinessCheck, type Service } from '../base/service.js';
import { classifyDatagram, UNKNOWN_TID, type TftpDropReason } from './datagram.js';
import { encode, ERROR_CODE, type ErrorPacket, type RequestPacket, type TftpPacket } from './packet.js';
import { decideRequest, type RefuseReason } from './request.js';
import { Transfer, type TransferEnd, type TransferStep } from './transfer.js';
import { Metrics } from './tftp-metrics.js';
import { bindSocket, closeQuietly, literalLookup, type Timers, type UdpSocket } from './udp.js';

export type { Timers, UdpSocket } from './udp.js';

/** A transfer that ended with the client's last ACK. */
export interface TftpTransferDone {
  readonly peer: string;
  readonly file: string;
  readonly bytes: number;
  /** Packets sent again (timeouts and duplicate ACKs). */
  readonly retransmissions: number;
  /** Milliseconds from the request to the end. */
  readonly ms: number;
}

/** A transfer that began (options negotiated, file found). */
export interface TftpTransferStart {
  readonly peer: string;
  readonly file: string;
  readonly size: number;
}

/** Any end of a transfer: `complete`, `options-declined` (EDK2's tsize probe) or why it failed. */
export interface TftpTransferEnd extends TftpTransferDone {
  readonly outcome: string;
}

export interface TftpServerOptions {
  readonly listen: ListenAddress;
  /** All traffic on the listen port (for Service NAT). Default false: a port per transfer. */
  readonly singlePort?: boolean;
  readonly files: FileSource;
  /**
   * Files made per request (GRUB configurations by client address, images fetched through the
   * image proxy): undefined when `name` is not one of them, else the file when it is ready. A
   * request waits for it, and repeats of the request meanwhile are dropped as duplicates.
   */
  readonly dynamic?: (name: string, peer: string) => Promise<FileLookup> | undefined;
  /** Largest blksize answered. Default 1468 (a 1500-byte MTU less IP, UDP and TFTP headers). */
  readonly maxBlksize?: number;
  /** Largest windowsize answered. Default 64. */
  readonly maxWindowsize?: number;
  /** Concurrent transfers, server-wide. Default 1000. */
  readonly maxTransfers?: number;
  /** Concurrent transfers per client IP address. Default 8. */
  readonly maxPerClient?: number;
  /** First retransmission timeout when the client sends no `timeout` option. Default 1000 ms. */
  readonly timeoutMs?: number;
  /** Back-off cap. Default 8000 ms. */
  readonly maxTimeoutMs?: number;
  /** Retransmissions in a row without progress before a transfer is abandoned. Default 5. */
  readonly retries?: number;
  /** The longest a transfer may hold a slot, however it progresses. Default 300,000 ms. */
  readonly maxTransferMs?: number;
  /**
   * Receive buffer asked for on the request port, which takes every request of a boot storm
   * (and, in single-port mode, every ACK). Best effort: Linux caps it at net.core.rmem_max.
   * Default 4 MiB.
   */
  readonly recvBufferBytes?: number;
  /** How long close() lets running transfers finish before aborting them. Default 5000 ms. */
  readonly closeTimeoutMs?: number;
  readonly logger: Logger;
  readonly registry: Registry;
  /** Metrics shared with another server of the process (TFTP over IPv4 and IPv6 count together); default: its own, in `registry`. */
  readonly metrics?: Metrics;
  readonly createSocket?: () => UdpSocket;
  readonly timers?: Timers;
  /** Monotonic milliseconds, for durations. Default performance.now. */
  readonly now?: () => number;
  /** Called after each completed transfer (boot milestones, Kubernetes events). */
  readonly onComplete?: (event: TftpTransferDone) => void;
  /** Called when a transfer begins, and when it ends however it ends (boot timelines). */
  readonly onStart?: (event: TftpTransferStart) => void;
  readonly onEnd?: (event: TftpTransferEnd) => void;
}

/** Failures on our side, on top of the transfer's own ends. */
type ServerEnd = 'shutdown' | 'superseded' | 'socket-error' | 'too-long';
type EndReason = TransferEnd | ServerEnd;

interface Peer {
  readonly address: string;
  readonly port: number;
}

interface Active {
  readonly key: string;
  readonly peer: Peer;
  readonly request: RequestPacket;
  readonly file: IpxeFile;
  readonly transfer: Transfer;
  readonly log: Logger;
  readonly startedAt: number;
  socket: UdpSocket | undefined;
  /** True when the socket is the transfer's own (per-transfer-port mode). */
  ownSocket: boolean;
  timer: unknown;
  /** The delay `timer` was set with, so that an unchanged one can be refreshed. */
  timerMs: number;
  /** Runs the transfer's timeout; made once per transfer, not per packet. */
  readonly onTimer: () => void;
  done: boolean;
}

const DEFAULTS = {
  maxBlksize: 1468,
  maxWindowsize: 64,
  maxTransfers: 1000,
  maxPerClient: 8,
  timeoutMs: 1000,
  maxTimeoutMs: 8000,
  retries: 5,
  maxTransferMs: 300_000,
  closeTimeoutMs: 5000,
  recvBufferBytes: 4 * 1024 * 1024,
} as const;

/** Ends the client hears about. Not 'superseded': the client's new request uses the same port,
 *  and an ERROR arriving there would end the new transfer too. */
const MESSAGE_FOR_END: Partial<Record<EndReason, string>> = {
  shutdown: 'Server shutting down',
  'too-long': 'Transfer time limit reached',
};

const peerKey = (p: Peer): string => `${p.address}:${p.port}`;

function sameRequest(a: RequestPacket, b: RequestPacket): boolean {
  return (
    a.filename === b.filename &&
    a.mode === b.mode &&
    a.options.length === b.options.length &&
    a.options.every((o, i) => o.name === b.options[i]!.name && o.value === b.options[i]!.value)
  );
}

export class TftpServer implements Service {
  readonly name = 'tftp';
  readonly readiness: readonly ReadinessCheck[] = [listening('tftp', this)];
  readonly #o: Required<
    Omit<
      TftpServerOptions,
      'createSocket' | 'timers' | 'now' | 'onComplete' | 'onStart' | 'onEnd' | 'dynamic' | 'metrics'
    >
  > &
    Pick<TftpServerOptions, 'dynamic'>;
  readonly #createSocket: () => UdpSocket;
  readonly #timers: Timers;
  readonly #now: () => number;
  readonly #onComplete: TftpServerOptions['onComplete'];
  readonly #onStart: TftpServerOptions['onStart'];
  readonly #onEnd: TftpServerOptions['onEnd'];
  readonly #log: Logger;
  readonly #logBudget: LogBudget<RefuseReason>;
  readonly #metrics: Metrics;
  /** Running transfers by client address:port. */
  readonly #transfers = new Map<string, Active>();
  /** Running transfers by client address. */
  readonly #perClient = new Map<string, number>();
  /** Requests waiting for a dynamic file, by client address:port. */
  readonly #pending = new Set<string>();
  #listener: UdpSocket | undefined;
  #closing = false;
  #drained: (() => void) | undefined;

  constructor(options: TftpServerOptions) {
    this.#o = {
      singlePort: false,
      ...DEFAULTS,
      ...definedOnly(options),
    } as Required<
      Omit<
        TftpServerOptions,
        'createSocket' | 'timers' | 'now' | 'onComplete' | 'onStart' | 'onEnd' | 'dynamic' | 'metrics'
      >
    > &
      Pick<TftpServerOptions, 'dynamic'>;
    this.#createSocket =
      options.createSocket ??
      (() =>
        dgram.createSocket({
          // An IPv6 listen address gets IPv6 sockets (TFTP over IPv6 runs as a second server).
          ...(options.listen.host.includes(':') ? { type: 'udp6', ipv6Only: true } : { type: 'udp4' }),
          lookup: literalLookup as dgram.SocketOptions['lookup'],
        }));
    this.#timers = options.timers ?? {
      setTimeout: (fn, ms) => setTimeout(fn, ms),
      clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
      refresh: (h) => (h as NodeJS.Timeout).refresh(),
    };
    this.#now = options.now ?? (() => performance.now());
    this.#logBudget = new LogBudget({ perSecond: 5, burst: 20, now: this.#now });
    this.#onComplete = options.onComplete;
    this.#onStart = options.onStart;
    this.#onEnd = options.onEnd;
    this.#log = options.logger.child({ component: 'tftp' });
    this.#metrics = options.metrics ?? new Metrics(options.registry);
  }

  /** The bound request address (the real port when listen.port was 0). */
  address(): ListenAddress {
    if (this.#listener === undefined) throw new MetalbootError('TFTP_ERR_NOT_STARTED', 'TFTP server not started');
    const a = this.#listener.address();
    return { host: a.address, port: a.port };
  }

  /** Number of transfers running now. */
  get activeTransfers(): number {
    return this.#transfers.size;
  }

  async start(): Promise<void> {
    if (this.#listener !== undefined)
      throw new MetalbootError('TFTP_ERR_ALREADY_STARTED', 'TFTP server already started');
    const socket = this.#createSocket();
    await bindSocket(socket, this.#o.listen.host, this.#o.listen.port);
    try {
      socket.setRecvBufferSize(this.#o.recvBufferBytes);
    } catch (err) {
      this.#log.debug({ err }, 'receive buffer size not set');
    }
    this.#listener = socket;
    socket.on('message', (msg: Buffer, rinfo: dgram.RemoteInfo) => this.#onListenerMessage(msg, rinfo));
    socket.on('error', (err: Error) => this.#log.error({ err }, 'socket error'));
    this.#log.info({ listen: this.address(), singlePort: this.#o.singlePort }, 'listening');
  }

  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    const listener = this.#listener;
    // Per-transfer ports: the request port can go now. Single port: it carries the transfers.
    if (!this.#o.singlePort && listener !== undefined) {
      closeQuietly(listener);
      this.#listener = undefined;
    }
    if (this.#transfers.size > 0) {
      this.#log.info({ transfers: this.#transfers.size }, 'draining');
      await new Promise<void>((resolve) => {
        const timer = this.#timers.setTimeout(() => {
          this.#drained = undefined;
          resolve();
        }, this.#o.closeTimeoutMs);
        this.#drained = () => {
          this.#timers.clearTimeout(timer);
          this.#drained = undefined;
          resolve();
        };
      });
    }
    for (const active of [...this.#transfers.values()]) this.#finish(active, 'shutdown');
    if (this.#listener !== undefined) {
      const l = this.#listener;
      this.#listener = undefined;
      // Let the shutdown ERRORs leave before the socket goes.
      await new Promise<void>((resolve) => setImmediate(resolve));
      closeQuietly(l);
    }
    this.#log.info('closed');
  }

  // ---- datagrams on the request port ---------------------------------------------------------

  #onListenerMessage(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const peer: Peer = { address: rinfo.address, port: rinfo.port };
    const c = classifyDatagram(msg);
    const listener = this.#listener;
    if (listener === undefined) return;
    if (c.kind === 'drop') {
      this.#drop(c.reason, peer, c.detail);
      if (c.reply) this.#sendTo(listener, peer, c.reply);
      return;
    }
    const packet = c.packet;
    if (packet.op === 'rrq' || packet.op === 'wrq') {
      this.#onRequest(packet, peer);
      return;
    }
    if (this.#o.singlePort) {
      const active = this.#transfers.get(peerKey(peer));
      if (active !== undefined) {
        this.#apply(active, active.transfer.onPacket(packet));
        return;
      }
      if (packet.op === 'error') {
        // Never answer an ERROR with an ERROR.
        this.#drop('stray-error', peer);
        return;
      }
      this.#drop('unknown-tid', peer);
      this.#sendTo(listener, peer, UNKNOWN_TID);
      return;
    }
    this.#drop(packet.op === 'error' ? 'stray-error' : 'unexpected-opcode', peer);
  }

  #onRequest(req: RequestPacket, peer: Peer): void {
    const key = peerKey(peer);
    const existing = this.#transfers.get(key);
    if (existing !== undefined) {
      // A repeated request: our first packet is late or lost, and the timer will resend it.
      if (existing.transfer.pristine && sameRequest(existing.request, req)) {
        this.#drop('duplicate-request', peer);
        return;
      }
      // Anything else from the same address:port means the client has started over.
      this.#finish(existing, 'superseded');
    }
    if (this.#pending.has(key)) {
      this.#drop('duplicate-request', peer);
      return;
    }
    // Requests waiting for a made file hold a transfer slot too: a flood of them is refused as
    // server-busy like any other, instead of starting unbounded fetches.
    const atLimit = this.#transfers.size + this.#pending.size >= this.#o.maxTransfers;
    const made = req.op === 'rrq' && !atLimit ? this.#o.dynamic?.(req.filename, peer.address) : undefined;
    if (made !== undefined) {
      this.#pending.add(key);
      made.then(
        (found) => {
          this.#pending.delete(key);
          if (!this.#closing) this.#begin(req, peer, key, () => found);
        },
        (err: unknown) => {
          this.#pending.delete(key);
          this.#log.warn({ err, peer: key, file: req.filename }, 'dynamic file failed');
          if (!this.#closing) this.#begin(req, peer, key, () => ({ kind: 'missing' }));
        },
      );
      return;
    }
    this.#begin(req, peer, key, (name) => this.#o.files.lookup(name));
  }

  #begin(req: RequestPacket, peer: Peer, key: string, lookup: (name: string) => FileLookup): void {
    const decision = decideRequest(req, {
      lookup,
      closing: this.#closing,
      active: this.#transfers.size + this.#pending.size,
      activeForClient: this.#perClient.get(peer.address) ?? 0,
      maxTransfers: this.#o.maxTransfers,
      maxPerClient: this.#o.maxPerClient,
      limits: {
        maxBlksize: this.#o.maxBlksize,
        maxWindowsize: this.#o.maxWindowsize,
        maxTimeoutS: Math.max(1, Math.floor(this.#o.maxTimeoutMs / 1000)),
      },
    });
    if (decision.kind === 'refuse') {
      this.#refuse(decision.reason, peer, req, decision.error, decision.detail);
      return;
    }
    const { file, negotiated } = decision;
    const transfer = new Transfer({
      data: file.data,
      blksize: negotiated.blksize,
      windowsize: negotiated.windowsize,
      oack: negotiated.oack,
      timeoutMs: negotiated.timeoutMs ?? this.#o.timeoutMs,
      maxTimeoutMs: this.#o.maxTimeoutMs,
      retries: this.#o.retries,
    });
    const active: Active = {
      key,
      peer,
      request: req,
      file,
      transfer,
      log: this.#log.child({ peer: key, file: file.name }),
      startedAt: this.#now(),
      socket: undefined,
      ownSocket: false,
      timer: undefined,
      timerMs: 0,
      onTimer: () => {
        active.timer = undefined;
        this.#apply(active, active.transfer.onTimeout());
      },
      done: false,
    };
    this.#transfers.set(key, active);
    this.#perClient.set(peer.address, (this.#perClient.get(peer.address) ?? 0) + 1);
    this.#metrics.started.inc();
    this.#metrics.active.inc();
    this.#onStart?.({ peer: peer.address, file: file.name, size: file.size });
    if (active.log.isLevelEnabled('debug')) {
      active.log.debug(
        {
          size: file.size,
          blksize: negotiated.blksize,
          windowsize: negotiated.windowsize,
          oack: negotiated.oack.length > 0,
          ignored: negotiated.ignored,
        },
        'transfer started',
      );
    }
    if (this.#o.singlePort) {
      active.socket = this.#listener;
      this.#apply(active, transfer.start());
      return;
    }
    const socket = this.#createSocket();
    active.socket = socket;
    active.ownSocket = true;
    socket.on('error', (err: Error) => {
      active.log.warn({ err }, 'transfer socket error');
      this.#finish(active, 'socket-error');
    });
    bindSocket(socket, this.#o.listen.host, 0).then(
      () => {
        if (active.done) return;
        socket.on('message', (msg: Buffer, rinfo: dgram.RemoteInfo) => this.#onTransferMessage(active, msg, rinfo));
        this.#apply(active, transfer.start());
      },
      (err: unknown) => {
        active.log.warn({ err }, 'transfer socket bind failed');
        this.#finish(active, 'socket-error');
      },
    );
  }

  // ---- datagrams on a transfer's own port ----------------------------------------------------

  #onTransferMessage(active: Active, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const c = classifyDatagram(msg);
    if (rinfo.address !== active.peer.address || rinfo.port !== active.peer.port) {
      // RFC 1350 §4: answer the stranger, leave the transfer alone.
      const from: Peer = { address: rinfo.address, port: rinfo.port };
      this.#drop('unknown-tid', from);
      if (active.socket && !(c.kind === 'packet' && c.packet.op === 'error'))
        this.#sendTo(active.socket, from, UNKNOWN_TID);
      return;
    }
    if (c.kind === 'drop') {
      this.#drop(c.reason, active.peer, c.detail);
      return;
    }
    this.#apply(active, active.transfer.onPacket(c.packet));
  }

  // ---- doing what the transfer says ----------------------------------------------------------

  #apply(active: Active, step: TransferStep): void {
    if (active.done) return;
    if (this.#now() - active.startedAt > this.#o.maxTransferMs) {
      this.#finish(active, 'too-long');
      return;
    }
    switch (step.kind) {
      case 'ignore':
        this.#drop(step.reason, active.peer);
        return;
      case 'send': {
        this.#sendAll(active, step.packets);
        if (step.retransmit) {
          this.#metrics.retransmits.inc(step.packets.length);
          if (active.log.isLevelEnabled('debug'))
            active.log.debug({ acked: active.transfer.lastAcked, timeoutMs: step.timeoutMs }, 'retransmit');
        }
        this.#armTimer(active, step.timeoutMs);
        return;
      }
      case 'end':
        this.#sendAll(active, step.packets);
        if (step.error !== undefined)
          active.log.debug({ code: step.error.code, message: step.error.message.slice(0, 128) }, 'client error');
        this.#finish(active, step.end);
        return;
    }
  }

  #sendAll(active: Active, packets: readonly TftpPacket[]): void {
    if (active.socket === undefined) return;
    let bytes = 0;
    for (const p of packets) {
      if (p.op === 'data') bytes += p.data.length;
      this.#sendTo(active.socket, active.peer, p);
    }
    if (bytes > 0) this.#metrics.bytes.inc(bytes);
  }

  /** (Re)starts the retransmission timer: a refresh while the delay stays the same. */
  #armTimer(active: Active, ms: number): void {
    if (active.timer !== undefined && active.timerMs === ms && this.#timers.refresh !== undefined) {
      this.#timers.refresh(active.timer);
      return;
    }
    this.#cancelTimer(active);
    active.timerMs = ms;
    active.timer = this.#timers.setTimeout(active.onTimer, ms);
  }

  #finish(active: Active, reason: EndReason): void {
    if (active.done) return;
    active.done = true;
    this.#cancelTimer(active);
    if (this.#transfers.get(active.key) === active) this.#transfers.delete(active.key);
    const n = (this.#perClient.get(active.peer.address) ?? 1) - 1;
    if (n > 0) this.#perClient.set(active.peer.address, n);
    else this.#perClient.delete(active.peer.address);
    this.#metrics.active.dec();

    const message = MESSAGE_FOR_END[reason];
    if (message !== undefined && active.socket !== undefined) {
      this.#sendTo(active.socket, active.peer, { op: 'error', code: ERROR_CODE.NOT_DEFINED, message });
    }
    const ms = this.#now() - active.startedAt;
    const seconds = ms / 1000;
    const fields = { bytes: active.transfer.bytesSent, retransmissions: active.transfer.retransmissions, seconds };
    const done: TftpTransferDone = {
      peer: active.peer.address,
      file: active.file.name,
      bytes: fields.bytes,
      retransmissions: fields.retransmissions,
      ms,
    };
    switch (reason) {
      case 'complete':
        this.#metrics.finished.inc({ outcome: reason });
        this.#metrics.duration.observe(seconds);
        active.log.info({ ...fields, size: active.file.size }, 'transfer complete');
        this.#onComplete?.(done);
        break;
      case 'options-declined':
        this.#metrics.finished.inc({ outcome: reason });
        active.log.debug(fields, 'options declined');
        break;
      default:
        this.#metrics.failed.inc({ reason });
        active.log.warn({ ...fields, reason, acked: active.transfer.lastAcked }, 'transfer failed');
    }
    this.#onEnd?.({ ...done, outcome: reason });
    if (active.ownSocket && active.socket !== undefined) {
      const socket = active.socket;
      // Close after anything just queued (a final ERROR) has been handed to the kernel.
      setImmediate(() => closeQuietly(socket));
    }
    if (this.#transfers.size === 0) this.#drained?.();
  }

  #cancelTimer(active: Active): void {
    if (active.timer !== undefined) {
      this.#timers.clearTimeout(active.timer);
      active.timer = undefined;
    }
  }

  #refuse(reason: RefuseReason, peer: Peer, req: RequestPacket, error: ErrorPacket, detail?: string): void {
    this.#metrics.refused.inc({ reason });
    // A flood of requests costs a few lines a second; the metric counts them all.
    const b = this.#logBudget.take(reason);
    if (b.ok && b.suppressed > 0) this.#log.info({ reason, suppressed: b.suppressed }, 'refused requests not logged');
    if (b.ok)
      this.#log.info({ peer: peerKey(peer), file: req.filename.slice(0, 256), reason, detail }, 'request refused');
    if (this.#listener !== undefined) this.#sendTo(this.#listener, peer, error);
  }

  #drop(reason: TftpDropReason, peer: Peer, detail?: string): void {
    this.#metrics.drop(reason);
    if (this.#log.isLevelEnabled('debug')) this.#log.debug({ peer: peerKey(peer), reason, detail }, 'packet dropped');
  }

  #sendTo(socket: UdpSocket, peer: Peer, packet: TftpPacket): void {
    try {
      // A send callback costs a request object and a callback per packet; it only logs at
      // debug, so ask for it only then. Without one, dgram drops a failed send silently.
      if (this.#log.isLevelEnabled('debug')) {
        socket.send(encode(packet), peer.port, peer.address, (err) => {
          if (err) this.#log.debug({ err, peer: peerKey(peer) }, 'send failed');
        });
      } else {
        socket.send(encode(packet), peer.port, peer.address);
      }
    } catch (err) {
      // Only a closed socket throws here; the transfer is ending anyway.
      this.#log.debug({ err, peer: peerKey(peer) }, 'send failed');
    }
  }
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
