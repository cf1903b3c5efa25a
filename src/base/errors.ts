/**
 * metalboot's errors: one type, MetalbootError, whose `code` comes from the table below, and one
 * subtype for codecs, DecodeError, which adds the byte offset (STYLE: a codec's only error).
 * Codes are `<AREA>_ERR_<WHAT>` and stable: logs carry them and code branches on them, never on
 * message text. Errors of Node and of libraries (ENOENT, UND_ERR_*, ABORT_ERR) keep their own.
 */
export const ERROR_CODES = {
  // DHCP codec and shell (dhcp/)
  DHCP_ERR_SHORT: 'a datagram shorter than the fixed part of a DHCP message',
  DHCP_ERR_TOO_LONG: 'a datagram longer than any DHCP message metalboot accepts',
  DHCP_ERR_BAD_OP: 'op is neither BOOTREQUEST nor BOOTREPLY',
  DHCP_ERR_BAD_HLEN: 'hardware address length over 16',
  DHCP_ERR_NO_COOKIE: 'no DHCP magic cookie after the BOOTP header',
  DHCP_ERR_OPTION_TRUNCATED: 'an option whose length byte or value runs past the end',
  DHCP_ERR_OVERLOAD_INVALID: 'option 52 (overload) is not one byte of 1, 2 or 3',
  DHCP_ERR_BIND: 'the DHCP send socket cannot bind to the server IP',

  // DHCPv6 codec and option accessors (dhcp6/); SIX, not 6: error codes are letters only (errors.test.ts)
  DHCP6_ERR_SHORT: 'a datagram shorter than the fixed part of its DHCPv6 message (4 bytes, 34 for a relay)',
  DHCP6_ERR_TOO_LONG: 'a datagram longer than any DHCPv6 message metalboot accepts',
  DHCP6_ERR_BAD_TYPE: 'msg-type 0, which RFC 8415 leaves unassigned',
  DHCP6_ERR_OPTION_TRUNCATED: 'a DHCPv6 option whose length runs past the end of its message or container',
  DHCP6_ERR_TRAILING_BYTES: 'one to three bytes after the last DHCPv6 option, too few for an option header',
  DHCP6_ERR_OPTION_LENGTH: 'a DHCPv6 option value whose length its format does not allow',
  DHCP6_ERR_OPTION_INVALID: 'a DHCPv6 option value of the right length whose content its format does not allow',
  DHCP6_ERR_DOMAIN_NAME: 'a domain name that is not uncompressed RFC 1035 labels (label over 63, name over 255)',
  DHCP6_ERR_RELAY_MESSAGE: 'a relay message without exactly one Relay Message option (9)',
  DHCP6_ERR_RELAY_DEPTH: 'relay messages nested deeper than HOP_COUNT_LIMIT (32, RFC 8415 §7.6)',
  DHCP6_ERR_RELAY_NESTING: 'a RELAY-FORW inside a RELAY-REPL or the other way round',
  DHCP6_ERR_ENCODE_INVALID: 'a DHCPv6 value with no wire form (a caller bug, never input)',

  // One interface's broadcasts through socat (net/device-feed.ts, --dhcp-listen with a unicast address)
  NET_ERR_NO_INTERFACE: 'no network interface has the listen address, or more than one has it',
  NET_ERR_DEVICE_NAME: 'an interface name that socat cannot take as an option value',
  NET_ERR_SOCAT_MISSING: 'socat (Debian package socat) is not installed or not on PATH',
  NET_ERR_FEED_START: 'socat exited, or did not bind to the interface in time, at start-up',

  // TFTP codec and shell (tftp/)
  TFTP_ERR_SHORT: 'a datagram shorter than the fixed part of its packet type',
  TFTP_ERR_TOO_LONG: 'a datagram longer than any TFTP packet',
  TFTP_ERR_UNKNOWN_OPCODE: 'an opcode outside 1..6 (RFC 1350 §5, RFC 2347 §2)',
  TFTP_ERR_UNTERMINATED_STRING: 'a filename, mode, option name or value without its NUL',
  TFTP_ERR_MISSING_MODE: 'a request without a mode string',
  TFTP_ERR_OPTION_WITHOUT_VALUE: 'an option name followed by no value (RFC 2347 §2)',
  TFTP_ERR_TRAILING_BYTES: 'bytes after the end of a fixed-length packet (ACK)',
  TFTP_ERR_ENCODE_INVALID: 'a packet value with no wire form (a caller bug, never input)',
  TFTP_ERR_NOT_STARTED: 'the TFTP server was asked for its address before it started',
  TFTP_ERR_ALREADY_STARTED: 'the TFTP server was started twice',

  // Boot files and scripts (boot/)
  IPXE_ERR_ROOT_NOT_DIRECTORY: 'the iPXE directory is not a directory',
  IPXE_ERR_UNSAFE_VALUE: 'a script value with a line break, control character or ${',
  GRUB_ERR_UNSAFE_VALUE: 'a GRUB configuration value with a line break or control character',

  // Lease sources and the range journal (leases/)
  SOURCE_ERR_INVALID: 'a hosts or BareMetalHost file cannot be used at start-up',
  SOURCE_ERR_MANIFEST: 'a YAML document of a BareMetalHost file does not parse',
  LEASE_ERR_JOURNAL_CLOSED: 'the lease journal was written after it closed (or before it opened)',
  LEASE_ERR_SHORT_WRITE: 'a lease journal write made no progress: the file system is full',
  LEASE_ERR_CONFLICT: 'another replica holds the range address (its Lease in the Kubernetes API): no ACK',
  LEASE_ERR_COMPACTION: 'a compacted lease journal did not read back as written; the old one is kept',

  // Kubernetes (kube/)
  KUBE_ERR_CALLBACK_SECRET: 'the Secret with the callback CA did not appear (no leader, or it cannot write Secrets)',
  KUBE_ERR_CONFIG: 'no usable kubeconfig and not running in a cluster',
  KUBE_ERR_EVENT_TIMEOUT: 'the API server did not answer an Event write in time',
  KUBE_ERR_LEASE_TIMEOUT: 'the API server did not answer a leader-election Lease call within the renew deadline',
  KUBE_ERR_LEADER_TIMING:
    'leader-election timing where the renew deadline or retry period is not shorter than the one above it',

  // Router advertisements through radvd (ra/)
  RA_ERR_CONFIG:
    'a router-advertisement value radvd would refuse or misread (interface name, interval, lifetime, prefix)',
  RA_ERR_RADVD_MISSING: 'radvd (Debian package radvd) is not installed or not on PATH',
  RA_ERR_NO_CAPABILITY: 'radvd cannot open its raw ICMPv6 socket: no CAP_NET_RAW',
  RA_ERR_START: 'radvd exited, or did not write its pidfile in time, at start-up',

  // Listeners (every Service with an address)
  SERVICE_ERR_NOT_LISTENING: 'address() of a listener that is not listening',

  // Ironic API proxy and callback listener (proxy/)
  PROXY_ERR_BAD_OPTIONS: 'a proxy option (URL, limit) is unusable; thrown at construction',
  PROXY_ERR_BODY_TOO_LARGE: 'a request body grew past its bound while streaming',
  PROXY_ERR_BODY_BUDGET: 'a body read whole would take the bodies one listener holds past their budget',
  PROXY_ERR_BODY_TIMEOUT: 'a body read whole did not arrive within its time bound',
  PROXY_ERR_BAD_STATE: 'a file of the proxy state directory is unreadable or malformed',
  PROXY_ERR_BAD_CERTIFICATE: 'a configured or persisted certificate or key is unusable',
  PROXY_ERR_CLOSING: 'a callback still in flight when the grace period of close() ran out; aborted',

  // Image proxy, cache and worker (images/)
  IMAGE_PROXY_ERR_BAD_UPSTREAM: 'the upstream is not an http(s) origin with an optional base path',
  IMAGE_PROXY_ERR_BAD_PREFIX: 'a configured prefix is not a clean absolute path',
  IMAGE_PROXY_ERR_BAD_CACHE_OPTIONS: 'a cache option is out of range',
  IMAGE_PROXY_ERR_BAD_LIMITS: 'a connection limit or timeout of the image proxy is out of range',
  IMAGE_PROXY_ERR_CLIENT_LIMIT: 'a client address holds its share of upstream connections while the pool is busy',
  IMAGE_PROXY_ERR_QUEUE_TIMEOUT: 'a request waited longer than the queue timeout for an upstream connection',
  IMAGE_PROXY_ERR_ABORTED: 'a request stopped waiting for an upstream connection: its client left or the proxy closed',
  IMAGE_CACHE_ERR_LENGTH_MISMATCH: 'the upstream body ended at a length other than its Content-Length',
  IMAGE_CACHE_ERR_CLOSED: 'the cache closed while an object was being filled',
  IMAGE_CACHE_ERR_BAD_ENTRY: 'a cache file does not start with a valid entry header',
  IMAGE_WORKER_ERR_START: 'the image worker could not start or listen',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class MetalbootError extends Error {
  override readonly name: string = 'MetalbootError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { readonly cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The only error a codec throws for bytes that are not its packet: a code and the offset. */
export class DecodeError extends MetalbootError {
  override readonly name: string = 'DecodeError';
  constructor(
    code: ErrorCode,
    readonly offset: number,
    message: string,
  ) {
    super(code, `${message} at offset ${offset}`);
  }
}
