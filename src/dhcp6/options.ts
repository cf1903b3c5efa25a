/**
 * Constants, typed accessors and builders for the DHCPv6 options metalboot reads or writes
 * (RFC 8415 §21 unless noted).
 *
 * One rule for every reader: `findOption`/`findOptions`/`readOption` say "absent" with
 * `undefined` (or an empty list); every `parse*` function takes one option's data and throws a
 * DecodeError when the bytes are not that option's format, with the offset inside the data.
 * A malformed option is never silently treated as absent, so the server can tell "the client
 * sent no Client Identifier" from "the client sent a broken one" and drop the message for a
 * malformed required option; for an optional one it catches the DecodeError itself.
 * `vendorClassIs`, `hasRapidCommit` and `innerMessage` follow the same rule.
 *
 * Builders (`*Option`, `duid*`) throw a MetalbootError DHCP6_ERR_ENCODE_INVALID for values with
 * no wire form (a caller bug, never input) and return fresh bytes.
 */
import { DecodeError, MetalbootError } from '../base/errors.js';
import { readIpv6, writeIpv6, type Ipv6 } from '../net/ipv6.js';
import {
  decode6,
  decodeOptions,
  encode6,
  encodeOptions,
  HOP_COUNT_LIMIT,
  RELAY_REPL,
  type Dhcp6ClientMessage,
  type Dhcp6Message,
  type Dhcp6Option,
  type Dhcp6RelayMessage,
} from './codec.js';

export const MSG6 = {
  SOLICIT: 1,
  ADVERTISE: 2,
  REQUEST: 3,
  CONFIRM: 4,
  RENEW: 5,
  REBIND: 6,
  REPLY: 7,
  RELEASE: 8,
  DECLINE: 9,
  RECONFIGURE: 10,
  INFORMATION_REQUEST: 11,
  RELAY_FORW: 12,
  RELAY_REPL: 13,
} as const;
export type Msg6Type = (typeof MSG6)[keyof typeof MSG6];

const MSG6_NAMES: Record<number, string> = Object.fromEntries(Object.entries(MSG6).map(([k, v]) => [v, k]));

/** `SOLICIT`, `RELAY_FORW` …; `type-N` for codes metalboot does not name. */
export function msg6Name(n: number): string {
  return MSG6_NAMES[n] ?? `type-${n}`;
}

export const OPT6 = {
  CLIENTID: 1,
  SERVERID: 2,
  IA_NA: 3,
  IA_TA: 4,
  IAADDR: 5,
  ORO: 6,
  PREFERENCE: 7,
  ELAPSED_TIME: 8,
  RELAY_MSG: 9,
  STATUS_CODE: 13,
  RAPID_COMMIT: 14,
  USER_CLASS: 15,
  VENDOR_CLASS: 16,
  VENDOR_OPTS: 17,
  INTERFACE_ID: 18,
  DNS_SERVERS: 23,
  DOMAIN_LIST: 24,
  IA_PD: 25,
  NTP_SERVER: 56,
  BOOTFILE_URL: 59,
  BOOTFILE_PARAM: 60,
  CLIENT_ARCH_TYPE: 61,
  NII: 62,
  CLIENT_LINKLAYER_ADDR: 79,
  SOL_MAX_RT: 82,
  INF_MAX_RT: 83,
} as const;

export const STATUS6 = {
  Success: 0,
  UnspecFail: 1,
  NoAddrsAvail: 2,
  NoBinding: 3,
  NotOnLink: 4,
  UseMulticast: 5,
  NoPrefixAvail: 6,
} as const;

/** DUID types (RFC 8415 §11.1, RFC 6355 for UUID). */
export const DUID_TYPE = { LLT: 1, EN: 2, LL: 3, UUID: 4 } as const;

/** NTP server sub-options (RFC 5908 §4). */
export const NTP_SUBOPTION = { SRV_ADDR: 1, MC_ADDR: 2, SRV_FQDN: 3 } as const;

// ---- helpers ----------------------------------------------------------------------------------

function invalid(message: string): MetalbootError {
  return new MetalbootError('DHCP6_ERR_ENCODE_INVALID', message);
}

function lengthError(what: string, data: Uint8Array, want: string): DecodeError {
  return new DecodeError('DHCP6_ERR_OPTION_LENGTH', 0, `${what} of ${data.length} bytes: ${want}`);
}

function u16(b: Uint8Array, i: number): number {
  return (b[i]! << 8) | b[i + 1]!;
}

