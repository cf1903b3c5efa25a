/**
 * The DHCP decision: request in, outcome out. Synchronous and free of I/O: lease sources are
 * in-memory indexes, and the one side effect that must reach the disk (a range lease) is
 * returned as a journal record for the shell to make durable before it sends the ACK.
 *
 * RFC 2131 §4.3: DISCOVER → OFFER; REQUEST in SELECTING (server id present), INIT-REBOOT
 * (requested address, no ciaddr), RENEWING/REBINDING (ciaddr) → ACK or NAK; DECLINE; RELEASE;
 * INFORM. A NAK is sent only for a client we hold a record of; for anything else we are silent,
 * because another server may own it.
 */
import type { DhcpMessage } from './codec.js';
import { MESSAGE_TYPE, OPT, getIp, getMessageType } from './options.js';
import { classify } from './classify.js';
import type { BootClient } from '../boot/boot-client.js';
import { replyDestination, type Destination } from './destination.js';
import { buildLeaseReply, buildNak, informLease, type ReplyLease } from './reply.js';
import type { DhcpPolicy } from './policy.js';
import type { BootAnswer } from '../boot/boot-answer.js';
import { macFromBytes, type Mac } from '../net/mac.js';
import { formatIpv4, inSubnet } from '../net/ipv4.js';
import type { HostIndex } from '../leases/host-index.js';
import type { HostRecord } from '../leases/host.js';
import type { CommitResult, CommitUndo, JournalRecord, LeasePool } from '../leases/pool.js';

/** Every reason a request gets no reply. Metrics count them; logs name them. */
export const DROP_REASONS = [
  'malformed',
  'not-a-request',
  'not-ethernet',
  'no-message-type',
  'unsupported-message-type',
  'unknown-host',
  'host-not-servable',
  'duplicate-mac',
  'ip-conflict',
  'pool-exhausted',
  'sources-loading',
  'other-server',
  'no-record',
  'released',
  'declined',
  'journal-failed',
  'journal-full',
  'lease-conflict',
  'send-failed',
  // A datagram on the loopback feed port that socat did not send (--dhcp-listen with a unicast address).
  'feed-foreign-source',
] as const;
export type DropReason = (typeof DROP_REASONS)[number];

export type LeaseSource = 'bmh' | 'static' | 'range';

/** What decide() learnt about a request on the way (who asked, as what client, whose lease): for logs, metrics and boot events. */
export interface RequestFacts {
  readonly mac: Mac;
  readonly messageType: number | undefined;
  readonly client: BootClient;
  readonly source: LeaseSource | undefined;
  readonly host: HostRecord | undefined;
}

export type DhcpOutcome =
  | {
      readonly kind: 'reply';
      readonly reply: DhcpMessage;
      readonly dest: Destination;
      readonly facts: RequestFacts;
      readonly boot: BootAnswer | undefined;
      /** Must be durable before the reply is sent. */
      readonly persist: JournalRecord | undefined;
      /** The range commit behind `persist`: undone if the record cannot be written. */
      readonly commit: RangeCommit | undefined;
    }
  | {
      readonly kind: 'ignore';
      readonly reason: DropReason;
      readonly detail: string | undefined;
      readonly facts: RequestFacts | undefined;
      /** Durable state change without a reply (RELEASE, DECLINE). */
      readonly persist: JournalRecord | undefined;
    };

export interface RangeCommit {
  readonly undo: CommitUndo;
  /** A renewal: until when the journal already holds this lease (ms; Infinity: infinite). */
  readonly heldUntil: number | undefined;
}

export interface DhcpState {
  readonly index: HostIndex;
  readonly pool: LeasePool;
  readonly now: () => number;
  /**
   * False while a lease source is still loading (the first Kubernetes list). Until then an
   * unknown MAC may be a BareMetalHost not seen yet, so the range must not answer it.
   */
  readonly sourcesReady?: () => boolean;
}

/** Where a client's lease comes from, before message-specific rules. */
export type Owner =
  | { kind: 'host'; host: HostRecord; lease: ReplyLease }
  | { kind: 'range'; host: HostRecord | undefined }
  | { kind: 'none'; reason: DropReason; detail: string | undefined; host: HostRecord | undefined };

function ignore(
  reason: DropReason,
  facts: RequestFacts | undefined,
  detail?: string,
  persist?: JournalRecord,
): DhcpOutcome {
  return { kind: 'ignore', reason, detail, facts, persist };
}

