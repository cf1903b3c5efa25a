import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  decode6,
  decodeOptions,
  encode6,
  encodingLength6,
  HOP_COUNT_LIMIT,
  MAX_MESSAGE_LENGTH,
  type Dhcp6ClientMessage,
  type Dhcp6Message,
  type Dhcp6Option,
  type Dhcp6RelayMessage,
} from './codec.js';
import { DecodeError, MetalbootError } from '../base/errors.js';
import { parseIpv6, type Ipv6 } from '../net/ipv6.js';
import {
  MSG6,
  OPT6,
  innerMessage,
  interfaceIdOption,
  relayMessageOption,
  relayReply,
  unwrapRelays,
  elapsedTimeOption,
} from './options.js';

const ip = (s: string): Ipv6 => parseIpv6(s)!;
const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replaceAll(' ', ''), 'hex'));

const solicit: Dhcp6ClientMessage = {
  kind: 'client',
  msgType: MSG6.SOLICIT,
  transactionId: 0x0a0b0c,
  options: [
    { code: OPT6.CLIENTID, data: hex('0003 0001 020000771001') },
    elapsedTimeOption(0),
    { code: OPT6.IA_NA, data: hex('00771001 00000000 00000000') },
  ],
};

function forward(inner: Dhcp6Message, hopCount = 0, extra: Dhcp6Option[] = []): Dhcp6RelayMessage {
  return {
    kind: 'relay',
    msgType: MSG6.RELAY_FORW,
    hopCount,
    linkAddress: ip('fd00:77::2'),
    peerAddress: ip('fe80::ff:fe77:1001'),
    options: [...extra, relayMessageOption(inner)],
  };
}

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(DecodeError);
    return (e as DecodeError).code;
  }
  return undefined;
}

describe('DHCPv6 codec', () => {
  it('writes the client header: msg-type, 24-bit transaction-id, options in the order given', () => {
    const buf = encode6(solicit);
    expect(buf.toString('hex')).toBe(
      `010a0b0c 0001000a 0003 0001 020000771001 00080002 0000 0003000c 00771001 00000000 00000000`.replaceAll(' ', ''),
    );
    expect(buf.length).toBe(encodingLength6(solicit));
    expect(decode6(buf)).toEqual(solicit);
  });

  it('writes the relay header: msg-type, hop-count, link-address, peer-address', () => {
    const relay = forward(solicit, 3);
    const buf = encode6(relay);
    expect(buf[0]).toBe(12);
    expect(buf[1]).toBe(3);
    expect(buf.subarray(2, 18).toString('hex')).toBe('fd000077000000000000000000000002');
    expect(buf.subarray(18, 34).toString('hex')).toBe('fe80000000000000000000fffe771001');
    expect(buf.readUInt16BE(34)).toBe(OPT6.RELAY_MSG);
    expect(decode6(buf)).toEqual(relay);
  });

  it('keeps repeated options and their wire order', () => {
    const msg: Dhcp6ClientMessage = {
      kind: 'client',
      msgType: MSG6.REPLY,
      transactionId: 1,
      options: [
        { code: 3, data: hex('00000001 00000000 00000000') },
        { code: 1, data: hex('0003000102') },
        { code: 3, data: hex('00000002 00000000 00000000') },
        { code: 14, data: new Uint8Array(0) },
      ],
    };
    expect(decode6(encode6(msg)).options.map((o) => o.code)).toEqual([3, 1, 3, 14]);
    expect(decode6(encode6(msg))).toEqual(msg);
  });

  it('decodes a bare header as a message without options', () => {
    expect(decode6(hex('0b123456'))).toEqual({
      kind: 'client',
      msgType: 11,
      transactionId: 0x123456,
      options: [],
    });
  });

  it.each([
    ['empty', 'DHCP6_ERR_SHORT', 0, ''],
    ['shorter than the header', 'DHCP6_ERR_SHORT', 2, '0112'],
    ['a relay shorter than 34 bytes', 'DHCP6_ERR_SHORT', 32, `0c00${'00'.repeat(30)}`],
    ['msg-type 0', 'DHCP6_ERR_BAD_TYPE', 0, '00000001'],
    ['an option header cut short', 'DHCP6_ERR_TRAILING_BYTES', 4, '01000001 0001'],
    ['three bytes after the last option', 'DHCP6_ERR_TRAILING_BYTES', 10, '01000001 00080002 0000 000800'],
    ['an option value running past the end', 'DHCP6_ERR_OPTION_TRUNCATED', 4, '01000001 00010004 0003'],
    ['a second option running past the end', 'DHCP6_ERR_OPTION_TRUNCATED', 10, '01000001 00080002 0000 0001ffff 00'],
    ['a relay whose option runs past the end', 'DHCP6_ERR_OPTION_TRUNCATED', 34, `0d00${'00'.repeat(32)}00090005 0100`],
  ])('rejects %s with %s at offset %i', (_name, code, offset, h) => {
    const buf = hex(h);
    expect(() => decode6(buf)).toThrow(DecodeError);
    try {
      decode6(buf);
    } catch (e) {
      expect(e).toMatchObject({ code, offset });
    }
  });

  it('rejects a datagram longer than any UDP payload over IPv6', () => {
    expect(codeOf(() => decode6(new Uint8Array(MAX_MESSAGE_LENGTH + 1).fill(1)))).toBe('DHCP6_ERR_TOO_LONG');
  });

  it('reads options inside a container with offsets in that container', () => {
    const data = hex('00000001 00000000 00000000 000d0002 0000 0005');
    expect(() => decodeOptions(data, 12, data.length)).toThrow(/at offset 18/);
    expect(decodeOptions(data, 12, 18)).toEqual([{ code: 13, data: hex('0000') }]);
  });

  it.each([
    ['msg-type 12 as a client message', { ...solicit, msgType: 12 }],
    ['msg-type 0', { ...solicit, msgType: 0 }],
    ['msg-type 256', { ...solicit, msgType: 256 }],
    ['a 25-bit transaction-id', { ...solicit, transactionId: 0x1000000 }],
    ['a negative transaction-id', { ...solicit, transactionId: -1 }],
    ['hop-count 256', { ...forward(solicit), hopCount: 256 }],
    ['a 129-bit address', { ...forward(solicit), peerAddress: (1n << 128n) as Ipv6 }],
    ['option code 65536', { ...solicit, options: [{ code: 65536, data: new Uint8Array(0) }] }],
    ['a 65536-byte option', { ...solicit, options: [{ code: 1, data: new Uint8Array(65536) }] }],
    [
      'a message over the UDP limit',
      {
        ...solicit,
        options: [
          { code: 1, data: new Uint8Array(40000) },
          { code: 2, data: new Uint8Array(40000) },
        ],
      },
    ],
  ] as [string, Dhcp6Message][])('refuses to encode %s (a caller bug, not a DecodeError)', (_n, msg) => {
    try {
      encode6(msg);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(MetalbootError);
      expect(e).not.toBeInstanceOf(DecodeError);
      expect((e as MetalbootError).code).toBe('DHCP6_ERR_ENCODE_INVALID');
    }
  });
});

