/**
 * Golden packets captured from real clients and servers (test/fixtures/dhcp, see its README):
 * parse (every field and option as the capture's annotations say), generate (our encoding of
 * the parsed message re-parses identically) and mirror (the bytes we emit carry exactly the
 * option TLVs the client sent), then the decision each real client gets.
 */
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { decode, encode } from './codec.js';
import { classify } from './classify.js';
import { decide } from './decide.js';
import { dhcpPolicy, type DhcpPolicy } from './policy.js';
import { getMessageType, OPT, getString } from './options.js';
import { macFromBytes } from '../net/mac.js';
import { formatIpv4, parseIpv4 } from '../net/ipv4.js';
import { HostIndex } from '../leases/host-index.js';
import { LeasePool } from '../leases/pool.js';
import { staticToHost } from '../leases/static-hosts.js';
import { DEFAULT_BOOT_FILES } from '../boot/boot-files.js';

interface Fixture {
  name: string;
  direction: 'client' | 'server';
  hex: string;
  expect: {
    op: number;
    htype: number;
    hlen: number;
    hops: number;
    xid: number;
    secs: number;
    flags: number;
    ciaddr: string;
    yiaddr: string;
    siaddr: string;
    giaddr: string;
    chaddr: string;
    sname: string;
    file: string;
    messageType: number;
    options: Record<string, string>;
    optionOrder: number[];
    classification?: string;
  };
}

const DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../test/fixtures/dhcp');
const fixtures: Fixture[] = readdirSync(DIR)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => JSON.parse(readFileSync(path.join(DIR, f), 'utf8')) as Fixture);
const cases = fixtures.map((f) => [f.name, f] as const);

/** Option TLVs as they appear on the wire, after RFC 3396 reassembly: code → hex. */
function wireOptions(buf: Buffer): Map<number, string> {
  const out = new Map<number, string>();
  for (let i = 240; i < buf.length && buf[i] !== 255; ) {
    if (buf[i] === 0) {
      i++;
      continue;
    }
    const code = buf[i]!,
      len = buf[i + 1]!;
    out.set(code, (out.get(code) ?? '') + buf.subarray(i + 2, i + 2 + len).toString('hex'));
    i += 2 + len;
  }
  return out;
}

const CLASS: Record<string, string> = {
  'firmware-pxe-uefi': 'pxe/uefi',
  'firmware-pxe-bios': 'pxe/bios',
  'uefi-http': 'uefi-http/uefi',
  ipxe: 'ipxe',
  plain: 'plain',
};

describe('golden DHCP packets', () => {
  it('has fixtures from every kind of client', () => {
    const kinds = new Set(fixtures.map((f) => f.expect.classification).filter(Boolean));
    expect([...kinds].sort()).toEqual(['firmware-pxe-uefi', 'ipxe', 'plain', 'uefi-http']);
  });

  it.each(cases)('%s parses as captured', (_n, f) => {
    const msg = decode(Buffer.from(f.hex, 'hex'));
    const e = f.expect;
    expect({
      op: msg.op,
      htype: msg.htype,
      hlen: msg.hlen,
      hops: msg.hops,
      xid: msg.xid,
      secs: msg.secs,
      flags: msg.flags,
    }).toEqual({ op: e.op, htype: e.htype, hlen: e.hlen, hops: e.hops, xid: e.xid, secs: e.secs, flags: e.flags });
    expect([msg.ciaddr, msg.yiaddr, msg.siaddr, msg.giaddr].map(formatIpv4)).toEqual([
      e.ciaddr,
      e.yiaddr,
      e.siaddr,
      e.giaddr,
    ]);
    expect(macFromBytes(msg.chaddr)).toBe(e.chaddr);
    expect([msg.sname, msg.file]).toEqual([e.sname, e.file]);
    expect(getMessageType(msg.options)).toBe(e.messageType);
    const options = Object.fromEntries([...msg.options].map(([k, v]) => [String(k), Buffer.from(v).toString('hex')]));
    expect(options).toEqual(e.options);
    if (e.classification !== undefined) {
      const c = classify(msg.options);
      expect(c.kind === 'pxe' || c.kind === 'uefi-http' ? `${c.kind}/${c.arch?.firmware}` : c.kind).toBe(
        CLASS[e.classification],
      );
    }
  });

  it.each(cases)('%s generates and mirrors', (_n, f) => {
    const original = Buffer.from(f.hex, 'hex');
    const msg = decode(original);
    const ours = encode(msg);
    expect(decode(ours)).toEqual(msg);
    // The same option TLVs, whatever the order the client chose.
    expect(wireOptions(ours)).toEqual(wireOptions(original));
    // The fixed header is byte-identical.
    expect(ours.subarray(0, 240).equals(original.subarray(0, 240))).toBe(true);
  });
});

describe('what each real client is answered', () => {
  const ip = (s: string) => parseIpv4(s)!;
  const policy: DhcpPolicy = dhcpPolicy({
    serverIp: ip('10.77.0.1'),
    serverPrefix: 24,
    ports: { relay: 67, client: 68 },
    reply: { serverId: ip('10.77.0.1'), tftpServer: ip('10.77.0.1'), domainName: undefined },
    boot: { bootFiles: DEFAULT_BOOT_FILES, httpAdvertiseUrl: 'http://10.77.0.1:8080' },
    leaseSeconds: 3600,
    rangeGateway: undefined,
    rangeDns: [],
    rangeNtp: [],
  });
  const clientFixtures = fixtures.filter((f) => f.direction === 'client' && f.expect.messageType === 1);

  it.each(clientFixtures.map((f) => [f.name, f] as const))('%s gets the right boot answer', (_n, f) => {
    const msg = decode(Buffer.from(f.hex, 'hex'));
    const index = new HostIndex();
    index.replaceAll('static', [
      staticToHost({ mac: macFromBytes(msg.chaddr), ip: ip('10.77.0.50'), hostname: undefined }, 'golden', {
        prefix: 24,
        gateway: undefined,
        dns: [],
        ntp: [],
      }),
    ]);
    const o = decide(msg, policy, {
      index,
      pool: new LeasePool({ ranges: [], isClaimed: () => false, serverIp: ip('10.77.0.1') }),
      now: () => 0,
    });
    if (o.kind !== 'reply') throw new Error(`${f.name}: ignored (${o.reason})`);
    const file = getString(o.reply.options, OPT.BOOTFILE);
    const want: Record<string, string | undefined> = {
      'firmware-pxe-uefi': 'snponly.efi',
      ipxe: 'http://10.77.0.1:8080/boot.ipxe',
      'uefi-http': 'http://10.77.0.1:8080/ipxe/snponly.efi',
      plain: undefined,
    };
    expect(file).toBe(want[f.expect.classification!]);
    expect(formatIpv4(o.reply.yiaddr)).toBe('10.77.0.50');
    expect(o.reply.xid).toBe(msg.xid);
    // Replies go where RFC 2131 says: the relay for relayed clients, else broadcast (no ARP).
    expect(formatIpv4(o.dest.address)).toBe(msg.giaddr !== 0 ? formatIpv4(msg.giaddr) : '255.255.255.255');
  });
});
