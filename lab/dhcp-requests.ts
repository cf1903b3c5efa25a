/**
 * Builders for DHCP requests in unit tests and benchmarks: the options real clients send
 * (see test/fixtures/dhcp for captured ones). Not used by the product.
 */
import { BOOTREQUEST, FLAG_BROADCAST, type DhcpMessage } from '../src/dhcp/codec.js';
import { OPT, ip, str, u16, u8 } from '../src/dhcp/options.js';
import { macToBytes, parseMac } from '../src/net/mac.js';
import { IPV4_ANY, parseIpv4, type Ipv4 } from '../src/net/ipv4.js';

export interface RequestSpec {
  readonly type: number;
  readonly mac: string;
  readonly xid?: number;
  readonly ciaddr?: string;
  readonly giaddr?: string;
  readonly broadcast?: boolean;
  readonly requested?: string;
  readonly serverId?: string;
  /** Extra options by code. */
  readonly options?: readonly (readonly [number, Uint8Array])[];
}

export function request(spec: RequestSpec): DhcpMessage {
  const chaddr = new Uint8Array(16);
  chaddr.set(macToBytes(parseMac(spec.mac)!));
  const options = new Map<number, Uint8Array>([[OPT.MESSAGE_TYPE, u8(spec.type)]]);
  if (spec.requested !== undefined) options.set(OPT.REQUESTED_IP, ip(parseIpv4(spec.requested)!));
  if (spec.serverId !== undefined) options.set(OPT.SERVER_ID, ip(parseIpv4(spec.serverId)!));
  for (const [code, value] of spec.options ?? []) options.set(code, value);
  const addr = (s: string | undefined): Ipv4 => (s === undefined ? IPV4_ANY : parseIpv4(s)!);
  return {
    op: BOOTREQUEST,
    htype: 1,
    hlen: 6,
    hops: spec.giaddr ? 1 : 0,
    xid: spec.xid ?? 0x1234abcd,
    secs: 0,
    flags: spec.broadcast ? FLAG_BROADCAST : 0,
    ciaddr: addr(spec.ciaddr),
    yiaddr: IPV4_ANY,
    siaddr: IPV4_ANY,
    giaddr: addr(spec.giaddr),
    chaddr,
    sname: '',
    file: '',
    options,
  };
}

/** Options of an EDK2 (OVMF) x64 UEFI PXE client. */
export const UEFI_PXE: readonly (readonly [number, Uint8Array])[] = [
  [OPT.VENDOR_CLASS, str('PXEClient:Arch:00007:UNDI:003000')],
  [OPT.CLIENT_ARCH, u16(7)],
  [OPT.CLIENT_NDI, Uint8Array.of(1, 3, 0)],
  [OPT.CLIENT_UUID, Uint8Array.of(0, ...Array.from({ length: 16 }, (_, i) => i + 1))],
  [OPT.MAX_MESSAGE_SIZE, u16(1472)],
  [
    OPT.PARAM_REQUEST_LIST,
    Uint8Array.of(
      1,
      2,
      3,
      4,
      5,
      6,
      12,
      13,
      15,
      17,
      18,
      22,
      23,
      28,
      40,
      41,
      42,
      43,
      50,
      51,
      54,
      58,
      59,
      60,
      66,
      67,
      97,
      128,
      129,
      130,
      131,
      132,
      133,
      134,
      135,
    ),
  ],
];

/** Options of a legacy BIOS PXE ROM. */
export const BIOS_PXE: readonly (readonly [number, Uint8Array])[] = [
  [OPT.VENDOR_CLASS, str('PXEClient:Arch:00000:UNDI:002001')],
  [OPT.CLIENT_ARCH, u16(0)],
  [
    OPT.PARAM_REQUEST_LIST,
    Uint8Array.of(1, 2, 3, 5, 6, 11, 12, 13, 15, 16, 17, 18, 43, 54, 60, 67, 128, 129, 130, 131, 132, 133, 134, 135),
  ],
];

/** Options of a UEFI HTTP boot client (arch 16). */
export const UEFI_HTTP: readonly (readonly [number, Uint8Array])[] = [
  [OPT.VENDOR_CLASS, str('HTTPClient:Arch:00016:UNDI:003000')],
  [OPT.CLIENT_ARCH, u16(16)],
];

/** Options of iPXE (user class and encapsulated options). */
export const IPXE: readonly (readonly [number, Uint8Array])[] = [
  [OPT.USER_CLASS, str('iPXE')],
  [OPT.CLIENT_ARCH, u16(7)],
  [OPT.IPXE_ENCAP, Uint8Array.of(0xb1, 5, 1, 0x10, 0xec, 0x81, 0x39, 0x13, 1, 1, 0x18, 1, 1, 0x19, 1, 1)],
  [
    OPT.PARAM_REQUEST_LIST,
    Uint8Array.of(1, 3, 6, 7, 12, 15, 17, 26, 43, 60, 66, 67, 119, 128, 129, 130, 131, 132, 133, 134, 135, 175, 203),
  ],
];
