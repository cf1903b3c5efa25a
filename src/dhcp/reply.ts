/**
 * Builds OFFER/ACK/NAK messages from the request (RFC 2131 §4.3.1 table 3): xid, flags, giaddr,
 * chaddr, htype and hlen are copied; option 82 (RFC 3046 §2.2) and option 61 (RFC 6842) are
 * echoed. Options honour the parameter request list: the lease essentials are always sent,
 * the rest when asked for (or when the client sent no list), boot options whenever the client
 * is a boot client. Pure.
 */
import { BOOTREPLY, FLAG_BROADCAST, type DhcpMessage, type DhcpOptions } from './codec.js';
import {
  MESSAGE_TYPE,
  OPT,
  domainSearch,
  ip,
  ips,
  pxeDiscoveryControlDirect,
  str,
  subOptions,
  u32,
  u8,
} from './options.js';
import { IPV4_ANY, broadcastOf, formatIpv4, prefixToMask, type Ipv4 } from '../net/ipv4.js';
import type { BootAnswer } from '../boot/boot-answer.js';
import type { BootClient } from '../boot/boot-client.js';
import { INFINITE_LEASE } from '../leases/range.js';
import type { LeaseParams } from '../leases/host.js';

/** A lease as a reply carries it: the host's parameters, the lease time, and their option values. */
export interface ReplyLease extends LeaseParams {
  /** Undefined for an INFORM answer (no lease time). */
  readonly leaseSeconds: number | undefined;
  readonly values: LeaseValues;
}

/** A lease's option values, encoded once per lease (a host's) or per policy (the range's). */
export interface LeaseValues {
  readonly mask: Uint8Array;
  readonly router: Uint8Array | undefined;
  readonly dns: Uint8Array | undefined;
  readonly ntp: Uint8Array | undefined;
  readonly hostname: Uint8Array | undefined;
  readonly broadcast: Uint8Array;
  /** Options 51, 58, 59; undefined for an INFORM answer. */
  readonly times: LeaseTimes | undefined;
}

interface LeaseTimes {
  readonly lease: Uint8Array;
  /** T1 and T2; undefined for an infinite lease. */
  readonly renewal: Uint8Array | undefined;
  readonly rebinding: Uint8Array | undefined;
}

export interface ReplyContext {
  readonly serverId: Ipv4;
  /** next-server / siaddr and option 66 for TFTP boot files. */
  readonly tftpServer: Ipv4;
  readonly domainName: string | undefined;
}

/** Router, DNS and NTP of range leases, on the server's subnet. */
export interface RangeParams {
  readonly prefix: number;
  readonly gateway: Ipv4 | undefined;
  readonly dns: readonly Ipv4[];
  readonly ntp: readonly Ipv4[];
}

// ---- option values shared across replies ---------------------------------------------------
//
// A reply's option values are Uint8Arrays that encode() only reads, so values that are the same
// for many replies are built once and shared: the constants below, and a policy's ReplyValues.
// No one writes to an option value after it is built.

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

/**
 * The option values of one DHCP policy, built when the policy is compiled (dhcpPolicy()) and
 * owned by it: the server's own values, option 67 of every boot answer, the range's lease
 * values, and each host's lease values the first time that host is answered (kept per lease
 * object: a host update brings a new one, and the old one goes with it).
 */
export class ReplyValues {
  readonly serverId: Uint8Array;
  /** Option 66: the TFTP server as a dotted-quad string. */
  readonly tftpServerName: Uint8Array;
  readonly domainName: Uint8Array | undefined;
  readonly domainSearch: Uint8Array | undefined;
  readonly #bootFiles: Map<BootAnswer, Uint8Array>;
  readonly #range: RangeParams;
  readonly #rangeValues: Omit<LeaseValues, 'broadcast' | 'times'>;
  /** Range broadcasts by address: one per subnet the ranges cover. */
  readonly #rangeBroadcasts = new Map<number, Uint8Array>();
  /** Lease times by seconds: the host lease time and one per range, all from the configuration. */
  readonly #times = new Map<number, LeaseTimes>();
  readonly #hostLeases = new WeakMap<LeaseParams, ReplyLease>();
  readonly #hostLeaseSeconds: number;

