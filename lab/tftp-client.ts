/**
 * A small TFTP read client over real UDP sockets, for integration tests and the benchmarks
 * (bench/tftp.ts on loopback; the boot storm's simulated hosts, each from its own address).
 * It behaves like the firmware clients metalboot serves: RFC 1350 lock-step, RFC 2347 options,
 * RFC 7440 windows (ACK at the end of each window, ACK of the last in-order block on a gap),
 * re-ACK of a duplicate DATA (how a lost ACK is recovered), and the EDK2 tsize probe. Hooks let
 * a test lose ACKs on purpose or slow the client down. Every wait is bounded.
 *
 * Built for hundreds of concurrent downloads in one process: DATA is read in place, one timer
 * per download is refreshed rather than re-created, IP literals skip dns.lookup, and a block is
 * compared, handed to `onData` or kept, never copied.
 */
import dgram from 'node:dgram';
import { isIPv4, isIPv6 } from 'node:net';
import { decode, encode, OPCODE, type ErrorPacket, type TftpPacket } from '../src/tftp/packet.js';

/**
 * dgram resolves the address of every send with dns.lookup, which answers an IP literal only on
 * the next tick: in a 500-download benchmark that is a tick per ACK. Answer literals at once.
 */
const literalLookup = ((
  address: string,
  family: number,
  callback: (err: Error | null, address: string, family: number) => void,
) => {
  if (isIPv4(address)) callback(null, address, 4);
  else if (isIPv6(address)) callback(null, address, 6);
  else callback(new Error(`not an IP literal: ${address}`), address, family);
}) as unknown as dgram.SocketOptions['lookup'];

export interface GetOptions {
  /** The server's address. Default 127.0.0.1. */
  readonly host?: string;
  /** The address to send from (a simulated host's own). Default 127.0.0.1. */
  readonly localAddress?: string;
  readonly port: number;
  readonly file: string;
  readonly mode?: string;
  /** RFC 2347 options in request order. */
  readonly options?: readonly (readonly [string, string])[];
  /** Resend the last packet after this much silence. Default 500 ms. */
  readonly timeoutMs?: number;
  readonly retries?: number;
  /** The whole download must finish within this. Default 30 s. */
  readonly deadlineMs?: number;
  /** Return true to lose this ACK (absolute block number; 0 acknowledges the OACK). */
  readonly dropAck?: (block: number) => boolean;
  /** Wait this long before sending each ACK. */
  readonly ackDelayMs?: number;
  /** Answer the OACK with this ERROR code instead of ACK 0 (EDK2 sends 8 after a tsize probe). */
  readonly abortOackWith?: number;
  /**
   * The bytes the file must have. Each block is compared as it arrives and none is kept (a
   * benchmark's client should spend its CPU on the protocol, not on copies); a block that
   * differs, or a different length, fails the download. The result's data is then `expected`.
   */
  readonly expected?: Buffer;
  /**
   * Each in-order block as it arrives (e.g. to hash it), instead of keeping it: the result's
   * data is then empty. Ignored with `expected`.
   */
  readonly onData?: (block: Buffer) => void;
}

export interface GetResult {
  readonly data: Buffer;
  readonly oack: ReadonlyMap<string, string> | undefined;
  readonly serverPort: number;
  readonly clientPort: number;
  readonly dataPackets: number;
  readonly duplicates: number;
  readonly acksSent: number;
  readonly acksDropped: number;
  /** Times the client resent its last packet after silence. */
  readonly timeouts: number;
  /** Bytes of the file received. */
  readonly bytes: number;
}

export type TftpClientErrorCode =
  | 'TFTP_CLIENT_SERVER_ERROR'
  | 'TFTP_CLIENT_TIMEOUT'
  | 'TFTP_CLIENT_PROTOCOL'
  | 'TFTP_CLIENT_SOCKET';

export class TftpClientError extends Error {
  override readonly name = 'TftpClientError';
  constructor(
    readonly code: TftpClientErrorCode,
    message: string,
    /** Times the client had resent its last packet after silence before it failed. */
    readonly timeouts = 0,
    readonly error?: ErrorPacket,
  ) {
    super(message);
  }
}

function bindSocket(localAddress: string): Promise<dgram.Socket> {
  const socket = dgram.createSocket({ type: localAddress.includes(':') ? 'udp6' : 'udp4', lookup: literalLookup });
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      socket.close();
      reject(new TftpClientError('TFTP_CLIENT_SOCKET', `bind ${localAddress}: ${err.message}`));
    };
    socket.once('error', onError);
    socket.bind(0, localAddress, () => {
      socket.off('error', onError);
      resolve(socket);
    });
  });
}

