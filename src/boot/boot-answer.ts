/**
 * The boot-file ladder: what a booting client is told to load next. Order matters: a host that
 * must not netboot gets nothing whatever it is; iPXE gets the script; a UEFI client of a host
 * on the Secure Boot chain gets the signed shim (a URL for UEFI HTTP boot, a TFTP name for
 * PXE); UEFI HTTP boot gets a URL to an iPXE binary; firmware PXE gets the binary's TFTP name.
 * Pure.
 */
import type { BootClient } from './boot-client.js';
import { ARCH_TABLE, bootFileKey, type ArchInfo } from './arch.js';
import type { HostRecord } from '../leases/host.js';
import { chooseChain, SECURE_BOOT_NAMES } from './secure-boot.js';

export type BootAnswer =
  | {
      readonly kind: 'none';
      readonly reason:
        | 'plain-client'
        | 'netboot-disabled'
        | 'unknown-arch'
        | 'no-binary-for-arch'
        | 'no-signed-binary-for-arch';
    }
  | { readonly kind: 'tftp'; readonly file: string }
  | { readonly kind: 'http-binary'; readonly file: string; readonly url: string }
  | { readonly kind: 'ipxe-script'; readonly url: string };

export interface BootTable {
  /** Boot-file key (bios, uefi-x86_64, …) → binary name. */
  readonly bootFiles: Readonly<Record<string, string>>;
  /** Base URL of the HTTP server as booting hosts reach it, without a trailing slash. */
  readonly httpAdvertiseUrl: string;
  /**
   * The Secure Boot chain: whether hosts without a boot mode or annotation get it, and the
   * architectures (`x86_64`, `arm64`) that have signed files. Default: off, none.
   */
  readonly secureBoot?: { readonly default: boolean; readonly cpus: readonly string[] };
}

/**
 * The ladder compiled for one table: every answer built once at start, for the fixed arch
 * table, and shared by every packet. Nothing writes to an answer.
 */
export interface BootAnswers {
  /**
   * `host` (the client's host record, undefined for a range client) picks the chain
   * (boot/secure-boot.ts): its boot mode and annotation, else the configured default.
   */
  answer(client: BootClient, netboot: boolean, host?: Pick<HostRecord, 'bootMode' | 'secureBoot'>): BootAnswer;
  /** Every answer that names a file or URL (what a reply may carry). */
  readonly all: readonly BootAnswer[];
}

export function bootAnswers(table: BootTable): BootAnswers {
  const ipxeScript: BootAnswer = { kind: 'ipxe-script', url: `${table.httpAdvertiseUrl}/boot.ipxe` };
  const tftp = new Map<ArchInfo, BootAnswer>(ARCH_TABLE.map((a) => [a, binaryAnswer('pxe', a, table)]));
  const http = new Map<ArchInfo, BootAnswer>(ARCH_TABLE.map((a) => [a, binaryAnswer('uefi-http', a, table)]));
  const sb = table.secureBoot ?? { default: false, cpus: [] };
  const shimTftp = new Map<ArchInfo, BootAnswer>(shimAnswers('pxe', table, sb.cpus));
  const shimHttp = new Map<ArchInfo, BootAnswer>(shimAnswers('uefi-http', table, sb.cpus));
  return {
    answer(client, netboot, host) {
      if (client.kind === 'plain') return PLAIN_CLIENT;
      if (!netboot) return NETBOOT_DISABLED;
      if (client.kind === 'ipxe') return ipxeScript;
      if (client.arch === undefined) return UNKNOWN_ARCH;
      if (client.arch.firmware === 'uefi' && chooseChain(host, sb.default).chain === 'secure-boot')
        return (client.kind === 'uefi-http' ? shimHttp : shimTftp).get(client.arch) ?? NO_SIGNED_BINARY;
      return (
        (client.kind === 'uefi-http' ? http : tftp).get(client.arch) ?? binaryAnswer(client.kind, client.arch, table)
      );
    },
    all: [ipxeScript, ...tftp.values(), ...http.values(), ...shimTftp.values(), ...shimHttp.values()].filter(
      (x) => x.kind !== 'none',
    ),
  };
}

/** The shim answers of the architectures that have signed files (served like the iPXE binaries, under /ipxe/). */
function shimAnswers(kind: 'uefi-http' | 'pxe', table: BootTable, cpus: readonly string[]): [ArchInfo, BootAnswer][] {
  return ARCH_TABLE.filter((a) => a.firmware === 'uefi' && a.http === (kind === 'uefi-http')).flatMap((a) => {
    const names = SECURE_BOOT_NAMES[bootFileKey(a)];
    if (names === undefined || !cpus.includes(a.cpu)) return [];
    const file = names.shim;
    const answer: BootAnswer =
      kind === 'uefi-http'
        ? { kind: 'http-binary', file, url: `${table.httpAdvertiseUrl}/ipxe/${file}` }
        : { kind: 'tftp', file };
    return [[a, answer]];
  });
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
const NO_SIGNED_BINARY: BootAnswer = { kind: 'none', reason: 'no-signed-binary-for-arch' };
