/**
 * Reading packet captures in tests: a tiny pure pcap parser (no dependencies) and two
 * time-bounded wrappers around `tshark -r` for when the Wireshark dissector's opinion is
 * wanted as an independent oracle.
 *
 * Only what DHCP/TFTP/HTTP tests need is decoded: Ethernet (and Linux cooked v1/v2 for
 * `-i any`), 802.1Q, IPv4, UDP. Everything else is kept as raw frames.
 *
 * ```
 * pcap file (classic libpcap, either byte order, µs or ns timestamps)
 *   global header 24 B: magic u32 | ver u16 u16 | thiszone | sigfigs | snaplen | linktype
 *   record: ts_sec u32 | ts_frac u32 | incl_len u32 | orig_len u32 | frame[incl_len]
 * ```
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** libpcap link-layer header types this parser understands. */
export const LinkType = {
  ethernet: 1,
  linuxSll: 113,
  linuxSll2: 276,
} as const;

export interface CapturedPacket {
  /** Capture time, seconds since the epoch (fractional). */
  readonly time: number;
  readonly linkType: number;
  /** The whole captured frame, link-layer header included. */
  readonly frame: Buffer;
  readonly srcMac?: string;
  readonly dstMac?: string;
  /** EtherType after any 802.1Q tags (0x0800 for IPv4). */
  readonly etherType?: number;
  readonly srcIp?: string;
  readonly dstIp?: string;
  /** IPv4 protocol number (17 = UDP, 1 = ICMP). */
  readonly ipProtocol?: number;
  readonly ttl?: number;
  readonly srcPort?: number;
  readonly dstPort?: number;
  /** UDP payload (for DHCP: the whole BOOTP message). */
  readonly payload?: Buffer;
}

export class PcapError extends Error {
  readonly code: 'PCAP_ERR_MAGIC' | 'PCAP_ERR_TRUNCATED';
  constructor(code: PcapError['code'], message: string) {
    super(message);
    this.name = 'PcapError';
    this.code = code;
  }
}

