/**
 * The UDP datagrams of one network interface, through socat
 * (docs/decisions/0009-dhcp-on-one-interface.md).
 *
 * Node's dgram has no SO_BINDTODEVICE and no IP_PKTINFO: no socket of its own can hear the
 * broadcasts of one interface and not the others'. socat can bind to a device, so DeviceFeed runs
 *
 *   socat -d -b 65536 -u UDP4-RECV:<port>,so-bindtodevice=<dev>,reuseaddr[,rcvbuf=N] UDP4:127.0.0.1:<feed>
 *
 * and reads what it forwards on a loopback socket of its own (<feed>). One datagram in is one
 * datagram out: socat reads a UDP socket one datagram per read and writes each read once, and a
 * buffer (-b) larger than any UDP payload keeps every datagram whole (the default 8192 would
 * cut a 9000-byte one). The feed socket takes datagrams from socat's sending socket only: its
 * port is that of the one socket of our uid connected to <feed>, read from /proc/net/udp.
 * Anything else reaching <feed> is dropped and reported to `onForeign`.
 *
 * Supervision (base/supervised-process.ts, shared with radvd): start() resolves once socat has bound both ends (its sending socket is connected
 * after its receiving one is bound: socat opens its addresses in order), and fails with a
 * MetalbootError when socat is missing, exits, or is not bound within `readyTimeoutMs`. A socat
 * that dies later is logged at error with its exit code and the tail of its stderr, and started
 * again after a back-off of 1 s doubling to 30 s; `readiness` says so while it is down. close()
 * stops it (SIGTERM, SIGKILL after `stopTimeoutMs`). If metalboot exits without close(), an
 * 'exit' hook kills socat; after a SIGKILL of metalboot, socat's next datagram meets the closed
 * feed port and socat exits on the ECONNREFUSED (its sending socket is connected for this).
 */
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { MetalbootError } from '../base/errors.js';
import type { ReadinessCheck } from '../base/service.js';
import { type StartFailure, SupervisedProcess } from '../base/supervised-process.js';
import { connectedSocket, parseProcNetUdp } from './proc-net-udp.js';

export interface DeviceFeedOptions {
  /** The interface to hear (SO_BINDTODEVICE). */
  readonly device: string;
  /** The UDP port to receive on. */
  readonly port: number;
  /** SO_RCVBUF of socat's receiving socket and of the feed socket; 0 keeps the kernel's default. */
  readonly recvBufferBytes: number;
  readonly logger: Logger;
  /** Name of the readiness check and the logs' component. Default `device-feed`. */
  readonly name?: string;
  /** Each datagram socat received on the device, whole. */
  readonly onDatagram: (buf: Buffer) => void;
  /** A datagram on the feed port that socat did not send: dropped. */
  readonly onForeign: (from: dgram.RemoteInfo) => void;
  /** The socat executable. Default `socat`, found on PATH. */
  readonly socat?: string;
  /** How long socat may take to bind. Default 5000 ms. */
  readonly readyTimeoutMs?: number;
  /** First restart delay after socat died, doubling up to 30 s. Default 1000 ms. */
  readonly restartDelayMs?: number;
  /** How long close() waits after SIGTERM before SIGKILL. Default 2000 ms. */
  readonly stopTimeoutMs?: number;
  /** The text of /proc/net/udp (tests). */
  readonly procNetUdp?: () => string;
}

/** Over any UDP payload (65,507 bytes): a read never cuts a datagram. */
export const SOCAT_BLOCK_BYTES = 65_536;

/**
 * Interface names socat takes as they are. Linux allows ',' and '!' in a name (not '/', ':' or
 * white space), which socat would read as separators; such names are refused, not quoted.
 */
const SOCAT_SAFE_DEVICE = /^[A-Za-z0-9_.-]{1,15}$/;

/** socat's arguments (pure). Throws NET_ERR_DEVICE_NAME for a name socat would misread. */
export function socatArgs(o: {
  readonly device: string;
  readonly port: number;
  readonly feedPort: number;
  readonly recvBufferBytes: number;
}): string[] {
  if (!SOCAT_SAFE_DEVICE.test(o.device))
    throw new MetalbootError(
      'NET_ERR_DEVICE_NAME',
      `interface name ${JSON.stringify(o.device)} has characters socat would misread (allowed: A-Z a-z 0-9 _ . -)`,
    );
  // No `broadcast` option: SO_BROADCAST permits sending broadcasts; receiving them needs nothing.
  const recv = [`UDP4-RECV:${o.port}`, `so-bindtodevice=${o.device}`, 'reuseaddr'];
  if (o.recvBufferBytes > 0) recv.push(`rcvbuf=${o.recvBufferBytes}`);
  return [
    '-d', // warnings too: their tail is logged when socat exits
    '-b',
    String(SOCAT_BLOCK_BYTES),
    '-u', // one way: device → feed
    recv.join(','),
    // Connected (not UDP4-SENDTO): its port shows in /proc/net/udp, and an orphan exits on ECONNREFUSED.
    `UDP4:127.0.0.1:${o.feedPort}`,
  ];
}

export class DeviceFeed {
  readonly readiness: ReadinessCheck;
  readonly #o: DeviceFeedOptions;
  readonly #log: Logger;
  readonly #uid = process.geteuid?.() ?? 0;
  #socket: dgram.Socket | undefined;
  #feedPort = 0;
  /** Where socat's datagrams come from: its sending socket's port (kept until the next socat is bound). */
  #senderPort: number | undefined;
  #socat: SupervisedProcess | undefined;

