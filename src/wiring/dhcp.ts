/** The DHCP wing: the dynamic range's pool and journal, the policy, and the DHCP server. */
import type { Config } from '../config/load.js';
import type { Service } from '../base/service.js';
import { dhcpPolicy, type DhcpPolicy, type DhcpSettings } from '../dhcp/policy.js';
import { DhcpServer } from '../dhcp/dhcp-server.js';
import type { HostIndex } from '../leases/host-index.js';
import { LeasePool, type RecordPool } from '../leases/pool.js';
import { LeaseStore, type LeaseBackend } from '../leases/lease-store.js';
import type { KubeConfig } from '@kubernetes/client-node';
import { KubeRangeLeases, kubeRangeLeaseApi } from '../kube/range-leases.js';
import type { BootMilestones } from '../kube/boot-milestones.js';
import { parseIpv4, type Ipv4 } from '../net/ipv4.js';
import type { Wiring } from './deps.js';
import { secureBootCpus } from '../boot/secure-boot.js';

export function dhcpSettings(config: Config, tftpServer: Ipv4): DhcpSettings {
  const d = config.dhcp;
  return {
    serverIp: d.serverIp.address,
    serverPrefix: d.serverIp.prefix,
    ports: { relay: d.listen.port, client: d.clientPort },
    reply: { serverId: d.advertiseIP ?? d.serverIp.address, tftpServer, domainName: d.domainName },
    boot: {
      bootFiles: d.bootFiles,
      httpAdvertiseUrl: config.http.advertiseUrl,
      secureBoot: { default: config.secureBoot.default, cpus: secureBootCpus(config.secureBoot.files) },
    },
    leaseSeconds: d.leaseSeconds,
    rangeGateway: d.gateway,
    rangeDns: d.dns,
    rangeNtp: d.ntp,
  };
}

/** next-server: the advertised address when replicas sit behind a Service, else where TFTP listens. */
export function nextServer(config: Config): Ipv4 {
  const listen = config.tftp.listen;
  if (config.dhcp.advertiseIP !== undefined) return config.dhcp.advertiseIP;
  if (listen !== undefined && listen.host !== '0.0.0.0') return parseIpv4(listen.host) ?? config.dhcp.serverIp.address;
  return config.dhcp.serverIp.address;
}

export interface DhcpWing {
  readonly services: readonly Service[];
  readonly pool: LeasePool;
  /** The policy DHCP answers by; undefined when DHCP is off. */
  readonly policy: DhcpPolicy | undefined;
  readonly server: DhcpServer | undefined;
}

export interface DhcpWingInput {
  readonly index: HostIndex;
  /** Whether the cluster's hosts are loaded (with sources.kube): DHCP stays silent until then. */
  readonly sourcesReady: (() => boolean) | undefined;
  /** Told every outcome: the boot timelines, the Events, each ACK's address (wiring/timeline.ts). */
  readonly milestones: BootMilestones;
  /** The cluster, for replicas that share range leases (leaderElection.id set). */
  readonly cluster: () => KubeConfig;
}

export function dhcpWing(config: Config, w: Wiring, i: DhcpWingInput): DhcpWing {
  const d = config.dhcp;
  const { logger, registry, now } = w;
  const pool = new LeasePool({
    ranges: d.ranges,
    isClaimed: (ip) => i.index.isClaimed(ip),
    serverIp: d.serverIp.address,
  });
  const { leases, sourcesReady } = rangeBackend(config, w, {
    pool,
    hasRanges: d.ranges.length > 0,
    leaseFile: d.leaseFile,
    suffix: 'dhcp',
    component: 'leases',
    cluster: i.cluster,
    sourcesReady: i.sourcesReady,
  });
  if (!d.enabled) return { services: [leases], pool, policy: undefined, server: undefined };
  const policy = dhcpPolicy(dhcpSettings(config, nextServer(config)));
  const m = i.milestones;
  const server = new DhcpServer({
    listen: d.listen,
    policy,
    state: { index: i.index, pool, now, sourcesReady },
    leases,
    logger,
    registry,
    onOutcome: (o) => m.dhcp(o),
  });
  return { services: [leases, server], pool, policy, server };
}

/**
 * Where a range's bindings are made durable: replicas (leaderElection.id) share them as Leases
 * named `<id>-<suffix>-…` in the API, and answer once those are loaded; a single replica keeps
 * its journal file. Both DHCP wings (IPv4, IPv6) use it.
 */
export function rangeBackend(
  config: Config,
  w: Wiring,
  o: {
    readonly pool: RecordPool;
    readonly hasRanges: boolean;
    readonly leaseFile: string | undefined;
    readonly suffix: string;
    readonly component: string;
    readonly cluster: () => KubeConfig;
    readonly sourcesReady: (() => boolean) | undefined;
  },
): { readonly leases: LeaseBackend; readonly sourcesReady: (() => boolean) | undefined } {
  const le = config.leaderElection;
  const { logger, now } = w;
  if (le === undefined || !o.hasRanges) {
    const path = o.hasRanges ? o.leaseFile : undefined;
    return {
      leases: new LeaseStore(o.pool, path, now, logger.child({ component: o.component })),
      sourcesReady: o.sourcesReady,
    };
  }
  const prefix = `${le.id}-${o.suffix}`;
  const shared = new KubeRangeLeases({
    api: kubeRangeLeaseApi(o.cluster(), le.namespace, prefix),
    kubeConfig: o.cluster(),
    namespace: le.namespace,
    prefix,
    pool: o.pool,
    now,
    logger,
  });
  const ready = o.sourcesReady;
  return { leases: shared, sourcesReady: () => shared.synced && (ready === undefined || ready()) };
}
