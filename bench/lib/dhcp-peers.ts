/**
 * The three DHCP servers of the benchmark, configured alike: the same subnet, the same 10,000
 * reservations (MAC → IP), the same range for new clients, router and DNS options and lease
 * time; per-packet logging off; no ping check. Each run gets a fresh state directory, so lease
 * databases start empty.
 *
 * ```
 *   ns srv (CPU 0)                               ns cli (CPU 1)
 *   br0 10.16.0.1/12 ── server ◀──── veth ────▶ eth0 10.16.0.2/12 ── perfdhcp
 * ```
 *
 * Addresses: reservations 10.17.0.10 … 10.17.49.209 for MACs 02:5a:00:00:00:00 + i (i < 10,000),
 * the range 10.20.0.1 – 10.27.255.254 (524,286 addresses: more than any run hands out), new
 * clients' MACs 02:6e:00:xx:xx:xx.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export const NET = {
  serverCidr: '10.16.0.1/12',
  serverIp: '10.16.0.1',
  clientCidr: '10.16.0.2/12',
  clientIp: '10.16.0.2',
  subnet: '10.16.0.0/12',
  mask: '255.240.0.0',
  router: '10.16.0.1',
  dns: '10.16.0.53',
  rangeStart: '10.20.0.1',
  rangeEnd: '10.27.255.254',
  leaseSeconds: 3600,
  reservations: 10_000,
  reservedMacBase: '02:5a:00:00:00:00',
  newMacBase: '02:6e:00:00:00:00',
  /** -R for new clients: 2^24 MACs under the base, so repeats within a run are rare. */
  newClients: 16_777_216,
} as const;

export interface Reservation {
  readonly mac: string;
  readonly ip: string;
}

/** Reservation i: MAC = reservedMacBase + i (perfdhcp's -b/-R scheme), IP 10.17.(i/200).(10 + i%200). */
export function reservations(n: number = NET.reservations): Reservation[] {
  const out: Reservation[] = [];
  for (let i = 0; i < n; i++) {
    const hex = i.toString(16).padStart(6, '0');
    out.push({
      mac: `02:5a:00:${hex.slice(0, 2)}:${hex.slice(2, 4)}:${hex.slice(4, 6)}`,
      ip: `10.17.${Math.floor(i / 200)}.${10 + (i % 200)}`,
    });
  }
  return out;
}

export type PeerName = 'metalboot' | 'kea' | 'dnsmasq';

export interface PeerCommand {
  readonly cmd: string;
  readonly args: readonly string[];
  readonly env?: Record<string, string>;
}

export interface Peer {
  readonly name: PeerName;
  /** The command line for one run whose state lives in `stateDir` (created empty by the caller). */
  command(stateDir: string): PeerCommand;
  /** How it is configured, for RESULTS.md. */
  readonly configSummary: string;
  /** When a range lease reaches the disk relative to the ACK. */
  readonly durability: string;
}

