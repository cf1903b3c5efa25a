/**
 * The dynamic range: `START,END[,SECONDS|infinite]` (the DHCP Range format of the provisioner
 * form), for IPv4 and (with IPv6 addresses) for DHCPv6, and the address spaces the pool counts
 * through.
 */
import { formatIpv4, parseIpv4, type Ipv4 } from '../net/ipv4.js';
import { formatIpv6, parseIpv6, type Ipv6 } from '../net/ipv6.js';

export interface AddressRange<A> {
  readonly start: A;
  readonly end: A;
  /** Lease time in seconds; `infinite` is 0xffffffff (RFC 2131 §3.3, RFC 8415 §7.7). */
  readonly leaseSeconds: number;
}

export type DhcpRange = AddressRange<Ipv4>;
export type DhcpRange6 = AddressRange<Ipv6>;

/**
 * How the pool counts through one family's addresses. IPv6 ranges may be far larger than any
 * pool walks: sizes are capped at MAX_RANGE_SLOTS, and only the first that many addresses of a
 * range are handed out.
 */
export interface AddressSpace<A> {
  readonly family: 4 | 6;
  parse(text: string): A | undefined;
  format(ip: A): string;
  /** Addresses in the range, at most MAX_RANGE_SLOTS. */
  size(r: AddressRange<A>): number;
  /** The n-th address of the range (0-based, n < size(r)). */
  nth(r: AddressRange<A>, n: number): A;
  contains(r: AddressRange<A>, ip: A): boolean;
}

/** The most addresses of one range the pool hands out (a /108 of IPv6; all of any IPv4 range that fits). */
export const MAX_RANGE_SLOTS = 1 << 20;

export const IPV4_SPACE: AddressSpace<Ipv4> = {
  family: 4,
  parse: parseIpv4,
  format: formatIpv4,
  size: (r) => Math.min(MAX_RANGE_SLOTS, r.end - r.start + 1),
  nth: (r, n) => (r.start + n) as Ipv4,
  contains: (r, ip) => ip >= r.start && ip <= r.end,
};

export const IPV6_SPACE: AddressSpace<Ipv6> = {
  family: 6,
  parse: parseIpv6,
  format: formatIpv6,
  size: (r) => {
    const n = r.end - r.start + 1n;
    return n > BigInt(MAX_RANGE_SLOTS) ? MAX_RANGE_SLOTS : Number(n);
  },
  nth: (r, n) => (r.start + BigInt(n)) as Ipv6,
  contains: (r, ip) => ip >= r.start && ip <= r.end,
};

export const INFINITE_LEASE = 0xffffffff;

export type RangeParse<A = Ipv4> = { ok: true; range: AddressRange<A> } | { ok: false; error: string };

export function parseRange(text: string, defaultLeaseSeconds: number): RangeParse<Ipv4> {
  return parseRangeIn(IPV4_SPACE, text, defaultLeaseSeconds);
}

/** An IPv6 range (DHCPv6): `fd00::100,fd00::1ff[,SECONDS|infinite]`. */
export function parseRange6(text: string, defaultLeaseSeconds: number): RangeParse<Ipv6> {
  return parseRangeIn(IPV6_SPACE, text, defaultLeaseSeconds);
}

function parseRangeIn<A>(space: AddressSpace<A>, text: string, defaultLeaseSeconds: number): RangeParse<A> {
  const family = `an IPv${space.family} address`;
  const f = text.split(',').map((s) => s.trim());
  if (f.length < 2 || f.length > 3) return { ok: false, error: `"${text}" is not START,END[,SECONDS|infinite]` };
  const start = space.parse(f[0]!);
  const end = space.parse(f[1]!);
  if (start === undefined) return { ok: false, error: `range start "${f[0]}" is not ${family}` };
  if (end === undefined) return { ok: false, error: `range end "${f[1]}" is not ${family}` };
  if (!space.contains({ start, end, leaseSeconds: 0 }, end))
    return { ok: false, error: `range end ${f[1]} is before its start ${f[0]}` };
  let leaseSeconds = defaultLeaseSeconds;
  if (f[2] !== undefined) {
    const t = f[2].toLowerCase();
    if (t === 'infinite') leaseSeconds = INFINITE_LEASE;
    else {
      const m = /^(\d+)([smhd]?)$/.exec(t);
      if (!m) return { ok: false, error: `lease time "${f[2]}" is not SECONDS (or 10m, 12h, 1d) or infinite` };
      const mult = { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
      leaseSeconds = Number(m[1]) * mult;
      if (leaseSeconds < 60 || leaseSeconds >= INFINITE_LEASE)
        return { ok: false, error: `lease time ${leaseSeconds}s is out of range (60s .. 136 years, or infinite)` };
    }
  }
  return { ok: true, range: { start, end, leaseSeconds } };
}
