/** The UDP sockets and timers the TFTP server uses, as it uses them: real ones, or test doubles. */
import type dgram from 'node:dgram';
import dns from 'node:dns';
import { isIPv4, isIPv6 } from 'node:net';

/** The socket operations the server uses: a dgram.Socket, or a test double. */
export type UdpSocket = Pick<
  dgram.Socket,
  'bind' | 'send' | 'close' | 'address' | 'on' | 'once' | 'off' | 'setRecvBufferSize'
>;

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  /**
   * Restarts a pending timer with the delay it was set with, as Node's `Timeout.refresh()`:
   * one call per ACK instead of a clear and a new timer. Optional: without it the server
   * clears and sets.
   */
  refresh?(handle: unknown): void;
}

/**
 * dgram resolves the address of every send with dns.lookup, which answers even an IP literal
 * on the next tick. Peers come from rinfo, always literals: answer those at once.
 */
export function literalLookup(
  address: string,
  family: unknown,
  callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void {
  if (isIPv4(address)) callback(null, address, 4);
  else if (isIPv6(address)) callback(null, address, 6);
  else dns.lookup(address, family as number, callback);
}

export function bindSocket(socket: UdpSocket, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    socket.once('error', onError);
    socket.bind({ address: host, port, exclusive: true }, () => {
      socket.off('error', onError);
      resolve();
    });
  });
}

export function closeQuietly(socket: UdpSocket): void {
  try {
    socket.close();
  } catch {
    // already closed
  }
}