/** Writes the shared configuration files into `confDir` and returns the three peers. */
export function preparePeers(
  confDir: string,
  metalboot: { node: string; nodeArgs: readonly string[]; entry: string },
  opts: { metalbootLogLevel?: string } = {},
): Record<PeerName, Peer> {
  mkdirSync(confDir, { recursive: true });
  const res = reservations();
  const hostsFile = path.join(confDir, 'hosts.txt');
  writeFileSync(hostsFile, `# ${res.length} reservations: MAC,IP\n${res.map((r) => `${r.mac},${r.ip}`).join('\n')}\n`);

  const metalbootPeer: Peer = {
    name: 'metalboot',
    command: (stateDir) => ({
      cmd: metalboot.node,
      args: [
        ...metalboot.nodeArgs,
        metalboot.entry,
        '--server-ip',
        NET.serverCidr,
        '--dhcp-listen',
        '0.0.0.0:67',
        '--tftp-listen',
        '',
        '--http-listen',
        '127.0.0.1:18080',
        '--callback-listen',
        '',
        '--dhcp-hosts-file',
        hostsFile,
        '--dhcp-range',
        `${NET.rangeStart},${NET.rangeEnd},${NET.leaseSeconds}`,
        '--lease-file',
        path.join(stateDir, 'leases.journal'),
        '--dhcp-gateway',
        NET.router,
        '--dhcp-dns',
        NET.dns,
        '--dhcp-lease-time',
        String(NET.leaseSeconds),
        '--log-level',
        opts.metalbootLogLevel ?? 'warn',
      ],
    }),
    configSummary: `\`--dhcp-hosts-file\` with the 10,000 \`MAC,IP\` lines, \`--dhcp-range ${NET.rangeStart},${NET.rangeEnd},${NET.leaseSeconds}\`, \`--dhcp-gateway ${NET.router} --dhcp-dns ${NET.dns}\`, \`--lease-file\`, \`--log-level ${opts.metalbootLogLevel ?? 'warn'}\` (no per-reply log line), TFTP and callback off, HTTP on 127.0.0.1 in the server namespace`,
    durability:
      'range leases: journal line written and fdatasync()ed before the ACK is sent (appends arriving during a sync share the next one); reservations: nothing written',
  };

  const keaConf = {
    Dhcp4: {
      'interfaces-config': { interfaces: ['br0'], 'dhcp-socket-type': 'raw' },
      'lease-database': { type: 'memfile', persist: true, name: '@STATE@/kea-leases4.csv', 'lfc-interval': 0 },
      'multi-threading': { 'enable-multi-threading': false },
      'valid-lifetime': NET.leaseSeconds,
      'renew-timer': NET.leaseSeconds / 2,
      'rebind-timer': (NET.leaseSeconds * 7) / 8,
      authoritative: true,
      'host-reservation-identifiers': ['hw-address'],
      subnet4: [
        {
          id: 1,
          subnet: NET.subnet,
          pools: [{ pool: `${NET.rangeStart} - ${NET.rangeEnd}` }],
          'option-data': [
            { name: 'routers', data: NET.router },
            { name: 'domain-name-servers', data: NET.dns },
          ],
          reservations: res.map((r) => ({ 'hw-address': r.mac, 'ip-address': r.ip })),
        },
      ],
      loggers: [{ name: 'kea-dhcp4', output_options: [{ output: '@STATE@/kea.log' }], severity: 'WARN' }],
    },
  };
  const keaTemplate = JSON.stringify(keaConf, null, 1);
  const keaPeer: Peer = {
    name: 'kea',
    command: (stateDir) => {
      const file = path.join(stateDir, 'kea-dhcp4.json');
      writeFileSync(file, keaTemplate.replaceAll('@STATE@', stateDir));
      return { cmd: 'kea-dhcp4', args: ['-c', file], env: { KEA_PIDFILE_DIR: stateDir, KEA_LOCKFILE_DIR: stateDir } };
    },
    configSummary: `\`kea-dhcp4 -c\` JSON: one subnet ${NET.subnet}, pool ${NET.rangeStart} - ${NET.rangeEnd}, the 10,000 \`reservations\` (hw-address → ip-address) in the subnet, routers/domain-name-servers option-data, valid-lifetime ${NET.leaseSeconds}, \`authoritative: true\`, \`host-reservation-identifiers: [hw-address]\`, memfile (\`persist: true\`, \`lfc-interval: 0\`), \`multi-threading: {enable-multi-threading: false}\`, raw sockets on br0, logger severity WARN`,
    durability:
      'memfile: each lease (range or reserved) is appended to the CSV file with write() before the reply; no fsync (durable against a crash of Kea, not of the machine)',
  };

  const dnsmasqHosts = path.join(confDir, 'dnsmasq-hosts.txt');
  writeFileSync(dnsmasqHosts, `${res.map((r) => `${r.mac},${r.ip}`).join('\n')}\n`);
  const dnsmasqPeer: Peer = {
    name: 'dnsmasq',
    command: (stateDir) => ({
      cmd: 'dnsmasq',
      args: [
        '--keep-in-foreground',
        '--conf-file=/dev/null',
        '--port=0',
        '--interface=br0',
        '--user=root',
        '--group=root',
        `--pid-file=${path.join(stateDir, 'dnsmasq.pid')}`,
        `--dhcp-leasefile=${path.join(stateDir, 'dnsmasq.leases')}`,
        `--dhcp-range=${NET.rangeStart},${NET.rangeEnd},${NET.mask},${NET.leaseSeconds}`,
        `--dhcp-hostsfile=${dnsmasqHosts}`,
        `--dhcp-option=option:router,${NET.router}`,
        `--dhcp-option=option:dns-server,${NET.dns}`,
        '--dhcp-authoritative',
        '--no-ping',
        '--dhcp-lease-max=1000000',
        '--quiet-dhcp',
        `--log-facility=${path.join(stateDir, 'dnsmasq.log')}`,
      ],
    }),
    configSummary: `\`--dhcp-hostsfile\` with the same 10,000 \`MAC,IP\` lines, \`--dhcp-range=${NET.rangeStart},${NET.rangeEnd},${NET.mask},${NET.leaseSeconds}\`, \`--dhcp-option\` router and dns-server, \`--dhcp-authoritative --no-ping --dhcp-lease-max=1000000 --quiet-dhcp --port=0\` (DNS off), \`--interface=br0\``,
    durability:
      'the whole lease file is rewritten and fsync()ed whenever a lease changed (lease_update_file), from the packet handler before the reply is sent',
  };
  return { metalboot: metalbootPeer, kea: keaPeer, dnsmasq: dnsmasqPeer };
}
