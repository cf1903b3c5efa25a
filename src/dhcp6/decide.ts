/**
 * The DHCPv6 decision (RFC 8415 §18.3): message in, outcome out. Synchronous and free of I/O,
 * like DHCPv4's: a range binding is returned as a journal record for the shell to make durable
 * before the Reply leaves.
 *
 * - Solicit → Advertise (preference 255: the client need not wait for other servers), or Reply
 *   when the client asks for Rapid Commit and the policy allows it. Request, Renew, Rebind →
 *   Reply with the binding. Confirm → Success or NotOnLink. Release, Decline → Reply with
 *   Success. Information-request → Reply with the configuration options and the boot file.
 * - One address per host, whatever DUID or IAID asks: the first IA_NA of a message gets it, any
 *   further IA_NA gets NoAddrsAvail; IA_TA and IA_PD are answered NoAddrsAvail/NoPrefixAvail.
 * - Relayed requests (Relay-forward, nested) are answered by Relay-reply messages wrapping the
 *   Reply, each with its relay's hop count, link- and peer-address, and Interface-Id echoed.
 * - Hosts are known by MAC (identity.ts). Anything else is silent, as another server may own it.
 * - The messages themselves are built by reply.ts; what an outcome holds is outcome.ts.
 */
import type { BootClient } from '../boot/boot-client.js';
import type { HostIndex } from '../leases/host-index.js';
import type { HostRecord } from '../leases/host.js';
import { duidKey, type ClientKey, type CommitResult, type JournalRecord, type LeasePool6 } from '../leases/pool.js';
import { formatIpv6, inSubnet6, type Ipv6 } from '../net/ipv6.js';
import type { Mac } from '../net/mac.js';
import { classify6 } from './classify.js';
import type { Dhcp6Message, Dhcp6RelayMessage } from './codec.js';
import { clientIdentity } from './identity.js';
import { MSG6, OPT6, STATUS6, findOption, hasRapidCommit, parseClientLinkLayer, unwrapRelays } from './options.js';
import type { Dhcp6Outcome, DropReason6, Request6Facts } from './outcome.js';
import type { Dhcp6Policy } from './policy.js';
import { answer, bootUrl, iaNas, statusReply, type IaNaRequest, type Lease6, type ReplyContext } from './reply.js';

export interface Dhcp6State {
  readonly index: HostIndex;
  readonly pool: LeasePool6;
  readonly now: () => number;
  /** False while a lease source is still loading: an unknown MAC may be a host not seen yet. */
  readonly sourcesReady?: () => boolean;
}

export type Owner6 =
  | { kind: 'host'; host: HostRecord; lease: Lease6 }
  | { kind: 'range'; host: HostRecord | undefined }
  | { kind: 'none'; reason: DropReason6; detail: string | undefined; host: HostRecord | undefined };

/**
 * `from`: the datagram's source address (undefined when unknown). Throws DecodeError when a
 * relayed message inside is malformed (the shell counts it as such).
 */
