/**
 * The boot-file table: which iPXE binary each firmware family gets (by DHCP), and which real
 * file in the iPXE directory each served name maps to (by TFTP and HTTP). Both are configurable;
 * these are the defaults, the same names Ironic's dnsmasq uses.
 */

/** Boot-file key (see bootFileKey) → the name the DHCP answer gives. */
export const DEFAULT_BOOT_FILES: Readonly<Record<string, string>> = {
  bios: 'undionly.kpxe',
  'uefi-x86_64': 'snponly.efi',
  'uefi-arm64': 'snponly-arm64.efi',
};

/**
 * Served name → path relative to the iPXE directory, for names that are not the file's own
 * name. Any regular file in the directory is also served under its own name.
 * Debian's `ipxe` package ships x86 binaries at the top level; arm64 binaries live in
 * `arm64-efi/` where a distribution provides them.
 */
export const DEFAULT_FILE_ALIASES: Readonly<Record<string, string>> = {
  'snponly-x86_64.efi': 'snponly.efi',
  'ipxe-x86_64.efi': 'ipxe.efi',
  'snponly-arm64.efi': 'arm64-efi/snponly.efi',
  'ipxe-arm64.efi': 'arm64-efi/ipxe.efi',
};
