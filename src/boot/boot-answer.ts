/**
 * The boot-file ladder: what a booting client is told to load next. Order matters: a host that
 * must not netboot gets nothing whatever it is; iPXE gets the script; UEFI HTTP boot gets a URL
 * to an iPXE binary; firmware PXE gets the binary's TFTP name. Pure.
 */
import type { BootClient } from './boot-client.js';
import { bootFileKey, type ArchInfo } from './arch.js';

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
  if (client.kind === 'plain') return PLAIN_CLIENT;
  if (!netboot) return NETBOOT_DISABLED;
  const answers = answersOf(table);
  if (client.kind === 'ipxe') return answers.ipxeScript;
  if (client.arch === undefined) return UNKNOWN_ARCH;
  const byArch = client.kind === 'uefi-http' ? answers.http : answers.tftp;
  let a = byArch.get(client.arch);
  if (a === undefined) {
    a = binaryAnswer(client.kind, client.arch, table);
    byArch.set(client.arch, a);
  }
  return a;
}

function binaryAnswer(kind: 'uefi-http' | 'pxe', arch: ArchInfo, table: BootTable): BootAnswer {
  const file = table.bootFiles[bootFileKey(arch)];
  if (file === undefined) return NO_BINARY;
  if (kind === 'uefi-http') return { kind: 'http-binary', file, url: `${table.httpAdvertiseUrl}/ipxe/${file}` };
  return { kind: 'tftp', file };
}

// Answers are values: the same client kind and architecture against the same table always gets
// the same answer, so each is built once per table (architectures are a fixed, small set) and
// shared by every packet. Nothing writes to an answer.
const PLAIN_CLIENT: BootAnswer = { kind: 'none', reason: 'plain-client' };
const NETBOOT_DISABLED: BootAnswer = { kind: 'none', reason: 'netboot-disabled' };
const UNKNOWN_ARCH: BootAnswer = { kind: 'none', reason: 'unknown-arch' };
const NO_BINARY: BootAnswer = { kind: 'none', reason: 'no-binary-for-arch' };

interface TableAnswers {
  readonly ipxeScript: BootAnswer;
  readonly tftp: Map<ArchInfo, BootAnswer>;
  readonly http: Map<ArchInfo, BootAnswer>;
}

const TABLE_ANSWERS = new WeakMap<BootTable, TableAnswers>();

function answersOf(table: BootTable): TableAnswers {
  let t = TABLE_ANSWERS.get(table);
  if (t === undefined) {
    t = { ipxeScript: { kind: 'ipxe-script', url: `${table.httpAdvertiseUrl}/boot.ipxe` }, tftp: new Map(), http: new Map() };
    TABLE_ANSWERS.set(table, t);
  }
  return t;
}