export function decide6(
  msg: Dhcp6Message,
  from: Ipv6 | undefined,
  policy: Dhcp6Policy,
  state: Dhcp6State,
): Dhcp6Outcome {
  if (msg.kind === 'relay' && msg.msgType !== MSG6.RELAY_FORW)
    return ignore('not-a-request', undefined, 'a Relay-reply');
  const { relays: hops, message: req } = unwrapRelays(msg);
  const ll = hops.length === 0 ? undefined : findOption(hops.at(-1)!.options, OPT6.CLIENT_LINKLAYER_ADDR);
  const linkLayer = ll === undefined ? undefined : parseClientLinkLayer(ll);
  const client = classify6(req.options);
  const clientId = findOption(req.options, OPT6.CLIENTID);
  const peer = hops.length > 0 ? hops.at(-1)!.peerAddress : from;
  const id = clientIdentity({ clientId, linkLayer, peer });
  const base = {
    mac: id.kind === 'mac' ? id.mac : undefined,
    via: id.kind === 'mac' ? id.via : undefined,
    messageType: req.msgType,
    transactionId: req.transactionId,
    client,
    relays: hops.length,
  };
  const isRequest = CLIENT_MESSAGES.has(req.msgType);
  if (!isRequest) {
    const reason = req.msgType > 0 && req.msgType <= MSG6.RELAY_REPL ? 'not-a-request' : 'unsupported-message-type';
    return ignore(reason, { ...base, source: undefined, host: undefined }, `message type ${req.msgType}`);
  }
  if (clientId === undefined && req.msgType !== MSG6.INFORMATION_REQUEST)
    return ignore('no-client-id', { ...base, source: undefined, host: undefined });
  let owner: Owner6;
  let key: ClientKey;
  if (id.kind === 'mac') {
    owner = ownerOf(id.mac, hops, policy, state);
    key = id.mac;
  } else {
    // No MAC anywhere: no known host can be this client, but a range that serves unknown hosts
    // still can, bound to its DUID (the same DUID gets the same address back).
    const servable = clientId !== undefined && state.pool.enabled && state.sourcesReady?.() !== false;
    if (!servable || !rangeReachable(hops, policy))
      return ignore('no-mac', { ...base, source: undefined, host: undefined }, id.why);
    owner = { kind: 'range', host: undefined };
    key = duidKey(clientId);
  }
  const facts: Request6Facts = {
    ...base,
    source: owner.kind === 'host' ? owner.host.origin.kind : owner.kind === 'range' ? 'range' : undefined,
    host: owner.host,
  };
  const serverId = findOption(req.options, OPT6.SERVERID);
  const ours = serverId !== undefined && equalBytes(serverId, policy.serverDuid);
  let ias: IaNaRequest[] | undefined;
  const ctx: Ctx = {
    req,
    hops,
    facts,
    policy,
    state,
    owner,
    clientId,
    key,
    // Read when first needed, once: a drop before that never parses the IA_NAs.
    get ias() {
      ias ??= iaNas(req);
      return ias;
    },
  };

  switch (req.msgType) {
    case MSG6.SOLICIT: {
      // RFC 8415 §16.2: a Solicit with a Server Identifier is discarded.
      if (serverId !== undefined) return ignore('other-server', facts, 'Solicit with a server identifier');
      const rapid = policy.rapidCommit && hasRapidCommit(req.options);
      return rapid ? bind(ctx, true) : advertise(ctx);
    }
    case MSG6.REQUEST:
      if (!ours) return ignore('other-server', facts, 'Request for another server');
      return bind(ctx, false);
    case MSG6.RENEW:
      if (!ours) return ignore('other-server', facts, 'Renew for another server');
      return extend(ctx);
    case MSG6.REBIND:
      if (serverId !== undefined) return ignore('other-server', facts, 'Rebind with a server identifier');
      return extend(ctx);
    case MSG6.CONFIRM:
      return confirm(ctx);
    case MSG6.RELEASE:
      if (!ours) return ignore('other-server', facts, 'Release for another server');
      return release(ctx);
    case MSG6.DECLINE:
      if (!ours) return ignore('other-server', facts, 'Decline for another server');
      return decline(ctx);
    default:
      // Information-request (§16.12): a Server Identifier that is not ours means another server.
      if (serverId !== undefined && !ours) return ignore('other-server', facts);
      return information(ctx);
  }
}

const CLIENT_MESSAGES: ReadonlySet<number> = new Set([
  MSG6.SOLICIT,
  MSG6.REQUEST,
  MSG6.CONFIRM,
  MSG6.RENEW,
  MSG6.REBIND,
  MSG6.RELEASE,
  MSG6.DECLINE,
  MSG6.INFORMATION_REQUEST,
]);

interface Ctx extends ReplyContext {
  readonly state: Dhcp6State;
  readonly owner: Owner6;
  /** Whom range addresses are bound to: the MAC, or the DUID of a client that gives none. */
  readonly key: ClientKey;
}

/** Who answers `mac` on the server's own link: a host's lease, the range, or silence and why (/debug/explain). */
export function ownerOf6(mac: Mac, policy: Dhcp6Policy, state: Dhcp6State): Owner6 {
  return ownerOf(mac, [], policy, state);
}

/** The boot file URL (option 59) a client of this kind gets, or why none. */
export function bootUrlFor(
  client: BootClient,
  netboot: boolean,
  policy: Dhcp6Policy,
  host?: HostRecord,
): string | undefined {
  return bootUrl(policy.answers.answer(client, netboot, host), policy);
}

