/** Static host entries → HostRecords, with the server's gateway/DNS/NTP defaults. Pure. */
import type { StaticHost } from './host-list.js';
import type { Ipv4 } from '../net/ipv4.js';
import type { Ipv6 } from '../net/ipv6.js';
import type { HostRecord } from './host.js';

export interface StaticDefaults {
  readonly prefix: number;
  readonly gateway: Ipv4 | undefined;
  readonly dns: readonly Ipv4[];
  readonly ntp: readonly Ipv4[];
  /** DHCPv6's: the server's IPv6 prefix length, DNS and NTP servers (default /64, none). */
  readonly v6?: { readonly prefix: number; readonly dns: readonly Ipv6[]; readonly ntp: readonly Ipv6[] };
}

export function staticToHost(entry: StaticHost, from: string, d: StaticDefaults): HostRecord {
  const v6 = d.v6 ?? { prefix: 64, dns: [], ntp: [] };
  return {
    id: entry.mac,
    origin: { kind: 'static', name: entry.hostname ?? entry.mac, from },
    macs: [entry.mac],
    lease:
      entry.ip === undefined
        ? undefined
        : { ip: entry.ip, prefix: d.prefix, gateway: d.gateway, dns: d.dns, ntp: d.ntp, hostname: entry.hostname },
    problem: entry.ip === undefined ? `static entry ${from} has no IPv4 address` : undefined,
    ...(entry.ip6 === undefined
      ? { problem6: `static entry ${from} has no IPv6 address` }
      : { lease6: { ip: entry.ip6, prefix: v6.prefix, dns: v6.dns, ntp: v6.ntp, hostname: entry.hostname } }),
    provisioningState: undefined,
    netboot: true,
  };
}
