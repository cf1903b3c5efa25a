/** The DHCP shell's sockets: how each is bound, and what the kernel granted of its receive buffer. */
import dgram from 'node:dgram';
import { MetalbootError } from '../base/errors.js';

/**
 * 2 MiB: Linux doubles it for bookkeeping and charges a request about 1.3 KiB of that (payload,
 * sk_buff, slab rounding): 3,276 UEFI DISCOVERs of 347 bytes queued on loopback, half a second
 * of 6,000/s. The kernel's default (net.core.rmem_default, 208 KiB) held 332.
 */
export const DEFAULT_DHCP_RECV_BUFFER_BYTES = 2 * 1024 * 1024;

/** Linux reports twice the size set (socket(7): the kernel doubles it for bookkeeping); other kernels report it as set. */
const RCVBUF_REPORT_FACTOR = process.platform === 'linux' ? 2 : 1;

/** A UDP socket on host:port with SO_REUSEADDR and SO_BROADCAST; recvBufferBytes 0 keeps the kernel's default. */
export function bindDhcpSocket(host: string, port: number, recvBufferBytes: number): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const recvBufferSize = recvBufferBytes > 0 ? recvBufferBytes : undefined;
    const s = dgram.createSocket({ type: 'udp4', reuseAddr: true, recvBufferSize });
    s.once('error', reject);
    s.bind({ address: host, port, exclusive: true }, () => {
      s.off('error', reject);
      s.setBroadcast(true);
      resolve(s);
    });
  });
}

/** Why the send socket could not bind to the server IP, for the operator. */
export function sendBindError(serverIp: string, err: unknown): MetalbootError {
  return new MetalbootError(
    'DHCP_ERR_BIND',
    (err as NodeJS.ErrnoException).code === 'EADDRNOTAVAIL'
      ? `server IP ${serverIp} is not on any interface of this host (check --server-ip / the NetworkAttachmentDefinition)`
      : `cannot bind the DHCP send socket to ${serverIp}: ${(err as Error).message}`,
    { cause: err },
  );
}

/**
 * The fields of the warning to log when the kernel granted less receive buffer than asked
 * (net.core.rmem_max caps every socket alike), or undefined when it granted it all.
 */
export function recvBufferShortfall(
  sockets: readonly dgram.Socket[],
  requested: number,
): { requested: number; granted: number; sysctl: string; fix: string } | undefined {
  if (requested <= 0 || sockets.length === 0) return undefined;
  const granted = Math.min(...sockets.map((s) => s.getRecvBufferSize()));
  if (granted >= requested * RCVBUF_REPORT_FACTOR) return undefined;
  return {
    requested,
    granted: granted / RCVBUF_REPORT_FACTOR,
    sysctl: 'net.core.rmem_max',
    fix: `sysctl -w net.core.rmem_max=${requested}`,
  };
}