function ownerOf(mac: Mac, hops: readonly Dhcp6RelayMessage[], policy: Dhcp6Policy, state: Dhcp6State): Owner6 {
  const found = state.index.lookup6(mac);
  if (found.kind === 'conflict') {
    const owners = found.hosts.map((h) => `${h.origin.kind}:${h.origin.name}`).join(', ');
    return { kind: 'none', reason: found.reason, detail: owners, host: found.hosts[0] };
  }
  const rangeOk = state.pool.enabled && rangeReachable(hops, policy);
  if (found.kind === 'host') {
    const h = found.host;
    if (h.lease6 !== undefined) {
      const l = h.lease6;
      return {
        kind: 'host',
        host: h,
        lease: {
          ip: l.ip,
          validSeconds: policy.leaseSeconds,
          dns: l.dns.length > 0 ? l.dns : policy.dns,
          ntp: l.ntp.length > 0 ? l.ntp : policy.ntp,
        },
      };
    }
    if (rangeOk) return { kind: 'range', host: h };
    return { kind: 'none', reason: 'host-not-servable', detail: h.problem6 ?? 'no IPv6 address', host: h };
  }
  if (state.pool.enabled) {
    if (state.sourcesReady?.() === false)
      return {
        kind: 'none',
        reason: 'sources-loading',
        detail: 'waiting for the first list of hosts',
        host: undefined,
      };
    if (!rangeOk)
      return {
        kind: 'none',
        reason: 'unknown-host',
        detail: `relay link ${formatIpv6(hops.at(-1)!.linkAddress)} is outside the range's subnet`,
        host: undefined,
      };
    return { kind: 'range', host: undefined };
  }
  return { kind: 'none', reason: 'unknown-host', detail: undefined, host: undefined };
}

/** Range clients are served on the server's link, or through a relay whose link is the server's subnet. */
function rangeReachable(hops: readonly Dhcp6RelayMessage[], policy: Dhcp6Policy): boolean {
  if (hops.length === 0) return true;
  return inSubnet6(hops.at(-1)!.linkAddress, { address: policy.serverIp, prefix: policy.serverPrefix });
}

function ignore(
  reason: DropReason6,
  facts: Request6Facts | undefined,
  detail?: string,
  persist?: JournalRecord,
): Dhcp6Outcome {
  return { kind: 'ignore', reason, detail, facts, persist };
}

function advertise(c: Ctx): Dhcp6Outcome {
  const { owner, facts, state } = c;
  if (owner.kind === 'none') return ignore(owner.reason, facts, owner.detail);
  if (owner.kind === 'host') return answer(c, MSG6.ADVERTISE, owner.lease, undefined);
  const asked = c.ias[0]?.addresses[0];
  const offered = state.pool.offer(c.key, asked, state.now());
  if (offered === undefined) return ignore('pool-exhausted', facts);
  return answer(c, MSG6.ADVERTISE, rangeLease(offered.ip, offered.leaseSeconds, c.policy), undefined);
}

/** Request, or Solicit with Rapid Commit: bind and Reply. */
function bind(c: Ctx, rapid: boolean): Dhcp6Outcome {
  const { owner, facts, state } = c;
  if (owner.kind === 'none') return ignore(owner.reason, facts, owner.detail);
  if (owner.kind === 'host') return answer(c, MSG6.REPLY, owner.lease, undefined, rapid);
  const now = state.now();
  const asked = c.ias[0]?.addresses.find((a) => state.pool.rangeOf(a) !== undefined);
  const ip = asked ?? state.pool.leaseOf(c.key, now)?.ip ?? state.pool.offer(c.key, undefined, now)?.ip;
  if (ip === undefined) return noAddress(c, 'pool-exhausted');
  const r = state.pool.commit(c.key, ip, now);
  if (!r.ok) {
    // Taken since the Advertise: offer the next free one in the Reply instead.
    const other = state.pool.offer(c.key, undefined, now);
    const again = other === undefined ? r : state.pool.commit(c.key, other.ip, now);
    if (!again.ok) return noAddress(c, 'pool-exhausted');
    return committed(c, again, rapid);
  }
  return committed(c, r, rapid);
}

function committed(c: Ctx, r: Extract<CommitResult<Ipv6>, { ok: true }>, rapid = false): Dhcp6Outcome {
  const lease = rangeLease(r.lease.ip, r.lease.leaseSeconds, c.policy);
  return answer(c, MSG6.REPLY, lease, { record: r.record, undo: r.undo, heldUntil: r.heldUntil }, rapid);
}

