/**
 * The kinds of boot client metalboot answers, as DHCP classifies them (dhcp/classify.ts) and as
 * the boot-file ladder (boot-answer.ts) and the boot events read them.
 */
import type { ArchInfo } from './arch.js';

export type BootClient =
  /** iPXE (option 175, or user class "iPXE"): gets the boot script URL. */
  | { readonly kind: 'ipxe'; readonly archCode: number | undefined; readonly arch: ArchInfo | undefined }
  /** UEFI HTTP boot (option 60 "HTTPClient…" or an HTTP architecture code): gets a URL to an iPXE binary. */
  | { readonly kind: 'uefi-http'; readonly archCode: number; readonly arch: ArchInfo | undefined }
  /** Firmware PXE (option 60 "PXEClient…" or option 93): gets an iPXE binary over TFTP. */
  | { readonly kind: 'pxe'; readonly archCode: number; readonly arch: ArchInfo | undefined }
  /** An ordinary DHCP client (an OS, IPA's own DHCP): gets a lease and no boot file. */
  | { readonly kind: 'plain' };