describe('relayed messages', () => {
  it('unwraps two relays down to the client message, outermost first', () => {
    const inner = forward(solicit, 0, [interfaceIdOption(Buffer.from('eth1'))]);
    const outer = { ...forward(inner, 1), linkAddress: ip('fd00:1::1') };
    const { relays, message } = unwrapRelays(decode6(encode6(outer)));
    expect(relays.map((r) => [r.hopCount, r.linkAddress])).toEqual([
      [1, ip('fd00:1::1')],
      [0, ip('fd00:77::2')],
    ]);
    expect(message).toEqual(solicit);
  });

  it('a client message unwraps to itself', () => {
    expect(unwrapRelays(solicit)).toEqual({ relays: [], message: solicit });
  });

  it('answers through the same relays: RELAY-REPL per RELAY-FORW, header and Interface-Id copied', () => {
    const inner = forward(solicit, 0, [interfaceIdOption(Buffer.from('eth1'))]);
    const outer = { ...forward(inner, 1), linkAddress: ip('fd00:1::1') };
    const reply: Dhcp6ClientMessage = { kind: 'client', msgType: MSG6.REPLY, transactionId: 0x0a0b0c, options: [] };
    const { relays } = unwrapRelays(outer);
    const back = decode6(encode6(relayReply(relays, reply)));
    expect(back).toMatchObject({ kind: 'relay', msgType: 13, hopCount: 1, linkAddress: ip('fd00:1::1') });
    if (back.kind !== 'relay') throw new Error('not a relay');
    expect(back.options.map((o) => o.code)).toEqual([OPT6.RELAY_MSG]);
    const second = innerMessage(back);
    expect(second).toMatchObject({ kind: 'relay', msgType: 13, hopCount: 0, peerAddress: ip('fe80::ff:fe77:1001') });
    if (second.kind !== 'relay') throw new Error('not a relay');
    expect(second.options.map((o) => [o.code, Buffer.from(o.data).toString('latin1')])[0]).toEqual([18, 'eth1']);
    expect(innerMessage(second)).toEqual(reply);
    expect(relayReply([], reply)).toBe(reply);
  });

  it(`accepts ${HOP_COUNT_LIMIT} nested relays and refuses ${HOP_COUNT_LIMIT + 1}`, () => {
    let m: Dhcp6Message = solicit;
    for (let k = 0; k < HOP_COUNT_LIMIT; k++) m = forward(m, k);
    const decoded = decode6(encode6(m));
    expect(unwrapRelays(decoded).relays).toHaveLength(HOP_COUNT_LIMIT);
    expect(codeOf(() => unwrapRelays(decode6(encode6(forward(m, 32)))))).toBe('DHCP6_ERR_RELAY_DEPTH');
  });

  it.each([
    ['no Relay Message option', { ...forward(solicit), options: [] }, 'DHCP6_ERR_RELAY_MESSAGE'],
    [
      'two Relay Message options',
      { ...forward(solicit), options: [relayMessageOption(solicit), relayMessageOption(solicit)] },
      'DHCP6_ERR_RELAY_MESSAGE',
    ],
    ['a RELAY-REPL inside a RELAY-FORW', forward({ ...forward(solicit), msgType: 13 }), 'DHCP6_ERR_RELAY_NESTING'],
    [
      'a malformed relayed message',
      { ...forward(solicit), options: [{ code: 9, data: hex('01000001 0001') }] },
      'DHCP6_ERR_TRAILING_BYTES',
    ],
  ] as [string, Dhcp6RelayMessage, string][])('refuses %s', (_n, relay, code) => {
    expect(codeOf(() => unwrapRelays(relay))).toBe(code);
  });
});

