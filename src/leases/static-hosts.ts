/** Static host entries → HostRecords, with the server's gateway/DNS/NTP defaults. Pure. */
import type { StaticHost } from './host-list.js';
import type { Ipv4 } from '../net/ipv4.js';
import type { HostRecord } from './host.js';

export interface StaticDefaults {
  readonly prefix: number;
  readonly gateway: Ipv4 | undefined;
  readonly dns: readonly Ipv4[];
  readonly ntp: readonly Ipv4[];
}

export function staticToHost(entry: StaticHost, from: string, d: StaticDefaults): HostRecord {
  return {
    id: entry.mac,
    origin: { kind: 'static', name: entry.hostname ?? entry.mac, from },
    macs: [entry.mac],
    lease: { ip: entry.ip, prefix: d.prefix, gateway: d.gateway, dns: d.dns, ntp: d.ntp, hostname: entry.hostname },
    problem: undefined,
    provisioningState: undefined,
    netboot: true,
  };
}
