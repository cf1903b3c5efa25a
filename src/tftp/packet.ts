/**
 * TFTP packet codec: RFC 1350 (the protocol, revision 2) and RFC 2347 (option extension).
 *
 * Every packet starts with a 2-byte opcode in network byte order (RFC 1350 §5):
 *
 *   opcode  operation
 *     1     Read request (RRQ)
 *     2     Write request (WRQ)
 *     3     Data (DATA)
 *     4     Acknowledgment (ACK)
 *     5     Error (ERROR)
 *     6     Option acknowledgment (OACK, RFC 2347 §2)
 *
 * Strings are bytes terminated by one zero byte. They are decoded and encoded as latin1 so that
 * every byte maps to exactly one character and back: a hostile name is seen byte for byte.
 *
 * DATA payloads are returned as views into the decoded datagram, not copies.
 */
import { DecodeError, MetalbootError } from '../base/errors.js';

export const OPCODE = { RRQ: 1, WRQ: 2, DATA: 3, ACK: 4, ERROR: 5, OACK: 6 } as const;

/** RFC 1350 appendix and RFC 2347 §2 (code 8). */
export const ERROR_CODE = {
  NOT_DEFINED: 0,
  FILE_NOT_FOUND: 1,
  ACCESS_VIOLATION: 2,
  DISK_FULL: 3,
  ILLEGAL_OPERATION: 4,
  UNKNOWN_TID: 5,
  FILE_EXISTS: 6,
  NO_SUCH_USER: 7,
  OPTION_NEGOTIATION: 8,
} as const;

/** RFC 1350 §2: the default (and, without RFC 2348, only) block size. */
export const DEFAULT_BLKSIZE = 512;
/** RFC 2348: the largest block size, so that a DATA packet fits one UDP datagram. */
export const MAX_BLKSIZE = 65464;
/** opcode + block number. */
export const DATA_HEADER_LENGTH = 4;
/** The longest packet that can be valid: a DATA packet with the largest block. */
export const MAX_PACKET_LENGTH = DATA_HEADER_LENGTH + MAX_BLKSIZE;

/** One RFC 2347 option as it appeared on the wire: name spelling and value untouched. */
export interface TftpOption {
  readonly name: string;
  readonly value: string;
}

/**
 * RRQ / WRQ, RFC 1350 §5 figure 5-1, extended by RFC 2347 §2:
 *
 *    2 bytes     string    1 byte     string   1 byte
 *   +-------+-------------+------+-------------+------+
 *   | 01/02 |  Filename   |   0  |    Mode     |   0  |  ...
 *   +-------+-------------+------+-------------+------+
 *
 *      string   1 byte   string  1 byte        string   1 byte   string  1 byte
 *   +---------+------+---------+------+ ... +---------+------+---------+------+
 *   |  opt1   |   0  | value1  |   0  |     |  optN   |   0  | valueN  |   0  |
 *   +---------+------+---------+------+ ... +---------+------+---------+------+
 *
 * Zero bytes after the last complete pair are accepted as padding (some ROMs pad requests).
 */
export interface RequestPacket {
  readonly op: 'rrq' | 'wrq';
  readonly filename: string;
  readonly mode: string;
  readonly options: readonly TftpOption[];
}

/**
 * DATA, RFC 1350 §5 figure 5-2:
 *
 *    2 bytes     2 bytes      n bytes
 *   +-------+-----------+-------------+
 *   |  03   |   Block # |    Data     |
 *   +-------+-----------+-------------+
 *
 * n is the block size, except for the last block, which is shorter (possibly 0 bytes).
 */
export interface DataPacket {
  readonly op: 'data';
  readonly block: number;
  readonly data: Uint8Array;
}

/**
 * ACK, RFC 1350 §5 figure 5-3 (block 0 acknowledges an OACK, RFC 2347 §2):
 *
 *    2 bytes     2 bytes
 *   +-------+-----------+
 *   |  04   |   Block # |
 *   +-------+-----------+
 */
export interface AckPacket {
  readonly op: 'ack';
  readonly block: number;
}

/**
 * ERROR, RFC 1350 §5 figure 5-4:
 *
 *    2 bytes     2 bytes      string    1 byte
 *   +-------+-------------+----------+------+
 *   |  05   |  ErrorCode  |  ErrMsg  |   0  |
 *   +-------+-------------+----------+------+
 *
 * Decoding accepts a message without its terminating zero (or no message at all): an ERROR
 * ends the transfer whatever its text, and embedded clients get this detail wrong.
 */