// ---- properties -------------------------------------------------------------------------------

const arbOption: fc.Arbitrary<Dhcp6Option> = fc.record({
  code: fc.nat({ max: 0xffff }),
  data: fc.uint8Array({ maxLength: 80 }),
});
const arbOptions = fc.array(arbOption, { maxLength: 8 });
const arbAddress = fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }).map((n) => n as Ipv6);
const arbClient: fc.Arbitrary<Dhcp6ClientMessage> = fc.record({
  kind: fc.constant('client' as const),
  msgType: fc.integer({ min: 1, max: 255 }).filter((t) => t !== 12 && t !== 13),
  transactionId: fc.nat({ max: 0xffffff }),
  options: arbOptions,
});
const arbRelayHeader = fc.record({
  kind: fc.constant('relay' as const),
  msgType: fc.constantFrom(12 as const, 13 as const),
  hopCount: fc.nat({ max: 255 }),
  linkAddress: arbAddress,
  peerAddress: arbAddress,
  options: arbOptions,
});
const arbRelay: fc.Arbitrary<Dhcp6RelayMessage> = arbRelayHeader;
const arbMessage: fc.Arbitrary<Dhcp6Message> = fc.oneof(arbClient, arbRelay);
/** A client message inside 1..5 relays of one type, each with random options beside option 9. */
const arbNested = fc
  .tuple(arbClient, fc.array(arbRelayHeader, { minLength: 1, maxLength: 5 }), fc.constantFrom(12 as const, 13 as const))
  .map(([client, headers, msgType]) => {
    let m: Dhcp6Message = client;
    for (const h of headers)
      m = {
        ...h,
        msgType,
        options: [...h.options.filter((o) => o.code !== OPT6.RELAY_MSG), relayMessageOption(m)],
      };
    return { client, depth: headers.length, msg: m };
  });

describe('DHCPv6 codec properties', () => {
  it('encode then decode is the identity, and encodingLength6 is exact', () => {
    fc.assert(
      fc.property(arbMessage, (msg) => {
        const buf = encode6(msg);
        expect(buf.length).toBe(encodingLength6(msg));
        expect(decode6(buf)).toEqual(msg);
      }),
      { numRuns: 500 },
    );
  });

  it('decode then encode gives back the same bytes', () => {
    fc.assert(
      fc.property(arbMessage, (msg) => {
        const buf = encode6(msg);
        expect(encode6(decode6(buf)).equals(buf)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('nested relays unwrap to the client message at the right depth', () => {
    fc.assert(
      fc.property(arbNested, ({ client, depth, msg }) => {
        const { relays, message } = unwrapRelays(decode6(encode6(msg)));
        expect(relays).toHaveLength(depth);
        expect(message).toEqual(client);
      }),
      { numRuns: 200 },
    );
  });

  it('never writes to option values', () => {
    fc.assert(
      fc.property(arbMessage, (msg) => {
        const before = msg.options.map((o) => Uint8Array.from(o.data));
        encode6(msg);
        expect(msg.options.map((o) => o.data)).toEqual(before);
      }),
      { numRuns: 100 },
    );
  });

  it('random bytes never throw anything but DecodeError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        try {
          const m = decode6(bytes);
          if (m.kind === 'relay') unwrapRelays(m);
        } catch (e) {
          expect(e).toBeInstanceOf(DecodeError);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('mutated valid messages, relays included, never throw anything but DecodeError', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          arbMessage,
          arbNested.map((n) => n.msg),
        ),
        fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 })), { minLength: 1, maxLength: 10 }),
        fc.nat(),
        (msg, flips, cut) => {
          const buf = Buffer.from(encode6(msg));
          for (const [pos, val] of flips) buf[pos % buf.length] = val;
          const truncated = buf.subarray(0, Math.max(0, buf.length - (cut % 16)));
          try {
            const m = decode6(truncated);
            if (m.kind === 'relay') unwrapRelays(m);
          } catch (e) {
            expect(e).toBeInstanceOf(DecodeError);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});