function u32(b: Uint8Array, i: number): number {
  return ((b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!) >>> 0;
}

function putU16(b: Uint8Array, i: number, n: number): void {
  b[i] = (n >>> 8) & 255;
  b[i + 1] = n & 255;
}

function putU32(b: Uint8Array, i: number, n: number): void {
  b[i] = (n >>> 24) & 255;
  b[i + 1] = (n >>> 16) & 255;
  b[i + 2] = (n >>> 8) & 255;
  b[i + 3] = n & 255;
}

function checkUint(n: number, max: number, what: string): void {
  if (!Number.isInteger(n) || n < 0 || n > max) throw invalid(`${what} ${n} is not in 0..${max}`);
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let i = 0;
  for (const p of parts) {
    out.set(p, i);
    i += p.length;
  }
  return out;
}

const utf8 = new TextDecoder('utf-8');

function latin1(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1');
}

/** A string as latin1 bytes, refusing characters above U+00FF (they have no one-byte form). */
function latin1Bytes(s: string, what: string): Uint8Array {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 255) throw invalid(`${what} has a character above U+00FF`);
  return Uint8Array.from(Buffer.from(s, 'latin1'));
}

/** A list of (u16 length, bytes) items that must tile `data[start..]` exactly (RFC 8415 §21.15/16). */
function lengthPrefixedItems(data: Uint8Array, start: number, what: string): Uint8Array[] {
  const out: Uint8Array[] = [];
  let i = start;
  while (i < data.length) {
    if (data.length - i < 2) throw new DecodeError('DHCP6_ERR_OPTION_TRUNCATED', i, `${what}: half an item length`);
    const len = u16(data, i);
    if (i + 2 + len > data.length)
      throw new DecodeError('DHCP6_ERR_OPTION_TRUNCATED', i, `${what}: item of ${len} bytes runs past the end`);
    out.push(data.subarray(i + 2, i + 2 + len));
    i += 2 + len;
  }
  return out;
}

function lengthPrefixed(items: readonly Uint8Array[], what: string): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const b of items) {
    if (b.length > 0xffff) throw invalid(`${what} item of ${b.length} bytes is over 65535`);
    const h = new Uint8Array(2);
    putU16(h, 0, b.length);
    parts.push(h, b);
  }
  return concat(parts);
}

// ---- finding options --------------------------------------------------------------------------

/** The data of the first option `code`, or undefined when there is none. */
export function findOption(opts: readonly Dhcp6Option[], code: number): Uint8Array | undefined {
  for (const o of opts) if (o.code === code) return o.data;
  return undefined;
}

/** The data of every option `code`, in wire order (IA_NA, IA Address, Vendor Class repeat). */
export function findOptions(opts: readonly Dhcp6Option[], code: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const o of opts) if (o.code === code) out.push(o.data);
  return out;
}

/** `parse(findOption(opts, code))`: undefined when absent, DecodeError when malformed. */
export function readOption<T>(
  opts: readonly Dhcp6Option[],
  code: number,
  parse: (data: Uint8Array) => T,
): T | undefined {
  const data = findOption(opts, code);
  return data === undefined ? undefined : parse(data);
}

export function option(code: number, data: Uint8Array): Dhcp6Option {
  return { code, data };
}

// ---- DUID (RFC 8415 §11) ----------------------------------------------------------------------

export type Duid =
  | { readonly type: 'llt'; readonly hwType: number; readonly time: number; readonly linkLayer: Uint8Array }
  | { readonly type: 'en'; readonly enterprise: number; readonly id: Uint8Array }
  | { readonly type: 'll'; readonly hwType: number; readonly linkLayer: Uint8Array }
  | { readonly type: 'uuid'; readonly uuid: string }
  | { readonly type: 'other'; readonly duidType: number; readonly data: Uint8Array };

/** RFC 8415 §11.1: a DUID is a 2-byte type and at most 128 bytes more. */
export const MAX_DUID_LENGTH = 130;
/** DUID-LLT time counts seconds from midnight UTC, 1 January 2000 (RFC 8415 §11.2). */
export const DUID_EPOCH_MS = Date.UTC(2000, 0, 1);

/**
 * Reads a DUID (the data of Client or Server Identifier). DUID-LL and DUID-LLT need their
 * fixed fields and at least one byte of link-layer address, DUID-EN its enterprise number and at
 * least one byte of identifier, DUID-UUID exactly 16 bytes (RFC 6355); other types are kept raw.
 */