export function decide(req: DhcpMessage, policy: DhcpPolicy, state: DhcpState): DhcpOutcome {
  if (req.op !== 1) return ignore('not-a-request', undefined);
  if (req.htype !== 1 || req.hlen !== 6)
    return ignore('not-ethernet', undefined, `htype ${req.htype} hlen ${req.hlen}`);
  const mac = macFromBytes(req.chaddr);
  const type = getMessageType(req.options);
  const client = classify(req.options);
  if (type === undefined)
    return ignore('no-message-type', { mac, messageType: type, client, source: undefined, host: undefined });

  const owner = ownerOf(mac, policy, state);
  const facts: RequestFacts = {
    mac,
    messageType: type,
    client,
    source: owner.kind === 'host' ? owner.host.origin.kind : owner.kind === 'range' ? 'range' : undefined,
    host: owner.host,
  };

  switch (type) {
    case MESSAGE_TYPE.DISCOVER:
      return discover(req, owner, facts, policy, state);
    case MESSAGE_TYPE.REQUEST:
      return request(req, owner, facts, policy, state);
    case MESSAGE_TYPE.DECLINE:
      return decline(req, owner, facts, policy, state);
    case MESSAGE_TYPE.RELEASE:
      return release(req, owner, facts, policy, state);
    case MESSAGE_TYPE.INFORM:
      return inform(req, owner, facts, policy);
    default:
      return ignore('unsupported-message-type', facts, `message type ${type}`);
  }
}

export function ownerOf(mac: Mac, policy: DhcpPolicy, state: DhcpState): Owner {
  const found = state.index.lookup(mac);
  if (found.kind === 'conflict') {
    const owners = found.hosts.map((h) => `${h.origin.kind}:${h.origin.name}`).join(', ');
    return { kind: 'none', reason: found.reason, detail: owners, host: found.hosts[0] };
  }
  if (found.kind === 'host') {
    const h = found.host;
    if (h.lease !== undefined) return { kind: 'host', host: h, lease: policy.values.hostLease(h.lease) };
    // A host its source cannot serve (e.g. a BareMetalHost without an ip-address annotation)
    // falls through to the range when there is one.
    if (state.pool.enabled) return { kind: 'range', host: h };
    return { kind: 'none', reason: 'host-not-servable', detail: h.problem, host: h };
  }
  if (state.pool.enabled) {
    if (state.sourcesReady?.() === false)
      return {
        kind: 'none',
        reason: 'sources-loading',
        detail: 'waiting for the first list of BareMetalHosts',
        host: undefined,
      };
    return { kind: 'range', host: undefined };
  }
  return { kind: 'none', reason: 'unknown-host', detail: undefined, host: undefined };
}

function reply(
  req: DhcpMessage,
  type: typeof MESSAGE_TYPE.OFFER | typeof MESSAGE_TYPE.ACK,
  lease: ReplyLease,
  d: RequestFacts,
  policy: DhcpPolicy,
  c?: Extract<CommitResult, { ok: true }>,
): DhcpOutcome {
  const boot = policy.answers.answer(d.client, d.host?.netboot ?? true, d.host);
  const msg = buildLeaseReply(req, type, lease, d.client, boot, policy.reply, policy.values);
  const dest = replyDestination(req, false, policy.ports);
  if (c === undefined)
    return { kind: 'reply', reply: msg, dest, facts: d, boot, persist: undefined, commit: undefined };
  return {
    kind: 'reply',
    reply: msg,
    dest,
    facts: d,
    boot,
    persist: c.record,
    commit: { undo: c.undo, heldUntil: c.heldUntil },
  };
}

function nak(req: DhcpMessage, d: RequestFacts, policy: DhcpPolicy, why: string): DhcpOutcome {
  const msg = buildNak(req, policy.reply.serverId, why);
  return {
    kind: 'reply',
    reply: msg,
    dest: replyDestination(req, true, policy.ports),
    facts: d,
    boot: undefined,
    persist: undefined,
    commit: undefined,
  };
}

/** Range clients are served on the local segment, or through a relay on the server's subnet. */
function rangeReachable(req: DhcpMessage, policy: DhcpPolicy): boolean {
  return req.giaddr === 0 || inSubnet(req.giaddr, { address: policy.serverIp, prefix: policy.serverPrefix });
}

