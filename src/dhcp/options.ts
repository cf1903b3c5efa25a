/**
 * Typed accessors and constructors for the DHCP options metalboot reads or writes (RFC 2132
 * unless noted). Accessors return undefined for an absent or malformed option: a malformed
 * option is treated as absent, never as an exception on the packet path.
 */
import type { DhcpOptions } from './codec.js';
import { readIpv4, writeIpv4, type Ipv4 } from '../net/ipv4.js';

export const OPT = {
  SUBNET_MASK: 1,
  ROUTER: 3,
  DNS: 6,
  HOSTNAME: 12,
  DOMAIN_NAME: 15,
  BROADCAST: 28,
  NTP: 42,
  VENDOR_SPECIFIC: 43,
  REQUESTED_IP: 50,
  LEASE_TIME: 51,
  OVERLOAD: 52,
  MESSAGE_TYPE: 53,
  SERVER_ID: 54,
  PARAM_REQUEST_LIST: 55,
  MESSAGE: 56,
  MAX_MESSAGE_SIZE: 57,
  RENEWAL_TIME: 58,
  REBINDING_TIME: 59,
  VENDOR_CLASS: 60,
  CLIENT_ID: 61,
  TFTP_SERVER: 66,
  BOOTFILE: 67,
  USER_CLASS: 77,
  RELAY_AGENT_INFO: 82,
  CLIENT_ARCH: 93,
  CLIENT_NDI: 94,
  CLIENT_UUID: 97,
  DOMAIN_SEARCH: 119,
  CLASSLESS_ROUTES: 121,
  IPXE_ENCAP: 175,
} as const;

export const MESSAGE_TYPE = {
  DISCOVER: 1,
  OFFER: 2,
  REQUEST: 3,
  DECLINE: 4,
  ACK: 5,
  NAK: 6,
  RELEASE: 7,
  INFORM: 8,
} as const;
export type MessageType = (typeof MESSAGE_TYPE)[keyof typeof MESSAGE_TYPE];

const MESSAGE_TYPE_NAMES: Record<number, string> = {
  1: 'DISCOVER',
  2: 'OFFER',
  3: 'REQUEST',
  4: 'DECLINE',
  5: 'ACK',
  6: 'NAK',
  7: 'RELEASE',
  8: 'INFORM',
};
export function messageTypeName(t: number | undefined): string {
  return t === undefined ? 'none' : (MESSAGE_TYPE_NAMES[t] ?? `type-${t}`);
}

// ---- generic readers -------------------------------------------------------------------------

export function getU8(o: DhcpOptions, code: number): number | undefined {
  const v = o.get(code);
  return v?.length === 1 ? v[0] : undefined;
}

export function getU16(o: DhcpOptions, code: number): number | undefined {
  const v = o.get(code);
  return v?.length === 2 ? (v[0]! << 8) | v[1]! : undefined;
}

export function getU32(o: DhcpOptions, code: number): number | undefined {
  const v = o.get(code);
  return v?.length === 4 ? readIpv4(v, 0) : undefined;
}

export function getIp(o: DhcpOptions, code: number): Ipv4 | undefined {
  const v = o.get(code);
  return v?.length === 4 ? readIpv4(v, 0) : undefined;
}

export function getIps(o: DhcpOptions, code: number): Ipv4[] | undefined {
  const v = o.get(code);
  if (v === undefined || v.length === 0 || v.length % 4 !== 0) return undefined;
  const out: Ipv4[] = [];
  for (let i = 0; i < v.length; i += 4) out.push(readIpv4(v, i));
  return out;
}

/** A string option as latin1, with trailing NULs removed (some clients NUL-terminate). */
export function getString(o: DhcpOptions, code: number): string | undefined {
  const v = o.get(code);
  if (v === undefined) return undefined;
  let end = v.length;
  while (end > 0 && v[end - 1] === 0) end--;
  return Buffer.from(v.buffer, v.byteOffset, end).toString('latin1');
}

// ---- specific accessors ----------------------------------------------------------------------

export function getMessageType(o: DhcpOptions): number | undefined {
  return getU8(o, OPT.MESSAGE_TYPE);
}

export function getParamRequestList(o: DhcpOptions): Uint8Array | undefined {
  return o.get(OPT.PARAM_REQUEST_LIST);
}

/** Option 57; values below the RFC 2132 minimum of 576 are ignored. */
export function getMaxMessageSize(o: DhcpOptions): number | undefined {
  const v = getU16(o, OPT.MAX_MESSAGE_SIZE);
  return v !== undefined && v >= 576 ? v : undefined;
}

/** Option 93 (RFC 4578 §2.1): a list of 16-bit architecture types; the first is the one in use. */
export function getClientArchs(o: DhcpOptions): number[] | undefined {
  const v = o.get(OPT.CLIENT_ARCH);
  if (v === undefined || v.length === 0 || v.length % 2 !== 0) return undefined;
  const out: number[] = [];
  for (let i = 0; i < v.length; i += 2) out.push((v[i]! << 8) | v[i + 1]!);
  return out;
}

/** Option 94 (RFC 4578 §2.2): UNDI interface type and version. */
export function getClientNdi(o: DhcpOptions): { type: number; major: number; minor: number } | undefined {
  const v = o.get(OPT.CLIENT_NDI);
  return v?.length === 3 ? { type: v[0]!, major: v[1]!, minor: v[2]! } : undefined;
}

