/**
 * Where a reply goes: RFC 2131 §4.1, "If the 'giaddr' field in a DHCP message from a client is
 * non-zero, the server sends any return messages to the 'DHCP server' port on the BOOTP relay
 * agent whose address appears in 'giaddr'. If the 'giaddr' field is zero and the 'ciaddr' field
 * is nonzero, then the server unicasts DHCPOFFER and DHCPACK messages to the address in
 * 'ciaddr'. If 'giaddr' is zero and 'ciaddr' is zero, and the broadcast bit is set, then the
 * server broadcasts DHCPOFFER and DHCPACK messages to 0xffffffff. If the broadcast bit is not
 * set and 'giaddr' is zero and 'ciaddr' is zero, then the server unicasts DHCPOFFER and DHCPACK
 * messages to the client's hardware address and 'yiaddr' address. In all cases, when 'giaddr'
 * is zero, the server broadcasts any DHCPNAK messages to 0xffffffff."
 *
 * Node.js cannot unicast to a hardware address without an ARP entry, so that last case is a
 * broadcast, which the RFC permits.
 */
import { IPV4_BROADCAST, type Ipv4 } from '../net/ipv4.js';
import type { DhcpMessage } from './codec.js';

export interface Destination {
  readonly address: Ipv4;
  readonly port: number;
  readonly broadcast: boolean;
}

export interface Ports {
  /** The relay agents' (server) port: 67. */
  readonly relay: number;
  /** The clients' port: 68. */
  readonly client: number;
}

export function replyDestination(req: DhcpMessage, isNak: boolean, ports: Ports): Destination {
  if (req.giaddr !== 0) return { address: req.giaddr, port: ports.relay, broadcast: false };
  if (!isNak && req.ciaddr !== 0) return { address: req.ciaddr, port: ports.client, broadcast: false };
  return { address: IPV4_BROADCAST, port: ports.client, broadcast: true };
}
