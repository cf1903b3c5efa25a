/**
 * IPv4 addresses as unsigned 32-bit integers: cheap to compare, hash, and count through a range.
 * Parsed once at the edge; `formatIpv4` gives the dotted-quad form for logs and templates.
 */
export type Ipv4 = number & { readonly __brand: 'Ipv4' };

export interface Ipv4Cidr {
  readonly address: Ipv4;
  readonly prefix: number;
}

const OCTET = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

export function parseIpv4(text: string): Ipv4 | undefined {
  const parts = text.trim().split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!OCTET.test(p)) return undefined;
    n = n * 256 + Number(p);
  }
  return n as Ipv4;
}

/** `10.0.0.5/24`; a bare address is accepted when `defaultPrefix` is given. */
export function parseIpv4Cidr(text: string, defaultPrefix?: number): Ipv4Cidr | undefined {
  const [addr, prefixText, ...rest] = text.trim().split('/');
  if (rest.length > 0 || addr === undefined) return undefined;
  const address = parseIpv4(addr);
  if (address === undefined) return undefined;
  if (prefixText === undefined) {
    return defaultPrefix === undefined ? undefined : { address, prefix: defaultPrefix };
  }
  if (!/^\d{1,2}$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > 32) return undefined;
  return { address, prefix };
}

export function formatIpv4(ip: number): string {
  return `${(ip >>> 24) & 255}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}`;
}

export function formatCidr(cidr: Ipv4Cidr): string {
  return `${formatIpv4(cidr.address)}/${cidr.prefix}`;
}

export function prefixToMask(prefix: number): Ipv4 {
  return (prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0) as Ipv4;
}

export function networkOf(cidr: Ipv4Cidr): Ipv4 {
  return ((cidr.address & prefixToMask(cidr.prefix)) >>> 0) as Ipv4;
}

export function broadcastOf(cidr: Ipv4Cidr): Ipv4 {
  return ((networkOf(cidr) | ~prefixToMask(cidr.prefix)) >>> 0) as Ipv4;
}

/** The first usable host of the subnet (network + 1), the conventional gateway. */
export function firstHostOf(cidr: Ipv4Cidr): Ipv4 {
  return (cidr.prefix >= 31 ? networkOf(cidr) : networkOf(cidr) + 1) as Ipv4;
}

export function inSubnet(ip: Ipv4, cidr: Ipv4Cidr): boolean {
  return (ip & prefixToMask(cidr.prefix)) >>> 0 === networkOf(cidr);
}

export function readIpv4(buf: Uint8Array, offset: number): Ipv4 {
  return (((buf[offset]! << 24) | (buf[offset + 1]! << 16) | (buf[offset + 2]! << 8) | buf[offset + 3]!) >>> 0) as Ipv4;
}

export function writeIpv4(buf: Uint8Array, offset: number, ip: number): void {
  buf[offset] = (ip >>> 24) & 255;
  buf[offset + 1] = (ip >>> 16) & 255;
  buf[offset + 2] = (ip >>> 8) & 255;
  buf[offset + 3] = ip & 255;
}

export const IPV4_ANY = 0 as Ipv4;
export const IPV4_BROADCAST = 0xffffffff as Ipv4;
