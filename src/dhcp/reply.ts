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
import type { BootClient } from './classify.js';
import { INFINITE_LEASE } from '../config/range.js';
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

function baseReply(req: DhcpMessage, type: number, serverId: Ipv4): DhcpMessage {
  const options: DhcpOptions = new Map([[OPT.MESSAGE_TYPE, u8(type)], [OPT.SERVER_ID, ip(serverId)]]);
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
  const r = baseReply(req, type, ctx.serverId);
  const o = r.options;
  const prl = req.options.get(OPT.PARAM_REQUEST_LIST);
  const wants = (code: number) => prl === undefined || prl.includes(code);
  if (lease.leaseSeconds === undefined) r.ciaddr = req.ciaddr; // INFORM: RFC 2131 §4.3.5
  else {
    r.yiaddr = lease.ip;
    if (req.ciaddr !== 0) r.ciaddr = req.ciaddr;
    o.set(OPT.LEASE_TIME, u32(lease.leaseSeconds));
    if (lease.leaseSeconds !== INFINITE_LEASE) {
      o.set(OPT.RENEWAL_TIME, u32(Math.floor(lease.leaseSeconds * 0.5)));
      o.set(OPT.REBINDING_TIME, u32(Math.floor(lease.leaseSeconds * 0.875)));
    }
  }
  o.set(OPT.SUBNET_MASK, ip(prefixToMask(lease.prefix)));
  if (lease.gateway !== undefined) o.set(OPT.ROUTER, ip(lease.gateway));
  if (lease.dns.length > 0 && wants(OPT.DNS)) o.set(OPT.DNS, ips(lease.dns));
  if (lease.ntp.length > 0 && wants(OPT.NTP)) o.set(OPT.NTP, ips(lease.ntp));
  if (lease.hostname !== undefined && wants(OPT.HOSTNAME)) o.set(OPT.HOSTNAME, str(lease.hostname));
  if (ctx.domainName !== undefined) {
    if (wants(OPT.DOMAIN_NAME)) o.set(OPT.DOMAIN_NAME, str(ctx.domainName));
    if (prl?.includes(OPT.DOMAIN_SEARCH)) o.set(OPT.DOMAIN_SEARCH, domainSearch([ctx.domainName]));
  }
  if (wants(OPT.BROADCAST)) o.set(OPT.BROADCAST, ip(broadcastOf({ address: lease.ip, prefix: lease.prefix })));
  addBoot(req, r, client, boot, ctx);
  return r;
}

function addBoot(req: DhcpMessage, r: DhcpMessage, client: BootClient, boot: BootAnswer, ctx: ReplyContext): void {
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
      o.set(OPT.TFTP_SERVER, str(formatIpv4(ctx.tftpServer)));
      o.set(OPT.BOOTFILE, str(boot.file));
      // PXE discovery control = 8: boot the file named here; no boot menu, no proxyDHCP on 4011.
      o.set(OPT.VENDOR_SPECIFIC, pxeDiscoveryControlDirect());
      return;
    case 'http-binary':
      // UEFI HTTP boot requires the vendor class echoed back (UEFI spec §24.7.2).
      o.set(OPT.VENDOR_CLASS, str('HTTPClient'));
      r.file = fileField(boot.url);
      o.set(OPT.BOOTFILE, str(boot.url));
      return;
    case 'ipxe-script':
      r.siaddr = ctx.tftpServer;
      r.file = fileField(boot.url);
      o.set(OPT.BOOTFILE, str(boot.url));
      // iPXE encapsulated option 176 (no-pxedhcp) = 1: don't wait for ProxyDHCP offers.
      // Without it iPXE holds every DISCOVER about 3 s waiting for a ProxyDHCP server.
      o.set(OPT.IPXE_ENCAP, subOptions([[176, u8(1)]]));
      return;
  }
}

/** The BOOTP file field holds 127 bytes and a NUL; longer names travel in option 67 only. */
function fileField(name: string): string {
  return Buffer.byteLength(name, 'latin1') < 128 ? name : '';
}

export function buildNak(req: DhcpMessage, serverId: Ipv4, message: string): DhcpMessage {
  const r = baseReply(req, MESSAGE_TYPE.NAK, serverId);
  r.options.set(OPT.MESSAGE, str(message));
  // RFC 2131 §4.3.2: a NAK through a relay sets the broadcast bit so the relay broadcasts it.
  if (req.giaddr !== 0) r.flags |= FLAG_BROADCAST;
  return r;
}
