/**
 * The boot-file ladder: what a booting client is told to load next. Order matters: a host that
 * must not netboot gets nothing whatever it is; iPXE gets the script; UEFI HTTP boot gets a URL
 * to an iPXE binary; firmware PXE gets the binary's TFTP name. Pure.
 */
import type { BootClient } from '../dhcp/classify.js';
import { bootFileKey } from './arch.js';

export type BootAnswer =
  | { readonly kind: 'none'; readonly reason: 'plain-client' | 'netboot-disabled' | 'unknown-arch' | 'no-binary-for-arch' }
  | { readonly kind: 'tftp'; readonly file: string }
  | { readonly kind: 'http-binary'; readonly file: string; readonly url: string }
  | { readonly kind: 'ipxe-script'; readonly url: string };

export interface BootTable {
  /** Boot-file key (bios, uefi-x86_64, …) → binary name. */
  readonly bootFiles: Readonly<Record<string, string>>;
  /** Base URL of the HTTP server as booting hosts reach it, without a trailing slash. */
  readonly httpAdvertiseUrl: string;
}

export function bootAnswer(client: BootClient, netboot: boolean, table: BootTable): BootAnswer {
  if (client.kind === 'plain') return { kind: 'none', reason: 'plain-client' };
  if (!netboot) return { kind: 'none', reason: 'netboot-disabled' };
  if (client.kind === 'ipxe') return { kind: 'ipxe-script', url: `${table.httpAdvertiseUrl}/boot.ipxe` };
  if (client.arch === undefined) return { kind: 'none', reason: 'unknown-arch' };
  const file = table.bootFiles[bootFileKey(client.arch)];
  if (file === undefined) return { kind: 'none', reason: 'no-binary-for-arch' };
  if (client.kind === 'uefi-http') return { kind: 'http-binary', file, url: `${table.httpAdvertiseUrl}/ipxe/${file}` };
  return { kind: 'tftp', file };
}