/** Renew and Rebind (§18.3.4, §18.3.5): extend the binding the client holds. */
function extend(c: Ctx): Dhcp6Outcome {
  const { owner, facts, state } = c;
  if (owner.kind === 'none') return ignore(owner.reason, facts, owner.detail);
  if (owner.kind === 'host') return answer(c, MSG6.REPLY, owner.lease, undefined);
  const now = state.now();
  const bound = state.pool.leaseOf(c.key, now);
  if (bound === undefined) {
    // A Renew for a binding we do not have: NoBinding (§18.3.4). A Rebind: stay silent, another
    // server may hold it (§18.3.5).
    if (c.req.msgType === MSG6.REBIND) return ignore('no-record', facts, `no binding for ${facts.mac}`);
    return statusReply(c, MSG6.REPLY, STATUS6.NoBinding, 'no binding for this client', true);
  }
  const r = state.pool.commit(c.key, bound.ip, now);
  if (!r.ok) return statusReply(c, MSG6.REPLY, STATUS6.NoBinding, `binding lost (${r.reason})`, true);
  return committed(c, r);
}

/** Confirm (§18.3.3): are the client's addresses on this link? */
function confirm(c: Ctx): Dhcp6Outcome {
  const { owner, facts, policy, state } = c;
  if (owner.kind === 'none') return ignore(owner.reason, facts, owner.detail);
  const addresses = c.ias.flatMap((ia) => ia.addresses);
  if (addresses.length === 0) return ignore('no-record', facts, 'Confirm without addresses');
  const onLink = (a: Ipv6) =>
    owner.kind === 'host'
      ? a === owner.lease.ip
      : state.pool.rangeOf(a) !== undefined && inSubnet6(a, { address: policy.serverIp, prefix: policy.serverPrefix });
  const ok = addresses.every(onLink);
  return statusReply(
    c,
    MSG6.REPLY,
    ok ? STATUS6.Success : STATUS6.NotOnLink,
    ok ? 'all addresses on link' : 'not on this link',
  );
}

function release(c: Ctx): Dhcp6Outcome {
  const { owner, facts, state } = c;
  if (owner.kind === 'none') return ignore(owner.reason, facts, owner.detail);
  let rec: JournalRecord | undefined;
  if (owner.kind === 'range')
    for (const ia of c.ias) for (const a of ia.addresses) rec = state.pool.release(c.key, a) ?? rec;
  return statusReply(c, MSG6.REPLY, STATUS6.Success, rec === undefined ? 'nothing to release' : 'released', false, rec);
}

function decline(c: Ctx): Dhcp6Outcome {
  const { owner, facts, state } = c;
  if (owner.kind === 'none') return ignore(owner.reason, facts, owner.detail);
  let rec: JournalRecord | undefined;
  if (owner.kind === 'range')
    for (const ia of c.ias) for (const a of ia.addresses) rec = state.pool.decline(c.key, a, state.now()) ?? rec;
  return statusReply(c, MSG6.REPLY, STATUS6.Success, 'declined', false, rec);
}

/** Information-request (§18.3.6): configuration and boot file, no addresses. */
function information(c: Ctx): Dhcp6Outcome {
  const { owner, facts, policy } = c;
  if (owner.kind === 'none') return ignore(owner.reason, facts, owner.detail);
  const lease =
    owner.kind === 'host' ? owner.lease : { ip: 0n as Ipv6, validSeconds: 0, dns: policy.dns, ntp: policy.ntp };
  return answer(c, MSG6.REPLY, lease, undefined, false, true);
}

function rangeLease(ip: Ipv6, leaseSeconds: number, policy: Dhcp6Policy): Lease6 {
  return { ip, validSeconds: leaseSeconds, dns: policy.dns, ntp: policy.ntp };
}

/** A Reply or Advertise without an address: NoAddrsAvail in the IA (§18.3.2, §18.3.9). */
function noAddress(c: Ctx, reason: DropReason6): Dhcp6Outcome {
  if (c.ias.length === 0) return ignore(reason, c.facts);
  return statusReply(c, MSG6.REPLY, STATUS6.NoAddrsAvail, 'no addresses available', true);
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
