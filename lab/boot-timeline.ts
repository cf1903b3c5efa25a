/**
 * A network boot's milestones read from a capture on the server's bridge, whoever the server is
 * (metalboot, or dnsmasq and an httpd): the DHCP ACKs to the machine, its IPv6 router
 * solicitations and the advertisements it got, and its first HTTP requests for the boot script
 * and the kernel. Pure: packets in, times (seconds since the epoch, as in the capture) out.
 *
 *   Ethernet | IPv4 | UDP 67 → 68 | BOOTP/DHCP (option 53 = 5: ACK), chaddr = the machine
 *   Ethernet | IPv6 | ICMPv6 133 (RS) from the machine's MAC, 134 (RA) to it (or to ff02::1)
 *   Ethernet | IPv4 | TCP from the machine's address, payload "GET <path> HTTP/1.x"
 */
import { decode } from '../src/dhcp/codec.js';
import { getMessageType, MESSAGE_TYPE } from '../src/dhcp/options.js';
import { macFromBytes } from '../src/net/mac.js';
import type { CapturedPacket } from './netns-pcap.js';

export interface BootTimeline {
  /** Every DHCP ACK to the machine. */
  readonly acks: readonly number[];
  /** Every router solicitation the machine sent. */
  readonly solicitations: readonly number[];
  /** Every router advertisement on the wire (to the machine or to all nodes). */
  readonly advertisements: readonly number[];
  /** The first request of each path the machine asked for over HTTP, in order. */
  readonly requests: readonly { readonly path: string; readonly at: number }[];
}

const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;

function ethernetL3(frame: Buffer): { etherType: number; l3: number } | undefined {
  if (frame.length < 14) return undefined;
  let etherType = frame.readUInt16BE(12);
  let l3 = 14;
  while ((etherType === 0x8100 || etherType === 0x88a8) && frame.length >= l3 + 4) {
    etherType = frame.readUInt16BE(l3 + 2);
    l3 += 4;
  }
  return { etherType, l3 };
}

/** The path of an HTTP request line at the start of a TCP payload from `ip`, if the frame carries one. */
function httpRequestPath(frame: Buffer, l3: number, ip: string): string | undefined {
  if (frame.length < l3 + 20 || frame[l3 + 9] !== 6) return undefined;
  if ([...frame.subarray(l3 + 12, l3 + 16)].join('.') !== ip) return undefined;
  const l4 = l3 + (frame[l3]! & 0x0f) * 4;
  if (frame.length < l4 + 20) return undefined;
  const payload = frame.subarray(l4 + (frame[l4 + 12]! >> 4) * 4, l3 + frame.readUInt16BE(l3 + 2));
  const m = /^(?:GET|HEAD) (\S+) HTTP\/1\.[01]\r\n/.exec(payload.subarray(0, 512).toString('latin1'));
  return m?.[1];
}

/** The milestones of the machine with MAC `mac` and (once leased) IPv4 address `ip`. */
export function bootTimeline(packets: readonly CapturedPacket[], machine: { mac: string; ip: string }): BootTimeline {
  const mac = machine.mac.toLowerCase();
  const acks: number[] = [];
  const solicitations: number[] = [];
  const advertisements: number[] = [];
  const requests: { path: string; at: number }[] = [];
  const seen = new Set<string>();
  for (const p of packets) {
    const f = p.frame;
    const eth = ethernetL3(f);
    if (eth === undefined) continue;
    if (eth.etherType === ETHERTYPE_IPV4 && p.srcPort === 67 && p.dstPort === 68 && p.payload !== undefined) {
      try {
        const m = decode(p.payload);
        if (macFromBytes(m.chaddr) === mac && getMessageType(m.options) === MESSAGE_TYPE.ACK) acks.push(p.time);
      } catch {
        // not DHCP
      }
      continue;
    }
    if (eth.etherType === ETHERTYPE_IPV4) {
      const path = httpRequestPath(f, eth.l3, machine.ip);
      if (path !== undefined && !seen.has(path)) {
        seen.add(path);
        requests.push({ path, at: p.time });
      }
      continue;
    }
    if (eth.etherType === ETHERTYPE_IPV6 && f.length >= eth.l3 + 41 && f[eth.l3 + 6] === 58) {
      const type = f[eth.l3 + 40];
      if (type === 133 && p.srcMac === mac) solicitations.push(p.time);
      if (type === 134 && (p.dstMac === mac || p.dstMac === '33:33:00:00:00:01')) advertisements.push(p.time);
    }
  }
  return { acks, solicitations, advertisements, requests };
}

/** The first time in `times` at or after `after`. */
export function firstAfter(times: readonly number[], after: number): number | undefined {
  return times.find((t) => t >= after);
}

/** The last time in `times` at or before `before`. */
export function lastBefore(times: readonly number[], before: number): number | undefined {
  return times.filter((t) => t <= before).at(-1);
}
