/**
 * A TFTP read as EDK2's PXE client does it, from a host's own address: RRQ with tsize=0,
 * blksize and windowsize; ERROR 8 to the OACK (the size probe); then a second RRQ from a new
 * port that downloads the file (RFC 2347/2348/2349/7440). ACK at the end of each window, ACK of
 * the last in-order block on a gap or duplicate, resend of the last packet after `timeoutMs` of
 * silence (EDK2 PxeBc: 4 s, 6 retries). Counts bytes and hashes them as they arrive.
 *
 * The logic follows test/support/tftp-client.ts, which binds to loopback only; simulated hosts
 * need their own source address so that metalboot sees 500 peers, not one.
 */
import dgram from 'node:dgram';
import { createHash } from 'node:crypto';
import { decode, encode, type TftpPacket } from '../../src/tftp/packet.js';

export interface StormTftpOptions {
  readonly localAddress: string;
  readonly server: string;
  readonly port?: number;
  readonly file: string;
  readonly blksize: number;
  readonly windowsize: number;
  readonly timeoutMs: number;
  readonly retries: number;
  /** Both requests together must finish within this. */
  readonly deadlineMs: number;
}

export interface StormTftpResult {
  readonly bytes: number;
  readonly sha256: string;
  readonly probedSize: number;
  /** Packets resent after silence, probe and download together. */
  readonly resends: number;
}

export class StormTftpError extends Error {
  constructor(
    readonly code: 'STORM_TFTP_TIMEOUT' | 'STORM_TFTP_SERVER_ERROR' | 'STORM_TFTP_PROTOCOL' | 'STORM_TFTP_SOCKET',
    message: string,
    readonly resends: number,
  ) {
    super(message);
  }
}

interface OneRead {
  readonly oack: Map<string, string> | undefined;
  readonly bytes: number;
  readonly sha256: string;
  readonly resends: number;
}

function readOnce(o: StormTftpOptions, options: readonly [string, string][], abortOack: boolean, deadlineAt: number): Promise<OneRead> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket('udp4');
    const hash = createHash('sha256');
    let serverPort: number | undefined;
    let oack: Map<string, string> | undefined;
    let blksize = 512;
    let windowsize = 1;
    let received = 0;
    let sinceAck = 0;
    let bytes = 0;
    let resends = 0;
    let silent = 0;
    let finished = false;
    let lastSent = encode({ op: 'rrq', filename: o.file, mode: 'octet', options: options.map(([name, value]) => ({ name, value })) });
    let lastDest = o.port ?? 69;
    let timer: NodeJS.Timeout | undefined;
    const deadline = setTimeout(() => fail('STORM_TFTP_TIMEOUT', `${o.file}: deadline`), Math.max(1, deadlineAt - Date.now()));

    const done = (): void => {
      finished = true;
      clearTimeout(deadline);
      if (timer !== undefined) clearTimeout(timer);
      socket.close();
    };
    const fail = (code: StormTftpError['code'], message: string): void => {
      if (finished) return;
      done();
      reject(new StormTftpError(code, message, resends));
    };
    const succeed = (): void => {
      if (finished) return;
      done();
      resolve({ oack, bytes, sha256: hash.digest('hex'), resends });
    };
    const arm = (): void => {
      if (timer !== undefined) timer.refresh();
      else {
        timer = setTimeout(() => {
          if (finished) return;
          if (++silent > o.retries) return fail('STORM_TFTP_TIMEOUT', `${o.file}: no answer after ${o.retries} resends`);
          resends++;
          socket.send(lastSent, lastDest, o.server);
          timer = undefined;
          arm();
        }, o.timeoutMs);
      }
    };
    const send = (p: TftpPacket, then?: () => void): void => {
      lastSent = encode(p);
      lastDest = serverPort ?? o.port ?? 69;
      socket.send(lastSent, lastDest, o.server, then === undefined ? undefined : () => then());
    };
    const ack = (block: number, last: boolean): void => {
      send({ op: 'ack', block: block & 0xffff }, last ? succeed : undefined);
    };

    socket.on('message', (msg, rinfo) => {
      if (finished) return;
      if (serverPort === undefined) serverPort = rinfo.port;
      else if (rinfo.port !== serverPort) {
        socket.send(encode({ op: 'error', code: 5, message: 'Unknown transfer ID' }), rinfo.port, rinfo.address);
        return;
      }
      let p: TftpPacket;
      try {
        p = decode(msg);
      } catch (err) {
        return fail('STORM_TFTP_PROTOCOL', `undecodable packet: ${(err as Error).message}`);
      }
      silent = 0;
      switch (p.op) {
        case 'error':
          return fail('STORM_TFTP_SERVER_ERROR', `server error ${p.code}: ${p.message}`);
        case 'oack':
          if (oack !== undefined || received > 0) return;
          oack = new Map(p.options.map((x) => [x.name.toLowerCase(), x.value]));
          if (abortOack) {
            if (timer !== undefined) clearTimeout(timer);
            timer = undefined;
            send({ op: 'error', code: 8, message: 'size probe' }, succeed);
            return;
          }
          blksize = Number(oack.get('blksize') ?? 512);
          windowsize = Number(oack.get('windowsize') ?? 1);
          ack(0, false);
          arm();
          return;
        case 'data': {
          const expected = (received + 1) & 0xffff;
          if (p.block !== expected) {
            if (p.block === (received & 0xffff) || sinceAck > 0) {
              sinceAck = 0;
              ack(received, false);
            }
            arm();
            return;
          }
          received++;
          sinceAck++;
          bytes += p.data.length;
          hash.update(p.data);
          if (p.data.length < blksize) {
            ack(received, true);
            return;
          }
          if (sinceAck >= windowsize) {
            sinceAck = 0;
            ack(received, false);
          }
          arm();
          return;
        }
        default:
          return fail('STORM_TFTP_PROTOCOL', `unexpected ${p.op}`);
      }
    });
    socket.on('error', (err) => fail('STORM_TFTP_SOCKET', err.message));
    socket.bind(0, o.localAddress, () => {
      if (finished) return;
      socket.send(lastSent, lastDest, o.server);
      arm();
    });
  });
}

/** The EDK2 sequence: size probe declined with ERROR 8, then the download. */
export async function edk2Read(o: StormTftpOptions): Promise<StormTftpResult> {
  const deadlineAt = Date.now() + o.deadlineMs;
  const bs = String(o.blksize);
  const ws = String(o.windowsize);
  const probe = await readOnce(o, [['tsize', '0'], ['blksize', bs], ['windowsize', ws]], true, deadlineAt);
  let r: OneRead;
  try {
    r = await readOnce(o, [['blksize', bs], ['windowsize', ws]], false, deadlineAt);
  } catch (err) {
    if (err instanceof StormTftpError) throw new StormTftpError(err.code, err.message, probe.resends + err.resends);
    throw err;
  }
  return { bytes: r.bytes, sha256: r.sha256, probedSize: Number(probe.oack?.get('tsize') ?? NaN), resends: probe.resends + r.resends };
}