  constructor(ctx: ReplyContext, range: RangeParams, hostLeaseSeconds: number, answers: readonly BootAnswer[]) {
    this.serverId = ip(ctx.serverId);
    this.tftpServerName = str(formatIpv4(ctx.tftpServer));
    this.domainName = ctx.domainName === undefined ? undefined : str(ctx.domainName);
    this.domainSearch = ctx.domainName === undefined ? undefined : domainSearch([ctx.domainName]);
    this.#bootFiles = new Map();
    for (const a of answers) if (a.kind !== 'none') this.#bootFiles.set(a, str(a.kind === 'tftp' ? a.file : a.url));
    this.#range = range;
    this.#rangeValues = {
      mask: ip(prefixToMask(range.prefix)),
      router: range.gateway === undefined ? undefined : ip(range.gateway),
      dns: range.dns.length > 0 ? ips(range.dns) : undefined,
      ntp: range.ntp.length > 0 ? ips(range.ntp) : undefined,
      hostname: undefined,
    };
    this.#hostLeaseSeconds = hostLeaseSeconds;
  }

  /** A host's lease with the policy's lease time. */
  hostLease(lease: LeaseParams): ReplyLease {
    let r = this.#hostLeases.get(lease);
    if (r === undefined) {
      r = {
        ...lease,
        leaseSeconds: this.#hostLeaseSeconds,
        values: { ...leaseValues(lease), times: this.#timesOf(this.#hostLeaseSeconds) },
      };
      this.#hostLeases.set(lease, r);
    }
    return r;
  }

  /** A range lease of `address` (leaseSeconds undefined: an INFORM answer). */
  rangeLease(address: Ipv4, leaseSeconds: number | undefined): ReplyLease {
    const r = this.#range;
    const b = broadcastOf({ address, prefix: r.prefix });
    let broadcast = this.#rangeBroadcasts.get(b);
    if (broadcast === undefined) {
      broadcast = ip(b);
      this.#rangeBroadcasts.set(b, broadcast);
    }
    return {
      ip: address,
      prefix: r.prefix,
      gateway: r.gateway,
      dns: r.dns,
      ntp: r.ntp,
      hostname: undefined,
      leaseSeconds,
      values: {
        ...this.#rangeValues,
        broadcast,
        times: leaseSeconds === undefined ? undefined : this.#timesOf(leaseSeconds),
      },
    };
  }

  /** Option 67 of a boot answer (built at compile time for every answer of the table). */
  bootFile(boot: BootAnswer & { readonly kind: 'tftp' | 'http-binary' | 'ipxe-script' }): Uint8Array {
    return this.#bootFiles.get(boot) ?? str(boot.kind === 'tftp' ? boot.file : boot.url);
  }

  #timesOf(seconds: number): LeaseTimes {
    let t = this.#times.get(seconds);
    if (t === undefined) {
      const infinite = seconds === INFINITE_LEASE;
      t = {
        lease: u32(seconds),
        renewal: infinite ? undefined : u32(Math.floor(seconds * 0.5)),
        rebinding: infinite ? undefined : u32(Math.floor(seconds * 0.875)),
      };
      this.#times.set(seconds, t);
    }
    return t;
  }
}

function leaseValues(lease: LeaseParams): Omit<LeaseValues, 'times'> {
  return {
    mask: ip(prefixToMask(lease.prefix)),
    router: lease.gateway === undefined ? undefined : ip(lease.gateway),
    dns: lease.dns.length > 0 ? ips(lease.dns) : undefined,
    ntp: lease.ntp.length > 0 ? ips(lease.ntp) : undefined,
    hostname: lease.hostname === undefined ? undefined : str(lease.hostname),
    broadcast: ip(broadcastOf({ address: lease.ip, prefix: lease.prefix })),
  };
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
    op: BOOTREPLY,
    htype: req.htype,
    hlen: req.hlen,
    hops: 0,
    xid: req.xid,
    secs: 0,
    flags: req.flags,
    ciaddr: IPV4_ANY,
    yiaddr: IPV4_ANY,
    siaddr: IPV4_ANY,
    giaddr: req.giaddr,
    chaddr: req.chaddr,
    sname: '',
    file: '',
    options,
  };
}

