/**
 * The DHCP policy: the settings the configuration gives, compiled once by dhcpPolicy() into
 * what every packet shares: the boot answers of the fixed arch table and the reply's option
 * values. The policy owns them; nothing is remembered anywhere else.
 */
import { bootAnswers, type BootAnswers, type BootTable } from '../boot/boot-answer.js';
import type { Ipv4 } from '../net/ipv4.js';
import type { Ports } from './destination.js';
import { ReplyValues, type ReplyContext } from './reply.js';

export interface DhcpSettings {
  /** The address the sockets use; with serverPrefix, the local subnet of the dynamic range. */
  readonly serverIp: Ipv4;
  readonly serverPrefix: number;
  readonly ports: Ports;
  readonly reply: ReplyContext;
  readonly boot: BootTable;
  /** Lease time for BareMetalHost and static leases. */
  readonly leaseSeconds: number;
  /** Router/DNS/NTP for range leases. */
  readonly rangeGateway: Ipv4 | undefined;
  readonly rangeDns: readonly Ipv4[];
  readonly rangeNtp: readonly Ipv4[];
}

export interface DhcpPolicy extends DhcpSettings {
  readonly answers: BootAnswers;
  readonly values: ReplyValues;
}

export function dhcpPolicy(s: DhcpSettings): DhcpPolicy {
  const answers = bootAnswers(s.boot);
  const range = { prefix: s.serverPrefix, gateway: s.rangeGateway, dns: s.rangeDns, ntp: s.rangeNtp };
  return { ...s, answers, values: new ReplyValues(s.reply, range, s.leaseSeconds, answers.all) };
}
