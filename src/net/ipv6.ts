/**
 * IPv6 addresses as unsigned 128-bit bigints: compare, hash (as the canonical text) and count
 * through a range like IPv4's numbers. Parsed once at the edge; `formatIpv6` gives the RFC 5952
 * form for logs, URLs (bracketed by the caller) and the journal.
 */
import { isIPv6 } from 'node:net';
import ipaddr from 'ipaddr.js';
import type { Mac } from './mac.js';
import { macFromBytes } from './mac.js';

export type Ipv6 = bigint & { readonly __brand: 'Ipv6' };

export interface Ipv6Cidr {
  readonly address: Ipv6;
  readonly prefix: number;
}

const MAX = (1n << 128n) - 1n;

/** An IPv6 literal (no brackets, no zone); IPv4 and IPv4-mapped text are not IPv6 here. */
export function parseIpv6(text: string): Ipv6 | undefined {
  const t = text.trim();
  if (!isIPv6(t) || t.includes('%')) return undefined;
  return ipv6FromBytes(ipaddr.IPv6.parse(t).toByteArray(), 0);
}

/** `fd00::5/64`; a bare address is accepted when `defaultPrefix` is given. */
export function parseIpv6Cidr(text: string, defaultPrefix?: number): Ipv6Cidr | undefined {
  const [addr, prefixText, ...rest] = text.trim().split('/');
  if (rest.length > 0 || addr === undefined) return undefined;
  const address = parseIpv6(addr);
  if (address === undefined) return undefined;
  if (prefixText === undefined) return defaultPrefix === undefined ? undefined : { address, prefix: defaultPrefix };
  if (!/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > 128) return undefined;
  return { address, prefix };
}

/** RFC 5952 text: lower case, no leading zeros, the longest run of two or more zero groups as `::` (the first of equal runs). */
export function formatIpv6(ip: bigint): string {
  const g: number[] = new Array(8);
  let n = ip;
  for (let i = 7; i >= 0; i--) {
    g[i] = Number(n & 0xffffn);
    n >>= 16n;
  }
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (from: number, to: number) =>
    g
      .slice(from, to)
      .map((x) => x.toString(16))
      .join(':');
  return best < 0 ? hex(0, 8) : `${hex(0, best)}::${hex(best + bestLen, 8)}`;
}

export function formatIpv6Cidr(c: Ipv6Cidr): string {
  return `${formatIpv6(c.address)}/${c.prefix}`;
}

export function readIpv6(buf: Uint8Array, offset: number): Ipv6 {
  return ipv6FromBytes(buf, offset);
}

function ipv6FromBytes(buf: ArrayLike<number>, offset: number): Ipv6 {
  // Four 32-bit words: a few BigInt operations instead of thirty-two (this runs for every address of every DHCPv6 packet).
  let hi = 0;
  let mid = 0;
  let lo = 0;
  let lo2 = 0;
  for (let i = 0; i < 4; i++) {
    hi = hi * 256 + buf[offset + i]!;
    mid = mid * 256 + buf[offset + 4 + i]!;
    lo = lo * 256 + buf[offset + 8 + i]!;
    lo2 = lo2 * 256 + buf[offset + 12 + i]!;
  }
  return ((BigInt(hi) << 96n) | (BigInt(mid) << 64n) | (BigInt(lo) << 32n) | BigInt(lo2)) as Ipv6;
}

export function writeIpv6(buf: Uint8Array, offset: number, ip: bigint): void {
  // Four 32-bit words, each written as bytes: four BigInt operations instead of sixteen shifts.
  for (let w = 0; w < 4; w++) {
    const word = Number(BigInt.asUintN(32, ip >> BigInt(96 - 32 * w)));
    const o = offset + 4 * w;
    buf[o] = word >>> 24;
    buf[o + 1] = (word >>> 16) & 255;
    buf[o + 2] = (word >>> 8) & 255;
    buf[o + 3] = word & 255;
  }
}

export function ipv6Bytes(ip: bigint): Buffer {
  const b = Buffer.alloc(16);
  writeIpv6(b, 0, ip);
  return b;
}

function mask(prefix: number): bigint {
  return prefix === 0 ? 0n : (MAX << BigInt(128 - prefix)) & MAX;
}

export function inSubnet6(ip: bigint, cidr: Ipv6Cidr): boolean {
  const m = mask(cidr.prefix);
  return (ip & m) === (cidr.address & m);
}

export function isLinkLocal6(ip: bigint): boolean {
  return ip >> 118n === 0x3fan; // fe80::/10
}

/**
 * The MAC of a modified EUI-64 interface identifier (RFC 4291 appendix A): `…:XXYY:ZZff:feUU:VVWW`
 * with the universal/local bit flipped back. Undefined when the identifier is not EUI-64 from a
 * MAC (no ff:fe in the middle), as with privacy or stable-secret addresses.
 */
export function macFromEui64(ip: bigint): Mac | undefined {
  const b = ipv6Bytes(ip);
  if (b[11] !== 0xff || b[12] !== 0xfe) return undefined;
  return macFromBytes(Uint8Array.of(b[8]! ^ 0x02, b[9]!, b[10]!, b[13]!, b[14]!, b[15]!));
}

/** `[addr]` for a URL's host. */
export function bracketIpv6(ip: bigint): string {
  return `[${formatIpv6(ip)}]`;
}