export function parseDuid(bytes: Uint8Array): Duid {
  if (bytes.length < 2 || bytes.length > MAX_DUID_LENGTH)
    throw lengthError('DUID', bytes, `must be 2..${MAX_DUID_LENGTH} bytes (RFC 8415 §11.1)`);
  const type = u16(bytes, 0);
  switch (type) {
    case DUID_TYPE.LLT:
      if (bytes.length < 9) throw lengthError('DUID-LLT', bytes, 'needs type, hardware type, time and an address');
      return { type: 'llt', hwType: u16(bytes, 2), time: u32(bytes, 4), linkLayer: bytes.subarray(8) };
    case DUID_TYPE.EN:
      if (bytes.length < 7) throw lengthError('DUID-EN', bytes, 'needs type, enterprise number and an identifier');
      return { type: 'en', enterprise: u32(bytes, 2), id: bytes.subarray(6) };
    case DUID_TYPE.LL:
      if (bytes.length < 5) throw lengthError('DUID-LL', bytes, 'needs type, hardware type and an address');
      return { type: 'll', hwType: u16(bytes, 2), linkLayer: bytes.subarray(4) };
    case DUID_TYPE.UUID:
      if (bytes.length !== 18) throw lengthError('DUID-UUID', bytes, 'must be type and 16 bytes (RFC 6355)');
      return { type: 'uuid', uuid: formatUuid(bytes.subarray(2)) };
    default:
      return { type: 'other', duidType: type, data: bytes.subarray(2) };
  }
}

