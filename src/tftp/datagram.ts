/**
 * Classifies one datagram that arrived on a TFTP socket: a packet to act on, or a drop with a
 * named reason and, where the RFC or plain courtesy asks for one, an ERROR to send back.
 *
 * Never answer an ERROR with an ERROR (RFC 1350 §7: errors are not acknowledged), and never
 * answer a datagram too short to carry an opcode: both are how two servers get into a loop.
 */
import { DecodeError } from '../base/errors.js';
import { decode, ERROR_CODE, OPCODE, peekOpcode, type ErrorPacket, type TftpPacket } from './packet.js';
import type { TransferIgnoreReason } from './transfer.js';

/** Every reason a datagram is dropped without changing anything. Metrics count them. */
export type TftpDropReason =
  | 'runt' // fewer than 2 bytes
  | 'unknown-opcode'
  | 'malformed-request' // RRQ/WRQ that does not decode (truncated, unterminated, odd options)
  | 'malformed' // any other packet that does not decode
  | 'stray-error' // an ERROR for no transfer
  | 'unexpected-opcode' // DATA/ACK/OACK on the request port (per-transfer-port mode)
  | 'unknown-tid' // a packet for a transfer from the wrong address:port (RFC 1350 §4)
  | 'duplicate-request' // the client repeated a request whose transfer already runs
  | TransferIgnoreReason;

export type Classified =
  | { readonly kind: 'packet'; readonly packet: TftpPacket }
  | { readonly kind: 'drop'; readonly reason: TftpDropReason; readonly reply?: ErrorPacket; readonly detail?: string };

const illegal = (message: string): ErrorPacket => ({ op: 'error', code: ERROR_CODE.ILLEGAL_OPERATION, message });

export function classifyDatagram(buf: Uint8Array): Classified {
  try {
    return { kind: 'packet', packet: decode(buf) };
  } catch (err) {
    if (!(err instanceof DecodeError)) throw err;
    const opcode = peekOpcode(buf);
    if (opcode === undefined) return { kind: 'drop', reason: 'runt', detail: err.code };
    if (opcode === OPCODE.RRQ || opcode === OPCODE.WRQ) {
      return { kind: 'drop', reason: 'malformed-request', reply: illegal('Malformed request'), detail: err.code };
    }
    if (err.code === 'TFTP_ERR_UNKNOWN_OPCODE') {
      return { kind: 'drop', reason: 'unknown-opcode', reply: illegal('Illegal TFTP operation'), detail: err.code };
    }
    return { kind: 'drop', reason: 'malformed', detail: err.code };
  }
}

export const UNKNOWN_TID: ErrorPacket = { op: 'error', code: ERROR_CODE.UNKNOWN_TID, message: 'Unknown transfer ID' };