function discover(req: DhcpMessage, owner: Owner, d: RequestFacts, policy: DhcpPolicy, state: DhcpState): DhcpOutcome {
  if (owner.kind === 'none') return ignore(owner.reason, d, owner.detail);
  if (owner.kind === 'host') return reply(req, MESSAGE_TYPE.OFFER, owner.lease, d, policy);
  if (!rangeReachable(req, policy))
    return ignore('unknown-host', d, `relay ${formatIpv4(req.giaddr)} is outside the range's subnet`);
  const offered = state.pool.offer(d.mac, getIp(req.options, OPT.REQUESTED_IP), state.now());
  if (offered === undefined) return ignore('pool-exhausted', d);
  return reply(req, MESSAGE_TYPE.OFFER, policy.values.rangeLease(offered.ip, offered.leaseSeconds), d, policy);
}

function request(req: DhcpMessage, owner: Owner, d: RequestFacts, policy: DhcpPolicy, state: DhcpState): DhcpOutcome {
  const serverId = getIp(req.options, OPT.SERVER_ID);
  const requested = getIp(req.options, OPT.REQUESTED_IP);
  // SELECTING carries our server id; INIT-REBOOT a requested address; RENEWING/REBINDING ciaddr.
  if (serverId !== undefined && serverId !== policy.reply.serverId) {
    return ignore('other-server', d, `client selected ${formatIpv4(serverId)}`);
  }
  const asked = serverId !== undefined || req.ciaddr === 0 ? requested : req.ciaddr;
  if (asked === undefined) return ignore('no-record', d, 'REQUEST without requested address or ciaddr');
  if (owner.kind === 'none') return ignore(owner.reason, d, owner.detail);

  if (owner.kind === 'host') {
    if (asked === owner.lease.ip) return reply(req, MESSAGE_TYPE.ACK, owner.lease, d, policy);
    return nak(req, d, policy, `address ${formatIpv4(asked)} is not this host's (${formatIpv4(owner.lease.ip)})`);
  }

  const now = state.now();
  const inRange = state.pool.rangeOf(asked) !== undefined;
  if (serverId === undefined && !state.pool.hasRecord(d.mac)) {
    // INIT-REBOOT/RENEWING without a record of this client: RFC 2131 §4.3.2 says stay silent.
    return ignore('no-record', d, `no lease for ${d.mac}`);
  }
  if (!inRange || !rangeReachable(req, policy))
    return nak(req, d, policy, `address ${formatIpv4(asked)} is not on this network`);
  const bound = state.pool.leaseOf(d.mac, now);
  if (serverId === undefined && bound !== undefined && bound.ip !== asked) {
    return nak(req, d, policy, `address ${formatIpv4(asked)} is not this client's lease`);
  }
  const c = state.pool.commit(d.mac, asked, now);
  if (!c.ok) return nak(req, d, policy, `address ${formatIpv4(asked)} is not available (${c.reason})`);
  return reply(req, MESSAGE_TYPE.ACK, policy.values.rangeLease(c.lease.ip, c.lease.leaseSeconds), d, policy, c);
}

function decline(req: DhcpMessage, owner: Owner, d: RequestFacts, policy: DhcpPolicy, state: DhcpState): DhcpOutcome {
  const serverId = getIp(req.options, OPT.SERVER_ID);
  if (serverId !== policy.reply.serverId) return ignore('other-server', d);
  const ip = getIp(req.options, OPT.REQUESTED_IP);
  if (ip === undefined) return ignore('declined', d, 'DECLINE without an address');
  if (owner.kind === 'host') {
    return ignore('declined', d, `${formatIpv4(ip)} of ${owner.host.origin.name} is in use by another machine`);
  }
  const rec = state.pool.decline(d.mac, ip, state.now());
  return ignore('declined', d, `${formatIpv4(ip)} quarantined`, rec);
}

function release(req: DhcpMessage, owner: Owner, d: RequestFacts, policy: DhcpPolicy, state: DhcpState): DhcpOutcome {
  const serverId = getIp(req.options, OPT.SERVER_ID);
  if (serverId !== undefined && serverId !== policy.reply.serverId) return ignore('other-server', d);
  if (owner.kind !== 'range') return ignore('released', d, 'fixed address kept');
  const rec = state.pool.release(d.mac, req.ciaddr);
  return ignore('released', d, rec === undefined ? 'no such lease' : `${formatIpv4(req.ciaddr)} freed`, rec);
}

function inform(req: DhcpMessage, owner: Owner, d: RequestFacts, policy: DhcpPolicy): DhcpOutcome {
  if (owner.kind === 'none') return ignore(owner.reason, d, owner.detail);
  if (req.ciaddr === 0) return ignore('no-record', d, 'INFORM without ciaddr');
  const lease = owner.kind === 'host' ? informLease(owner.lease) : policy.values.rangeLease(req.ciaddr, undefined);
  return reply(req, MESSAGE_TYPE.ACK, lease, d, policy);
}