function formatUuid(b: Uint8Array): string {
  const h = Buffer.from(b.buffer, b.byteOffset, 16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function checkLinkLayer(linkLayer: Uint8Array, fixed: number): void {
  if (linkLayer.length === 0 || fixed + linkLayer.length > MAX_DUID_LENGTH)
    throw invalid(`link-layer address of ${linkLayer.length} bytes does not fit a DUID`);
}

/** DUID-LL (type 3): hardware type (1 = Ethernet) and the link-layer address, e.g. the server's MAC. */
export function duidLl(linkLayer: Uint8Array, hwType = 1): Uint8Array {
  checkUint(hwType, 0xffff, 'hardware type');
  checkLinkLayer(linkLayer, 4);
  const out = new Uint8Array(4 + linkLayer.length);
  putU16(out, 0, DUID_TYPE.LL);
  putU16(out, 2, hwType);
  out.set(linkLayer, 4);
  return out;
}

/** DUID-LLT time for a wall-clock instant: seconds since 2000-01-01T00:00Z, modulo 2^32. */
export function duidTime(epochMs: number): number {
  return Number(BigInt.asUintN(32, BigInt(Math.floor((epochMs - DUID_EPOCH_MS) / 1000))));
}

/** DUID-LLT (type 1): hardware type, time (see duidTime) and the link-layer address. */
export function duidLlt(linkLayer: Uint8Array, time: number, hwType = 1): Uint8Array {
  checkUint(hwType, 0xffff, 'hardware type');
  checkUint(time, 0xffffffff, 'DUID-LLT time');
  checkLinkLayer(linkLayer, 8);
  const out = new Uint8Array(8 + linkLayer.length);
  putU16(out, 0, DUID_TYPE.LLT);
  putU16(out, 2, hwType);
  putU32(out, 4, time);
  out.set(linkLayer, 8);
  return out;
}

/** DUID-EN (type 2): an IANA enterprise number and an identifier that vendor assigns. */
export function duidEn(enterprise: number, id: Uint8Array): Uint8Array {
  checkUint(enterprise, 0xffffffff, 'enterprise number');
  if (id.length === 0 || 6 + id.length > MAX_DUID_LENGTH) throw invalid(`DUID-EN identifier of ${id.length} bytes`);
  const out = new Uint8Array(6 + id.length);
  putU16(out, 0, DUID_TYPE.EN);
  putU32(out, 2, enterprise);
  out.set(id, 6);
  return out;
}

// ---- IA_NA, IA_TA, IA_PD, IA Address (RFC 8415 §21.4–21.6, §21.21) ----------------------------

export interface IaNa {
  readonly iaid: number;
  readonly t1: number;
  readonly t2: number;
  readonly options: readonly Dhcp6Option[];
}
export type IaPd = IaNa;
export interface IaTa {
  readonly iaid: number;
  readonly options: readonly Dhcp6Option[];
}
export interface IaAddr {
  readonly address: Ipv6;
  readonly preferred: number;
  readonly valid: number;
  readonly options: readonly Dhcp6Option[];
}

/**
 *   IA_NA (3) and IA_PD (25):            IA_TA (4):
 *   | IAID (4) | T1 (4) | T2 (4) |       | IAID (4) |
 *   | IA_NA-options ...          |       | IA_TA-options ... |
 */
export function parseIaNa(data: Uint8Array): IaNa {
  if (data.length < 12) throw lengthError('IA_NA', data, 'needs IAID, T1 and T2 (12 bytes)');
  return { iaid: u32(data, 0), t1: u32(data, 4), t2: u32(data, 8), options: decodeOptions(data, 12, data.length) };
}

export function parseIaPd(data: Uint8Array): IaPd {
  if (data.length < 12) throw lengthError('IA_PD', data, 'needs IAID, T1 and T2 (12 bytes)');
  return { iaid: u32(data, 0), t1: u32(data, 4), t2: u32(data, 8), options: decodeOptions(data, 12, data.length) };
}

export function parseIaTa(data: Uint8Array): IaTa {
  if (data.length < 4) throw lengthError('IA_TA', data, 'needs an IAID (4 bytes)');
  return { iaid: u32(data, 0), options: decodeOptions(data, 4, data.length) };
}

function iaWithTimers(code: number, iaid: number, t1: number, t2: number, options: readonly Dhcp6Option[]) {
  checkUint(iaid, 0xffffffff, 'IAID');
  checkUint(t1, 0xffffffff, 'T1');
  checkUint(t2, 0xffffffff, 'T2');
  const inner = encodeOptions(options);
  const data = new Uint8Array(12 + inner.length);
  putU32(data, 0, iaid);
  putU32(data, 4, t1);
  putU32(data, 8, t2);
  data.set(inner, 12);
  return option(code, data);
}

export function iaNaOption(iaid: number, t1: number, t2: number, options: readonly Dhcp6Option[] = []): Dhcp6Option {
  return iaWithTimers(OPT6.IA_NA, iaid, t1, t2, options);
}

/** IA_PD, for answering a prefix request with a status (metalboot delegates no prefixes). */
export function iaPdOption(iaid: number, t1: number, t2: number, options: readonly Dhcp6Option[] = []): Dhcp6Option {
  return iaWithTimers(OPT6.IA_PD, iaid, t1, t2, options);
}

/** IA_TA, for answering a temporary-address request with a status. */
export function iaTaOption(iaid: number, options: readonly Dhcp6Option[] = []): Dhcp6Option {
  checkUint(iaid, 0xffffffff, 'IAID');
  const inner = encodeOptions(options);
  const data = new Uint8Array(4 + inner.length);
  putU32(data, 0, iaid);
  data.set(inner, 4);
  return option(OPT6.IA_TA, data);
}

/** | IPv6-address (16) | preferred-lifetime (4) | valid-lifetime (4) | IAaddr-options ... | */
export function parseIaAddr(data: Uint8Array): IaAddr {
  if (data.length < 24) throw lengthError('IA Address', data, 'needs address and lifetimes (24 bytes)');
  return {
    address: readIpv6(data, 0),
    preferred: u32(data, 16),
    valid: u32(data, 20),
    options: decodeOptions(data, 24, data.length),
  };
}

export function iaAddrOption(
  address: Ipv6,
  preferred: number,
  valid: number,
  options: readonly Dhcp6Option[] = [],
): Dhcp6Option {
  checkUint(preferred, 0xffffffff, 'preferred lifetime');
  checkUint(valid, 0xffffffff, 'valid lifetime');
  const inner = encodeOptions(options);
  const data = new Uint8Array(24 + inner.length);
  writeIpv6(data, 0, address);
  putU32(data, 16, preferred);
  putU32(data, 20, valid);
  data.set(inner, 24);
  return option(OPT6.IAADDR, data);
}

// ---- Status Code (§21.13) ---------------------------------------------------------------------

/** | status-code (2) | status-message (UTF-8) | */
export function parseStatus(data: Uint8Array): { code: number; message: string } {
  if (data.length < 2) throw lengthError('Status Code', data, 'needs a 2-byte code');
  return { code: u16(data, 0), message: utf8.decode(data.subarray(2)) };
}

export function statusOption(code: number, message = ''): Dhcp6Option {
  checkUint(code, 0xffff, 'status code');
  const text = Buffer.from(message, 'utf8');
  const data = new Uint8Array(2 + text.length);
  putU16(data, 0, code);
  data.set(text, 2);
  return option(OPT6.STATUS_CODE, data);
}

// ---- ORO, Elapsed Time, Preference, Rapid Commit (§21.7–21.9, §21.14) ---------------------------

export function parseOro(data: Uint8Array): number[] {
  if (data.length % 2 !== 0) throw lengthError('ORO', data, 'must be a list of 2-byte codes');
  const out: number[] = [];
  for (let i = 0; i < data.length; i += 2) out.push(u16(data, i));
  return out;
}

export function oroOption(codes: readonly number[]): Dhcp6Option {
  const data = new Uint8Array(codes.length * 2);
  codes.forEach((c, i) => {
    checkUint(c, 0xffff, 'option code');
    putU16(data, i * 2, c);
  });
  return option(OPT6.ORO, data);
}

/** Hundredths of a second since the client began this exchange; 0xffff means longer. */
export function parseElapsedTime(data: Uint8Array): number {
  if (data.length !== 2) throw lengthError('Elapsed Time', data, 'must be 2 bytes');
  return u16(data, 0);
}

export function elapsedTimeOption(hundredths: number): Dhcp6Option {
  checkUint(hundredths, 0xffff, 'elapsed time');
  const data = new Uint8Array(2);
  putU16(data, 0, hundredths);
  return option(OPT6.ELAPSED_TIME, data);
}

export function parsePreference(data: Uint8Array): number {
  if (data.length !== 1) throw lengthError('Preference', data, 'must be 1 byte');
  return data[0]!;
}

export function preferenceOption(pref: number): Dhcp6Option {
  checkUint(pref, 255, 'preference');
  return option(OPT6.PREFERENCE, Uint8Array.of(pref));
}

/** Whether the message carries Rapid Commit; DecodeError if one has data (it must be empty). */
export function hasRapidCommit(opts: readonly Dhcp6Option[]): boolean {
  const data = findOption(opts, OPT6.RAPID_COMMIT);
  if (data === undefined) return false;
  if (data.length !== 0) throw lengthError('Rapid Commit', data, 'must be empty');
  return true;
}

export function rapidCommitOption(): Dhcp6Option {
  return option(OPT6.RAPID_COMMIT, new Uint8Array(0));
}

// ---- User Class, Vendor Class (§21.15, §21.16) ------------------------------------------------

/** | user-class-len (2) | opaque-data | …, each item read as latin1 (bytes ↔ chars, lossless). */
export function parseUserClass(data: Uint8Array): string[] {
  return lengthPrefixedItems(data, 0, 'User Class').map(latin1);
}

export function userClassOption(items: readonly string[]): Dhcp6Option {
  return option(
    OPT6.USER_CLASS,
    lengthPrefixed(
      items.map((s) => latin1Bytes(s, 'user class')),
      'User Class',
    ),
  );
}

/** | enterprise-number (4) | vendor-class-len (2) | opaque-data | …, items as latin1. */
export function parseVendorClass(data: Uint8Array): { enterprise: number; items: string[] } {
  if (data.length < 4) throw lengthError('Vendor Class', data, 'needs a 4-byte enterprise number');
  return { enterprise: u32(data, 0), items: lengthPrefixedItems(data, 4, 'Vendor Class').map(latin1) };
}

export function vendorClassOption(enterprise: number, items: readonly string[]): Dhcp6Option {
  checkUint(enterprise, 0xffffffff, 'enterprise number');
  const body = lengthPrefixed(
    items.map((s) => latin1Bytes(s, 'vendor class')),
    'Vendor Class',
  );
  const data = new Uint8Array(4 + body.length);
  putU32(data, 0, enterprise);
  data.set(body, 4);
  return option(OPT6.VENDOR_CLASS, data);
}

/**
 * Whether an item of any Vendor Class option starts with `prefix` (UEFI HTTP boot sends
 * `HTTPClient:Arch:…`, UEFI PXE `PXEClient:Arch:…`, under enterprise 343). Throws DecodeError
 * for a malformed Vendor Class, like every reader here.
 */
export function vendorClassIs(opts: readonly Dhcp6Option[], prefix: string): boolean {
  let match = false;
  for (const data of findOptions(opts, OPT6.VENDOR_CLASS)) {
    if (parseVendorClass(data).items.some((item) => item.startsWith(prefix))) match = true;
  }
  return match;
}

// ---- Client Architecture, NII (RFC 5970 §3.3, §3.4), Client Link-Layer Address (RFC 6939) -----

export function parseClientArch(data: Uint8Array): number[] {
  if (data.length === 0 || data.length % 2 !== 0)
    throw lengthError('Client System Architecture Type', data, 'must be a non-empty list of 2-byte types');
  const out: number[] = [];
  for (let i = 0; i < data.length; i += 2) out.push(u16(data, i));
  return out;
}

export function clientArchOption(archs: readonly number[]): Dhcp6Option {
  if (archs.length === 0) throw invalid('a Client System Architecture option needs a type');
  const data = new Uint8Array(archs.length * 2);
  archs.forEach((a, i) => {
    checkUint(a, 0xffff, 'architecture type');
    putU16(data, i * 2, a);
  });
  return option(OPT6.CLIENT_ARCH_TYPE, data);
}

/** Network Interface Identifier: type (1 = UNDI), major, minor. */
export function parseNii(data: Uint8Array): { type: number; major: number; minor: number } {
  if (data.length !== 3) throw lengthError('Client Network Interface Identifier', data, 'must be 3 bytes');
  return { type: data[0]!, major: data[1]!, minor: data[2]! };
}

export function niiOption(type: number, major: number, minor: number): Dhcp6Option {
  for (const n of [type, major, minor]) checkUint(n, 255, 'NII field');
  return option(OPT6.NII, Uint8Array.of(type, major, minor));
}

/** | link-layer type (2) | link-layer address |, added by the first relay (RFC 6939). */
export function parseClientLinkLayer(data: Uint8Array): { hwType: number; address: Uint8Array } {
  if (data.length < 3) throw lengthError('Client Link-Layer Address', data, 'needs a type and an address');
  return { hwType: u16(data, 0), address: data.subarray(2) };
}

export function clientLinkLayerOption(hwType: number, address: Uint8Array): Dhcp6Option {
  checkUint(hwType, 0xffff, 'hardware type');
  if (address.length === 0 || address.length > 0xfffd) throw invalid(`link-layer address of ${address.length} bytes`);
  const data = new Uint8Array(2 + address.length);
  putU16(data, 0, hwType);
  data.set(address, 2);
  return option(OPT6.CLIENT_LINKLAYER_ADDR, data);
}

// ---- DNS (RFC 3646), domain names (RFC 1035 §3.1, no compression) -------------------------------

function addressList(what: string, data: Uint8Array): Ipv6[] {
  if (data.length === 0 || data.length % 16 !== 0)
    throw lengthError(what, data, 'must be a non-empty list of 16-byte addresses');
  const out: Ipv6[] = [];
  for (let i = 0; i < data.length; i += 16) out.push(readIpv6(data, i));
  return out;
}

function addressBytes(addrs: readonly Ipv6[], what: string): Uint8Array {
  if (addrs.length === 0) throw invalid(`${what} needs an address`);
  const data = new Uint8Array(addrs.length * 16);
  addrs.forEach((a, i) => {
    writeIpv6(data, i * 16, a);
  });
  return data;
}

export function parseDnsServers(data: Uint8Array): Ipv6[] {
  return addressList('DNS Recursive Name Server', data);
}

export function dnsServersOption(addrs: readonly Ipv6[]): Dhcp6Option {
  return option(OPT6.DNS_SERVERS, addressBytes(addrs, 'DNS Recursive Name Server'));
}

const MAX_LABEL = 63;
const MAX_NAME = 255;

/** Bytes a label may hold here: printable ASCII except the dot, so the text form round-trips. */
function labelByteOk(c: number): boolean {
  return c > 0x20 && c < 0x7f && c !== 0x2e;
}

/** One domain name in DNS wire form (`example.com`, a trailing dot is the same name; `` is the root). */
export function encodeDomainName(name: string): Uint8Array {
  const text = name.endsWith('.') ? name.slice(0, -1) : name;
  const labels = text === '' ? [] : text.split('.');
  const parts: Uint8Array[] = [];
  for (const label of labels) {
    const b = latin1Bytes(label, `domain name ${JSON.stringify(name)}`);
    if (b.length === 0 || b.length > MAX_LABEL)
      throw invalid(`domain name ${JSON.stringify(name)} has a label of ${b.length} bytes (1..63)`);
    if (!b.every(labelByteOk)) throw invalid(`domain name ${JSON.stringify(name)} has a byte outside printable ASCII`);
    parts.push(Uint8Array.of(b.length), b);
  }
  parts.push(Uint8Array.of(0));
  const out = concat(parts);
  if (out.length > MAX_NAME) throw invalid(`domain name ${JSON.stringify(name)} takes ${out.length} bytes (255 max)`);
  return out;
}

/** Reads one name at `offset`; returns it and the offset after its zero label. */
function readDomainName(data: Uint8Array, offset: number): { name: string; end: number } {
  const labels: string[] = [];
  let i = offset;
  for (;;) {
    if (i >= data.length)
      throw new DecodeError('DHCP6_ERR_DOMAIN_NAME', i, 'domain name runs past the end without a zero label');
    const len = data[i]!;
    if (len === 0) break;
    if (len > MAX_LABEL)
      throw new DecodeError(
        'DHCP6_ERR_DOMAIN_NAME',
        i,
        len >= 0xc0 ? 'compression pointer (not allowed in DHCPv6)' : `label of ${len} bytes (63 max)`,
      );
    if (i + 1 + len > data.length) throw new DecodeError('DHCP6_ERR_DOMAIN_NAME', i, 'label runs past the end');
    const label = data.subarray(i + 1, i + 1 + len);
    if (!label.every(labelByteOk))
      throw new DecodeError('DHCP6_ERR_DOMAIN_NAME', i + 1, 'label byte outside printable ASCII, or a dot');
    labels.push(latin1(label));
    i += 1 + len;
    if (i + 1 - offset > MAX_NAME) throw new DecodeError('DHCP6_ERR_DOMAIN_NAME', offset, 'name over 255 bytes');
  }
  return { name: labels.join('.'), end: i + 1 };
}

/** Names in DNS wire form, back to back (option 24, NTP sub-option 3). */
export function parseDomainList(data: Uint8Array): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < data.length) {
    const { name, end } = readDomainName(data, i);
    out.push(name);
    i = end;
  }
  return out;
}