export interface ErrorPacket {
  readonly op: 'error';
  readonly code: number;
  readonly message: string;
}

/**
 * OACK, RFC 2347 §2:
 *
 *    2 bytes    string   1 byte  string  1 byte      string   1 byte  string  1 byte
 *   +-------+---------+------+---------+------+ ... +---------+------+---------+------+
 *   |  06   |  opt1   |  0   | value1  |  0   |     |  optN   |  0   | valueN  |  0   |
 *   +-------+---------+------+---------+------+ ... +---------+------+---------+------+
 */
export interface OackPacket {
  readonly op: 'oack';
  readonly options: readonly TftpOption[];
}

export type TftpPacket = RequestPacket | DataPacket | AckPacket | ErrorPacket | OackPacket;

/**
 * The opcode of a datagram, or undefined if it has fewer than 2 bytes. Lets the server decide
 * how to answer a packet that does not decode (never answer an ERROR with an ERROR).
 */
export function peekOpcode(buf: Uint8Array): number | undefined {
  return buf.length < 2 ? undefined : (buf[0]! << 8) | buf[1]!;
}

export function decode(buf: Uint8Array): TftpPacket {
  if (buf.length < 2) throw new DecodeError('TFTP_ERR_SHORT', buf.length, 'packet shorter than its opcode');
  if (buf.length > MAX_PACKET_LENGTH) {
    throw new DecodeError('TFTP_ERR_TOO_LONG', MAX_PACKET_LENGTH, `packet longer than ${MAX_PACKET_LENGTH} bytes`);
  }
  const opcode = (buf[0]! << 8) | buf[1]!;
  switch (opcode) {
    case OPCODE.RRQ:
    case OPCODE.WRQ:
      return decodeRequest(buf, opcode === OPCODE.RRQ ? 'rrq' : 'wrq');
    case OPCODE.DATA:
      if (buf.length < 4) throw new DecodeError('TFTP_ERR_SHORT', buf.length, 'DATA without block number');
      return { op: 'data', block: u16(buf, 2), data: buf.subarray(4) };
    case OPCODE.ACK:
      if (buf.length < 4) throw new DecodeError('TFTP_ERR_SHORT', buf.length, 'ACK without block number');
      if (buf.length > 4) throw new DecodeError('TFTP_ERR_TRAILING_BYTES', 4, 'bytes after ACK');
      return { op: 'ack', block: u16(buf, 2) };
    case OPCODE.ERROR: {
      if (buf.length < 4) throw new DecodeError('TFTP_ERR_SHORT', buf.length, 'ERROR without error code');
      const end = buf.indexOf(0, 4);
      const message = latin1(buf, 4, end < 0 ? buf.length : end);
      return { op: 'error', code: u16(buf, 2), message };
    }
    case OPCODE.OACK:
      return { op: 'oack', options: decodeOptions(buf, 2) };
    default:
      throw new DecodeError('TFTP_ERR_UNKNOWN_OPCODE', 0, `unknown opcode ${opcode}`);
  }
}

function decodeRequest(buf: Uint8Array, op: 'rrq' | 'wrq'): RequestPacket {
  const nameEnd = buf.indexOf(0, 2);
  if (nameEnd < 0) throw new DecodeError('TFTP_ERR_UNTERMINATED_STRING', buf.length, 'filename not terminated');
  const filename = latin1(buf, 2, nameEnd);
  const modeStart = nameEnd + 1;
  if (modeStart >= buf.length) throw new DecodeError('TFTP_ERR_MISSING_MODE', modeStart, 'request without mode');
  const modeEnd = buf.indexOf(0, modeStart);
  if (modeEnd < 0) throw new DecodeError('TFTP_ERR_UNTERMINATED_STRING', buf.length, 'mode not terminated');
  const mode = latin1(buf, modeStart, modeEnd);
  return { op, filename, mode, options: decodeOptions(buf, modeEnd + 1) };
}

