/**
 * The boot-file ladder: what a booting client is told to load next. Order matters: a host that
 * must not netboot gets nothing whatever it is; iPXE gets the script; UEFI HTTP boot gets a URL
 * to an iPXE binary; firmware PXE gets the binary's TFTP name. Pure.
 */
import type { BootClient } from './boot-client.js';
import { ARCH_TABLE, bootFileKey, type ArchInfo } from './arch.js';

export type BootAnswer =
  | {
      readonly kind: 'none';
      readonly reason: 'plain-client' | 'netboot-disabled' | 'unknown-arch' | 'no-binary-for-arch';
    }
  | { readonly kind: 'tftp'; readonly file: string }
  | { readonly kind: 'http-binary'; readonly file: string; readonly url: string }
  | { readonly kind: 'ipxe-script'; readonly url: string };

export interface BootTable {
  /** Boot-file key (bios, uefi-x86_64, …) → binary name. */
  readonly bootFiles: Readonly<Record<string, string>>;
  /** Base URL of the HTTP server as booting hosts reach it, without a trailing slash. */
  readonly httpAdvertiseUrl: string;
}

/**
 * The ladder compiled for one table: every answer built once at start, for the fixed arch
 * table, and shared by every packet. Nothing writes to an answer.
 */
export interface BootAnswers {
  answer(client: BootClient, netboot: boolean): BootAnswer;
  /** Every answer that names a file or URL (what a reply may carry). */
  readonly all: readonly BootAnswer[];
}

export function bootAnswers(table: BootTable): BootAnswers {
  const ipxeScript: BootAnswer = { kind: 'ipxe-script', url: `${table.httpAdvertiseUrl}/boot.ipxe` };
  const tftp = new Map<ArchInfo, BootAnswer>(ARCH_TABLE.map((a) => [a, binaryAnswer('pxe', a, table)]));
  const http = new Map<ArchInfo, BootAnswer>(ARCH_TABLE.map((a) => [a, binaryAnswer('uefi-http', a, table)]));
  return {
    answer(client, netboot) {
      if (client.kind === 'plain') return PLAIN_CLIENT;
      if (!netboot) return NETBOOT_DISABLED;
      if (client.kind === 'ipxe') return ipxeScript;
      if (client.arch === undefined) return UNKNOWN_ARCH;
      return (
        (client.kind === 'uefi-http' ? http : tftp).get(client.arch) ?? binaryAnswer(client.kind, client.arch, table)
      );
    },
    all: [ipxeScript, ...tftp.values(), ...http.values()].filter((x) => x.kind !== 'none'),
  };
}

function binaryAnswer(kind: 'uefi-http' | 'pxe', arch: ArchInfo, table: BootTable): BootAnswer {
  const file = table.bootFiles[bootFileKey(arch)];
  if (file === undefined) return NO_BINARY;
  if (kind === 'uefi-http') return { kind: 'http-binary', file, url: `${table.httpAdvertiseUrl}/ipxe/${file}` };
  return { kind: 'tftp', file };
}

const PLAIN_CLIENT: BootAnswer = { kind: 'none', reason: 'plain-client' };
const NETBOOT_DISABLED: BootAnswer = { kind: 'none', reason: 'netboot-disabled' };
const UNKNOWN_ARCH: BootAnswer = { kind: 'none', reason: 'unknown-arch' };
const NO_BINARY: BootAnswer = { kind: 'none', reason: 'no-binary-for-arch' };
