/**
 * Which boot client sent a DHCPv6 request. Pure; the same order as DHCPv4's (dhcp/classify.ts):
 * iPXE first (user class "iPXE", RFC 8415 option 15), then UEFI HTTP boot (vendor class 16
 * beginning "HTTPClient", or an HTTP architecture code in option 61, RFC 5970), then firmware
 * PXE (vendor class "PXEClient" or option 61), else an ordinary DHCPv6 client.
 */
import { archInfo } from '../boot/arch.js';
import type { BootClient } from '../boot/boot-client.js';
import type { Dhcp6Option } from './codec.js';
import { OPT6, findOption, parseUserClass, vendorClassIs } from './options.js';

/** The first architecture of option 61 (RFC 5970 §3.3: the list is in order of preference). */
export function clientArchCode6(options: readonly Dhcp6Option[]): number | undefined {
  const a = findOption(options, OPT6.CLIENT_ARCH_TYPE);
  if (a === undefined || a.length < 2 || a.length % 2 !== 0) return undefined;
  return (a[0]! << 8) | a[1]!;
}

export function isIpxe6(options: readonly Dhcp6Option[]): boolean {
  const uc = findOption(options, OPT6.USER_CLASS);
  if (uc === undefined) return false;
  try {
    return parseUserClass(uc).includes('iPXE');
  } catch {
    return false; // a malformed user class names no iPXE
  }
}

export function classify6(options: readonly Dhcp6Option[]): BootClient {
  const archCode = clientArchCode6(options);
  const arch = archCode === undefined ? undefined : archInfo(archCode);
  if (isIpxe6(options)) return { kind: 'ipxe', archCode, arch };
  if (vendorClassIs(options, 'HTTPClient') || arch?.http === true)
    return { kind: 'uefi-http', archCode: archCode ?? 16, arch: arch ?? archInfo(16) };
  if (vendorClassIs(options, 'PXEClient') || archCode !== undefined)
    return { kind: 'pxe', archCode: archCode ?? 7, arch: arch ?? archInfo(7) };
  return { kind: 'plain' };
}