  constructor(o: DeviceFeedOptions) {
    this.#o = o;
    this.#log = o.logger.child({ component: o.name ?? 'device-feed', device: o.device });
    this.readiness = {
      name: o.name ?? 'device-feed',
      check: () => {
        const s = this.#socat;
        if (s?.state === 'running') return { ok: true, detail: `socat on ${o.device} (pid ${s.pid})` };
        if (this.#socket === undefined) return { ok: false, detail: 'not started' };
        return { ok: false, detail: `socat on ${o.device} is down; restarting` };
      },
    };
  }

  /** The loopback port socat sends to (0 before start()). */
  get feedPort(): number {
    return this.#feedPort;
  }

  /** socat's process id while it runs. */
  get pid(): number | undefined {
    return this.#socat?.pid;
  }

  async start(): Promise<void> {
    this.#socket = await this.#bindFeed();
    this.#feedPort = this.#socket.address().port;
    const socat = this.#o.socat ?? 'socat';
    this.#socat = new SupervisedProcess({
      command: socat,
      args: socatArgs({
        device: this.#o.device,
        port: this.#o.port,
        feedPort: this.#feedPort,
        recvBufferBytes: this.#o.recvBufferBytes,
      }),
      program: 'socat',
      logger: this.#log,
      // Bound once its sending socket (connected after the receiving one is bound) shows up.
      isReady: () => {
        const port = this.#probe();
        if (port === undefined) return false;
        this.#senderPort = port;
        return true;
      },
      startError: (f) => this.#startError(socat, f),
      readyTimeoutMs: this.#o.readyTimeoutMs,
      restartDelayMs: this.#o.restartDelayMs,
      stopTimeoutMs: this.#o.stopTimeoutMs,
    });
    try {
      await this.#socat.start();
    } catch (err) {
      await this.close();
      throw err;
    }
    this.#log.info({ pid: this.pid, port: this.#o.port, feedPort: this.#feedPort }, 'socat listening');
  }

  #bindFeed(): Promise<dgram.Socket> {
    const recvBufferSize = this.#o.recvBufferBytes > 0 ? this.#o.recvBufferBytes : undefined;
    const s = dgram.createSocket({ type: 'udp4', recvBufferSize });
    return new Promise((resolve, reject) => {
      s.once('error', reject);
      s.bind({ address: '127.0.0.1', port: 0 }, () => {
        s.off('error', reject);
        s.on('error', (err) => this.#log.error({ err }, 'device feed socket error'));
        s.on('message', (buf, rinfo) => this.#onFeed(buf, rinfo));
        resolve(s);
      });
    });
  }

  #onFeed(buf: Buffer, rinfo: dgram.RemoteInfo): void {
    if (rinfo.address === '127.0.0.1' && (rinfo.port === this.#senderPort || this.#isNewSender(rinfo.port))) {
      this.#o.onDatagram(buf);
      return;
    }
    this.#o.onForeign(rinfo);
  }

  /** A datagram from a socat that started but whose sender the last probe had not seen yet. */
  #isNewSender(port: number): boolean {
    if (this.#socat?.state !== 'starting') return false;
    return this.#probe() === port;
  }

  /** The port of the one socket of our uid connected to the feed port, if there is one. */
  #probe(): number | undefined {
    let text: string;
    try {
      text = (this.#o.procNetUdp ?? (() => readFileSync('/proc/net/udp', 'utf8')))();
    } catch {
      return undefined;
    }
    return connectedSocket(parseProcNetUdp(text), { address: '127.0.0.1', port: this.#feedPort }, this.#uid)?.local
      .port;
  }

  #startError(socat: string, f: StartFailure): MetalbootError {
    const e = f.spawnError;
    if (e?.code === 'ENOENT')
      return new MetalbootError(
        'NET_ERR_SOCAT_MISSING',
        `${socat} not found: install socat (Debian/Ubuntu package "socat") to serve DHCP on one interface`,
        { cause: e },
      );
    if (e !== undefined)
      return new MetalbootError('NET_ERR_FEED_START', `cannot run ${socat}: ${e.message}`, { cause: e });
    if (f.kind === 'timeout')
      return new MetalbootError(
        'NET_ERR_FEED_START',
        `socat did not bind to ${this.#o.device} port ${this.#o.port} within ${f.readyTimeoutMs} ms: ${tail(f.stderr)}`,
      );
    const how = f.signal ?? `code ${f.code}`;
    // socat does not inherit node's file capability: the image gives socat its own.
    const hint = /bind\(.*Permission denied/.test(f.stderr)
      ? ` (ports below 1024 need root or CAP_NET_BIND_SERVICE on socat itself: setcap cap_net_bind_service=+ep "$(readlink -f "$(command -v ${socat})")")`
      : '';
    return new MetalbootError(
      'NET_ERR_FEED_START',
      `socat exited (${how}) before binding to ${this.#o.device} port ${this.#o.port}: ${tail(f.stderr)}${hint}`,
    );
  }

  async close(): Promise<void> {
    await this.#socat?.close();
    const s = this.#socket;
    this.#socket = undefined;
    if (s !== undefined) await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}

function tail(stderr: string): string {
  return stderr === '' ? '(nothing on stderr)' : stderr;
}
