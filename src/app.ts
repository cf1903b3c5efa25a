/**
 * Builds every service of metalboot from a frozen Config, in start order. main.ts owns the
 * process (signals, exit codes); tests call buildServices() to run the product in-process.
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Config } from './config/load.js';
import { HostIndex } from './leases/host-index.js';
import { LeasePool } from './leases/pool.js';
import { LeaseStore } from './leases/lease-store.js';
import { BmhFileSource, StaticHostSource } from './leases/file-sources.js';
import { DhcpServer } from './dhcp/dhcp-server.js';
import type { DhcpPolicy } from './dhcp/decide.js';
import { IpxeFiles } from './boot/ipxe-files.js';
import { TftpServer } from './tftp/tftp-server.js';
import { parseIpv4, type Ipv4 } from './net/ipv4.js';
import type { Service } from './service.js';

export interface Deps {
  readonly logger: Logger;
  readonly registry: Registry;
  readonly now?: () => number;
}

export interface Product {
  readonly services: readonly Service[];
  readonly index: HostIndex;
  readonly pool: LeasePool;
  readonly dhcp: DhcpServer | undefined;
  readonly tftp: TftpServer | undefined;
  readonly files: IpxeFiles;
}

export function dhcpPolicy(config: Config, tftpServer: Ipv4): DhcpPolicy {
  const d = config.dhcp;
  return {
    serverIp: d.serverIp.address,
    serverPrefix: d.serverIp.prefix,
    ports: { relay: d.listen.port, client: d.clientPort },
    reply: { serverId: d.serverIp.address, tftpServer, domainName: d.domainName },
    boot: { bootFiles: d.bootFiles, httpAdvertiseUrl: config.http.advertiseUrl },
    leaseSeconds: d.leaseSeconds,
    rangeGateway: d.gateway,
    rangeDns: d.dns,
    rangeNtp: d.ntp,
  };
}

export function buildServices(config: Config, deps: Deps): Product {
  const { logger, registry } = deps;
  const now = deps.now ?? Date.now;
  const index = new HostIndex();
  const serverIp = config.dhcp.serverIp.address;
  const services: Service[] = [];

  const staticDefaults = { prefix: config.dhcp.serverIp.prefix, gateway: config.dhcp.gateway, dns: config.dhcp.dns, ntp: config.dhcp.ntp };
  services.push(new StaticHostSource(config.dhcp.hosts, config.dhcp.hostsFiles, staticDefaults, index, logger));
  if (config.sources.bmhFiles.length > 0) services.push(new BmhFileSource(config.sources.bmhFiles, config.sources.annotationPrefix, index, logger));

  const files = new IpxeFiles({ root: config.tftp.root, aliases: config.tftp.aliases, logger });
  services.push(files);

  const pool = new LeasePool({ ranges: config.dhcp.ranges, isClaimed: (ip) => index.isClaimed(ip), serverIp });
  const leases = new LeaseStore(pool, config.dhcp.ranges.length > 0 ? config.dhcp.leaseFile : undefined, now, logger.child({ component: 'leases' }));
  services.push({ name: 'leases', start: () => leases.start(), close: () => leases.close() });

  let dhcp: DhcpServer | undefined;
  if (config.dhcp.enabled) {
    const tftpHost = config.tftp.listen !== undefined && config.tftp.listen.host !== '0.0.0.0' ? parseIpv4(config.tftp.listen.host)! : serverIp;
    dhcp = new DhcpServer({ listen: config.dhcp.listen, policy: dhcpPolicy(config, tftpHost), state: { index, pool, now }, leases, logger, registry });
    services.push(dhcp);
  }

  let tftp: TftpServer | undefined;
  if (config.tftp.listen !== undefined) {
    const t = config.tftp;
    tftp = new TftpServer({
      listen: t.listen!, singlePort: t.singlePort, files, maxBlksize: t.maxBlksize, maxWindowsize: t.maxWindowsize,
      maxTransfers: t.maxTransfers, maxPerClient: t.maxPerClient, timeoutMs: t.timeoutMs, retries: t.retries, logger, registry,
    });
    services.push(tftp);
  }
  return { services, index, pool, dhcp, tftp, files };
}

/** Starts services in order; if one fails, closes those already started (reverse order) and rethrows. */
export async function startAll(services: readonly Service[]): Promise<void> {
  const started: Service[] = [];
  try {
    for (const s of services) {
      await s.start();
      started.push(s);
    }
  } catch (err) {
    await closeAll(started);
    throw err;
  }
}

export async function closeAll(services: readonly Service[]): Promise<void> {
  for (const s of [...services].reverse()) {
    try {
      await s.close();
    } catch {
      // Closing is best effort: one stuck service must not keep the others open.
    }
  }
}
