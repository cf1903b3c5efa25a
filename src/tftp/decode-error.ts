/** Stable codes for every way a datagram can fail to be a TFTP packet. */
export const TFTP_DECODE_CODES = {
  /** Shorter than the fixed part of its packet type (or than the 2-byte opcode). */
  SHORT: 'TFTP_ERR_SHORT',
  /** Longer than any TFTP packet can be (a DATA packet with blksize 65464). */
  TOO_LONG: 'TFTP_ERR_TOO_LONG',
  /** Opcode outside 1..6 (RFC 1350 §5, RFC 2347 §2). */
  UNKNOWN_OPCODE: 'TFTP_ERR_UNKNOWN_OPCODE',
  /** A filename, mode, option name or option value without its terminating NUL. */
  UNTERMINATED_STRING: 'TFTP_ERR_UNTERMINATED_STRING',
  /** A request without a mode string. */
  MISSING_MODE: 'TFTP_ERR_MISSING_MODE',
  /** An option name followed by no value (RFC 2347 §2: options come in pairs). */
  OPTION_WITHOUT_VALUE: 'TFTP_ERR_OPTION_WITHOUT_VALUE',
  /** Bytes after the end of a fixed-length packet (ACK). */
  TRAILING_BYTES: 'TFTP_ERR_TRAILING_BYTES',
} as const;

export type TftpDecodeCode = (typeof TFTP_DECODE_CODES)[keyof typeof TFTP_DECODE_CODES];

/** The only error a hostile datagram can ever produce from the TFTP codec. */
export class TftpDecodeError extends Error {
  override readonly name = 'TftpDecodeError';
  constructor(
    readonly code: TftpDecodeCode,
    readonly offset: number,
    message: string,
  ) {
    super(`${message} at offset ${offset}`);
  }
}