function decodeOptions(buf: Uint8Array, start: number): TftpOption[] {
  const options: TftpOption[] = [];
  let at = start;
  while (at < buf.length) {
    if (isAllZero(buf, at)) break; // trailing padding
    const nameEnd = buf.indexOf(0, at);
    if (nameEnd < 0) throw new DecodeError('TFTP_ERR_UNTERMINATED_STRING', buf.length, 'option name not terminated');
    const valueStart = nameEnd + 1;
    if (valueStart >= buf.length)
      throw new DecodeError('TFTP_ERR_OPTION_WITHOUT_VALUE', valueStart, 'option without value');
    const valueEnd = buf.indexOf(0, valueStart);
    if (valueEnd < 0) throw new DecodeError('TFTP_ERR_UNTERMINATED_STRING', buf.length, 'option value not terminated');
    options.push({ name: latin1(buf, at, nameEnd), value: latin1(buf, valueStart, valueEnd) });
    at = valueEnd + 1;
  }
  return options;
}

export function encodingLength(p: TftpPacket): number {
  switch (p.op) {
    case 'rrq':
    case 'wrq':
      return 2 + p.filename.length + 1 + p.mode.length + 1 + optionsLength(p.options);
    case 'data':
      return DATA_HEADER_LENGTH + p.data.length;
    case 'ack':
      return 4;
    case 'error':
      return 4 + p.message.length + 1;
    case 'oack':
      return 2 + optionsLength(p.options);
  }
}

export function encode(p: TftpPacket): Buffer {
  const buf = Buffer.allocUnsafe(encodingLength(p));
  switch (p.op) {
    case 'rrq':
    case 'wrq': {
      buf.writeUInt16BE(p.op === 'rrq' ? OPCODE.RRQ : OPCODE.WRQ, 0);
      let at = writeString(buf, 2, p.filename, 'filename');
      at = writeString(buf, at, p.mode, 'mode');
      writeOptions(buf, at, p.options);
      break;
    }
    case 'data':
      if (p.data.length > MAX_BLKSIZE)
        throw new MetalbootError('TFTP_ERR_ENCODE_INVALID', `DATA payload over ${MAX_BLKSIZE} bytes`);
      buf.writeUInt16BE(OPCODE.DATA, 0);
      buf.writeUInt16BE(block(p.block), 2);
      buf.set(p.data, 4);
      break;
    case 'ack':
      buf.writeUInt16BE(OPCODE.ACK, 0);
      buf.writeUInt16BE(block(p.block), 2);
      break;
    case 'error':
      buf.writeUInt16BE(OPCODE.ERROR, 0);
      buf.writeUInt16BE(block(p.code), 2);
      writeString(buf, 4, p.message, 'error message');
      break;
    case 'oack':
      buf.writeUInt16BE(OPCODE.OACK, 0);
      writeOptions(buf, 2, p.options);
      break;
  }
  return buf;
}

function optionsLength(options: readonly TftpOption[]): number {
  let n = 0;
  for (const o of options) n += o.name.length + 1 + o.value.length + 1;
  return n;
}

function writeOptions(buf: Buffer, at: number, options: readonly TftpOption[]): number {
  for (const o of options) {
    // An empty name would read back as padding.
    if (o.name.length === 0) throw new MetalbootError('TFTP_ERR_ENCODE_INVALID', 'empty option name');
    at = writeString(buf, at, o.name, 'option name');
    at = writeString(buf, at, o.value, 'option value');
  }
  return at;
}

function writeString(buf: Buffer, at: number, s: string, what: string): number {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0 || c > 0xff)
      throw new MetalbootError('TFTP_ERR_ENCODE_INVALID', `${what} has a character with no single-byte form`);
    buf[at + i] = c;
  }
  buf[at + s.length] = 0;
  return at + s.length + 1;
}

function block(n: number): number {
  if (!Number.isInteger(n) || n < 0 || n > 0xffff)
    throw new MetalbootError('TFTP_ERR_ENCODE_INVALID', `not a 16-bit number: ${n}`);
  return n;
}

function u16(buf: Uint8Array, at: number): number {
  return (buf[at]! << 8) | buf[at + 1]!;
}

function latin1(buf: Uint8Array, start: number, end: number): string {
  return Buffer.from(buf.buffer, buf.byteOffset + start, end - start).toString('latin1');
}

function isAllZero(buf: Uint8Array, from: number): boolean {
  for (let i = from; i < buf.length; i++) if (buf[i] !== 0) return false;
  return true;
}
