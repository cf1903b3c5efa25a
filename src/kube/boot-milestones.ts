/**
 * Boot milestones: the one place that turns what a wing reports (DHCP's `onOutcome`, TFTP's
 * `onStart`/`onEnd`, the boot routes' `onServed`, the image proxy's per-request `served`, the
 * Ironic API proxy's `onAgentCall`, the callback listener's `onForwarded`) into a milestone of a
 * host (boot/boot-timeline.ts's closed union), and tells it to both consumers: the host's boot
 * timeline (/debug/boots, /ui, the milestone histogram) and, for the milestones they cover,
 * the BareMetalHost's Events (boot-events.ts). Both read the same MilestoneReport, so they name
 * the same milestones.
 *
 * Hosts are keyed by MAC. Requests that know only their client's address (TFTP, images, IPA)
 * find it from the DHCP ACK that gave the address (boot/boot-timings.ts), else from the host
 * that holds the address. Event messages are deterministic per host and boot stage (no xid, no
 * time) so that repeats aggregate into one Event with a count.
 */
import type { BootClient } from '../boot/boot-client.js';
import type { DhcpOutcome } from '../dhcp/decide.js';
import type { Dhcp6Outcome } from '../dhcp6/outcome.js';
import { MSG6 } from '../dhcp6/options.js';
import { formatIpv6, parseIpv6, type Ipv6 } from '../net/ipv6.js';
import { acknowledgementOf } from '../dhcp/acknowledgement.js';
import { MESSAGE_TYPE, OPT, getMessageType, getString } from '../dhcp/options.js';
import type { BootAnswer } from '../boot/boot-answer.js';
import type { BootMilestone, BootTimeline, MilestoneDetail } from '../boot/boot-timeline.js';
import { formatIpv4, parseIpv4 } from '../net/ipv4.js';
import { parseMac, type Mac } from '../net/mac.js';
import type { HostIndex } from '../leases/host-index.js';
import type { HostRecord } from '../leases/host.js';
import type { TftpTransferEnd, TftpTransferStart } from '../tftp/tftp-server.js';
import type { HttpServed } from '../http/boot-routes.js';
import type { AgentCall } from '../proxy/api-proxy.js';
import type { AgentCallback } from '../proxy/callback-server.js';
import { type BootTimings, type LeaseIp, ackToScriptText } from '../boot/boot-timings.js';
import type { BootEvents } from './boot-events.js';

/** Drops that are routine for a known host and say nothing worth an Event. */
const QUIET_DROPS: ReadonlySet<string> = new Set([
  'released',
  'unknown-host',
  'not-a-request',
  'not-ethernet',
  'malformed',
]);

export function clientText(c: BootClient): string {
  switch (c.kind) {
    case 'ipxe':
      return 'iPXE';
    case 'uefi-http':
      return `UEFI HTTP boot, arch ${c.archCode}`;
    case 'pxe':
      return `PXE firmware, arch ${c.archCode}`;
    case 'plain':
      return 'DHCP client';
  }
}

export function bootText(b: BootAnswer | undefined): string {
  if (b === undefined) return 'no boot file';
  switch (b.kind) {
    case 'none':
      return `no boot file (${b.reason})`;
    case 'tftp':
      return `boot file ${b.file} over TFTP`;
    case 'http-binary':
      return `boot file ${b.url}`;
    case 'ipxe-script':
      return `iPXE script ${b.url}`;
  }
}

/** A milestone of one host: what the timeline records and the Events are made from. */
export interface MilestoneReport {
  readonly mac: Mac;
  /** The known host, when there is one (Events are only for BareMetalHosts). */
  readonly host: HostRecord | undefined;
  readonly milestone: BootMilestone;
  readonly detail: MilestoneDetail;
}

const DHCP_MILESTONES: Readonly<Record<BootClient['kind'], readonly [BootMilestone, BootMilestone]>> = {
  pxe: ['dhcp-offer', 'dhcp-ack'],
  'uefi-http': ['dhcp-offer', 'dhcp-ack'],
  ipxe: ['ipxe-dhcp-offer', 'ipxe-dhcp-ack'],
  plain: ['os-dhcp-offer', 'os-dhcp-ack'],
};

