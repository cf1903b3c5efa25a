/**
 * DHCPv4 message codec (RFC 2131 §2, RFC 2132, RFC 3396).
 *
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +---------------+---------------+---------------+---------------+
 *   |     op (1)    |   htype (1)   |   hlen (1)    |   hops (1)    |
 *   +---------------+---------------+---------------+---------------+
 *   |                            xid (4)                            |
 *   +-------------------------------+-------------------------------+
 *   |           secs (2)            |           flags (2)           |
 *   +-------------------------------+-------------------------------+
 *   |                          ciaddr  (4)                          |
 *   |                          yiaddr  (4)                          |
 *   |                          siaddr  (4)                          |
 *   |                          giaddr  (4)                          |
 *   +---------------------------------------------------------------+
 *   |                          chaddr  (16)                         |
 *   |                          sname   (64)                         |
 *   |                          file    (128)                        |
 *   +---------------------------------------------------------------+
 *   |  magic cookie 99.130.83.99 (4) | options (variable)           |
 *   +---------------------------------------------------------------+
 *
 * Options are kept as raw bytes keyed by code (typed accessors live in options.ts). On decode,
 * repeated codes are concatenated (RFC 3396) and the sname/file fields are read as options
 * when option 52 says so (RFC 2132 §9.3). On encode, option 53 goes first, the rest in code
 * order, option 82 last (RFC 3046 §2.1), values over 255 bytes are split into consecutive
 * instances (RFC 3396), and the message is padded to the 300-byte BOOTP minimum.
 */
import { DecodeError } from '../base/errors.js';
import { readIpv4, writeIpv4, type Ipv4 } from '../net/ipv4.js';

export const BOOTREQUEST = 1;
export const BOOTREPLY = 2;
export const MAGIC_COOKIE = 0x63825363;
export const HEADER_LENGTH = 236;
export const OPTIONS_OFFSET = 240;
/** RFC 951: a BOOTP message is at least 300 bytes; some PXE ROMs drop shorter replies. */
export const MIN_MESSAGE_LENGTH = 300;
/** Largest datagram we accept: a full Ethernet-jumbo UDP payload is far beyond any real client. */
export const MAX_MESSAGE_LENGTH = 8192;
export const FLAG_BROADCAST = 0x8000;

const OPT_PAD = 0;
const OPT_END = 255;
const OPT_OVERLOAD = 52;
const OPT_MESSAGE_TYPE = 53;
const OPT_RELAY_AGENT = 82;

/** Options by code; values are the (RFC 3396-concatenated) payload bytes. */
export type DhcpOptions = Map<number, Uint8Array>;

export interface DhcpMessage {
  op: number;
  htype: number;
  hlen: number;
  hops: number;
  xid: number;
  secs: number;
  flags: number;
  ciaddr: Ipv4;
  yiaddr: Ipv4;
  siaddr: Ipv4;
  giaddr: Ipv4;
  /** The full 16-byte chaddr field; the hardware address is its first `hlen` bytes. */
  chaddr: Uint8Array;
  /** Server host name (NUL-terminated string field); empty when overloaded with options. */
  sname: string;
  /** Boot file name (NUL-terminated string field); empty when overloaded with options. */
  file: string;
  options: DhcpOptions;
}

/**
 * Decodes one UDP payload. Throws DecodeError, and nothing else, on any malformed input.
 * chaddr and option values are views into `buf` (no copies on the packet path): the caller must
 * not reuse `buf` while the message is in use. dgram gives every datagram a buffer of its own.
 */
