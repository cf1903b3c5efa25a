/**
 * Boot milestones: what the DHCP, TFTP and HTTP shells report (their `onOutcome`, `onComplete`
 * and `onServed` hooks), told to BootEvents for the host they concern. The one place that maps
 * a protocol's event to a milestone. Messages are deterministic per host and boot stage (no
 * xid, no time) so that repeats aggregate into one Event with a count.
 */
import type { BootClient } from '../boot/boot-client.js';
import type { DhcpOutcome } from '../dhcp/decide.js';
import { MESSAGE_TYPE, OPT, getMessageType, getString } from '../dhcp/options.js';
import type { BootAnswer } from '../boot/boot-answer.js';
import { formatIpv4, parseIpv4 } from '../net/ipv4.js';
import type { HostIndex } from '../leases/host-index.js';
import type { TftpTransferDone } from '../tftp/tftp-server.js';
import type { HttpServed } from '../http/boot-routes.js';
import { type AckToScript, ackToScriptText } from '../boot/boot-timings.js';
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

/** Reports one DHCP outcome of a known host to `events`; outcomes without a host are ignored. */
export function reportDhcpOutcome(outcome: DhcpOutcome, events: BootEvents): void {
  const d = outcome.facts;
  const host = d?.host;
  if (d === undefined || host === undefined) return;
  if (outcome.kind === 'ignore') {
    if (!QUIET_DROPS.has(outcome.reason)) events.dropped(host, outcome.reason, outcome.detail, 'dhcp');
    return;
  }
  // INFORM answers carry no lease; they are not a boot milestone.
  if (d.messageType === MESSAGE_TYPE.INFORM) return;
  const type = getMessageType(outcome.reply.options);
  if (type === MESSAGE_TYPE.NAK) {
    events.leaseRefused(host, getString(outcome.reply.options, OPT.MESSAGE) ?? 'address refused');
    return;
  }
  const prefix = d.source === 'range' ? '' : host.lease === undefined ? '' : `/${host.lease.prefix}`;
  const ip = `${formatIpv4(outcome.reply.yiaddr)}${prefix}`;
  const detail = `to ${d.mac} (${clientText(d.client)})${d.source === 'range' ? ' from the dynamic range' : ''}; ${bootText(outcome.boot)}`;
  if (type === MESSAGE_TYPE.OFFER) events.leaseOffered(host, ip, detail);
  else if (type === MESSAGE_TYPE.ACK) events.leaseAcknowledged(host, ip, detail);
}

/** The milestones of every protocol, for the hosts of `index`. */
export class BootMilestones {
  readonly #events: BootEvents;
  readonly #index: HostIndex;

  constructor(events: BootEvents, index: HostIndex) {
    this.#events = events;
    this.#index = index;
  }

  dhcp(outcome: DhcpOutcome): void {
    reportDhcpOutcome(outcome, this.#events);
  }

  /** A boot file sent over TFTP, to the host that holds the peer's address. */
  tftp(e: TftpTransferDone): void {
    const ip = parseIpv4(e.peer);
    const host = ip === undefined ? undefined : this.#index.hostByIp(ip);
    if (host !== undefined) this.#events.bootFileServed(host, e.file, 'tftp');
  }

  /** A host's script over HTTP (binaries are not matched to a host), with the time since its ACK the first time. */
  http(e: HttpServed, sinceAck?: AckToScript): void {
    if (e.host !== undefined && e.what === 'script')
      this.#events.scriptServed(e.host, e.name, sinceAck === undefined ? undefined : ackToScriptText(sinceAck));
  }
}
