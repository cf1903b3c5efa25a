import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decode, encode, encodingLength, BOOTREQUEST, type DhcpMessage } from './codec.js';
import { DecodeError } from '../base/errors.js';
import {
  OPT,
  getUserClasses,
  getClientArchs,
  getClientUuid,
  getRelayAgentInfo,
  getIpxeEncap,
  str,
  userClasses,
  subOptions,
  u8,
} from './options.js';
import type { Ipv4 } from '../net/ipv4.js';

function baseMessage(options: [number, Uint8Array][] = []): DhcpMessage {
  const chaddr = new Uint8Array(16);
  chaddr.set([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
  return {
    op: BOOTREQUEST,
    htype: 1,
    hlen: 6,
    hops: 0,
    xid: 0xdeadbeef,
    secs: 4,
    flags: 0x8000,
    ciaddr: 0 as Ipv4,
    yiaddr: 0 as Ipv4,
    siaddr: 0 as Ipv4,
    giaddr: 0 as Ipv4,
    chaddr,
    sname: '',
    file: '',
    options: new Map([[OPT.MESSAGE_TYPE, u8(1)], ...options]),
  };
}

describe('DHCP codec', () => {
  it('pads to the 300-byte BOOTP minimum and ends with END', () => {
    const buf = encode(baseMessage());
    expect(buf.length).toBe(300);
    expect(buf[240]).toBe(53);
    expect(buf[243]).toBe(255);
  });

  it('puts 53 first, 82 last and the rest in code order', () => {
    const msg = baseMessage([
      [OPT.RELAY_AGENT_INFO, subOptions([[1, str('eth0')]])],
      [OPT.HOSTNAME, str('h')],
      [OPT.ROUTER, Uint8Array.of(10, 0, 0, 1)],
    ]);
    const buf = encode(msg);
    const codes: number[] = [];
    for (let i = 240; buf[i] !== 255; i += 2 + buf[i + 1]!) codes.push(buf[i]!);
    expect(codes).toEqual([53, 3, 12, 82]);
  });

  it('splits values over 255 bytes and concatenates them back (RFC 3396)', () => {
    const long = Uint8Array.from({ length: 600 }, (_, i) => i & 255);
    const msg = baseMessage([[OPT.DOMAIN_SEARCH, long]]);
    const buf = encode(msg);
    expect(buf.length).toBe(encodingLength(msg));
    expect(decode(buf).options.get(OPT.DOMAIN_SEARCH)).toEqual(long);
  });

  it('reads options from file and sname when option 52 overloads them', () => {
    const buf = Buffer.from(encode(baseMessage([[OPT.OVERLOAD, u8(3)]])));
    buf.set([OPT.HOSTNAME, 2, 0x61, 0x62, 255], 108); // in file
    buf.set([OPT.HOSTNAME, 1, 0x63, 255], 44); // in sname, concatenated after file's
    const msg = decode(buf);
    expect(Buffer.from(msg.options.get(OPT.HOSTNAME)!).toString()).toBe('abc');
    expect(msg.file).toBe('');
    expect(msg.sname).toBe('');
  });

  it.each([
    ['short', Buffer.alloc(100), 'DHCP_ERR_SHORT'],
    [
      'bad op',
      (() => {
        const b = encode(baseMessage());
        b[0] = 9;
        return b;
      })(),
      'DHCP_ERR_BAD_OP',
    ],
    [
      'no cookie',
      (() => {
        const b = encode(baseMessage());
        b[236] = 0;
        return b;
      })(),
      'DHCP_ERR_NO_COOKIE',
    ],
    [
      'hlen 17',
      (() => {
        const b = encode(baseMessage());
        b[2] = 17;
        return b;
      })(),
      'DHCP_ERR_BAD_HLEN',
    ],
    [
      'truncated option',
      (() => {
        const b = encode(baseMessage()).subarray(0, 244);
        b[240] = 12;
        b[241] = 40;
        return b;
      })(),
      'DHCP_ERR_OPTION_TRUNCATED',
    ],
    ['bad overload', encode(baseMessage([[OPT.OVERLOAD, u8(7)]])), 'DHCP_ERR_OVERLOAD_INVALID'],
    ['oversized', Buffer.alloc(9000, 1), 'DHCP_ERR_TOO_LONG'],
  ])('rejects %s with a coded DecodeError', (_name, buf, code) => {
    expect(() => decode(buf)).toThrow(DecodeError);
    try {
      decode(buf);
    } catch (e) {
      expect((e as DecodeError).code).toBe(code);
    }
  });

  it('reads option 77 in both encodings', () => {
    expect(getUserClasses(new Map([[77, str('iPXE')]]))).toEqual(['iPXE']);
    expect(getUserClasses(new Map([[77, userClasses(['iPXE', 'rack1'])]]))).toEqual(['iPXE', 'rack1']);
  });

  it('reads option 93, 97, 82 and 175', () => {
    const o = new Map<number, Uint8Array>([
      [93, Uint8Array.of(0, 7, 0, 9)],
      [97, Uint8Array.of(0, ...Array.from({ length: 16 }, (_, i) => i))],
      [
        82,
        subOptions([
          [1, str('ge-0/0/1')],
          [2, str('sw1')],
        ]),
      ],
      [175, Uint8Array.of(0xb1, 5, 1, 0x10, 0xec, 0x81, 0x39, 0x13, 1, 1, 255)],
    ]);
    expect(getClientArchs(o)).toEqual([7, 9]);
    expect(getClientUuid(o)).toBe('00010203-0405-0607-0809-0a0b0c0d0e0f');
    expect(Buffer.from(getRelayAgentInfo(o)!.get(1)!).toString()).toBe('ge-0/0/1');
    expect(getIpxeEncap(o)!.get(19)).toEqual(Uint8Array.of(1));
  });
});

const optionCode = fc.integer({ min: 1, max: 254 }).filter((c) => c !== 52);
const arbMessage: fc.Arbitrary<DhcpMessage> = fc.record({
  op: fc.constantFrom(1, 2),
  htype: fc.integer({ min: 0, max: 255 }),
  hlen: fc.integer({ min: 0, max: 16 }),
  hops: fc.integer({ min: 0, max: 255 }),
  xid: fc.nat({ max: 0xffffffff }),
  secs: fc.nat({ max: 0xffff }),
  flags: fc.nat({ max: 0xffff }),
  ciaddr: fc.nat({ max: 0xffffffff }).map((n) => n as Ipv4),
  yiaddr: fc.nat({ max: 0xffffffff }).map((n) => n as Ipv4),
  siaddr: fc.nat({ max: 0xffffffff }).map((n) => n as Ipv4),
  giaddr: fc.nat({ max: 0xffffffff }).map((n) => n as Ipv4),
  chaddr: fc.uint8Array({ minLength: 16, maxLength: 16 }),
  sname: fc.stringMatching(/^[a-z0-9.-]{0,63}$/),
  file: fc.stringMatching(/^[a-z0-9./-]{0,127}$/),
  options: fc.array(fc.tuple(optionCode, fc.uint8Array({ maxLength: 600 })), { maxLength: 12 }).map((e) => new Map(e)),
});

describe('DHCP codec properties', () => {
  it('round-trips and encodingLength matches', () => {
    fc.assert(
      fc.property(arbMessage, (msg) => {
        const buf = encode(msg);
        expect(buf.length).toBe(encodingLength(msg));
        const back = decode(buf);
        expect(back).toEqual({ ...msg, chaddr: msg.chaddr });
        expect(encode(back)).toEqual(buf);
      }),
      { numRuns: 500 },
    );
  });

  it('writes or zeroes every byte: a target full of 0xff gets the same bytes as a zeroed one', () => {
    fc.assert(
      fc.property(arbMessage, (msg) => {
        const dirty = encode(msg, new Uint8Array(1600).fill(0xff));
        const clean = encode(msg, new Uint8Array(1600));
        expect(dirty).toEqual(clean);
      }),
      { numRuns: 300 },
    );
  });

  it('never writes to option values (replies share constant values across packets)', () => {
    fc.assert(
      fc.property(arbMessage, (msg) => {
        const before = [...msg.options].map(([c, v]) => [c, Uint8Array.from(v)] as const);
        encode(msg);
        encode(msg, new Uint8Array(1600).fill(0xff));
        expect([...msg.options]).toEqual(before);
      }),
      { numRuns: 200 },
    );
  });

  it('random bytes never throw anything but DecodeError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1500 }), (bytes) => {
        try {
          decode(bytes);
        } catch (e) {
          expect(e).toBeInstanceOf(DecodeError);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('mutated valid packets never throw anything but DecodeError', () => {
    fc.assert(
      fc.property(
        arbMessage,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 20 }),
        fc.nat(),
        (msg, flips, cut) => {
          const buf = Buffer.from(encode(msg));
          for (const [pos, val] of flips) buf[pos % buf.length] = val;
          const truncated = buf.subarray(0, Math.max(0, buf.length - (cut % 64)));
          try {
            decode(truncated);
          } catch (e) {
            expect(e).toBeInstanceOf(DecodeError);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});
