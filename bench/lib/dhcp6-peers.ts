/**
 * The two DHCPv6 servers of bench/dhcp6.ts, configured alike: the same /64, the same 10,000
 * reservations, the same range for new clients, DNS option and lifetimes; per-packet logging
 * off. Each run gets a fresh state directory, so lease databases start empty.
 *
 * ```
 *   ns srv (CPU 0)                                     ns cli (CPU 1)
 *   br0 fd00:6::1/64, fe80::1 ── server ◀── veth ──▶ eth0 fd00:6::2/64, fe80::2 ── perfdhcp
 * ```
 *
 * Clients are DUID-LL(MAC) (perfdhcp6Args). Reservation i: MAC 02:5a:00:00:00:00 + i, which
 * metalboot matches by that MAC (`MAC,[IPV6]` host lines, the MAC read from the DUID-LL) and Kea
 * by the DUID 00:03:00:01:<MAC>; address fd00:6::5a:0 + i. The range fd00:6::10:0 –
 * fd00:6::1f:ffff holds 2^20 addresses (metalboot uses at most 2^20 of a range), more than any
 * run hands out. The link-local addresses are set by hand (fe80::1, fe80::2) rather than formed
 * from the MAC (EUI-64): metalboot takes a client's MAC from an EUI-64 link-local source before
 * the DUID, so an EUI-64 source would make every simulated client the client namespace's NIC.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Peer, PeerCommand } from './dhcp-peers.js';
import { duidLl } from './perfdhcp.js';

export const NET6 = {
  /** The v4 side metalboot needs to start (its DHCPv4 listens, unused). */
  serverCidr4: '10.16.0.1/12',
  serverCidr: 'fd00:6::1/64',
  serverIp: 'fd00:6::1',
  serverLinkLocal: 'fe80::1',
  clientCidr: 'fd00:6::2/64',
  clientIp: 'fd00:6::2',
  clientLinkLocal: 'fe80::2',
  subnet: 'fd00:6::/64',
  dns: 'fd00:6::53',
  rangeStart: 'fd00:6::10:0',
  rangeEnd: 'fd00:6::1f:ffff',
  leaseSeconds: 3600,
  reservations: 10_000,
  reservedMacBase: '02:5a:00:00:00:00',
  newMacBase: '02:6e:00:00:00:00',
  /** -R for new clients: 2^24 MACs under the base, so repeats within a run are rare. */
  newClients: 16_777_216,
} as const;

export type Peer6Name = 'metalboot' | 'kea';

export interface Reservation6 {
  readonly mac: string;
  readonly duid: string;
  readonly ip: string;
}

/** Reservation i: MAC = reservedMacBase + i (perfdhcp's -b/-R scheme), DUID-LL of it, fd00:6::5a:0 + i. */
export function reservations6(n: number = NET6.reservations): Reservation6[] {
  const out: Reservation6[] = [];
  for (let i = 0; i < n; i++) {
    const hex = i.toString(16).padStart(6, '0');
    const mac = `02:5a:00:${hex.slice(0, 2)}:${hex.slice(2, 4)}:${hex.slice(4, 6)}`;
    const duid = duidLl(mac).replace(/(..)(?!$)/g, '$1:');
    const low = 0x5a0000 + i;
    out.push({ mac, duid, ip: `fd00:6::${(low >>> 16).toString(16)}:${(low & 0xffff).toString(16)}` });
  }
  return out;
}