/** The milestone of one DHCP outcome; undefined for outcomes that are none (INFORM, routine drops, strangers). Pure. */
export function dhcpMilestone(outcome: DhcpOutcome): MilestoneReport | undefined {
  const d = outcome.facts;
  if (d === undefined) return undefined;
  const host = d.host;
  if (outcome.kind === 'ignore') {
    if (host === undefined || QUIET_DROPS.has(outcome.reason)) return undefined;
    const detail: MilestoneDetail =
      outcome.detail === undefined ? { reason: outcome.reason } : { reason: outcome.reason, why: outcome.detail };
    return { mac: d.mac, host, milestone: 'dhcp-dropped', detail };
  }
  // INFORM answers carry no lease; they are not a boot milestone.
  if (d.messageType === MESSAGE_TYPE.INFORM) return undefined;
  const type = getMessageType(outcome.reply.options);
  if (type === MESSAGE_TYPE.NAK) {
    const why = getString(outcome.reply.options, OPT.MESSAGE) ?? 'address refused';
    return { mac: d.mac, host, milestone: 'dhcp-refused', detail: { why } };
  }
  if (type !== MESSAGE_TYPE.OFFER && type !== MESSAGE_TYPE.ACK) return undefined;
  const [offer, ack] = DHCP_MILESTONES[d.client.kind];
  const prefix = d.source === 'range' || host?.lease === undefined ? '' : `/${host.lease.prefix}`;
  return {
    mac: d.mac,
    host,
    milestone: type === MESSAGE_TYPE.OFFER ? offer : ack,
    detail: {
      ip: `${formatIpv4(outcome.reply.yiaddr)}${prefix}`,
      client: clientText(d.client),
      source: d.source ?? 'none',
      boot: bootText(outcome.boot),
    },
  };
}

/**
 * The milestone of one DHCPv6 outcome (the same names as DHCPv4's: Advertise is the offer, a
 * Reply that gives an address the acknowledgement), with the address to map back to the MAC.
 * Undefined for outcomes that are none (Information-request, Release, strangers). Pure.
 */
export function dhcp6Milestone(
  outcome: Dhcp6Outcome,
): { report: MilestoneReport; ack: Ipv6 | undefined; client: BootClient['kind'] } | undefined {
  const d = outcome.facts;
  if (d === undefined || d.mac === undefined) return undefined;
  const host = d.host;
  if (outcome.kind === 'ignore') {
    if (host === undefined || QUIET_DROPS.has(outcome.reason)) return undefined;
    const detail: MilestoneDetail =
      outcome.detail === undefined ? { reason: outcome.reason } : { reason: outcome.reason, why: outcome.detail };
    return { report: { mac: d.mac, host, milestone: 'dhcp-dropped', detail }, ack: undefined, client: d.client.kind };
  }
  if (outcome.address === undefined) return undefined;
  const type = outcome.inner.msgType;
  if (type !== MSG6.ADVERTISE && type !== MSG6.REPLY) return undefined;
  const [offer, ack] = DHCP_MILESTONES[d.client.kind];
  const prefix = d.source === 'range' || host?.lease6 === undefined ? '' : `/${host.lease6.prefix}`;
  const report: MilestoneReport = {
    mac: d.mac,
    host,
    milestone: type === MSG6.ADVERTISE ? offer : ack,
    detail: {
      ip: `${formatIpv6(outcome.address)}${prefix}`,
      client: `${clientText(d.client)} over DHCPv6`,
      source: d.source ?? 'none',
      boot: bootText(outcome.boot),
    },
  };
  return { report, ack: type === MSG6.REPLY ? outcome.address : undefined, client: d.client.kind };
}

/** The lease address of a peer as a socket reports it (IPv4, IPv4-mapped, or IPv6 with a zone). */
function leaseIpOf(peer: string | undefined): LeaseIp | undefined {
  if (typeof peer !== 'string') return undefined;
  const bare = peer.replace(/^::ffff:/, '').replace(/%.*$/, '');
  return parseIpv4(bare) ?? parseIpv6(bare);
}

/** The Event a DHCP milestone makes, for a known host. */
function dhcpEvent(r: MilestoneReport, events: BootEvents): void {
  const host = r.host;
  if (host === undefined) return;
  const d = r.detail;
  switch (r.milestone) {
    case 'dhcp-dropped':
      events.dropped(host, String(d.reason), d.why === undefined ? undefined : String(d.why), 'dhcp');
      return;
    case 'dhcp-refused':
      events.leaseRefused(host, String(d.why));
      return;
    default: {
      const text = `to ${r.mac} (${d.client})${d.source === 'range' ? ' from the dynamic range' : ''}; ${d.boot}`;
      if (r.milestone.endsWith('-offer')) events.leaseOffered(host, String(d.ip), text);
      else events.leaseAcknowledged(host, String(d.ip), text);
    }
  }
}

