/**
 * What must hold before radvd can send on an interface, read from /proc: IPv6 in the kernel and
 * on the interface, and CAP_NET_RAW within reach. Pure: the caller passes a file reader.
 */
import { interfaceNameProblem } from './radvd-config.js';

/** Why router advertisements cannot be sent, found before radvd runs. */
export type RaPreflightProblem =
  | { readonly kind: 'interface-name'; readonly detail: string }
  /** The kernel has no IPv6 (booted with ipv6.disable=1, or built without it). */
  | { readonly kind: 'no-ipv6' }
  /** /proc/sys/net/ipv6/conf/<interface> does not exist: no such interface here. */
  | { readonly kind: 'no-interface' }
  /** net.ipv6.conf.<interface>.disable_ipv6 = 1: the interface has no link-local address to send from. */
  | { readonly kind: 'ipv6-disabled' }
  /** CAP_NET_RAW is not in this process's bounding set: no child of it can have it, file capability or not. */
  | { readonly kind: 'no-net-raw' };

/** CAP_NET_RAW's bit (linux/capability.h). */
const CAP_NET_RAW = 13;

/** Reads a file; undefined when it does not exist or cannot be read. */
export type ReadText = (path: string) => string | undefined;

/** Whether capability `bit` is in the set `field` (CapBnd, CapEff…) of a /proc/<pid>/status text. */
export function hasCapability(status: string, field: string, bit: number): boolean | undefined {
  const m = new RegExp(`^${field}:\\s*([0-9a-fA-F]+)\\s*$`, 'm').exec(status);
  if (m === null) return undefined;
  return ((BigInt(`0x${m[1]}`) >> BigInt(bit)) & 1n) === 1n;
}

/** The first problem that stops radvd from sending on `iface`, or undefined. */
export function raPreflight(iface: string, read: ReadText): RaPreflightProblem | undefined {
  const name = interfaceNameProblem(iface);
  if (name !== undefined) return { kind: 'interface-name', detail: name };
  const disabled = read(`/proc/sys/net/ipv6/conf/${iface}/disable_ipv6`);
  if (disabled === undefined) {
    return read('/proc/sys/net/ipv6/conf/all/disable_ipv6') === undefined
      ? { kind: 'no-ipv6' }
      : { kind: 'no-interface' };
  }
  if (disabled.trim() !== '0') return { kind: 'ipv6-disabled' };
  const status = read('/proc/self/status');
  if (status !== undefined && hasCapability(status, 'CapBnd', CAP_NET_RAW) === false) return { kind: 'no-net-raw' };
  return undefined;
}

/** What to tell the operator, with how to fix it. */
export function preflightMessage(p: RaPreflightProblem, iface: string): string {
  switch (p.kind) {
    case 'interface-name':
      return p.detail;
    case 'no-ipv6':
      return 'the kernel has no IPv6 (/proc/sys/net/ipv6 is missing: booted with ipv6.disable=1?)';
    case 'no-interface':
      return `there is no interface ${iface} here (/proc/sys/net/ipv6/conf/${iface} is missing); check --router-advertisements-interface`;
    case 'ipv6-disabled':
      return (
        `IPv6 is disabled on ${iface} (/proc/sys/net/ipv6/conf/${iface}/disable_ipv6 = 1); enable it with ` +
        `sysctl -w net.ipv6.conf.${iface}.disable_ipv6=0 (in a pod: the pod's sysctls or the CNI's configuration, see docs/deployment.md)`
      );
    case 'no-net-raw':
      return (
        "NET_RAW is not in this process's capability bounding set, so radvd can never open its raw ICMPv6 socket; " +
        "add NET_RAW to the container's capabilities (the chart does while routerAdvertisements.enabled is true)"
      );
  }
}