export function decode(buf: Uint8Array): DhcpMessage {
  if (buf.length < OPTIONS_OFFSET)
    throw new DecodeError(
      'DHCP_ERR_SHORT',
      buf.length,
      `message of ${buf.length} bytes is shorter than ${OPTIONS_OFFSET}`,
    );
  if (buf.length > MAX_MESSAGE_LENGTH)
    throw new DecodeError(
      'DHCP_ERR_TOO_LONG',
      MAX_MESSAGE_LENGTH,
      `message of ${buf.length} bytes exceeds ${MAX_MESSAGE_LENGTH}`,
    );
  const op = buf[0]!;
  if (op !== BOOTREQUEST && op !== BOOTREPLY)
    throw new DecodeError('DHCP_ERR_BAD_OP', 0, `op ${op} is neither BOOTREQUEST nor BOOTREPLY`);
  const hlen = buf[2]!;
  if (hlen > 16) throw new DecodeError('DHCP_ERR_BAD_HLEN', 2, `hlen ${hlen} exceeds 16`);
  if (readU32(buf, HEADER_LENGTH) !== MAGIC_COOKIE)
    throw new DecodeError('DHCP_ERR_NO_COOKIE', HEADER_LENGTH, 'missing DHCP magic cookie');

  const options: DhcpOptions = new Map();
  readOptions(buf, OPTIONS_OFFSET, buf.length, options);
  let sname = '';
  let file = '';
  const overload = options.get(OPT_OVERLOAD);
  const overloadValue = overload?.length === 1 ? overload[0]! : 0;
  if (overload !== undefined && (overload.length !== 1 || overloadValue < 1 || overloadValue > 3)) {
    throw new DecodeError('DHCP_ERR_OVERLOAD_INVALID', OPTIONS_OFFSET, 'option 52 must be one byte of 1, 2 or 3');
  }
  // RFC 2131 §4.1: options, then file, then sname.
  if (overloadValue & 1) readOptions(buf, 108, 236, options);
  else file = readCString(buf, 108, 128);
  if (overloadValue & 2) readOptions(buf, 44, 108, options);
  else sname = readCString(buf, 44, 64);

  return {
    op,
    htype: buf[1]!,
    hlen,
    hops: buf[3]!,
    xid: readU32(buf, 4),
    secs: (buf[8]! << 8) | buf[9]!,
    flags: (buf[10]! << 8) | buf[11]!,
    ciaddr: readIpv4(buf, 12),
    yiaddr: readIpv4(buf, 16),
    siaddr: readIpv4(buf, 20),
    giaddr: readIpv4(buf, 24),
    chaddr: new Uint8Array(buf.buffer, buf.byteOffset + 28, 16),
    sname,
    file,
    options,
  };
}

function readOptions(buf: Uint8Array, start: number, end: number, into: DhcpOptions): void {
  let i = start;
  while (i < end) {
    const code = buf[i]!;
    if (code === OPT_PAD) {
      i++;
      continue;
    }
    if (code === OPT_END) return;
    if (i + 1 >= end) throw new DecodeError('DHCP_ERR_OPTION_TRUNCATED', i, `option ${code} has no length byte`);
    const len = buf[i + 1]!;
    const from = i + 2;
    if (from + len > end)
      throw new DecodeError('DHCP_ERR_OPTION_TRUNCATED', i, `option ${code} of length ${len} runs past the end`);
    const prev = into.get(code);
    if (prev === undefined) {
      // A view, not a copy: every datagram arrives in a buffer of its own.
      into.set(code, new Uint8Array(buf.buffer, buf.byteOffset + from, len));
    } else {
      const value = buf.subarray(from, from + len);
      // RFC 3396: a repeated option's values are concatenated in order.
      const joined = new Uint8Array(prev.length + len);
      joined.set(prev, 0);
      joined.set(value, prev.length);
      into.set(code, joined);
    }
    i = from + len;
  }
}

function readCString(buf: Uint8Array, start: number, length: number): string {
  let end = start;
  const limit = start + length;
  while (end < limit && buf[end] !== 0) end++;
  if (end === start) return '';
  return Buffer.from(buf.buffer, buf.byteOffset + start, end - start).toString('latin1');
}

function readU32(buf: Uint8Array, offset: number): number {
  return ((buf[offset]! << 24) | (buf[offset + 1]! << 16) | (buf[offset + 2]! << 8) | buf[offset + 3]!) >>> 0;
}

/**
 * Option codes in wire order (53 first, 82 last, the rest ascending), written into `into`, which
 * is reused across calls: encode() runs once per reply, and a reply has about 15 options, so an
 * insertion sort into one array costs less than a fresh array, a filter and a sort each time.
 * Returns the number of codes written.
 */
function encodeOrder(options: DhcpOptions, into: number[]): number {
  let n = 0;
  if (options.has(OPT_MESSAGE_TYPE)) into[n++] = OPT_MESSAGE_TYPE;
  const first = n;
  for (const code of options.keys()) {
    if (code === OPT_PAD || code === OPT_END || code === OPT_MESSAGE_TYPE || code === OPT_RELAY_AGENT) continue;
    let j = n++;
    while (j > first && into[j - 1]! > code) {
      into[j] = into[j - 1]!;
      j--;
    }
    into[j] = code;
  }
  if (options.has(OPT_RELAY_AGENT)) into[n++] = OPT_RELAY_AGENT;
  return n;
}

