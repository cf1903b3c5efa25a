/**
 * Which boot client sent a request. Pure: a function of the options alone.
 *
 * Order matters: iPXE also sends option 93 and (when chain-loaded by PXE firmware) a
 * `PXEClient` vendor class, so iPXE is recognised first; then UEFI HTTP boot, which must be
 * answered with a URL; then firmware PXE; anything else is a plain DHCP client.
 */
import type { DhcpOptions } from './codec.js';
import { OPT, getIpxeEncap, getString, getUserClasses } from './options.js';
import { archInfo } from '../boot/arch.js';
import type { BootClient } from '../boot/boot-client.js';

const ARCH_IN_VENDOR_CLASS = /:Arch:(\d{5})/;

export function isIpxe(options: DhcpOptions): boolean {
  if (options.has(OPT.IPXE_ENCAP) && getIpxeEncap(options) !== undefined) return true;
  return getUserClasses(options)?.includes('iPXE') ?? false;
}

/** The architecture in use: the first entry of option 93, else the `Arch:NNNNN` of option 60. */
export function clientArchCode(options: DhcpOptions): number | undefined {
  const a = options.get(OPT.CLIENT_ARCH);
  // getClientArchs(options)?.[0] without building the list (this runs on every packet).
  if (a !== undefined && a.length > 0 && a.length % 2 === 0) return (a[0]! << 8) | a[1]!;
  const vendor = getString(options, OPT.VENDOR_CLASS);
  const m = vendor === undefined ? null : ARCH_IN_VENDOR_CLASS.exec(vendor);
  return m ? Number(m[1]) : undefined;
}

/** Whether an option value begins with `prefix` (ASCII), read in place. */
function startsWithAscii(v: Uint8Array | undefined, prefix: string): boolean {
  if (v === undefined || v.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (v[i] !== prefix.charCodeAt(i)) return false;
  return true;
}

export function classify(options: DhcpOptions): BootClient {
  const archCode = clientArchCode(options);
  const arch = archCode === undefined ? undefined : archInfo(archCode);
  if (isIpxe(options)) return { kind: 'ipxe', archCode, arch };
  const vendor = options.get(OPT.VENDOR_CLASS);
  if (startsWithAscii(vendor, 'HTTPClient') || arch?.http === true) {
    return { kind: 'uefi-http', archCode: archCode ?? 16, arch: arch ?? archInfo(16) };
  }
  if (startsWithAscii(vendor, 'PXEClient') || archCode !== undefined) {
    // A PXEClient without option 93 or an Arch field is a legacy BIOS PXE ROM (PXE 2.1).
    return { kind: 'pxe', archCode: archCode ?? 0, arch: arch ?? archInfo(0) };
  }
  return { kind: 'plain' };
}