export function domainListOption(names: readonly string[]): Dhcp6Option {
  return option(OPT6.DOMAIN_LIST, concat(names.map(encodeDomainName)));
}

// ---- NTP server (RFC 5908) ---------------------------------------------------------------------

export type NtpServer =
  | { readonly kind: 'server'; readonly address: Ipv6 }
  | { readonly kind: 'multicast'; readonly address: Ipv6 }
  | { readonly kind: 'fqdn'; readonly name: string }
  | { readonly kind: 'other'; readonly code: number; readonly data: Uint8Array };

/** Sub-options 1 (server address), 2 (multicast address), 3 (FQDN); others kept raw. */
export function parseNtpServer(data: Uint8Array): NtpServer[] {
  const subs = decodeOptions(data, 0, data.length);
  if (subs.length === 0) throw lengthError('NTP Server', data, 'needs at least one sub-option');
  return subs.map((s): NtpServer => {
    const at = s.data.byteOffset - data.byteOffset;
    switch (s.code) {
      case NTP_SUBOPTION.SRV_ADDR:
      case NTP_SUBOPTION.MC_ADDR:
        if (s.data.length !== 16)
          throw new DecodeError('DHCP6_ERR_OPTION_LENGTH', at, `NTP sub-option ${s.code} of ${s.data.length} bytes`);
        return { kind: s.code === NTP_SUBOPTION.SRV_ADDR ? 'server' : 'multicast', address: readIpv6(s.data, 0) };
      case NTP_SUBOPTION.SRV_FQDN: {
        const { name, end } = readDomainName(s.data, 0);
        if (end !== s.data.length)
          throw new DecodeError('DHCP6_ERR_OPTION_INVALID', at + end, 'NTP FQDN sub-option holds more than one name');
        return { kind: 'fqdn', name };
      }
      default:
        return { kind: 'other', code: s.code, data: s.data };
    }
  });
}