export async function tftpGet(o: GetOptions): Promise<GetResult> {
  const host = o.host ?? '127.0.0.1';
  const timeoutMs = o.timeoutMs ?? 500;
  const retries = o.retries ?? 10;
  // An IPv6 server gets an IPv6 client socket (on ::1 unless told otherwise).
  const socket = await bindSocket(o.localAddress ?? (host.includes(':') ? '::1' : '127.0.0.1'));
  const clientPort = socket.address().port;

  return new Promise<GetResult>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let serverPort: number | undefined;
    let oack: Map<string, string> | undefined;
    let blksize = 512;
    let windowsize = 1;
    let received = 0; // absolute number of the last in-order block
    let sinceAck = 0;
    let lastSent: Buffer = encode({
      op: 'rrq',
      filename: o.file,
      mode: o.mode ?? 'octet',
      options: (o.options ?? []).map(([name, value]) => ({ name, value })),
    });
    let lastDest = o.port;
    let silentRetries = 0;
    const stats = { dataPackets: 0, duplicates: 0, acksSent: 0, acksDropped: 0, timeouts: 0 };
    let finished = false;
    let gotLast = false;
    let timer: NodeJS.Timeout | undefined;
    const deadline = setTimeout(
      () => fail(new TftpClientError('TFTP_CLIENT_TIMEOUT', `${o.file}: deadline`, stats.timeouts)),
      o.deadlineMs ?? 30_000,
    );

    const cleanup = (): void => {
      finished = true;
      clearTimeout(deadline);
      if (timer) clearTimeout(timer);
      socket.close();
    };
    const fail = (err: Error): void => {
      if (finished) return;
      cleanup();
      reject(err);
    };
    let receivedBytes = 0;
    const succeed = (): void => {
      if (finished) return;
      if (o.expected !== undefined && receivedBytes !== o.expected.length) {
        return fail(
          new TftpClientError(
            'TFTP_CLIENT_PROTOCOL',
            `received ${receivedBytes} bytes of ${o.expected.length}`,
            stats.timeouts,
          ),
        );
      }
      cleanup();
      resolve({
        data: o.expected ?? Buffer.concat(chunks),
        oack,
        serverPort: serverPort ?? o.port,
        clientPort,
        ...stats,
        bytes: receivedBytes,
      });
    };
    const onSilence = (): void => {
      if (finished) return;
      if (++silentRetries > retries)
        return fail(
          new TftpClientError('TFTP_CLIENT_TIMEOUT', `${o.file}: no answer after ${retries} resends`, stats.timeouts),
        );
      stats.timeouts++;
      socket.send(lastSent, lastDest, host);
      armTimer();
    };
    // One Timeout object per download, refreshed per packet: cheap enough for a boot storm.
    const armTimer = (): void => {
      if (timer) timer.refresh();
      else timer = setTimeout(onSilence, timeoutMs);
    };
    const send = (p: TftpPacket, sent?: () => void): void => {
      const buf = encode(p);
      lastSent = buf;
      lastDest = serverPort ?? o.port;
      socket.send(buf, lastDest, host, sent);
    };
    const sendAck = (block: number, last: boolean): void => {
      const ack = encode({ op: 'ack', block: block & 0xffff });
      lastSent = ack;
      lastDest = serverPort ?? o.port;
      if (o.dropAck?.(block)) {
        stats.acksDropped++;
        // Dally after losing the final ACK: the server will resend the last block.
        if (last) {
          if (timer) clearTimeout(timer);
          timer = undefined;
          setTimeout(succeed, timeoutMs * 4);
        }
        return;
      }
      stats.acksSent++;
      if (o.ackDelayMs) setTimeout(sendNow, o.ackDelayMs, ack, last);
      else sendNow(ack, last);
    };
    const sendNow = (ack: Buffer, last: boolean): void => {
      if (finished) return;
      // Close only once the final ACK has left: a socket closed earlier drops it.
      if (last) socket.send(ack, serverPort ?? o.port, host, succeed);
      else socket.send(ack, serverPort ?? o.port, host);
    };

    socket.on('message', (msg, rinfo) => {
      if (finished) return;
      if (serverPort === undefined) serverPort = rinfo.port;
      else if (rinfo.port !== serverPort) {
        // RFC 1350 §4: a stranger gets ERROR 5 and changes nothing.
        socket.send(encode({ op: 'error', code: 5, message: 'Unknown transfer ID' }), rinfo.port, rinfo.address);
        return;
      }
      let p: TftpPacket;
      try {
        // DATA, nearly every packet, is read in place; anything else goes through the codec.
        p =
          msg.length >= 4 && msg[0] === 0 && msg[1] === OPCODE.DATA
            ? { op: 'data', block: msg.readUInt16BE(2), data: msg.subarray(4) }
            : decode(msg);
      } catch (err) {
        return fail(
          new TftpClientError('TFTP_CLIENT_PROTOCOL', `undecodable packet: ${(err as Error).message}`, stats.timeouts),
        );
      }
      silentRetries = 0;
      switch (p.op) {
        case 'error':
          return fail(
            new TftpClientError('TFTP_CLIENT_SERVER_ERROR', `server error ${p.code}: ${p.message}`, stats.timeouts, p),
          );
        case 'oack': {
          if (received > 0 || oack !== undefined) return; // duplicate OACK: ACK 0 will be resent by the timer
          oack = new Map(p.options.map((x) => [x.name.toLowerCase(), x.value]));
          if (o.abortOackWith !== undefined) {
            if (timer) clearTimeout(timer);
            timer = undefined;
            send({ op: 'error', code: o.abortOackWith, message: 'abort' }, succeed);
            return;
          }
          blksize = Number(oack.get('blksize') ?? 512);
          windowsize = Number(oack.get('windowsize') ?? 1);
          sendAck(0, false);
          armTimer();
          return;
        }
        case 'data': {
          stats.dataPackets++;
          const expected = (received + 1) & 0xffff;
          if (p.block !== expected) {
            stats.duplicates++;
            // A duplicate of what we have: our ACK was lost, say it again. A gap in a window:
            // ACK the last block received in order (RFC 7440 §4), once per window.
            if (p.block === (received & 0xffff) || sinceAck > 0) {
              sinceAck = 0;
              sendAck(received, gotLast);
            }
            armTimer();
            return;
          }
          received++;
          sinceAck++;
          if (o.expected !== undefined) {
            if (o.expected.compare(p.data, 0, p.data.length, receivedBytes, receivedBytes + p.data.length) !== 0) {
              return fail(
                new TftpClientError(
                  'TFTP_CLIENT_PROTOCOL',
                  `block ${received} differs from the expected bytes`,
                  stats.timeouts,
                ),
              );
            }
          } else if (o.onData !== undefined) o.onData(p.data as Buffer);
          else chunks.push(p.data as Buffer); // each datagram has its own buffer: no copy needed
          receivedBytes += p.data.length;
          if (p.data.length < blksize) {
            gotLast = true;
            sendAck(received, true);
            return;
          }
          if (sinceAck >= windowsize) {
            sinceAck = 0;
            sendAck(received, false);
          }
          armTimer();
          return;
        }
        default:
          return fail(new TftpClientError('TFTP_CLIENT_PROTOCOL', `unexpected ${p.op}`, stats.timeouts));
      }
    });
    socket.on('error', (err) => fail(new TftpClientError('TFTP_CLIENT_SOCKET', err.message, stats.timeouts)));
    socket.send(lastSent, o.port, host);
    armTimer();
  });
}

