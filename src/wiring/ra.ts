/**
 * The router-advertisement wing: radvd on the provisioning interface (ra/), or a readiness
 * line that says why not. Only with DHCP on (metalboot is the network's boot server). The
 * interface is --router-advertisements-interface, else the one that holds the server IP (not a
 * loopback one: no booting host is there).
 */
import type { Config } from '../config/load.js';
import type { ReadinessCheck } from '../base/service.js';
import { formatIpv4 } from '../net/ipv4.js';
import { formatIpv6 } from '../net/ipv6.js';
import { ANSWER_ONLY, type RaContent } from '../ra/radvd-config.js';
import { interfacesWith, type InterfaceTable } from '../net/interfaces.js';
import { RouterAdvertiser } from '../ra/router-advertiser.js';
import type { Wiring } from './deps.js';

export interface RaWing {
  /** Absent when switched off or when there is no interface to send on. */
  readonly service: RouterAdvertiser | undefined;
  readonly readiness: readonly ReadinessCheck[];
}

/** The interface to advertise on, or why there is none. Pure. */
export function raInterface(
  config: Config,
  table: InterfaceTable,
): { readonly interface: string } | { readonly none: string; readonly loopback: boolean } {
  const set = config.routerAdvertisements.interface ?? config.dhcp6?.interface;
  if (set !== undefined) return { interface: set };
  // With DHCPv6 on, the IPv6 link is the one to advertise on.
  const ip =
    config.dhcp6 !== undefined ? formatIpv6(config.dhcp6.serverIp.address) : formatIpv4(config.dhcp.serverIp.address);
  const owners = interfacesWith(ip, table);
  const external = owners.filter((name) => !(table[name] ?? []).some((a) => a.internal));
  if (external.length === 1) return { interface: external[0]! };
  if (external.length > 1)
    return {
      none: `${ip} is on ${external.join(' and ')}; choose one with --router-advertisements-interface`,
      loopback: false,
    };
  return owners.length > 0
    ? { none: `${ip} is on a loopback interface, where no host boots`, loopback: true }
    : { none: `no interface holds ${ip}; choose one with --router-advertisements-interface`, loopback: false };
}

/**
 * What the advertisements say: ANSWER_ONLY on an IPv4 network; with DHCPv6 on, the Managed and
 * Other flags (addresses and options from DHCPv6) and the server's prefix as on-link without
 * SLAAC, so hosts reach the server's subnet directly. The router lifetime stays 0: metalboot is
 * never a default router (decision 0012). Pure.
 */
export function raContent(config: Config): RaContent {
  const d = config.dhcp6;
  if (d === undefined) return ANSWER_ONLY;
  const network = formatIpv6(d.serverIp.address & ~((1n << BigInt(128 - d.serverIp.prefix)) - 1n));
  return {
    routerLifetimeSeconds: 0,
    managed: true,
    other: true,
    prefixes: [
      {
        prefix: `${network}/${d.serverIp.prefix}`,
        onLink: true,
        autonomous: false,
        validLifetimeSeconds: d.leaseSeconds,
        preferredLifetimeSeconds: d.leaseSeconds,
      },
    ],
  };
}

export function raWing(config: Config, w: Wiring, table: InterfaceTable): RaWing {
  const ra = config.routerAdvertisements;
  const off = (detail: string): RaWing => ({
    service: undefined,
    readiness: [{ name: 'router-advertisements', check: () => ({ ok: true, detail }) }],
  });
  const log = w.logger.child({ component: 'ra' });
  if (!ra.enabled) {
    log.info('router advertisements off (routerAdvertisements.enabled is false)');
    return off('off: routerAdvertisements.enabled is false');
  }
  // Only where metalboot is the network's boot server: without DHCP (TFTP/HTTP behind another
  // DHCP server, replicas that only proxy) the interface need not be a provisioning network.
  if (!config.dhcp.enabled && config.dhcp6 === undefined) {
    log.info("router advertisements off (dhcp and dhcp6 are off: metalboot is not this network's DHCP server)");
    return off('off: dhcp.enabled is false');
  }
  const chosen = raInterface(config, table);
  if ('none' in chosen) {
    if (chosen.loopback) log.info({ why: chosen.none }, 'no router advertisements');
    else log.warn({ why: chosen.none }, 'no router advertisements; metalboot serves without them');
    return off(`off: ${chosen.none}`);
  }
  const service = new RouterAdvertiser({
    interface: chosen.interface,
    maxIntervalSeconds: ra.maxIntervalSeconds,
    content: raContent(config),
    radvd: ra.radvd,
    runtimeDir: ra.runtimeDir,
    logger: w.logger,
    registry: w.registry,
  });
  return { service, readiness: service.readiness };
}
