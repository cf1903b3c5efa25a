/**
 * Who is asking, by MAC. Hosts are known by MAC (BareMetalHosts, static lists), but DHCPv6
 * names clients by DUID, and firmware, iPXE and the OS of one machine each send their own
 * (EDK2 and iPXE prefer DUID-UUID, which holds no MAC at all). The MAC is taken, in this order:
 *
 * 1. Client Link-Layer Address (option 79, RFC 6939), added by a relay from the frame it
 *    received: the booting NIC, as the wire saw it.
 * 2. The client's link-local source address (the UDP source, or the innermost relay's
 *    peer-address) when it is a modified EUI-64 (RFC 4291): the interface that sent the
 *    request. EDK2, iPXE and Linux's default address generation all form it from the MAC.
 * 3. DUID-LL or DUID-LLT with Ethernet hardware type: a MAC of the machine, but the one its
 *    software chose, which on a multi-NIC machine need not be the booting NIC's.
 *
 * A client that gives none of these is no known host; decide.ts serves it from a range by its
 * DUID, or drops it as `no-mac`. Pure. docs/decisions/0012-ipv6-provisioning.md gives the
 * reasons for the order.
 */
import type { Mac } from '../net/mac.js';
import { macFromBytes } from '../net/mac.js';
import { isLinkLocal6, macFromEui64, type Ipv6 } from '../net/ipv6.js';
import { parseDuid } from './options.js';

export type MacSource = 'link-layer-option' | 'link-local-eui64' | 'duid-ll' | 'duid-llt';

export type ClientIdentity =
  | { readonly kind: 'mac'; readonly mac: Mac; readonly via: MacSource }
  | { readonly kind: 'none'; readonly why: string };

/** ARP hardware type of Ethernet (RFC 826, IANA "Hardware Types"): DUIDs and option 79 use it. */
const HW_ETHERNET = 1;

export interface IdentityInput {
  /** Option 1's bytes, if present. */
  readonly clientId: Uint8Array | undefined;
  /** Option 79 of the innermost relay (the one on the client's link). */
  readonly linkLayer: { readonly hwType: number; readonly address: Uint8Array } | undefined;
  /** The client's own address: the innermost relay's peer-address, or the UDP source. */
  readonly peer: Ipv6 | undefined;
}

export function clientIdentity(i: IdentityInput): ClientIdentity {
  if (i.linkLayer !== undefined && i.linkLayer.hwType === HW_ETHERNET && i.linkLayer.address.length === 6)
    return { kind: 'mac', mac: macFromBytes(i.linkLayer.address), via: 'link-layer-option' };
  if (i.peer !== undefined && isLinkLocal6(i.peer)) {
    const mac = macFromEui64(i.peer);
    if (mac !== undefined) return { kind: 'mac', mac, via: 'link-local-eui64' };
  }
  const duid = i.clientId === undefined ? undefined : parseDuid(i.clientId);
  if (duid !== undefined && (duid.type === 'll' || duid.type === 'llt')) {
    if (duid.hwType === HW_ETHERNET && duid.linkLayer.length === 6)
      return { kind: 'mac', mac: macFromBytes(duid.linkLayer), via: duid.type === 'll' ? 'duid-ll' : 'duid-llt' };
  }
  const what =
    duid === undefined
      ? i.clientId === undefined
        ? 'no client identifier'
        : 'an unreadable DUID'
      : duid.type === 'll' || duid.type === 'llt'
        ? `a DUID-${duid.type.toUpperCase()} of hardware type ${duid.hwType}`
        : `a DUID-${duid.type === 'other' ? `type ${duid.duidType}` : duid.type.toUpperCase()}`;
  return {
    kind: 'none',
    why: `${what}, no option 79 from a relay, and a source address that is not an EUI-64 link-local address`,
  };
}
