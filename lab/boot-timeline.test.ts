import { describe, expect, it } from 'vitest';
import { encode } from '../src/dhcp/codec.js';
import { MESSAGE_TYPE } from '../src/dhcp/options.js';
import { bootTimeline, firstAfter, lastBefore } from './boot-timeline.js';
import { request } from './dhcp-requests.js';
import type { CapturedPacket } from './netns-pcap.js';

const MAC = '52:54:00:5e:00:01';
const OTHER = '52:54:00:5e:00:09';
const IP = '10.78.0.21';
const macBytes = (m: string) => Buffer.from(m.replaceAll(':', ''), 'hex');

function ethernet(dst: string, src: string, etherType: number, l3: Buffer): Buffer {
  const h = Buffer.alloc(14);
  macBytes(dst).copy(h, 0);
  macBytes(src).copy(h, 6);
  h.writeUInt16BE(etherType, 12);
  return Buffer.concat([h, l3]);
}

function ipv4(protocol: number, src: string, dst: string, l4: Buffer): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h.writeUInt16BE(20 + l4.length, 2);
  h[8] = 64;
  h[9] = protocol;
  Buffer.from(src.split('.').map(Number)).copy(h, 12);
  Buffer.from(dst.split('.').map(Number)).copy(h, 16);
  return Buffer.concat([h, l4]);
}

function dhcp(time: number, mac: string, type: number): CapturedPacket {
  const payload = Buffer.from(encode({ ...request({ type, mac }), op: 2 }));
  const udp = Buffer.concat([Buffer.from([0, 67, 0, 68, 0, 0, 0, 0]), payload]);
  return {
    time,
    linkType: 1,
    frame: ethernet('ff:ff:ff:ff:ff:ff', '02:00:00:00:00:01', 0x0800, ipv4(17, '10.78.0.1', '255.255.255.255', udp)),
    srcMac: '02:00:00:00:00:01',
    dstMac: 'ff:ff:ff:ff:ff:ff',
    etherType: 0x0800,
    srcPort: 67,
    dstPort: 68,
    payload,
  };
}

function http(time: number, src: string, line: string): CapturedPacket {
  const tcp = Buffer.alloc(20);
  tcp.writeUInt16BE(40000, 0);
  tcp.writeUInt16BE(8080, 2);
  tcp[12] = 5 << 4;
  const frame = ethernet(
    '02:00:00:00:00:01',
    MAC,
    0x0800,
    ipv4(6, src, '10.78.0.1', Buffer.concat([tcp, Buffer.from(line)])),
  );
  return { time, linkType: 1, frame, srcMac: MAC, dstMac: '02:00:00:00:00:01', etherType: 0x0800 };
}

function icmpv6(time: number, type: number, src: string, dst: string): CapturedPacket {
  const h = Buffer.alloc(40);
  h[0] = 0x60;
  h.writeUInt16BE(16, 4);
  h[6] = 58;
  h[7] = 255;
  const body = Buffer.alloc(16);
  body[0] = type;
  return {
    time,
    linkType: 1,
    frame: ethernet(dst, src, 0x86dd, Buffer.concat([h, body])),
    srcMac: src,
    dstMac: dst,
    etherType: 0x86dd,
  };
}

describe('bootTimeline', () => {
  it("reads a boot's ACKs, solicitations, advertisements and first request of each path", () => {
    const packets = [
      dhcp(1.0, MAC, MESSAGE_TYPE.OFFER),
      dhcp(1.1, MAC, MESSAGE_TYPE.ACK),
      dhcp(1.2, OTHER, MESSAGE_TYPE.ACK),
      icmpv6(1.3, 133, MAC, '33:33:00:00:00:02'),
      icmpv6(1.3, 133, OTHER, '33:33:00:00:00:02'),
      icmpv6(1.31, 134, '02:00:00:00:00:01', MAC),
      icmpv6(1.32, 134, '02:00:00:00:00:01', OTHER),
      icmpv6(5.0, 134, '02:00:00:00:00:01', '33:33:00:00:00:01'),
      http(1.5, IP, 'GET /boot.ipxe HTTP/1.1\r\nHost: x\r\n\r\n'),
      http(1.6, IP, 'GET /boot.ipxe HTTP/1.1\r\nHost: x\r\n\r\n'),
      http(1.7, '10.78.0.99', 'GET /boot/other.ipxe HTTP/1.1\r\n\r\n'),
      http(1.8, IP, 'GET /boot/52-54-00-5e-00-01.ipxe HTTP/1.1\r\n\r\n'),
      http(2.0, IP, 'HEAD /images/ironic-python-agent.kernel HTTP/1.1\r\n\r\n'),
      http(2.1, IP, 'not a request line'),
    ];
    expect(bootTimeline(packets, { mac: MAC, ip: IP })).toEqual({
      acks: [1.1],
      solicitations: [1.3],
      advertisements: [1.31, 5.0],
      requests: [
        { path: '/boot.ipxe', at: 1.5 },
        { path: '/boot/52-54-00-5e-00-01.ipxe', at: 1.8 },
        { path: '/images/ironic-python-agent.kernel', at: 2.0 },
      ],
    });
  });

  it('firstAfter and lastBefore', () => {
    expect(firstAfter([1, 2, 3], 1.5)).toBe(2);
    expect(firstAfter([1, 2, 3], 4)).toBeUndefined();
    expect(lastBefore([1, 2, 3], 2.5)).toBe(2);
    expect(lastBefore([1, 2, 3], 0.5)).toBeUndefined();
  });
});
