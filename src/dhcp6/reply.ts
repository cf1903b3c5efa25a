/**
 * DHCPv6 replies (RFC 8415 §18.3): an Advertise or Reply with the lease in the first IA_NA and
 * the configuration and boot options, or a status; wrapped in a Relay-reply per relay the
 * request came through. Pure: decide.ts chooses what to answer, this builds it.
 */
import type { BootAnswer } from '../boot/boot-answer.js';
import type { CommitUndo, JournalRecord } from '../leases/pool.js';
import { INFINITE_LEASE } from '../leases/range.js';
import { formatIpv6, type Ipv6 } from '../net/ipv6.js';
import type { Dhcp6Message, Dhcp6Option, Dhcp6RelayMessage } from './codec.js';
import type { Dhcp6Outcome, Request6Facts } from './outcome.js';
import {
  MSG6,
  OPT6,
  STATUS6,
  bootFileUrlOption,
  dnsServersOption,
  domainListOption,
  findOption,
  findOptions,
  iaAddrOption,
  iaNaOption,
  iaPdOption,
  iaTaOption,
  ntpServerOption,
  option,
  parseIaAddr,
  parseIaNa,
  parseIaPd,
  parseIaTa,
  parseOro,
  preferenceOption,
  rapidCommitOption,
  relayReply,
  statusOption,
  vendorClassOption,
} from './options.js';
import type { Dhcp6Policy } from './policy.js';

/** The enterprise number UEFI firmware sends its vendor class under (IANA PEN 343, Intel); echoed back. */
const ENTERPRISE_INTEL = 343;

/** What a reply is built from: the request, the relays it came through, and who asked. */
export interface ReplyContext {
  readonly req: Dhcp6Message & { kind: 'client' };
  readonly hops: readonly Dhcp6RelayMessage[];
  readonly facts: Request6Facts;
  readonly policy: Dhcp6Policy;
  readonly clientId: Uint8Array | undefined;
  /** The request's IA_NAs, read once (iaNas). */
  readonly ias: readonly IaNaRequest[];
}

/** One IA_NA of a request: its IAID and the addresses it asks for. */
export interface IaNaRequest {
  readonly iaid: number;
  readonly addresses: readonly Ipv6[];
}

/** The lease a reply gives: address, lifetimes and the options that go with it. */
export interface Lease6 {
  readonly ip: Ipv6;
  readonly validSeconds: number;
  readonly dns: readonly Ipv6[];
  readonly ntp: readonly Ipv6[];
}

/**
 * A reply carrying only a status: at the top level, or (inIa) in each IA_NA of the request, as
 * RFC 8415 puts NoBinding and NoAddrsAvail.
 */
export function statusReply(
  c: ReplyContext,
  type: number,
  code: number,
  text: string,
  inIa = false,
  persist?: JournalRecord,
): Dhcp6Outcome {
  const opts: Dhcp6Option[] = header(c);
  if (inIa) for (const ia of c.ias) opts.push(iaNaOption(ia.iaid, 0, 0, [statusOption(code, text)]));
  else opts.push(statusOption(code, text));
  return wrap(
    c,
    { kind: 'client', msgType: type, transactionId: c.req.transactionId, options: opts },
    undefined,
    undefined,
    persist,
  );
}

/** Server and Client Identifier, first in every reply. */
function header(c: ReplyContext): Dhcp6Option[] {
  const opts: Dhcp6Option[] = [option(OPT6.SERVERID, c.policy.serverDuid)];
  if (c.clientId !== undefined) opts.push(option(OPT6.CLIENTID, c.clientId));
  return opts;
}