export function ntpServerOption(servers: readonly NtpServer[]): Dhcp6Option {
  if (servers.length === 0) throw invalid('an NTP Server option needs a sub-option');
  const subs = servers.map((s): Dhcp6Option => {
    switch (s.kind) {
      case 'server':
        return option(NTP_SUBOPTION.SRV_ADDR, addressBytes([s.address], 'NTP server'));
      case 'multicast':
        return option(NTP_SUBOPTION.MC_ADDR, addressBytes([s.address], 'NTP multicast'));
      case 'fqdn':
        return option(NTP_SUBOPTION.SRV_FQDN, encodeDomainName(s.name));
      default:
        return option(s.code, s.data);
    }
  });
  return option(OPT6.NTP_SERVER, encodeOptions(subs));
}

// ---- Boot file URL and parameters (RFC 5970 §3.1, §3.2) -----------------------------------------

/** The URL as UTF-8 (RFC 5970 asks for a URL; RFC 3986 URLs are ASCII). */
export function parseBootFileUrl(data: Uint8Array): string {
  if (data.length === 0) throw lengthError('Boot File URL', data, 'must not be empty');
  return utf8.decode(data);
}

export function bootFileUrlOption(url: string): Dhcp6Option {
  const data = Buffer.from(url, 'utf8');
  if (data.length === 0 || data.length > 0xffff) throw invalid(`boot file URL of ${data.length} bytes`);
  return option(OPT6.BOOTFILE_URL, Uint8Array.from(data));
}

