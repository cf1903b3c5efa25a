/**
 * The DHCPv6 policy: the settings the configuration gives, compiled once into what every packet
 * shares (the server DUID, the boot answers with IPv6 URLs).
 */
import { createHash } from 'node:crypto';
import { bootAnswers, type BootAnswers, type BootTable } from '../boot/boot-answer.js';
import { formatIpv6, type Ipv6 } from '../net/ipv6.js';

export interface Dhcp6Settings {
  /** The server's IPv6 address and prefix: URLs, the range's link, router advertisements. */
  readonly serverIp: Ipv6;
  readonly serverPrefix: number;
  /** Where TFTP is reached over IPv6 (`tftp://[addr]/file` boot URLs). */
  readonly tftpServer: Ipv6;
  /** Boot files, and the HTTP advertise URL booting hosts reach over IPv6. */
  readonly boot: BootTable;
  /** Valid lifetime of BareMetalHost and static leases (seconds). */
  readonly leaseSeconds: number;
  /** DNS, NTP servers and the domain search list, for every lease (a host's own DNS/NTP win). */
  readonly dns: readonly Ipv6[];
  readonly ntp: readonly Ipv6[];
  readonly domainSearch: readonly string[];
  /** Answer a Solicit with Rapid Commit by a Reply at once (RFC 8415 §18.3.1) when the client asks. */
  readonly rapidCommit: boolean;
}

export interface Dhcp6Policy extends Dhcp6Settings {
  readonly answers: BootAnswers;
  /** DUID-UUID (type 4) derived from the server address: the same for every replica behind it, and across restarts. */
  readonly serverDuid: Uint8Array;
}

/**
 * A DUID-UUID (RFC 6355) of `serverIp`: replicas that share an advertised address share the
 * DUID, so a Request that names it is answered by whichever replica receives it.
 */
export function serverDuidOf(serverIp: Ipv6): Uint8Array {
  const h = createHash('sha256')
    .update(`metalboot dhcp6 server ${formatIpv6(serverIp)}`)
    .digest();
  const uuid = Buffer.from(h.subarray(0, 16));
  uuid[6] = (uuid[6]! & 0x0f) | 0x50; // version 5 style (name-based)
  uuid[8] = (uuid[8]! & 0x3f) | 0x80; // RFC 4122 variant
  return Buffer.concat([Buffer.from([0, 4]), uuid]);
}

export function dhcp6Policy(s: Dhcp6Settings): Dhcp6Policy {
  return { ...s, answers: bootAnswers(s.boot), serverDuid: serverDuidOf(s.serverIp) };
}