/** Option 97 (RFC 4578 §2.3): type 0 followed by a 16-byte UUID/GUID. */
export function getClientUuid(o: DhcpOptions): string | undefined {
  const v = o.get(OPT.CLIENT_UUID);
  if (v?.length !== 17 || v[0] !== 0) return undefined;
  const h = Buffer.from(v.buffer, v.byteOffset + 1, 16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * Option 77 user classes. RFC 3004 defines a list of length-prefixed strings; iPXE and many
 * other clients send one raw string ("iPXE") instead. A value is read as RFC 3004 only if its
 * length prefixes tile it exactly; otherwise it is one raw string.
 */
export function getUserClasses(o: DhcpOptions): string[] | undefined {
  const v = o.get(OPT.USER_CLASS);
  if (v === undefined || v.length === 0) return undefined;
  const list: string[] = [];
  let i = 0;
  while (i < v.length) {
    const len = v[i]!;
    if (len === 0 || i + 1 + len > v.length) break;
    list.push(Buffer.from(v.buffer, v.byteOffset + i + 1, len).toString('latin1'));
    i += 1 + len;
  }
  if (i === v.length && list.length > 0) return list;
  return [getString(o, OPT.USER_CLASS)!];
}

/** Sub-options of an encapsulated option (43, 82, 175): code → value, no pad/end semantics beyond 0/255. */
export type SubOptions = Map<number, Uint8Array>;

export function parseSubOptions(v: Uint8Array | undefined, padEnd: boolean): SubOptions | undefined {
  if (v === undefined) return undefined;
  const out: SubOptions = new Map();
  let i = 0;
  while (i < v.length) {
    const code = v[i]!;
    if (padEnd && code === 0) {
      i++;
      continue;
    }
    if (padEnd && code === 255) break;
    if (i + 1 >= v.length) return undefined;
    const len = v[i + 1]!;
    if (i + 2 + len > v.length) return undefined;
    out.set(code, Uint8Array.from(v.subarray(i + 2, i + 2 + len)));
    i += 2 + len;
  }
  return out;
}

/** Option 82 (RFC 3046): relay agent sub-options (1 circuit-id, 2 remote-id, …), kept raw. */
export function getRelayAgentInfo(o: DhcpOptions): SubOptions | undefined {
  return parseSubOptions(o.get(OPT.RELAY_AGENT_INFO), false);
}

/** Option 175: iPXE's encapsulated options (feature flags such as 19 http, 24 efi, 33 bus id). */
export function getIpxeEncap(o: DhcpOptions): SubOptions | undefined {
  return parseSubOptions(o.get(OPT.IPXE_ENCAP), true);
}

/** Option 43 as PXE vendor sub-options (PXE spec 2.1 §2.4; valid when option 60 starts with PXEClient). */
export function getPxeVendorOptions(o: DhcpOptions): SubOptions | undefined {
  return parseSubOptions(o.get(OPT.VENDOR_SPECIFIC), true);
}

// ---- constructors ----------------------------------------------------------------------------

export function u8(n: number): Uint8Array {
  return Uint8Array.of(n & 255);
}

export function u16(n: number): Uint8Array {
  return Uint8Array.of((n >>> 8) & 255, n & 255);
}

export function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  writeIpv4(b, 0, n >>> 0);
  return b;
}

export function ip(addr: number): Uint8Array {
  return u32(addr);
}

export function ips(addrs: readonly number[]): Uint8Array {
  const b = new Uint8Array(addrs.length * 4);
  for (let i = 0; i < addrs.length; i++) writeIpv4(b, i * 4, addrs[i]!);
  return b;
}

export function str(s: string): Uint8Array {
  return Uint8Array.from(Buffer.from(s, 'latin1'));
}

/** RFC 3004 user-class list: each entry length-prefixed. */
export function userClasses(list: readonly string[]): Uint8Array {
  return new Uint8Array(
    Buffer.concat(
      list.map((s) => {
        const b = Buffer.from(s, 'latin1');
        return Buffer.concat([Uint8Array.of(b.length), b]);
      }),
    ),
  );
}

export function subOptions(entries: Iterable<readonly [number, Uint8Array]>, end = false): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const [code, value] of entries) {
    if (value.length > 255) throw new RangeError(`sub-option ${code} is longer than 255 bytes`);
    parts.push(Uint8Array.of(code, value.length), value);
  }
  if (end) parts.push(Uint8Array.of(255));
  return new Uint8Array(Buffer.concat(parts));
}

/** PXE option 43 with sub-option 6 (PXE_DISCOVERY_CONTROL) = 8: boot the file in the reply, no menus, no proxy discovery. */
export function pxeDiscoveryControlDirect(): Uint8Array {
  return subOptions([[6, u8(8)]], true);
}

/** Option 119 (RFC 3397): domain search list, encoded without compression. */
export function domainSearch(domains: readonly string[]): Uint8Array {
  const parts: number[] = [];
  for (const d of domains) {
    for (const label of d.replace(/\.$/, '').split('.')) {
      if (label.length === 0 || label.length > 63) throw new RangeError(`invalid label in domain ${d}`);
      parts.push(label.length, ...Buffer.from(label, 'latin1'));
    }
    parts.push(0);
  }
  return Uint8Array.from(parts);
}

/** Option 121 (RFC 3442): classless static routes, each as prefix, significant octets, router. */
export function classlessRoutes(routes: readonly { network: number; prefix: number; router: number }[]): Uint8Array {
  const parts: number[] = [];
  for (const r of routes) {
    parts.push(r.prefix);
    const octets = Math.ceil(r.prefix / 8);
    for (let k = 0; k < octets; k++) parts.push((r.network >>> (24 - 8 * k)) & 255);
    parts.push((r.router >>> 24) & 255, (r.router >>> 16) & 255, (r.router >>> 8) & 255, r.router & 255);
  }
  return Uint8Array.from(parts);
}