/** | param-len (2) | parameter (UTF-8) | … */
export function parseBootFileParams(data: Uint8Array): string[] {
  return lengthPrefixedItems(data, 0, 'Boot File Parameters').map((b) => utf8.decode(b));
}

export function bootFileParamOption(params: readonly string[]): Dhcp6Option {
  return option(
    OPT6.BOOTFILE_PARAM,
    lengthPrefixed(
      params.map((p) => Uint8Array.from(Buffer.from(p, 'utf8'))),
      'Boot File Parameters',
    ),
  );
}

// ---- Interface-Id and relayed messages (§21.18, §21.10, §19) -------------------------------------

export function interfaceIdOption(id: Uint8Array): Dhcp6Option {
  if (id.length === 0) throw invalid('an Interface-Id must not be empty');
  return option(OPT6.INTERFACE_ID, id);
}

/** Option 9 carrying `inner` (a client/server message or another relay message), encoded. */
export function relayMessageOption(inner: Dhcp6Message): Dhcp6Option {
  return option(OPT6.RELAY_MSG, Uint8Array.from(encode6(inner)));
}

/**
 * The message a relay message carries in its one Relay Message option (RFC 8415 §9: exactly
 * one). DecodeError DHCP6_ERR_RELAY_MESSAGE when there is none or more than one; a malformed
 * inner message throws decode6's DecodeError, its offset counted in the inner message.
 */
