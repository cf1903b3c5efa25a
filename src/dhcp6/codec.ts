/**
 * DHCPv6 message codec (RFC 8415 §8, §9, §21.1).
 *
 * Client/server messages (every msg-type but 12 and 13), RFC 8415 §8:
 *
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |    msg-type   |               transaction-id                  |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   .                            options                            .
 *   .                           (variable)                          .
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * Relay agent/server messages (12 RELAY-FORW, 13 RELAY-REPL), RFC 8415 §9:
 *
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |    msg-type   |   hop-count   |                               |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               |
 *   |                         link-address (16)                     |
 *   |                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                               |                               |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               |
 *   |                         peer-address (16)                     |
 *   |                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                               |                               |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               |
 *   .            options (variable number and length)   ....        .
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * Every option, in a message and inside IA_NA, IA Address and the rest (RFC 8415 §21.1):
 *
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |          option-code          |           option-len          |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                          option-data                          |
 *   |                      (option-len octets)                      |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * Unlike DHCPv4 there is no pad, no end and no concatenation: options are kept in wire order
 * as a list, repeats included (IA_NA, IA Address and Vendor Class repeat by design), and encode
 * writes them back in that order, so decode∘encode and encode∘decode are both the identity.
 * The options must tile the message exactly: an option running past the end, or one to three
 * bytes left after the last option, is a DecodeError. The relayed message in option 9 stays
 * bytes here; options.ts decodes it (innerMessage, unwrapRelays) with the HOP_COUNT_LIMIT bound.
 */
import { DecodeError, MetalbootError } from '../base/errors.js';
import { readIpv6, writeIpv6, type Ipv6 } from '../net/ipv6.js';

export interface Dhcp6Option {
  readonly code: number;
  readonly data: Uint8Array;
}

export interface Dhcp6ClientMessage {
  readonly kind: 'client';
  readonly msgType: number;
  /** 24 bits. */
  readonly transactionId: number;
  readonly options: readonly Dhcp6Option[];
}

export interface Dhcp6RelayMessage {
  readonly kind: 'relay';
  readonly msgType: 12 | 13;
  readonly hopCount: number;
  readonly linkAddress: Ipv6;
  readonly peerAddress: Ipv6;
  readonly options: readonly Dhcp6Option[];
}

export type Dhcp6Message = Dhcp6ClientMessage | Dhcp6RelayMessage;

export const RELAY_FORW = 12;
export const RELAY_REPL = 13;
export const CLIENT_HEADER_LENGTH = 4;
export const RELAY_HEADER_LENGTH = 34;
export const OPTION_HEADER_LENGTH = 4;
/** The largest UDP payload over IPv6 without jumbograms (65535 − the 8-byte UDP header). */
export const MAX_MESSAGE_LENGTH = 65_527;
/** RFC 8415 §7.6: relays drop a RELAY-FORW whose hop-count reached this, so 32 nest at most. */
export const HOP_COUNT_LIMIT = 32;

/**
 * Decodes one UDP payload. Throws DecodeError, and nothing else, on any malformed input; the
 * offset is the byte in `buf` where the problem starts. Option data are views into `buf` (no
 * copies on the packet path): the caller must not reuse `buf` while the message is in use.
 */
export function decode6(buf: Uint8Array): Dhcp6Message {
  if (buf.length < CLIENT_HEADER_LENGTH)
    throw new DecodeError(
      'DHCP6_ERR_SHORT',
      buf.length,
      `message of ${buf.length} bytes is shorter than ${CLIENT_HEADER_LENGTH}`,
    );
  if (buf.length > MAX_MESSAGE_LENGTH)
    throw new DecodeError(
      'DHCP6_ERR_TOO_LONG',
      MAX_MESSAGE_LENGTH,
      `message of ${buf.length} bytes exceeds ${MAX_MESSAGE_LENGTH}`,
    );
  const msgType = buf[0]!;
  if (msgType === 0) throw new DecodeError('DHCP6_ERR_BAD_TYPE', 0, 'msg-type 0 is unassigned');
  if (msgType === RELAY_FORW || msgType === RELAY_REPL) {
    if (buf.length < RELAY_HEADER_LENGTH)
      throw new DecodeError(
        'DHCP6_ERR_SHORT',
        buf.length,
        `relay message of ${buf.length} bytes is shorter than ${RELAY_HEADER_LENGTH}`,
      );
    return {
      kind: 'relay',
      msgType,
      hopCount: buf[1]!,
      linkAddress: readIpv6(buf, 2),
      peerAddress: readIpv6(buf, 18),
      options: decodeOptions(buf, RELAY_HEADER_LENGTH, buf.length),
    };
  }
  return {
    kind: 'client',
    msgType,
    transactionId: (buf[1]! << 16) | (buf[2]! << 8) | buf[3]!,
    options: decodeOptions(buf, CLIENT_HEADER_LENGTH, buf.length),
  };
}

/**
 * The options in `buf[start, end)`, which they must tile exactly: a message's options, or the
 * options inside an IA_NA, IA Address, IA_PD … value. Offsets in errors are offsets in `buf`.
 */
