/** Stable codes for every way a datagram can fail to be a DHCP message. */
export const DHCP_DECODE_CODES = {
  SHORT: 'DHCP_ERR_SHORT',
  BAD_OP: 'DHCP_ERR_BAD_OP',
  BAD_HLEN: 'DHCP_ERR_BAD_HLEN',
  NO_COOKIE: 'DHCP_ERR_NO_COOKIE',
  OPTION_TRUNCATED: 'DHCP_ERR_OPTION_TRUNCATED',
  OVERLOAD_INVALID: 'DHCP_ERR_OVERLOAD_INVALID',
  TOO_LONG: 'DHCP_ERR_TOO_LONG',
} as const;

export type DhcpDecodeCode = (typeof DHCP_DECODE_CODES)[keyof typeof DHCP_DECODE_CODES];

/** The only error a hostile datagram can ever produce from the DHCP codec. */
export class DhcpDecodeError extends Error {
  override readonly name = 'DhcpDecodeError';
  constructor(
    readonly code: DhcpDecodeCode,
    readonly offset: number,
    message: string,
  ) {
    super(`${message} at offset ${offset}`);
  }
}
