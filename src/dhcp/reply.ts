/**
 * Builds OFFER/ACK/NAK messages from the request (RFC 2131 §4.3.1 table 3): xid, flags, giaddr,
 * chaddr, htype and hlen are copied; option 82 (RFC 3046 §2.2) and option 61 (RFC 6842) are
 * echoed. Options honour the parameter request list: the lease essentials are always sent,
 * the rest when asked for (or when the client sent no list), boot options whenever the client
 * is a boot client. Pure.
 */
import { BOOTREPLY, FLAG_BROADCAST, type DhcpMessage, type DhcpOptions } from './codec.js';
import { MESSAGE_TYPE, OPT, domainSearch, ip, ips, pxeDiscoveryControlDirect, str, subOptions, u32, u8 } from './options.js';
import { IPV4_ANY, broadcastOf, formatIpv4, prefixToMask, type Ipv4 } from '../net/ipv4.js';
import type { BootAnswer } from '../boot/boot-answer.js';
import type { BootClient } from '../boot/boot-client.js';
import { INFINITE_LEASE } from '../leases/range.js';
import type { LeaseParams } from '../leases/host.js';

/** A host's lease parameters plus the lease time of this answer. */
export interface ReplyLease extends LeaseParams {
  /** Undefined for an INFORM answer (no lease time). */
  readonly leaseSeconds: number | undefined;
}

export interface ReplyContext {
  readonly serverId: Ipv4;
  /** next-server / siaddr and option 66 for TFTP boot files. */
  readonly tftpServer: Ipv4;
  readonly domainName: string | undefined;
}

// ---- option values shared across replies ---------------------------------------------------
//
// A reply's option values are Uint8Arrays that encode() only reads, so values that are the same
// for many replies are built once and shared: the constants below, the context's own values,
// and small caches keyed by value. No one writes to an option value after it is built.

const MESSAGE_TYPE_VALUE: Readonly<Record<number, Uint8Array>> = {
  [MESSAGE_TYPE.OFFER]: u8(MESSAGE_TYPE.OFFER),
  [MESSAGE_TYPE.ACK]: u8(MESSAGE_TYPE.ACK),
  [MESSAGE_TYPE.NAK]: u8(MESSAGE_TYPE.NAK),
};
/** PXE discovery control = 8: boot the file named here; no boot menu, no proxyDHCP on 4011. */
const PXE_DIRECT = pxeDiscoveryControlDirect();
/** iPXE encapsulated option 176 (no-pxedhcp) = 1: don't wait for ProxyDHCP offers. */
const IPXE_NO_PROXYDHCP = subOptions([[176, u8(1)]]);
/** UEFI HTTP boot requires the vendor class echoed back (UEFI spec §24.7.2). */
const HTTP_CLIENT = str('HTTPClient');

/** Entries a value cache may hold before it starts over: far more than one network's distinct values. */
const CACHE_LIMIT = 4096;

function cached<K, V>(map: Map<K, V>, key: K, make: (key: K) => V): V {
  let v = map.get(key);
  if (v === undefined) {
    if (map.size >= CACHE_LIMIT) map.clear();
    v = make(key);
    map.set(key, v);
  }
  return v;
}

/** The values of one ReplyContext, built on its first reply. */
interface ContextValues {
  readonly serverId: Uint8Array;
  /** Option 66: the TFTP server as a dotted-quad string. */
  readonly tftpServerName: Uint8Array;
  readonly domainName: Uint8Array | undefined;
  readonly domainSearch: Uint8Array | undefined;
  /** Addresses (mask, router, broadcast) → 4 bytes. */
  readonly ip: Map<number, Uint8Array>;
  /** Lease, renewal and rebinding times → 4 bytes. */
  readonly u32: Map<number, Uint8Array>;
  /** Host names and boot file names/URLs → latin1 bytes. */
  readonly str: Map<string, Uint8Array>;
  /** Address lists (DNS, NTP) by identity: a host's and the range's lists live as long as they do. */
  readonly ips: WeakMap<readonly number[], Uint8Array>;
}

const CONTEXT_VALUES = new WeakMap<ReplyContext, ContextValues>();

function contextValues(ctx: ReplyContext): ContextValues {
  let v = CONTEXT_VALUES.get(ctx);
  if (v === undefined) {
    v = {
      serverId: ip(ctx.serverId),
      tftpServerName: str(formatIpv4(ctx.tftpServer)),
      domainName: ctx.domainName === undefined ? undefined : str(ctx.domainName),
      domainSearch: ctx.domainName === undefined ? undefined : domainSearch([ctx.domainName]),
      ip: new Map(), u32: new Map(), str: new Map(), ips: new WeakMap(),
    };
    CONTEXT_VALUES.set(ctx, v);
  }
  return v;
}

function ipsValue(v: ContextValues, list: readonly number[]): Uint8Array {
  let b = v.ips.get(list);
  if (b === undefined) {
    b = ips(list);
    v.ips.set(list, b);
  }
  return b;
}

/** True when the client sent no parameter request list or asked for `code` in it. */
function wants(prl: Uint8Array | undefined, code: number): boolean {
  return prl === undefined || prl.includes(code);
}

