/**
 * /proc/net/udp (proc(5)): one line per IPv4 UDP socket of the reader's network namespace.
 *
 *     sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode …
 *   6890: 0100007F:B392 0100007F:8B1D 01 00000000:00000000 00:00000000 00000000  1000        0 372432 …
 *         └ address:port └ address:port └ 01: connected (TCP_ESTABLISHED)       └ owner
 *
 * An address is the 32-bit value as it sits in memory (network order), printed as a host-order
 * integer in hex: 0100007F is 127.0.0.1 on a little-endian machine, 7F000001 on a big-endian
 * one. A port is printed in host order: B392 is 45970. Pure: the caller reads the file.
 */
import { endianness } from 'node:os';

export interface UdpEndpoint {
  readonly address: string;
  readonly port: number;
}

export interface UdpSocketRow {
  readonly local: UdpEndpoint;
  readonly remote: UdpEndpoint;
  /** connect()ed to `remote` (st 01). */
  readonly connected: boolean;
  readonly uid: number;
  readonly inode: number;
}

const ESTABLISHED = 0x01;

/** The rows of /proc/net/udp; the header and lines that do not parse are skipped. */
export function parseProcNetUdp(text: string, order: 'LE' | 'BE' = endianness()): UdpSocketRow[] {
  const rows: UdpSocketRow[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || !/^\d+:$/.test(f[0]!)) continue;
    const local = endpoint(f[1]!, order);
    const remote = endpoint(f[2]!, order);
    const st = Number.parseInt(f[3]!, 16);
    const uid = Number(f[7]);
    const inode = Number(f[9]);
    if (local === undefined || remote === undefined || Number.isNaN(st) || !Number.isInteger(uid)) continue;
    rows.push({ local, remote, connected: st === ESTABLISHED, uid, inode });
  }
  return rows;
}

function endpoint(text: string, order: 'LE' | 'BE'): UdpEndpoint | undefined {
  const m = /^([0-9A-Fa-f]{8}):([0-9A-Fa-f]{4})$/.exec(text);
  if (m === null) return undefined;
  const n = Number.parseInt(m[1]!, 16);
  const bytes = [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
  if (order === 'LE') bytes.reverse();
  return { address: bytes.join('.'), port: Number.parseInt(m[2]!, 16) };
}

/**
 * The one socket of `uid` connected to `to`, or undefined when there is none or more than one
 * (then who is who cannot be told apart).
 */
export function connectedSocket(rows: readonly UdpSocketRow[], to: UdpEndpoint, uid: number): UdpSocketRow | undefined {
  const hits = rows.filter(
    (r) => r.connected && r.uid === uid && r.remote.address === to.address && r.remote.port === to.port,
  );
  return hits.length === 1 ? hits[0] : undefined;
}
