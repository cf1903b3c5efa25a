/**
 * UEFI Secure Boot: which chain a host boots, and the signed files of that chain. Pure.
 *
 * Debian's iPXE is not signed, so a host with Secure Boot enforced cannot run it. Such a host
 * gets a Microsoft-signed shim instead (`shimx64.efi`, `shimaa64.efi`), which loads its second
 * stage by a fixed name (`grubx64.efi`, `grubaa64.efi`) from the same server: a vendor-signed
 * GRUB network image (then GRUB reads its configuration from metalboot, boot/grub-configs.ts)
 * or a signed iPXE when the operator has one. metalboot signs nothing; shim, GRUB and the kernel
 * must come from one vendor's chain of trust (docs/decisions/0013-secure-boot.md).
 */
import type { HostRecord } from '../leases/host.js';

export type BootChain = 'ipxe' | 'secure-boot';

export interface ChainChoice {
  readonly chain: BootChain;
  readonly why: string;
}

/** The BareMetalHost boot mode that asks for Secure Boot (metal3 baremetal-operator). */
export const SECURE_BOOT_MODE = 'UEFISecureBoot';

/**
 * The chain a host boots. Order matters: the annotation overrides everything, then the
 * BareMetalHost's spec.bootMode, then the configured default (which also covers clients
 * without a host: the dynamic range).
 */
export function chooseChain(
  host: Pick<HostRecord, 'bootMode' | 'secureBoot'> | undefined,
  defaultSecureBoot: boolean,
): ChainChoice {
  if (host?.secureBoot !== undefined)
    return host.secureBoot
      ? { chain: 'secure-boot', why: 'the secure-boot annotation is "true"' }
      : { chain: 'ipxe', why: 'the secure-boot annotation is "false"' };
  if (host?.bootMode === SECURE_BOOT_MODE) return { chain: 'secure-boot', why: `spec.bootMode is ${SECURE_BOOT_MODE}` };
  if (host?.bootMode !== undefined && host.bootMode !== '')
    return { chain: 'ipxe', why: `spec.bootMode is ${host.bootMode}` };
  return defaultSecureBoot
    ? { chain: 'secure-boot', why: 'no spec.bootMode: the configured default (secureBoot.default) is on' }
    : { chain: 'ipxe', why: 'no spec.bootMode: the configured default (secureBoot.default) is off' };
}

/** The signed files of one architecture: where they are on disk. */
export interface SecureBootFiles {
  /** The signed shim (first stage, signed by Microsoft's UEFI CA). */
  readonly shim: string;
  /** What shim loads next, signed by the vendor's key that shim carries: GRUB, or a signed iPXE. */
  readonly secondStage: string;
}

/** The names shim is served under and asks for, by boot-file key (see bootFileKey). */
export const SECURE_BOOT_NAMES: Readonly<Record<string, { readonly shim: string; readonly secondStage: string }>> = {
  'uefi-x86_64': { shim: 'shimx64.efi', secondStage: 'grubx64.efi' },
  'uefi-arm64': { shim: 'shimaa64.efi', secondStage: 'grubaa64.efi' },
};

/** Debian's packages shim-signed and grub-efi-{amd64,arm64}-signed, by architecture. */
export const DEFAULT_SECURE_BOOT_FILES: Readonly<Record<'x86_64' | 'arm64', SecureBootFiles>> = {
  x86_64: {
    shim: '/usr/lib/shim/shimx64.efi.signed',
    secondStage: '/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed',
  },
  arm64: {
    shim: '/usr/lib/shim/shimaa64.efi.signed',
    secondStage: '/usr/lib/grub/arm64-efi-signed/grubnetaa64.efi.signed',
  },
};

/** Served name → file on disk, for every configured architecture. */
export function secureBootServedFiles(files: Readonly<Record<string, SecureBootFiles>>): ReadonlyMap<string, string> {
  const out = new Map<string, string>();
  for (const [cpu, f] of Object.entries(files)) {
    if (f.shim === '' || f.secondStage === '') continue;
    const names = SECURE_BOOT_NAMES[`uefi-${cpu}`];
    if (names === undefined) continue;
    out.set(names.shim, f.shim);
    out.set(names.secondStage, f.secondStage);
  }
  return out;
}

/** The architectures whose shim is configured (a file set to "" leaves its architecture out). */
export function secureBootCpus(files: Readonly<Record<string, SecureBootFiles>>): string[] {
  return Object.entries(files)
    .filter(([, f]) => f.shim !== '' && f.secondStage !== '')
    .map(([cpu]) => cpu);
}