/** Reports one DHCP outcome of a known host to `events`; outcomes without a host are ignored. */
export function reportDhcpOutcome(outcome: DhcpOutcome, events: BootEvents): void {
  const r = dhcpMilestone(outcome);
  if (r !== undefined) dhcpEvent(r, events);
}

/** What the image proxy tells of one answered request (images/plugin.ts's ImageServed). */
export interface ImageRequestDone {
  readonly peer: string;
  readonly path: string;
  readonly status: number;
  readonly bytes: number;
  readonly ms: number;
  readonly complete: boolean;
}

/** The image paths that are the kernel and the initramfs (the inspector's, and Ironic's per-node ones). */
export interface ImagePaths {
  readonly kernel: string;
  readonly initramfs: string;
}

/** Which milestone an image path is. Pure. */
export function imageMilestone(path: string, paths: ImagePaths): 'kernel' | 'initramfs' | 'image' {
  const is = (p: string) => p !== '' && path.endsWith(`/${p.replace(/^\/+/, '')}`);
  if (is(paths.kernel) || path.endsWith('/deploy_kernel')) return 'kernel';
  if (is(paths.initramfs) || path.endsWith('/deploy_ramdisk')) return 'initramfs';
  return 'image';
}

export interface BootMilestonesOptions {
  /** The BareMetalHost Events; NO_BOOT_EVENTS without a cluster. */
  readonly events: BootEvents;
  readonly index: HostIndex;
  /** ACK → first script times, and the MAC each ACK's address belongs to. */
  readonly timings: BootTimings;
  readonly timeline: BootTimeline;
  readonly imagePaths: ImagePaths;
  /** The MACs Ironic confirmed for a node (the agent store), for IPA's calls and Ironic's callbacks. */
  readonly macsOfNode?: (node: string) => readonly string[] | undefined;
  readonly now: () => number;
  /** Every report, known host or not: for the rates the /ui page shows. */
  readonly onActivity?: (kind: 'dhcp' | 'tftp' | 'http' | 'image', bytes: number) => void;
}

/** The milestones of every protocol, to the timeline and the Events. */
export class BootMilestones {
  readonly #o: BootMilestonesOptions;

  constructor(o: BootMilestonesOptions) {
    this.#o = o;
  }

