/**
 * Our encoder as Wireshark's DHCPv6 dissector reads it: messages built with codec.ts and
 * options.ts go into a pcap (Ethernet, IPv6, UDP 547 → 546 with a correct checksum) and
 * `tshark -T fields` must find no malformed packet, no expert warning, and the values we wrote.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findExecutable, tsharkFields } from '../../lab/netns.js';
import { parseIpv6, ipv6Bytes, type Ipv6 } from '../net/ipv6.js';
import { encode6, type Dhcp6ClientMessage, type Dhcp6RelayMessage } from './codec.js';
import {
  MSG6,
  OPT6,
  STATUS6,
  bootFileUrlOption,
  dnsServersOption,
  domainListOption,
  duidEn,
  duidLl,
  iaAddrOption,
  iaNaOption,
  interfaceIdOption,
  ntpServerOption,
  preferenceOption,
  relayReply,
  statusOption,
} from './options.js';

const ip = (s: string): Ipv6 => parseIpv6(s)!;

function checksum(parts: readonly Buffer[]): number {
  const all = Buffer.concat(parts);
  let sum = 0;
  for (let i = 0; i < all.length; i += 2) sum += (all[i]! << 8) | (all[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  const c = ~sum & 0xffff;
  return c === 0 ? 0xffff : c;
}

/** One Ethernet/IPv6/UDP frame from the server (547) to a client or relay. */
function frame(src: Ipv6, dst: Ipv6, dstPort: number, payload: Buffer): Buffer {
  const udp = Buffer.alloc(8);
  udp.writeUInt16BE(547, 0);
  udp.writeUInt16BE(dstPort, 2);
  udp.writeUInt16BE(8 + payload.length, 4);
  const pseudo = Buffer.alloc(40);
  ipv6Bytes(src).copy(pseudo, 0);
  ipv6Bytes(dst).copy(pseudo, 16);
  pseudo.writeUInt32BE(8 + payload.length, 32);
  pseudo[39] = 17;
  udp.writeUInt16BE(checksum([pseudo, udp, payload]), 6);
  const ip6 = Buffer.alloc(40);
  ip6.writeUInt32BE(0x60000000, 0);
  ip6.writeUInt16BE(8 + payload.length, 4);
  ip6[6] = 17;
  ip6[7] = 64;
  ipv6Bytes(src).copy(ip6, 8);
  ipv6Bytes(dst).copy(ip6, 24);
  const eth = Buffer.from('020000776001020000770001' + '86dd', 'hex');
  return Buffer.concat([eth, ip6, udp, payload]);
}

function pcap(frames: readonly Buffer[]): Buffer {
  const head = Buffer.alloc(24);
  head.writeUInt32LE(0xa1b2c3d4, 0);
  head.writeUInt16LE(2, 4);
  head.writeUInt16LE(4, 6);
  head.writeUInt32LE(65535, 16);
  head.writeUInt32LE(1, 20);
  const records = frames.map((f, i) => {
    const r = Buffer.alloc(16);
    r.writeUInt32LE(1_700_000_000 + i, 0);
    r.writeUInt32LE(f.length, 8);
    r.writeUInt32LE(f.length, 12);
    return Buffer.concat([r, f]);
  });
  return Buffer.concat([head, ...records]);
}

const serverDuid = duidLl(Uint8Array.of(2, 0, 0, 0x77, 0, 1));
const clientDuid = duidEn(343, Uint8Array.of(1, 2, 3, 4));

const advertise: Dhcp6ClientMessage = {
  kind: 'client',
  msgType: MSG6.ADVERTISE,
  transactionId: 0xabcdef,
  options: [
    { code: OPT6.CLIENTID, data: clientDuid },
    { code: OPT6.SERVERID, data: serverDuid },
    iaNaOption(0x00776001, 1800, 2880, [iaAddrOption(ip('fd00:77::150'), 3600, 7200)]),
    statusOption(STATUS6.Success, 'all good'),
    preferenceOption(255),
    dnsServersOption([ip('fd00:77::1'), ip('fd00:77::53')]),
    domainListOption(['lab.example', 'example.org']),
    ntpServerOption([
      { kind: 'server', address: ip('fd00:77::123') },
      { kind: 'fqdn', name: 'ntp.lab.example' },
    ]),
    bootFileUrlOption('http://[fd00:77::1]:8080/boot.ipxe'),
  ],
};

const reply: Dhcp6ClientMessage = {
  kind: 'client',
  msgType: MSG6.REPLY,
  transactionId: 0x123456,
  options: [
    { code: OPT6.CLIENTID, data: clientDuid },
    { code: OPT6.SERVERID, data: serverDuid },
    iaNaOption(7, 0, 0, [statusOption(STATUS6.NoAddrsAvail, 'none left')]),
  ],
};