function baseReply(req: DhcpMessage, type: number, serverId: Uint8Array): DhcpMessage {
  const options: DhcpOptions = new Map();
  options.set(OPT.MESSAGE_TYPE, MESSAGE_TYPE_VALUE[type] ?? u8(type));
  options.set(OPT.SERVER_ID, serverId);
  const clientId = req.options.get(OPT.CLIENT_ID);
  if (clientId !== undefined) options.set(OPT.CLIENT_ID, clientId);
  const relay = req.options.get(OPT.RELAY_AGENT_INFO);
  if (relay !== undefined) options.set(OPT.RELAY_AGENT_INFO, relay);
  return {
    op: BOOTREPLY, htype: req.htype, hlen: req.hlen, hops: 0, xid: req.xid, secs: 0, flags: req.flags,
    ciaddr: IPV4_ANY, yiaddr: IPV4_ANY, siaddr: IPV4_ANY, giaddr: req.giaddr,
    chaddr: req.chaddr, sname: '', file: '', options,
  };
}

export function buildLeaseReply(
  req: DhcpMessage,
  type: typeof MESSAGE_TYPE.OFFER | typeof MESSAGE_TYPE.ACK,
  lease: ReplyLease,
  client: BootClient,
  boot: BootAnswer,
  ctx: ReplyContext,
): DhcpMessage {
  const v = contextValues(ctx);
  const r = baseReply(req, type, v.serverId);
  const o = r.options;
  const prl = req.options.get(OPT.PARAM_REQUEST_LIST);
  if (lease.leaseSeconds === undefined) r.ciaddr = req.ciaddr; // INFORM: RFC 2131 §4.3.5
  else {
    r.yiaddr = lease.ip;
    if (req.ciaddr !== 0) r.ciaddr = req.ciaddr;
    o.set(OPT.LEASE_TIME, cached(v.u32, lease.leaseSeconds, u32));
    if (lease.leaseSeconds !== INFINITE_LEASE) {
      o.set(OPT.RENEWAL_TIME, cached(v.u32, Math.floor(lease.leaseSeconds * 0.5), u32));
      o.set(OPT.REBINDING_TIME, cached(v.u32, Math.floor(lease.leaseSeconds * 0.875), u32));
    }
  }
  o.set(OPT.SUBNET_MASK, cached(v.ip, prefixToMask(lease.prefix), ip));
  if (lease.gateway !== undefined) o.set(OPT.ROUTER, cached(v.ip, lease.gateway, ip));
  if (lease.dns.length > 0 && wants(prl, OPT.DNS)) o.set(OPT.DNS, ipsValue(v, lease.dns));
  if (lease.ntp.length > 0 && wants(prl, OPT.NTP)) o.set(OPT.NTP, ipsValue(v, lease.ntp));
  if (lease.hostname !== undefined && wants(prl, OPT.HOSTNAME)) o.set(OPT.HOSTNAME, cached(v.str, lease.hostname, str));
  if (v.domainName !== undefined && wants(prl, OPT.DOMAIN_NAME)) o.set(OPT.DOMAIN_NAME, v.domainName);
  if (v.domainSearch !== undefined && prl?.includes(OPT.DOMAIN_SEARCH)) o.set(OPT.DOMAIN_SEARCH, v.domainSearch);
  if (wants(prl, OPT.BROADCAST)) o.set(OPT.BROADCAST, cached(v.ip, broadcastOf({ address: lease.ip, prefix: lease.prefix }), ip));
  addBoot(req, r, client, boot, ctx, v);
  return r;
}

function addBoot(req: DhcpMessage, r: DhcpMessage, client: BootClient, boot: BootAnswer, ctx: ReplyContext, v: ContextValues): void {
  const o = r.options;
  if (client.kind === 'pxe' || client.kind === 'uefi-http') {
    const uuid = req.options.get(OPT.CLIENT_UUID);
    if (uuid !== undefined) o.set(OPT.CLIENT_UUID, uuid);
  }
  switch (boot.kind) {
    case 'none':
      return;
    case 'tftp':
      r.siaddr = ctx.tftpServer;
      r.file = fileField(boot.file);
      o.set(OPT.TFTP_SERVER, v.tftpServerName);
      o.set(OPT.BOOTFILE, cached(v.str, boot.file, str));
      o.set(OPT.VENDOR_SPECIFIC, PXE_DIRECT);
      return;
    case 'http-binary':
      o.set(OPT.VENDOR_CLASS, HTTP_CLIENT);
      r.file = fileField(boot.url);
      o.set(OPT.BOOTFILE, cached(v.str, boot.url, str));
      return;
    case 'ipxe-script':
      r.siaddr = ctx.tftpServer;
      r.file = fileField(boot.url);
      o.set(OPT.BOOTFILE, cached(v.str, boot.url, str));
      // Without option 176 iPXE holds every DISCOVER about 3 s waiting for a ProxyDHCP server.
      o.set(OPT.IPXE_ENCAP, IPXE_NO_PROXYDHCP);
      return;
  }
}

/** The BOOTP file field holds 127 bytes and a NUL; longer names travel in option 67 only. */
function fileField(name: string): string {
  return name.length < 128 ? name : ''; // latin1: one byte per UTF-16 unit
}

export function buildNak(req: DhcpMessage, serverId: Ipv4, message: string): DhcpMessage {
  const r = baseReply(req, MESSAGE_TYPE.NAK, ip(serverId));
  r.options.set(OPT.MESSAGE, str(message));
  // RFC 2131 §4.3.2: a NAK through a relay sets the broadcast bit so the relay broadcasts it.
  if (req.giaddr !== 0) r.flags |= FLAG_BROADCAST;
  return r;
}