/** Scratch for encodeOrder: encode() is synchronous and never re-entered, so one array serves every call. */
const ORDER: number[] = [];

function optionWireLength(len: number): number {
  // An empty option still takes one instance: code + zero length.
  if (len === 0) return 2;
  return len + 2 * Math.ceil(len / 255);
}

/** The number of bytes encode() will produce for `msg`. */
export function encodingLength(msg: DhcpMessage): number {
  return lengthFor(msg.options, ORDER, encodeOrder(msg.options, ORDER));
}

function lengthFor(options: DhcpOptions, order: readonly number[], count: number): number {
  let n = OPTIONS_OFFSET + 1; // header + cookie + END
  for (let k = 0; k < count; k++) n += optionWireLength(options.get(order[k]!)!.length);
  return Math.max(n, MIN_MESSAGE_LENGTH);
}

/** Values up to this length are copied byte by byte: cheaper than TypedArray#set's call. */
const SHORT_VALUE = 16;

/**
 * Encodes `msg` into a new buffer (or into `target` at offset 0, which must be at least
 * encodingLength(msg) bytes and is returned as a subarray of the written length). A new buffer
 * may be a slice of Node's shared allocation pool: use its byteOffset with its `.buffer`.
 * Option values are only read, never written: replies share constant values across packets.
 */
export function encode(msg: DhcpMessage, target?: Uint8Array): Buffer {
  const options = msg.options;
  const count = encodeOrder(options, ORDER);
  const length = lengthFor(options, ORDER, count);
  let out: Buffer;
  if (target === undefined) out = Buffer.allocUnsafe(length);
  else {
    if (target.length < length) throw new RangeError(`target of ${target.length} bytes is shorter than ${length}`);
    out = Buffer.from(target.buffer, target.byteOffset, length);
  }
  // Every byte is written below, or zeroed where a field or the padding is not (allocUnsafe).
  out[0] = msg.op;
  out[1] = msg.htype;
  out[2] = msg.hlen;
  out[3] = msg.hops;
  out.writeUInt32BE(msg.xid >>> 0, 4);
  out.writeUInt16BE(msg.secs & 0xffff, 8);
  out.writeUInt16BE(msg.flags & 0xffff, 10);
  writeIpv4(out, 12, msg.ciaddr);
  writeIpv4(out, 16, msg.yiaddr);
  writeIpv4(out, 20, msg.siaddr);
  writeIpv4(out, 24, msg.giaddr);
  const chaddr = msg.chaddr;
  for (let k = 0; k < 16; k++) out[28 + k] = k < chaddr.length ? chaddr[k]! : 0;
  writeCString(out, 44, 64, msg.sname);
  writeCString(out, 108, 128, msg.file);
  out.writeUInt32BE(MAGIC_COOKIE, HEADER_LENGTH);
  let i = OPTIONS_OFFSET;
  for (let k = 0; k < count; k++) {
    const code = ORDER[k]!;
    const value = options.get(code)!;
    const len = value.length;
    if (len <= 255) {
      out[i++] = code;
      out[i++] = len;
      if (len <= SHORT_VALUE) for (let b = 0; b < len; b++) out[i + b] = value[b]!;
      else out.set(value, i);
      i += len;
      continue;
    }
    // RFC 3396: split over consecutive instances of at most 255 bytes.
    for (let from = 0; from < len; from += 255) {
      const part = Math.min(255, len - from);
      out[i++] = code;
      out[i++] = part;
      out.set(value.subarray(from, from + part), i);
      i += part;
    }
  }
  out[i++] = OPT_END;
  if (i < length) out.fill(0, i, length);
  return out;
}

/** A NUL-terminated latin1 string field, zero-padded to `size` bytes. */
function writeCString(out: Buffer, offset: number, size: number, value: string): void {
  const len = value.length; // latin1: one byte per UTF-16 unit, as Buffer.from(value, 'latin1') writes it
  if (len >= size) throw new RangeError(`string of ${len} bytes does not fit a ${size}-byte field`);
  if (len > 0) out.write(value, offset, len, 'latin1');
  out.fill(0, offset + len, offset + size);
}

/** The client hardware address: the first hlen bytes of chaddr. */
export function hardwareAddress(msg: DhcpMessage): Uint8Array {
  return msg.chaddr.subarray(0, msg.hlen);
}