/** An Advertise or Reply with the lease in the first IA_NA and the configuration and boot options. */
export function answer(
  c: ReplyContext,
  type: number,
  lease: Lease6,
  commit: { record: JournalRecord; undo: CommitUndo<Ipv6>; heldUntil: number | undefined } | undefined,
  rapid = false,
  informationOnly = false,
): Dhcp6Outcome {
  const { req, policy, facts } = c;
  const opts = header(c);
  const ias = informationOnly ? [] : c.ias;
  const valid = lease.validSeconds;
  const preferred = valid;
  // T1 and T2 at 0.5 and 0.8 of the preferred lifetime (RFC 8415 §21.4); infinite stays infinite.
  const t1 = valid === INFINITE_LEASE ? INFINITE_LEASE : Math.floor(preferred / 2);
  const t2 = valid === INFINITE_LEASE ? INFINITE_LEASE : Math.floor((preferred * 4) / 5);
  ias.forEach((ia, i) => {
    if (i > 0) {
      opts.push(iaNaOption(ia.iaid, 0, 0, [statusOption(STATUS6.NoAddrsAvail, 'one address per host')]));
      return;
    }
    // Addresses the client asked for that are not its own are returned with lifetimes 0 (§18.3.4).
    const stale = ia.addresses.filter((a) => a !== lease.ip).map((a) => iaAddrOption(a, 0, 0, []));
    opts.push(iaNaOption(ia.iaid, t1, t2, [iaAddrOption(lease.ip, preferred, valid, []), ...stale]));
  });
  for (const o of findOptions(req.options, OPT6.IA_TA))
    opts.push(iaTaOption(parseIaTa(o).iaid, [statusOption(STATUS6.NoAddrsAvail, 'no temporary addresses')]));
  for (const o of findOptions(req.options, OPT6.IA_PD))
    opts.push(iaPdOption(parseIaPd(o).iaid, 0, 0, [statusOption(STATUS6.NoPrefixAvail, 'no prefixes delegated')]));
  if (type === MSG6.ADVERTISE) opts.push(preferenceOption(255));
  if (rapid) opts.push(rapidCommitOption());
  const oroData = findOption(req.options, OPT6.ORO);
  const oro = new Set(oroData === undefined ? [] : parseOro(oroData));
  if (lease.dns.length > 0 && oro.has(OPT6.DNS_SERVERS)) opts.push(dnsServersOption(lease.dns));
  if (policy.domainSearch.length > 0 && oro.has(OPT6.DOMAIN_LIST)) opts.push(domainListOption(policy.domainSearch));
  if (lease.ntp.length > 0 && oro.has(OPT6.NTP_SERVER))
    opts.push(ntpServerOption(lease.ntp.map((address) => ({ kind: 'server' as const, address }))));
  const boot = policy.answers.answer(facts.client, facts.host?.netboot ?? true, facts.host);
  const url = bootUrl(boot, policy);
  if (url !== undefined) {
    opts.push(bootFileUrlOption(url));
    // EDK2's HTTP boot takes only an answer that names it an HTTPClient (UEFI 2.x §24.7).
    if (boot.kind === 'http-binary') opts.push(vendorClassOption(ENTERPRISE_INTEL, ['HTTPClient']));
  }
  const inner = { kind: 'client' as const, msgType: type, transactionId: req.transactionId, options: opts };
  const address = informationOnly || ias.length === 0 ? undefined : lease.ip;
  return wrap(c, inner, boot, address, commit?.record, commit);
}

/** The Boot File URL (option 59, RFC 5970) of a boot answer: tftp:// for firmware PXE, http:// otherwise. */
export function bootUrl(boot: BootAnswer, policy: Dhcp6Policy): string | undefined {
  switch (boot.kind) {
    case 'none':
      return undefined;
    case 'tftp':
      return `tftp://[${formatIpv6(policy.tftpServer)}]/${boot.file}`;
    case 'http-binary':
    case 'ipxe-script':
      return boot.url;
  }
}

function wrap(
  c: ReplyContext,
  inner: Dhcp6Message & { kind: 'client' },
  boot: BootAnswer | undefined,
  address: Ipv6 | undefined,
  persist: JournalRecord | undefined,
  commit?: { undo: CommitUndo<Ipv6>; heldUntil: number | undefined },
): Dhcp6Outcome {
  const reply = relayReply(c.hops, inner);
  return {
    kind: 'reply',
    reply,
    inner,
    facts: c.facts,
    boot,
    address,
    persist,
    commit: commit === undefined ? undefined : { undo: commit.undo, heldUntil: commit.heldUntil },
  };
}

/** The IA_NAs of the request: (IAID, the addresses it asks for). */
export function iaNas(req: Dhcp6Message): IaNaRequest[] {
  return findOptions(req.options, OPT6.IA_NA).map((o) => {
    const ia = parseIaNa(o);
    return { iaid: ia.iaid, addresses: findOptions(ia.options, OPT6.IAADDR).map((a) => parseIaAddr(a).address) };
  });
}
