/**
 * Which network interface owns an address: the device a socket must be bound to
 * (SO_BINDTODEVICE) to hear that interface's broadcasts and no other's. Pure: the caller passes
 * the table of `os.networkInterfaces()`.
 */
import type { NetworkInterfaceInfo } from 'node:os';
import { MetalbootError } from '../base/errors.js';
import { canonicalIp, isLoopbackIp } from './ip-address.js';

/** What `os.networkInterfaces()` returns: addresses by interface name. */
export type InterfaceTable = Readonly<Record<string, readonly NetworkInterfaceInfo[] | undefined>>;

/** The names of the interfaces that have `address` (IPv4, or IPv6 in any spelling), in the table's order. */
export function interfacesWith(address: string, table: InterfaceTable): string[] {
  const want = canonicalIp(address) ?? address;
  return Object.entries(table)
    .filter(([, addrs]) =>
      (addrs ?? []).some((a) => (a.family === 'IPv4' ? a.address === want : canonicalIp(a.address) === want)),
    )
    .map(([name]) => name);
}

/** Every interface with its IPv4 addresses, for an error message: `eth0 10.0.0.1/24, lo 127.0.0.1/8`. */
export function describeInterfaces(table: InterfaceTable): string {
  const parts = Object.entries(table).map(([name, addrs]) => {
    const v4 = (addrs ?? []).filter((a) => a.family === 'IPv4').map((a) => a.cidr ?? a.address);
    return v4.length === 0 ? `${name} (no IPv4 address)` : `${name} ${v4.join(' ')}`;
  });
  return parts.length === 0 ? 'none' : parts.join(', ');
}

/**
 * Whether a listener on `host` must hear one interface's broadcasts through a device feed: not
 * on the wildcard 0.0.0.0, which hears every interface already, nor on a loopback address, where
 * no booting host can broadcast.
 */
export function needsDeviceFeed(host: string): boolean {
  const ip = canonicalIp(host);
  return ip !== undefined && ip !== '0.0.0.0' && !isLoopbackIp(ip);
}

/**
 * The interface a listener on `host` serves, or undefined when it needs no device feed (see
 * needsDeviceFeed). Throws NET_ERR_NO_INTERFACE, naming the address and the interfaces seen,
 * when no interface has the address, or more than one does (after leaving out loopback
 * interfaces, which no booting host is on).
 */
export function feedInterface(host: string, table: InterfaceTable): string | undefined {
  if (!needsDeviceFeed(host)) return undefined;
  const ip = canonicalIp(host)!;
  const owners = interfacesWith(ip, table);
  const external = owners.filter((name) => !(table[name] ?? []).some((a) => a.internal));
  const candidates = external.length > 0 ? external : owners;
  if (candidates.length === 1) return candidates[0];
  throw new MetalbootError(
    'NET_ERR_NO_INTERFACE',
    candidates.length === 0
      ? `no network interface has ${ip}, the DHCP listen address (interfaces: ${describeInterfaces(table)}); ` +
          'check --dhcp-listen / SERVER_IP'
      : `${ip}, the DHCP listen address, is on ${candidates.join(' and ')}: DHCP cannot be limited to one of them`,
  );
}
