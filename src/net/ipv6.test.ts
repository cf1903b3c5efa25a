import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  formatIpv6,
  inSubnet6,
  isLinkLocal6,
  macFromEui64,
  parseIpv6,
  parseIpv6Cidr,
  readIpv6,
  writeIpv6,
  type Ipv6,
} from './ipv6.js';

describe('ipv6', () => {
  it('parses and prints RFC 5952 text', () => {
    expect(formatIpv6(parseIpv6('FD00:0:0:0::0001')!)).toBe('fd00::1');
    expect(formatIpv6(parseIpv6('2001:db8:0:0:1:0:0:1')!)).toBe('2001:db8::1:0:0:1');
    expect(parseIpv6('::')).toBe(0n);
  });

  it('refuses what is not an IPv6 literal', () => {
    for (const t of ['10.0.0.1', 'fe80::1%eth0', '[fd00::1]', 'fd00::g', '', '1:2:3:4:5:6:7:8:9'])
      expect(parseIpv6(t), t).toBeUndefined();
  });

  it('parses CIDRs and subnets', () => {
    const c = parseIpv6Cidr('fd00:1::1/64')!;
    expect(c.prefix).toBe(64);
    expect(inSubnet6(parseIpv6('fd00:1::ffff')!, c)).toBe(true);
    expect(inSubnet6(parseIpv6('fd00:2::1')!, c)).toBe(false);
    expect(parseIpv6Cidr('fd00::1/129')).toBeUndefined();
    expect(parseIpv6Cidr('fd00::1')).toBeUndefined();
    expect(parseIpv6Cidr('fd00::1', 64)?.prefix).toBe(64);
  });

  it('reads back what it writes', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }), (n) => {
        const b = new Uint8Array(20);
        writeIpv6(b, 2, n);
        expect(readIpv6(b, 2)).toBe(n);
        expect(parseIpv6(formatIpv6(n))).toBe(n);
      }),
    );
  });

  it('takes the MAC out of an EUI-64 link-local address', () => {
    const ll = parseIpv6('fe80::5054:ff:fe12:3456') as Ipv6;
    expect(isLinkLocal6(ll)).toBe(true);
    expect(macFromEui64(ll)).toBe('52:54:00:12:34:56');
    expect(macFromEui64(parseIpv6('fe80::1234:5678:9abc:def0')!)).toBeUndefined();
    expect(isLinkLocal6(parseIpv6('fd00::1')!)).toBe(false);
  });
});

describe('formatIpv6 agrees with ipaddr.js (RFC 5952)', () => {
  it('on random addresses and on ones full of zero runs', async () => {
    const ipaddr = (await import('ipaddr.js')).default;
    const group = fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 0, max: 0xffff }));
    fc.assert(
      fc.property(fc.array(group, { minLength: 8, maxLength: 8 }), (groups) => {
        const n = groups.reduce((acc, x) => (acc << 16n) | BigInt(x), 0n);
        const bytes = groups.flatMap((x) => [x >> 8, x & 255]);
        expect(formatIpv6(n)).toBe(ipaddr.fromByteArray(bytes).toString());
      }),
      { numRuns: 2000 },
    );
  });
});