export function innerMessage(relay: Dhcp6RelayMessage): Dhcp6Message {
  const found = findOptions(relay.options, OPT6.RELAY_MSG);
  if (found.length !== 1)
    throw new DecodeError('DHCP6_ERR_RELAY_MESSAGE', 0, `relay message with ${found.length} Relay Message options`);
  return decode6(found[0]!);
}

export interface Unwrapped {
  /** The relay messages, outermost (the one that reached the server) first. */
  readonly relays: readonly Dhcp6RelayMessage[];
  /** The client's (or, inside RELAY-REPL, the server's) message. */
  readonly message: Dhcp6ClientMessage;
}

/**
 * Peels relay messages off until the client message: at most HOP_COUNT_LIMIT (32) of them
 * (DHCP6_ERR_RELAY_DEPTH), each of the same type as the one around it (DHCP6_ERR_RELAY_NESTING).
 * A client message comes back with no relays.
 */
export function unwrapRelays(msg: Dhcp6Message): Unwrapped {
  const relays: Dhcp6RelayMessage[] = [];
  let m: Dhcp6Message = msg;
  while (m.kind === 'relay') {
    if (relays.length >= HOP_COUNT_LIMIT)
      throw new DecodeError('DHCP6_ERR_RELAY_DEPTH', 0, `more than ${HOP_COUNT_LIMIT} nested relay messages`);
    relays.push(m);
    const inner = innerMessage(m);
    if (inner.kind === 'relay' && inner.msgType !== m.msgType)
      throw new DecodeError('DHCP6_ERR_RELAY_NESTING', 0, `relay type ${inner.msgType} inside relay type ${m.msgType}`);
    m = inner;
  }
  return { relays, message: m };
}

/**
 * The RELAY-REPL chain that carries `reply` back through `forwards` (outermost first, as
 * unwrapRelays gives them): each RELAY-REPL copies hop-count, link-address and peer-address
 * from its RELAY-FORW (RFC 8415 §19.3) and the Interface-Id option when there is one (§21.18).
 * With no relays, `reply` itself.
 */
export function relayReply(forwards: readonly Dhcp6RelayMessage[], reply: Dhcp6ClientMessage): Dhcp6Message {
  let wrapped: Dhcp6Message = reply;
  for (let k = forwards.length - 1; k >= 0; k--) {
    const f = forwards[k]!;
    const interfaceId = findOption(f.options, OPT6.INTERFACE_ID);
    const options: Dhcp6Option[] = [];
    if (interfaceId !== undefined) options.push(option(OPT6.INTERFACE_ID, interfaceId));
    options.push(relayMessageOption(wrapped));
    wrapped = {
      kind: 'relay',
      msgType: RELAY_REPL,
      hopCount: f.hopCount,
      linkAddress: f.linkAddress,
      peerAddress: f.peerAddress,
      options,
    };
  }
  return wrapped;
}