const forward: Dhcp6RelayMessage = {
  kind: 'relay',
  msgType: MSG6.RELAY_FORW,
  // The relay next to the client (the innermost) has hop-count 0: tshark warns otherwise.
  hopCount: 0,
  linkAddress: ip('fd00:78::1'),
  peerAddress: ip('fe80::ff:fe77:6006'),
  options: [interfaceIdOption(Buffer.from('eth1'))],
};
const relayRepl = relayReply([forward], reply);

const tshark = findExecutable('tshark');
const dir = mkdtempSync(path.join(tmpdir(), 'metalboot-dhcp6-dissector-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(tshark === undefined)('our DHCPv6 encoding, as tshark dissects it', () => {
  const FIELDS = [
    '_ws.malformed',
    '_ws.expert.message',
    'dhcpv6.msgtype',
    'dhcpv6.xid',
    'dhcpv6.option.type',
    'dhcpv6.duid.type',
    'dhcpv6.duidll.link_layer_addr',
    'dhcpv6.duiden.enterprise',
    'dhcpv6.iaid',
    'dhcpv6.iaid.t1',
    'dhcpv6.iaid.t2',
    'dhcpv6.iaaddr.ip',
    'dhcpv6.iaaddr.pref_lifetime',
    'dhcpv6.iaaddr.valid_lifetime',
    'dhcpv6.status_code',
    'dhcpv6.status_msg',
    'dhcpv6.option_preference',
    'dhcpv6.dns_server',
    'dhcpv6.search_list_entry',
    'dhcpv6.ntpserver.addr',
    'dhcpv6.ntpserver.fqdn',
    'dhcpv6.hopcount',
    'dhcpv6.linkaddr',
    'dhcpv6.peeraddr',
    'dhcpv6.interface_id',
  ];

  const read = async (): Promise<Record<string, string>[]> => {
    const file = path.join(dir, 'ours.pcap');
    writeFileSync(
      file,
      pcap([
        frame(ip('fe80::ff:fe77:1'), ip('fe80::ff:fe77:6001'), 546, encode6(advertise)),
        frame(ip('fd00:77::1'), ip('fd00:77::2'), 547, encode6(relayRepl)),
      ]),
    );
    return tsharkFields(file, FIELDS);
  };
  let rows: Promise<Record<string, string>[]> | undefined;
  const get = () => {
    rows ??= read();
    return rows;
  };

  it('finds no malformed packet and no expert warning', async () => {
    const r = await get();
    expect(r).toHaveLength(2);
    for (const row of r) {
      expect(row['_ws.malformed']).toBe('');
      expect(row['_ws.expert.message']).toBe('');
    }
  });

  it('reads the Advertise: IA_NA with IA Address, status, preference, DNS, domains, NTP, boot URL', async () => {
    const [a] = await get();
    expect(a).toMatchObject({
      'dhcpv6.msgtype': '2',
      'dhcpv6.xid': '0xabcdef',
      'dhcpv6.option.type': '1,2,3,5,13,7,23,24,56,59',
      'dhcpv6.duid.type': '2,3',
      'dhcpv6.duiden.enterprise': '343',
      'dhcpv6.duidll.link_layer_addr': '02:00:00:77:00:01',
      'dhcpv6.iaid': '00776001',
      'dhcpv6.iaid.t1': '1800',
      'dhcpv6.iaid.t2': '2880',
      'dhcpv6.iaaddr.ip': 'fd00:77::150',
      'dhcpv6.iaaddr.pref_lifetime': '3600',
      'dhcpv6.iaaddr.valid_lifetime': '7200',
      'dhcpv6.status_code': '0',
      'dhcpv6.status_msg': 'all good',
      'dhcpv6.option_preference': '255',
      'dhcpv6.dns_server': 'fd00:77::1,fd00:77::53',
      'dhcpv6.search_list_entry': 'lab.example.,example.org.',
      'dhcpv6.ntpserver.addr': 'fd00:77::123',
      // tshark prints fully qualified names with the root's dot.
      'dhcpv6.ntpserver.fqdn': 'ntp.lab.example.',
    });
  });

  it('reads the Relay-Reply: header, Interface-Id, and the Reply inside with a status in IA_NA', async () => {
    const [, r] = await get();
    expect(r).toMatchObject({
      'dhcpv6.msgtype': '13,7',
      'dhcpv6.hopcount': '0',
      'dhcpv6.linkaddr': 'fd00:78::1',
      'dhcpv6.peeraddr': 'fe80::ff:fe77:6006',
      'dhcpv6.interface_id': Buffer.from('eth1').toString('hex'),
      'dhcpv6.xid': '0x123456',
      'dhcpv6.option.type': '18,9,1,2,3,13',
      'dhcpv6.status_code': '2',
      'dhcpv6.status_msg': 'none left',
    });
  });
});
