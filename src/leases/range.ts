/** The dynamic range: `START,END[,SECONDS|infinite]` (the DHCP Range format of the provisioner form). */
import { parseIpv4, type Ipv4 } from '../net/ipv4.js';

export interface DhcpRange {
  readonly start: Ipv4;
  readonly end: Ipv4;
  /** Lease time in seconds; `infinite` is 0xffffffff (RFC 2131 §3.3). */
  readonly leaseSeconds: number;
}

export const INFINITE_LEASE = 0xffffffff;

export type RangeParse = { ok: true; range: DhcpRange } | { ok: false; error: string };

export function parseRange(text: string, defaultLeaseSeconds: number): RangeParse {
  const f = text.split(',').map((s) => s.trim());
  if (f.length < 2 || f.length > 3) return { ok: false, error: `"${text}" is not START,END[,SECONDS|infinite]` };
  const start = parseIpv4(f[0]!);
  const end = parseIpv4(f[1]!);
  if (start === undefined) return { ok: false, error: `range start "${f[0]}" is not an IPv4 address` };
  if (end === undefined) return { ok: false, error: `range end "${f[1]}" is not an IPv4 address` };
  if (end < start) return { ok: false, error: `range end ${f[1]} is before its start ${f[0]}` };
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