/**
 * EDK2's way: probe with tsize=0, decline the OACK with ERROR 8, then download from a new port.
 * `deadlineMs` bounds both requests together; `timeouts`, also of a failure, counts both.
 */
export async function edk2Get(
  o: Omit<GetOptions, 'options' | 'abortOackWith'> & { blksize?: number; windowsize?: number },
): Promise<GetResult & { probedSize: number }> {
  const blksize = String(o.blksize ?? 1468);
  const windowsize = String(o.windowsize ?? 4);
  const deadlineAt = Date.now() + (o.deadlineMs ?? 30_000);
  const { expected: _, onData: __, ...probeOptions } = o; // the probe downloads nothing
  const probe = await tftpGet({
    ...probeOptions,
    options: [
      ['tsize', '0'],
      ['blksize', blksize],
      ['windowsize', windowsize],
    ],
    abortOackWith: 8,
  });
  const probedSize = Number(probe.oack?.get('tsize'));
  let result: GetResult;
  try {
    result = await tftpGet({
      ...o,
      options: [
        ['blksize', blksize],
        ['windowsize', windowsize],
      ],
      deadlineMs: Math.max(1, deadlineAt - Date.now()),
    });
  } catch (err) {
    if (err instanceof TftpClientError)
      throw new TftpClientError(err.code, err.message, probe.timeouts + err.timeouts, err.error);
    throw err;
  }
  return { ...result, probedSize, timeouts: probe.timeouts + result.timeouts };
}

/**
 * Sends one datagram and collects what comes back (decoded where possible), for hostile-input
 * tests. With `expectReply`, returns as soon as one reply arrives (waiting at most `waitMs`);
 * otherwise waits the full `waitMs` to show that nothing came.
 */
export async function exchange(
  port: number,
  bytes: Uint8Array,
  {
    waitMs = 300,
    expectReply = false,
    host = '127.0.0.1',
  }: { waitMs?: number; expectReply?: boolean; host?: string } = {},
): Promise<{ packet?: TftpPacket; raw: Buffer; port: number }[]> {
  const socket = dgram.createSocket('udp4');
  const replies: { packet?: TftpPacket; raw: Buffer; port: number }[] = [];
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  let done: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => {
    const t = setTimeout(resolve, waitMs);
    done = () => {
      clearTimeout(t);
      resolve();
    };
  });
  socket.on('message', (raw, rinfo) => {
    let packet: TftpPacket | undefined;
    try {
      packet = decode(raw);
    } catch {
      packet = undefined;
    }
    replies.push(packet === undefined ? { raw, port: rinfo.port } : { packet, raw, port: rinfo.port });
    if (expectReply) setTimeout(done, 50); // and anything right behind it
  });
  socket.send(bytes, port, host);
  await finished;
  socket.close();
  return replies;
}