export function buildLeaseReply(
  req: DhcpMessage,
  type: typeof MESSAGE_TYPE.OFFER | typeof MESSAGE_TYPE.ACK,
  lease: ReplyLease,
  client: BootClient,
  boot: BootAnswer,
  ctx: ReplyContext,
  v: ReplyValues,
): DhcpMessage {
  const r = baseReply(req, type, v.serverId);
  const o = r.options;
  const lv = lease.values;
  const prl = req.options.get(OPT.PARAM_REQUEST_LIST);
  if (lv.times === undefined)
    r.ciaddr = req.ciaddr; // INFORM: RFC 2131 §4.3.5
  else {
    r.yiaddr = lease.ip;
    if (req.ciaddr !== 0) r.ciaddr = req.ciaddr;
    o.set(OPT.LEASE_TIME, lv.times.lease);
    if (lv.times.renewal !== undefined) o.set(OPT.RENEWAL_TIME, lv.times.renewal);
    if (lv.times.rebinding !== undefined) o.set(OPT.REBINDING_TIME, lv.times.rebinding);
  }
  o.set(OPT.SUBNET_MASK, lv.mask);
  if (lv.router !== undefined) o.set(OPT.ROUTER, lv.router);
  if (lv.dns !== undefined && wants(prl, OPT.DNS)) o.set(OPT.DNS, lv.dns);
  if (lv.ntp !== undefined && wants(prl, OPT.NTP)) o.set(OPT.NTP, lv.ntp);
  if (lv.hostname !== undefined && wants(prl, OPT.HOSTNAME)) o.set(OPT.HOSTNAME, lv.hostname);
  if (v.domainName !== undefined && wants(prl, OPT.DOMAIN_NAME)) o.set(OPT.DOMAIN_NAME, v.domainName);
  if (v.domainSearch !== undefined && prl?.includes(OPT.DOMAIN_SEARCH)) o.set(OPT.DOMAIN_SEARCH, v.domainSearch);
  if (wants(prl, OPT.BROADCAST)) o.set(OPT.BROADCAST, lv.broadcast);
  addBoot(req, r, client, boot, ctx, v);
  return r;
}

function addBoot(
  req: DhcpMessage,
  r: DhcpMessage,
  client: BootClient,
  boot: BootAnswer,
  ctx: ReplyContext,
  v: ReplyValues,
): void {
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
      o.set(OPT.BOOTFILE, v.bootFile(boot));
      o.set(OPT.VENDOR_SPECIFIC, PXE_DIRECT);
      return;
    case 'http-binary':
      o.set(OPT.VENDOR_CLASS, HTTP_CLIENT);
      r.file = fileField(boot.url);
      o.set(OPT.BOOTFILE, v.bootFile(boot));
      return;
    case 'ipxe-script':
      r.siaddr = ctx.tftpServer;
      r.file = fileField(boot.url);
      o.set(OPT.BOOTFILE, v.bootFile(boot));
      // Without option 176 iPXE holds every DISCOVER about 3 s waiting for a ProxyDHCP server.
      o.set(OPT.IPXE_ENCAP, IPXE_NO_PROXYDHCP);
      return;
  }
}

/** The same lease without a lease time: an INFORM answer (RFC 2131 §4.3.5). */
export function informLease(lease: ReplyLease): ReplyLease {
  return { ...lease, leaseSeconds: undefined, values: { ...lease.values, times: undefined } };
}

/**
 * The same reply promising `seconds` of lease (T1 and T2 at half and seven eighths of it): a
 * renewal answered with the time the journal already holds when the extension cannot be written.
 */
export function withLeaseTime(reply: DhcpMessage, seconds: number): DhcpMessage {
  const options: DhcpOptions = new Map(reply.options);
  options.set(OPT.LEASE_TIME, u32(seconds));
  if (seconds === INFINITE_LEASE) {
    options.delete(OPT.RENEWAL_TIME);
    options.delete(OPT.REBINDING_TIME);
  } else {
    options.set(OPT.RENEWAL_TIME, u32(Math.floor(seconds * 0.5)));
    options.set(OPT.REBINDING_TIME, u32(Math.floor(seconds * 0.875)));
  }
  return { ...reply, options };
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
