/**
 * The DHCPv6 wing: the IPv6 range's pool and journal (or the Kubernetes Leases replicas share),
 * the policy with IPv6 boot URLs, and the DHCPv6 server. Absent when dhcp6 is off.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import type { Service } from '../base/service.js';
import type { Config } from '../config/load.js';
import { Dhcp6Server } from '../dhcp6/dhcp6-server.js';
import type { Dhcp6Outcome } from '../dhcp6/outcome.js';
import { dhcp6Policy, type Dhcp6Policy } from '../dhcp6/policy.js';
import type { HostIndex } from '../leases/host-index.js';
import { LeasePool6 } from '../leases/pool.js';
import { formatIpv6, parseIpv6 } from '../net/ipv6.js';
import { interfacesWith, type InterfaceTable } from '../net/interfaces.js';
import type { Wiring } from './deps.js';
import { rangeBackend } from './dhcp.js';
import { secureBootCpus } from '../boot/secure-boot.js';

export interface Dhcp6Wing {
  readonly services: readonly Service[];
  readonly pool: LeasePool6;
  readonly policy: Dhcp6Policy;
  readonly server: Dhcp6Server;
}

export interface Dhcp6WingInput {
  readonly index: HostIndex;
  readonly sourcesReady: (() => boolean) | undefined;
  readonly cluster: () => KubeConfig;
  readonly interfaces: InterfaceTable;
  readonly onOutcome?: (o: Dhcp6Outcome) => void;
}

/** The interface DHCPv6 serves: dhcp6.interface, else the one non-loopback interface holding the server's IPv6 address. Pure. */
export function dhcp6Interface(config: Config, table: InterfaceTable): string | undefined {
  const d = config.dhcp6;
  if (d === undefined) return undefined;
  if (d.interface !== undefined) return d.interface;
  const owners = interfacesWith(formatIpv6(d.serverIp.address), table);
  const external = owners.filter((name) => !(table[name] ?? []).some((a) => a.internal));
  return external.length === 1 ? external[0] : undefined;
}

export function dhcp6Wing(config: Config, w: Wiring, i: Dhcp6WingInput): Dhcp6Wing | undefined {
  const d = config.dhcp6;
  if (d === undefined) return undefined;
  const { logger, registry, now } = w;
  const pool = new LeasePool6({
    ranges: d.ranges,
    isClaimed: (ip) => i.index.isClaimed6(ip),
    serverIp: d.serverIp.address,
  });
  const { leases, sourcesReady } = rangeBackend(config, w, {
    pool,
    hasRanges: d.ranges.length > 0,
    leaseFile: d.leaseFile,
    suffix: 'dhcp6',
    component: 'leases6',
    cluster: i.cluster,
    sourcesReady: i.sourcesReady,
  });
  const tftp6 = config.tftp.listen6;
  const policy = dhcp6Policy({
    serverIp: d.serverIp.address,
    serverPrefix: d.serverIp.prefix,
    tftpServer: (tftp6 === undefined || tftp6.host === '::' ? undefined : parseIpv6(tftp6.host)) ?? d.serverIp.address,
    boot: {
      bootFiles: config.dhcp.bootFiles,
      httpAdvertiseUrl: d.urls.advertiseUrl,
      secureBoot: { default: config.secureBoot.default, cpus: secureBootCpus(config.secureBoot.files) },
    },
    leaseSeconds: d.leaseSeconds,
    dns: d.dns,
    ntp: d.ntp,
    domainSearch: d.domainSearch,
    rapidCommit: d.rapidCommit,
  });
  const ifname = dhcp6Interface(config, i.interfaces);
  if (ifname === undefined)
    logger.warn(
      { serverIp: formatIpv6(d.serverIp.address) },
      'dhcp6: no single interface holds the IPv6 server address; only relayed and unicast requests are heard (set --dhcp6-interface)',
    );
  const server = new Dhcp6Server({
    listen: d.listen,
    interface: ifname,
    policy,
    state: { index: i.index, pool, now, sourcesReady },
    leases,
    logger,
    registry,
    onOutcome: i.onOutcome,
  });
  return { services: [leases, server], pool, policy, server };
}