/** Writes the configuration files into `confDir` and returns the two peers. */
export function prepare6Peers(
  confDir: string,
  metalboot: { node: string; nodeArgs: readonly string[]; entry: string },
): Record<Peer6Name, Peer> {
  mkdirSync(confDir, { recursive: true });
  const res = reservations6();
  const hostsFile = path.join(confDir, 'hosts6.txt');
  writeFileSync(
    hostsFile,
    `# ${res.length} reservations: MAC,[IPV6]\n${res.map((r) => `${r.mac},[${r.ip}]`).join('\n')}\n`,
  );

  const metalbootPeer: Peer = {
    name: 'metalboot',
    command: (stateDir): PeerCommand => ({
      cmd: metalboot.node,
      args: [
        ...metalboot.nodeArgs,
        metalboot.entry,
        '--server-ip',
        NET6.serverCidr4,
        '--dhcp6-server-ip',
        NET6.serverCidr,
        '--dhcp6-listen',
        '[::]:547',
        '--dhcp6-interface',
        'br0',
        '--dhcp-hosts-file',
        hostsFile,
        '--dhcp6-range',
        `${NET6.rangeStart},${NET6.rangeEnd},${NET6.leaseSeconds}`,
        '--dhcp6-lease-file',
        path.join(stateDir, 'leases6.journal'),
        '--lease-file',
        path.join(stateDir, 'leases4.journal'),
        '--dhcp6-dns',
        NET6.dns,
        '--dhcp6-lease-time',
        String(NET6.leaseSeconds),
        '--tftp-listen',
        '',
        '--tftp-listen6',
        '',
        '--http-listen',
        '127.0.0.1:18080',
        '--callback-listen',
        '',
        '--log-level',
        'warn',
      ],
    }),
    configSummary: `\`--dhcp6-server-ip ${NET6.serverCidr} --dhcp6-interface br0 --dhcp6-listen [::]:547\`, \`--dhcp-hosts-file\` with the 10,000 \`MAC,[IPV6]\` lines, \`--dhcp6-range ${NET6.rangeStart},${NET6.rangeEnd},${NET6.leaseSeconds}\`, \`--dhcp6-dns ${NET6.dns}\`, \`--dhcp6-lease-file\`, \`--log-level warn\` (no per-reply log line), TFTP and callback off, HTTP on 127.0.0.1 (its DHCPv4 listens too, on ${NET6.serverCidr4}, and sees no traffic)`,
    durability:
      'range bindings (Request): journal line written and fdatasync()ed before the Reply is sent; Advertises and reservations: nothing written',
  };

  const keaConf = {
    Dhcp6: {
      // br0/<address>: Kea opens a unicast socket only for an address named here (relayed traffic).
      'interfaces-config': { interfaces: ['br0', `br0/${NET6.serverIp}`] },
      'lease-database': { type: 'memfile', persist: true, name: '@STATE@/kea-leases6.csv', 'lfc-interval': 0 },
      'data-directory': '@STATE@',
      'server-id': { type: 'EN', 'enterprise-id': 2495, identifier: '6d6574616c626f6f74', persist: false },
      'multi-threading': { 'enable-multi-threading': false },
      'preferred-lifetime': NET6.leaseSeconds,
      'valid-lifetime': NET6.leaseSeconds,
      'renew-timer': NET6.leaseSeconds / 2,
      'rebind-timer': (NET6.leaseSeconds * 4) / 5,
      'host-reservation-identifiers': ['duid'],
      subnet6: [
        {
          id: 1,
          subnet: NET6.subnet,
          interface: 'br0',
          pools: [{ pool: `${NET6.rangeStart} - ${NET6.rangeEnd}` }],
          'option-data': [{ name: 'dns-servers', data: NET6.dns }],
          reservations: res.map((r) => ({ duid: r.duid, 'ip-addresses': [r.ip] })),
        },
      ],
      loggers: [{ name: 'kea-dhcp6', output_options: [{ output: '@STATE@/kea.log' }], severity: 'WARN' }],
    },
  };
  const keaTemplate = JSON.stringify(keaConf, null, 1);
  const keaPeer: Peer = {
    name: 'kea',
    command: (stateDir) => {
      const file = path.join(stateDir, 'kea-dhcp6.json');
      writeFileSync(file, keaTemplate.replaceAll('@STATE@', stateDir));
      return { cmd: 'kea-dhcp6', args: ['-c', file], env: { KEA_PIDFILE_DIR: stateDir, KEA_LOCKFILE_DIR: stateDir } };
    },
    configSummary: `\`kea-dhcp6 -c\` JSON: one subnet ${NET6.subnet} on br0, pool ${NET6.rangeStart} - ${NET6.rangeEnd}, the 10,000 \`reservations\` (duid → ip-addresses) in the subnet, dns-servers option-data, preferred/valid lifetime ${NET6.leaseSeconds}, \`host-reservation-identifiers: [duid]\`, interfaces \`br0\` and \`br0/${NET6.serverIp}\` (the unicast socket relayed traffic needs), memfile (\`persist: true\`, \`lfc-interval: 0\`), \`multi-threading: {enable-multi-threading: false}\`, logger severity WARN`,
    durability:
      'memfile: each lease (range or reserved) is appended to the CSV file with write() before the Reply; no fsync',
  };
  return { metalboot: metalbootPeer, kea: keaPeer };
}