  #record(r: MilestoneReport): void {
    // A BareMetalHost's namespace/name; a static host's hostname, if it has one.
    const h = r.host;
    this.#o.timeline.record(
      r.mac,
      r.milestone,
      r.detail,
      h?.origin.kind === 'bmh' ? h.origin.name : h?.lease?.hostname,
    );
  }

  /** The MAC of the host a request came from: by the ACK that gave its address, else the host holding it. */
  #byAddress(peer: string | undefined): { mac: Mac; host: HostRecord | undefined } | undefined {
    const ip = leaseIpOf(peer);
    if (ip === undefined) return undefined;
    const host = typeof ip === 'bigint' ? this.#o.index.hostByIp6(ip) : this.#o.index.hostByIp(ip);
    const mac = this.#o.timings.macOf(ip) ?? host?.macs[0];
    if (mac === undefined) return undefined;
    const found = this.#o.index.lookup(mac);
    return { mac, host: found.kind === 'host' ? found.host : host };
  }

  #byNode(node: string | undefined, macs: readonly string[], peer: string) {
    const named = macs[0] ?? (node === undefined ? undefined : this.#o.macsOfNode?.(node)?.[0]);
    const mac = named === undefined ? undefined : parseMac(named);
    if (mac === undefined) return this.#byAddress(peer);
    const found = this.#o.index.lookup(mac);
    return { mac, host: found.kind === 'host' ? found.host : undefined };
  }

  dhcp(outcome: DhcpOutcome): void {
    if (outcome.kind === 'reply') this.#o.onActivity?.('dhcp', 0);
    // Every ACK, range clients' too: the address → MAC map the other protocols are matched by.
    const ack = acknowledgementOf(outcome);
    if (ack !== undefined) this.#o.timings.acknowledged(ack.mac, ack.ip, ack.client, this.#o.now());
    const r = dhcpMilestone(outcome);
    if (r === undefined) return;
    this.#record(r);
    dhcpEvent(r, this.#o.events);
  }

  /** A DHCPv6 outcome: Advertise and Reply are the offer and the acknowledgement of IPv6. */
  dhcp6(outcome: Dhcp6Outcome): void {
    if (outcome.kind === 'reply') this.#o.onActivity?.('dhcp', 0);
    const r = dhcp6Milestone(outcome);
    if (r === undefined) return;
    if (r.ack !== undefined) this.#o.timings.acknowledged(r.report.mac, r.ack, r.client, this.#o.now());
    this.#record(r.report);
    dhcpEvent(r.report, this.#o.events);
  }

  tftpStart(e: TftpTransferStart): void {
    const who = this.#byAddress(e.peer);
    if (who !== undefined) this.#record({ ...who, milestone: 'tftp-start', detail: { file: e.file, size: e.size } });
  }

  /** A transfer's end: complete (a boot file served), EDK2's tsize probe (nothing), or a failure. */
  tftpEnd(e: TftpTransferEnd): void {
    if (e.outcome === 'options-declined') return;
    this.#o.onActivity?.('tftp', e.bytes);
    const who = this.#byAddress(e.peer);
    if (who === undefined) return;
    const detail = { file: e.file, bytes: e.bytes, resends: e.retransmissions, ms: Math.round(e.ms) };
    if (e.outcome !== 'complete') {
      this.#record({ ...who, milestone: 'tftp-failed', detail: { ...detail, reason: e.outcome } });
      return;
    }
    this.#record({ ...who, milestone: 'tftp-end', detail });
    if (who.host !== undefined) this.#o.events.bootFileServed(who.host, e.file, 'tftp');
  }

  /** A script or an iPXE binary over HTTP; a host script's Event tells the time since its ACK the first time. */
  http(e: HttpServed): void {
    this.#o.onActivity?.('http', 0);
    const ip = leaseIpOf(e.peer);
    const sinceAck =
      e.what === 'script' ? this.#o.timings.scriptRequested({ mac: e.mac, ip }, this.#o.now()) : undefined;
    const who =
      e.mac !== undefined ? { mac: e.mac, host: e.host } : e.peer === undefined ? undefined : this.#byAddress(e.peer);
    if (who !== undefined) {
      const milestone = e.what === 'binary' ? 'http-binary' : e.mac === undefined ? 'boot-script' : 'host-script';
      const detail: MilestoneDetail = e.what === 'binary' ? { file: e.name } : { script: e.name };
      this.#record({ ...who, milestone, detail });
    }
    if (e.host !== undefined && e.what === 'script')
      this.#o.events.scriptServed(e.host, e.name, sinceAck === undefined ? undefined : ackToScriptText(sinceAck));
  }

  /** A request the image proxy answered (in its worker or in-process). */
  image(e: ImageRequestDone): void {
    this.#o.onActivity?.('image', e.bytes);
    const who = this.#byAddress(e.peer);
    if (who === undefined) return;
    const ok = e.complete && e.status < 400;
    const detail = { path: e.path, status: e.status, bytes: e.bytes, ms: Math.round(e.ms) };
    this.#record({ ...who, milestone: ok ? imageMilestone(e.path, this.#o.imagePaths) : 'image-failed', detail });
  }

  /** IPA's lookup, heartbeat or inspection data through the API proxy, once Ironic accepted it. */
  agentCall(e: AgentCall): void {
    if (e.status >= 400) return;
    const who = this.#byNode(e.node, e.macs, e.peer);
    if (who === undefined) return;
    const milestone = e.route === 'lookup' ? 'ipa-lookup' : e.route === 'heartbeat' ? 'ipa-heartbeat' : 'inspection';
    const detail: Record<string, string | number> = { status: e.status, ms: Math.round(e.ms) };
    if (e.node !== undefined) detail.node = e.node;
    if (e.bytes !== undefined) detail.bytes = e.bytes;
    this.#record({ ...who, milestone, detail });
  }

  /** Ironic's call to IPA through the callback listener. */
  callback(e: AgentCallback): void {
    const mac = parseMac(this.#o.macsOfNode?.(e.node)?.[0] ?? '');
    if (mac === undefined) return;
    const found = this.#o.index.lookup(mac);
    this.#record({
      mac,
      host: found.kind === 'host' ? found.host : undefined,
      milestone: 'callback',
      detail: { node: e.node, request: `${e.method} ${e.path}`, status: e.status, ms: Math.round(e.ms) },
    });
  }
}