const macString = (b: Buffer): string => [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');

const ipString = (b: Buffer): string => [...b].join('.');

export interface ParsePcapOptions {
  /**
   * Accept a file that is still being written: a missing global header yields no packets and
   * a truncated last record is left out instead of throwing PCAP_ERR_TRUNCATED.
   */
  readonly partial?: boolean;
}

/** Parses a classic pcap file. Frames that are not IPv4 are returned without IP fields. */
export function parsePcap(buf: Buffer, opts: ParsePcapOptions = {}): CapturedPacket[] {
  const partial = opts.partial === true;
  if (buf.length < 24) {
    if (partial) return [];
    throw new PcapError('PCAP_ERR_TRUNCATED', 'pcap global header truncated');
  }
  const magicLE = buf.readUInt32LE(0);
  let le: boolean;
  let nano: boolean;
  if (magicLE === 0xa1b2c3d4 || magicLE === 0xa1b23c4d) {
    le = true;
    nano = magicLE === 0xa1b23c4d;
  } else if (buf.readUInt32BE(0) === 0xa1b2c3d4 || buf.readUInt32BE(0) === 0xa1b23c4d) {
    le = false;
    nano = buf.readUInt32BE(0) === 0xa1b23c4d;
  } else {
    throw new PcapError(
      'PCAP_ERR_MAGIC',
      `not a classic pcap file (magic 0x${magicLE.toString(16)}); pcapng is not supported`,
    );
  }
  const u32 = (off: number): number => (le ? buf.readUInt32LE(off) : buf.readUInt32BE(off));
  const linkType = u32(20) & 0x0fffffff;
  const out: CapturedPacket[] = [];
  let off = 24;
  while (off < buf.length) {
    if (off + 16 > buf.length) {
      if (partial) break;
      throw new PcapError('PCAP_ERR_TRUNCATED', `record header truncated at ${off}`);
    }
    const sec = u32(off);
    const frac = u32(off + 4);
    const incl = u32(off + 8);
    off += 16;
    if (off + incl > buf.length) {
      if (partial) break;
      throw new PcapError('PCAP_ERR_TRUNCATED', `record truncated at ${off}`);
    }
    const frame = buf.subarray(off, off + incl);
    off += incl;
    out.push(decodeFrame(sec + frac / (nano ? 1e9 : 1e6), linkType, frame));
  }
  return out;
}

export function readPcap(path: string, opts: ParsePcapOptions = {}): CapturedPacket[] {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (err) {
    if (opts.partial === true && (err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return parsePcap(buf, opts);
}

function decodeFrame(time: number, linkType: number, frame: Buffer): CapturedPacket {
  let etherType: number | undefined;
  let srcMac: string | undefined;
  let dstMac: string | undefined;
  let l3 = 0;
  if (linkType === LinkType.ethernet && frame.length >= 14) {
    dstMac = macString(frame.subarray(0, 6));
    srcMac = macString(frame.subarray(6, 12));
    etherType = frame.readUInt16BE(12);
    l3 = 14;
    // 802.1Q / 802.1ad tags
    while ((etherType === 0x8100 || etherType === 0x88a8) && frame.length >= l3 + 4) {
      etherType = frame.readUInt16BE(l3 + 2);
      l3 += 4;
    }
  } else if (linkType === LinkType.linuxSll && frame.length >= 16) {
    // pkttype u16 | arphrd u16 | addrlen u16 | addr[8] | protocol u16
    const alen = Math.min(frame.readUInt16BE(4), 8);
    srcMac = alen === 6 ? macString(frame.subarray(6, 12)) : undefined;
    etherType = frame.readUInt16BE(14);
    l3 = 16;
  } else if (linkType === LinkType.linuxSll2 && frame.length >= 20) {
    // protocol u16 | reserved u16 | ifindex u32 | arphrd u16 | pkttype u8 | addrlen u8 | addr[8]
    etherType = frame.readUInt16BE(0);
    const alen = Math.min(frame.readUInt8(11), 8);
    srcMac = alen === 6 ? macString(frame.subarray(12, 18)) : undefined;
    l3 = 20;
  } else {
    return { time, linkType, frame };
  }
  const base = { time, linkType, frame, srcMac, dstMac, etherType };
  if (etherType !== 0x0800 || frame.length < l3 + 20) return base;
  const ihl = (frame.readUInt8(l3) & 0x0f) * 4;
  const totalLen = frame.readUInt16BE(l3 + 2);
  const ipProtocol = frame.readUInt8(l3 + 9);
  const ip = {
    ...base,
    ipProtocol,
    ttl: frame.readUInt8(l3 + 8),
    srcIp: ipString(frame.subarray(l3 + 12, l3 + 16)),
    dstIp: ipString(frame.subarray(l3 + 16, l3 + 20)),
  };
  const l4 = l3 + ihl;
  if (ipProtocol !== 17 || frame.length < l4 + 8) return ip;
  const udpLen = frame.readUInt16BE(l4 + 4);
  const end = Math.min(frame.length, l4 + Math.max(udpLen, 8), l3 + totalLen);
  return {
    ...ip,
    srcPort: frame.readUInt16BE(l4),
    dstPort: frame.readUInt16BE(l4 + 2),
    payload: Buffer.from(frame.subarray(l4 + 8, end)),
  };
}

/** UDP packets to or from `port` (67 and 68 for DHCP), in capture order. */
export function udpPackets(packets: readonly CapturedPacket[], ...ports: number[]): CapturedPacket[] {
  return packets.filter(
    (p) =>
      p.payload !== undefined &&
      (ports.length === 0 || ports.includes(p.srcPort ?? -1) || ports.includes(p.dstPort ?? -1)),
  );
}

export interface TsharkOptions {
  /** Wireshark display filter, e.g. `dhcp.option.dhcp == 1`. */
  readonly filter?: string;
  /** Hard limit for the tshark run (default 30 s). */
  readonly timeoutMs?: number;
}

/**
 * Runs `tshark -r <pcap> -T fields` and returns one object per packet keyed by field name.
 * Repeated occurrences of a field are joined with `,` (e.g. every `dhcp.option.type`).
 */
export async function tsharkFields(
  pcapPath: string,
  fields: readonly string[],
  opts: TsharkOptions = {},
): Promise<Record<string, string>[]> {
  const args = ['-r', pcapPath, '-n', '-T', 'fields', '-E', 'separator=/t', '-E', 'occurrence=a', '-E', 'aggregator=,'];
  if (opts.filter !== undefined) args.push('-Y', opts.filter);
  for (const f of fields) args.push('-e', f);
  const out = await runTshark(args, opts.timeoutMs ?? 30_000);
  return out
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => {
      const cols = line.split('\t');
      return Object.fromEntries(fields.map((f, i) => [f, cols[i] ?? '']));
    });
}

/** Runs `tshark -r <pcap> -T json` and returns the parsed array (one entry per packet). */
export async function tsharkJson(pcapPath: string, opts: TsharkOptions = {}): Promise<unknown[]> {
  const args = ['-r', pcapPath, '-n', '-T', 'json'];
  if (opts.filter !== undefined) args.push('-Y', opts.filter);
  const out = await runTshark(args, opts.timeoutMs ?? 30_000);
  const parsed: unknown = JSON.parse(out.trim() === '' ? '[]' : out);
  return Array.isArray(parsed) ? parsed : [];
}

function runTshark(args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    // tshark only reads a file here: it runs in the current namespace and sends nothing.
    const child = spawn('tshark', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const stdout: Buffer[] = [];
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (d: Buffer) => stdout.push(d));
    child.stderr.on('data', (d: Buffer) => {
      if (stderr.length < 64 * 1024) stderr += d.toString();
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(Buffer.concat(stdout).toString('utf8'));
      else reject(new Error(`tshark ${args.join(' ')} failed (${signal ?? code}): ${stderr.trim()}`));
    });
  });
}