export function decodeOptions(buf: Uint8Array, start: number, end: number): Dhcp6Option[] {
  const out: Dhcp6Option[] = [];
  let i = start;
  while (i < end) {
    if (end - i < OPTION_HEADER_LENGTH)
      throw new DecodeError(
        'DHCP6_ERR_TRAILING_BYTES',
        i,
        `${end - i} byte(s) after the last option, too few for an option header`,
      );
    const code = (buf[i]! << 8) | buf[i + 1]!;
    const len = (buf[i + 2]! << 8) | buf[i + 3]!;
    const from = i + OPTION_HEADER_LENGTH;
    if (from + len > end)
      throw new DecodeError(
        'DHCP6_ERR_OPTION_TRUNCATED',
        i,
        `option ${code} of length ${len} runs ${from + len - end} byte(s) past the end`,
      );
    // A plain Uint8Array view (not a Buffer subarray), whatever `buf` is: no copy, one type.
    out.push({ code, data: new Uint8Array(buf.buffer, buf.byteOffset + from, len) });
    i = from + len;
  }
  return out;
}

function invalid(message: string): MetalbootError {
  return new MetalbootError('DHCP6_ERR_ENCODE_INVALID', message);
}

function isUint(n: number, max: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= max;
}

/** The number of bytes `options` take on the wire. */
export function optionsLength(options: readonly Dhcp6Option[]): number {
  let n = 0;
  for (const o of options) n += OPTION_HEADER_LENGTH + o.data.length;
  return n;
}

/** The number of bytes encode6() will produce for `msg`. */
export function encodingLength6(msg: Dhcp6Message): number {
  return (msg.kind === 'relay' ? RELAY_HEADER_LENGTH : CLIENT_HEADER_LENGTH) + optionsLength(msg.options);
}

/**
 * Writes `options` in their order at `offset` of `out` (which must have room: optionsLength)
 * and returns the offset after them. Throws DHCP6_ERR_ENCODE_INVALID for a code or length
 * outside 16 bits. Option values are only read, never written.
 */
export function writeOptions(out: Uint8Array, offset: number, options: readonly Dhcp6Option[]): number {
  let i = offset;
  for (const o of options) {
    if (!isUint(o.code, 0xffff)) throw invalid(`option code ${o.code} is not a 16-bit number`);
    const len = o.data.length;
    if (len > 0xffff) throw invalid(`option ${o.code} of ${len} bytes does not fit a 16-bit length`);
    out[i] = o.code >>> 8;
    out[i + 1] = o.code & 255;
    out[i + 2] = len >>> 8;
    out[i + 3] = len & 255;
    out.set(o.data, i + OPTION_HEADER_LENGTH);
    i += OPTION_HEADER_LENGTH + len;
  }
  return i;
}

/** `options` as one value (the inside of IA_NA, IA Address …). */
export function encodeOptions(options: readonly Dhcp6Option[]): Uint8Array {
  const out = new Uint8Array(optionsLength(options));
  writeOptions(out, 0, options);
  return out;
}

const MAX_IPV6 = (1n << 128n) - 1n;

/**
 * Encodes `msg` into a new buffer, options in the order given. Throws a MetalbootError
 * DHCP6_ERR_ENCODE_INVALID (a caller bug, not input) for values with no wire form: a client
 * message with msg-type 0, 12 or 13, a transaction-id over 24 bits, a hop-count over 255, an
 * address outside 128 bits, an option code or length over 16 bits, a message over
 * MAX_MESSAGE_LENGTH. Whatever encode6 returns, decode6 reads back as `msg`.
 */
export function encode6(msg: Dhcp6Message): Buffer {
  const length = encodingLength6(msg);
  if (length > MAX_MESSAGE_LENGTH) throw invalid(`message of ${length} bytes exceeds ${MAX_MESSAGE_LENGTH}`);
  const out = Buffer.alloc(length);
  let i: number;
  if (msg.kind === 'relay') {
    if (msg.msgType !== RELAY_FORW && msg.msgType !== RELAY_REPL)
      throw invalid(`relay msg-type ${String(msg.msgType)} is neither 12 nor 13`);
    if (!isUint(msg.hopCount, 255)) throw invalid(`hop-count ${msg.hopCount} is not one byte`);
    for (const a of [msg.linkAddress, msg.peerAddress])
      if (typeof a !== 'bigint' || a < 0n || a > MAX_IPV6) throw invalid(`address ${String(a)} is not 128 bits`);
    out[0] = msg.msgType;
    out[1] = msg.hopCount;
    writeIpv6(out, 2, msg.linkAddress);
    writeIpv6(out, 18, msg.peerAddress);
    i = RELAY_HEADER_LENGTH;
  } else {
    if (!isUint(msg.msgType, 255) || msg.msgType === 0 || msg.msgType === RELAY_FORW || msg.msgType === RELAY_REPL)
      throw invalid(`client/server msg-type ${msg.msgType} is not 1..255 without 12 and 13`);
    if (!isUint(msg.transactionId, 0xffffff))
      throw invalid(`transaction-id ${msg.transactionId} is not a 24-bit number`);
    out[0] = msg.msgType;
    out[1] = msg.transactionId >>> 16;
    out[2] = (msg.transactionId >>> 8) & 255;
    out[3] = msg.transactionId & 255;
    i = CLIENT_HEADER_LENGTH;
  }
  writeOptions(out, i, msg.options);
  return out;
}
