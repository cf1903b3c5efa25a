/**
 * DHCP for many simulated hosts over one socket: 0.0.0.0:68 with SO_BROADCAST, as every host
 * of a boot storm would hear the same broadcast replies on a shared segment. Replies are handed
 * to the waiting exchange by xid and chaddr; anything else is counted and dropped.
 *
 * A DORA resends its DISCOVER (or REQUEST) on the caller's schedule, the way firmware does:
 * EDK2 PXE waits 4, 8, 16, 32 s (UEFI spec / RFC 2131 §4.1); iPXE starts at 1 s and doubles.
 */
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { BOOTREPLY, decode, encode, type DhcpMessage } from '../../src/dhcp/codec.js';
import { MESSAGE_TYPE, OPT, getIp, getMessageType, getString } from '../../src/dhcp/options.js';
import { request } from '../../lab/dhcp-requests.js';
import { formatIpv4 } from '../../src/net/ipv4.js';

export interface DoraResult {
  readonly ip: string;
  /** `file` of the ACK (boot file name or URL). */
  readonly bootFile: string;
  readonly siaddr: string;
  readonly serverId: string;
  /** Resent DISCOVERs and REQUESTs (0 when every first packet was answered). */
  readonly resends: number;
}

export class StormDhcpError extends Error {
  constructor(
    readonly code: 'STORM_DHCP_TIMEOUT' | 'STORM_DHCP_NAK' | 'STORM_DHCP_CLOSED',
    message: string,
    readonly resends: number,
  ) {
    super(message);
  }
}

export interface DhcpMuxStats {
  sent: number;
  received: number;
  /** Replies for an xid nobody waits for (late answers to a resent request, other hosts' duplicates). */
  unmatched: number;
  undecodable: number;
  sendErrors: number;
}

interface Waiter {
  readonly chaddr: Buffer;
  readonly accept: (m: DhcpMessage) => boolean;
  readonly deliver: (m: DhcpMessage) => void;
}

export class DhcpMux {
  readonly stats: DhcpMuxStats = { sent: 0, received: 0, unmatched: 0, undecodable: 0, sendErrors: 0 };
  readonly #socket: dgram.Socket;
  readonly #waiters = new Map<number, Waiter>();
  #closed = false;

  private constructor(socket: dgram.Socket) {
    this.#socket = socket;
    socket.on('message', (buf) => this.#onMessage(buf));
    socket.on('error', () => void this.stats.sendErrors++);
  }

  static async open(port = 68, serverPort = 67): Promise<DhcpMux> {
    const socket = dgram.createSocket({
      type: 'udp4',
      reuseAddr: true,
      recvBufferSize: 8 * 2 ** 20,
      sendBufferSize: 2 * 2 ** 20,
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, '0.0.0.0', () => {
        socket.off('error', reject);
        resolve();
      });
    });
    socket.setBroadcast(true);
    const mux = new DhcpMux(socket);
    mux.serverPort = serverPort;
    return mux;
  }

  serverPort = 67;

  #onMessage(buf: Buffer): void {
    this.stats.received++;
    let m: DhcpMessage;
    try {
      m = decode(buf);
    } catch {
      this.stats.undecodable++;
      return;
    }
    const w = m.op === BOOTREPLY ? this.#waiters.get(m.xid) : undefined;
    if (w === undefined || !Buffer.from(m.chaddr.subarray(0, 6)).equals(w.chaddr) || !w.accept(m)) {
      this.stats.unmatched++;
      return;
    }
    w.deliver(m);
  }

  /**
   * Sends `req` (broadcast to the server port) and waits for a reply `accept` takes; resends
   * after each entry of `scheduleMs` runs out. Resolves with the reply and the resend count.
   */
  exchange(
    req: DhcpMessage,
    accept: (m: DhcpMessage) => boolean,
    scheduleMs: readonly number[],
  ): Promise<{ reply: DhcpMessage; resends: number }> {
    if (this.#closed) return Promise.reject(new StormDhcpError('STORM_DHCP_CLOSED', 'mux closed', 0));
    const bytes = encode(req);
    const chaddr = Buffer.from(req.chaddr.subarray(0, 6));
    return new Promise((resolve, reject) => {
      let attempt = 0;
      let timer: NodeJS.Timeout | undefined;
      const finish = (): void => {
        if (timer !== undefined) clearTimeout(timer);
        this.#waiters.delete(req.xid);
      };
      const send = (): void => {
        if (this.#closed) {
          finish();
          reject(new StormDhcpError('STORM_DHCP_CLOSED', 'mux closed', attempt));
          return;
        }
        this.stats.sent++;
        this.#socket.send(bytes, this.serverPort, '255.255.255.255', (err) => {
          if (err) this.stats.sendErrors++;
        });
        const wait = scheduleMs[attempt];
        if (wait === undefined) return;
        timer = setTimeout(() => {
          attempt++;
          if (attempt >= scheduleMs.length) {
            finish();
            reject(new StormDhcpError('STORM_DHCP_TIMEOUT', `no reply after ${scheduleMs.length} sends`, attempt - 1));
            return;
          }
          send();
        }, wait);
      };
      this.#waiters.set(req.xid, {
        chaddr,
        accept,
        deliver: (m) => {
          finish();
          resolve({ reply: m, resends: attempt });
        },
      });
      send();
    });
  }

  /**
   * DISCOVER → OFFER → REQUEST → ACK for one host, with `options` as its client sends them
   * (UEFI_PXE for firmware, IPXE for iPXE) and a fresh xid.
   */
  async dora(
    mac: string,
    options: readonly (readonly [number, Uint8Array])[],
    scheduleMs: readonly number[],
  ): Promise<DoraResult> {
    const xid = randomBytes(4).readUInt32BE(0);
    const isType =
      (t: number) =>
      (m: DhcpMessage): boolean =>
        getMessageType(m.options) === t;
    const offer = await this.exchange(
      request({ type: MESSAGE_TYPE.DISCOVER, mac, xid, broadcast: true, options }),
      isType(MESSAGE_TYPE.OFFER),
      scheduleMs,
    );
    const serverId = getIp(offer.reply.options, OPT.SERVER_ID);
    const yiaddr = formatIpv4(offer.reply.yiaddr);
    const req = request({
      type: MESSAGE_TYPE.REQUEST,
      mac,
      xid,
      broadcast: true,
      requested: yiaddr,
      ...(serverId === undefined ? {} : { serverId: formatIpv4(serverId) }),
      options,
    });
    let ack: { reply: DhcpMessage; resends: number };
    try {
      ack = await this.exchange(
        req,
        (m) => {
          const t = getMessageType(m.options);
          return t === MESSAGE_TYPE.ACK || t === MESSAGE_TYPE.NAK;
        },
        scheduleMs,
      );
    } catch (err) {
      if (err instanceof StormDhcpError)
        throw new StormDhcpError(err.code, `REQUEST: ${err.message}`, offer.resends + err.resends);
      throw err;
    }
    const resends = offer.resends + ack.resends;
    if (getMessageType(ack.reply.options) === MESSAGE_TYPE.NAK)
      throw new StormDhcpError('STORM_DHCP_NAK', 'NAK', resends);
    return {
      ip: formatIpv4(ack.reply.yiaddr),
      bootFile: ack.reply.file !== '' ? ack.reply.file : (getString(ack.reply.options, OPT.BOOTFILE) ?? ''),
      siaddr: formatIpv4(ack.reply.siaddr),
      serverId: serverId === undefined ? '' : formatIpv4(serverId),
      resends,
    };
  }

  close(): void {
    this.#closed = true;
    this.#socket.close();
  }
}
