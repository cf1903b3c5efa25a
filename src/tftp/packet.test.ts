import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DecodeError } from '../base/errors.js';
import { decode, encode, encodingLength, MAX_PACKET_LENGTH, type TftpPacket } from './packet.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/**
 * Golden packets. The EDK2 ones are the requests AAVMF/OVMF send (Mtftp4 with
 * PcdTftpWindowSize 4): first a probe for the size, then the real download.
 */
const GOLDEN: { name: string; bytes: string; packet: TftpPacket }[] = [
  {
    name: 'EDK2 probe RRQ: tsize=0 blksize=1468 windowsize=4',
    // 0001 | "snponly.efi" 00 | "octet" 00 | "tsize" 00 "0" 00 | "blksize" 00 "1468" 00 | "windowsize" 00 "4" 00
    bytes:
      '0001 736e706f6e6c792e656669 00 6f63746574 00 7473697a65 00 30 00 626c6b73697a65 00 31343638 00 77696e646f7773697a65 00 34 00',
    packet: {
      op: 'rrq',
      filename: 'snponly.efi',
      mode: 'octet',
      options: [
        { name: 'tsize', value: '0' },
        { name: 'blksize', value: '1468' },
        { name: 'windowsize', value: '4' },
      ],
    },
  },
  {
    name: 'RFC 1350 RRQ without options',
    // 0001 | "a" 00 | "octet" 00
    bytes: '0001 61 00 6f63746574 00',
    packet: { op: 'rrq', filename: 'a', mode: 'octet', options: [] },
  },
  {
    name: 'WRQ',
    bytes: '0002 78 00 6f63746574 00',
    packet: { op: 'wrq', filename: 'x', mode: 'octet', options: [] },
  },
  {
    name: 'DATA block 1 with 3 bytes',
    // 0003 | 0001 | payload
    bytes: '0003 0001 aabbcc',
    packet: { op: 'data', block: 1, data: hex('aabbcc') },
  },
  {
    name: 'DATA empty last block 65535',
    bytes: '0003 ffff',
    packet: { op: 'data', block: 65535, data: Buffer.alloc(0) },
  },
  {
    name: 'ACK block 0 (acknowledges an OACK)',
    bytes: '0004 0000',
    packet: { op: 'ack', block: 0 },
  },
  {
    name: 'EDK2 ERROR 8 after the tsize probe',
    // 0005 | 0008 | "abort" 00
    bytes: '0005 0008 61626f7274 00',
    packet: { op: 'error', code: 8, message: 'abort' },
  },
  {
    name: 'OACK tsize=173792 blksize=1468 windowsize=4',
    bytes: '0006 7473697a65 00 313733373932 00 626c6b73697a65 00 31343638 00 77696e646f7773697a65 00 34 00',
    packet: {
      op: 'oack',
      options: [
        { name: 'tsize', value: '173792' },
        { name: 'blksize', value: '1468' },
        { name: 'windowsize', value: '4' },
      ],
    },
  },
];

describe('golden packets', () => {
  it.each(GOLDEN)('parse: $name', ({ bytes, packet }) => {
    expect(normalize(decode(hex(bytes)))).toEqual(normalize(packet));
  });
  it.each(GOLDEN)('generate: $name', ({ bytes, packet }) => {
    expect(encode(packet).toString('hex')).toBe(hex(bytes).toString('hex'));
    expect(encodingLength(packet)).toBe(hex(bytes).length);
  });
  it.each(GOLDEN)('mirror: $name', ({ bytes }) => {
    expect(encode(decode(hex(bytes))).toString('hex')).toBe(hex(bytes).toString('hex'));
  });
});

describe('lenient where real clients need it', () => {
  it('accepts zero padding after the last option pair', () => {
    expect(decode(hex('0001 61 00 6f63746574 00 0000 0000'))).toEqual({
      op: 'rrq',
      filename: 'a',
      mode: 'octet',
      options: [],
    });
  });
  it('accepts an ERROR without its terminating zero, or without a message', () => {
    expect(decode(hex('0005 0008 6162'))).toEqual({ op: 'error', code: 8, message: 'ab' });
    expect(decode(hex('0005 0000'))).toEqual({ op: 'error', code: 0, message: '' });
  });
  it('keeps hostile bytes in names one character per byte', () => {
    const p = decode(hex('0001 2e2e2fff 00 6f63746574 00'));
    expect(p).toMatchObject({ filename: '../\u00ff' });
  });
});

describe('decode errors', () => {
  it.each([
    ['empty datagram', '', 'TFTP_ERR_SHORT', 0],
    ['one byte', '00', 'TFTP_ERR_SHORT', 1],
    ['unknown opcode 7', '0007 0000', 'TFTP_ERR_UNKNOWN_OPCODE', 0],
    ['opcode 0', '0000', 'TFTP_ERR_UNKNOWN_OPCODE', 0],
    ['RRQ with unterminated filename', '0001 6162', 'TFTP_ERR_UNTERMINATED_STRING', 4],
    ['RRQ without mode', '0001 61 00', 'TFTP_ERR_MISSING_MODE', 4],
    ['RRQ with unterminated mode', '0001 61 00 6f6374', 'TFTP_ERR_UNTERMINATED_STRING', 7],
    ['RRQ option without value', '0001 61 00 6f63746574 00 7473697a65 00', 'TFTP_ERR_OPTION_WITHOUT_VALUE', 16],
    [
      'RRQ option with unterminated value',
      '0001 61 00 6f63746574 00 7473697a65 00 30',
      'TFTP_ERR_UNTERMINATED_STRING',
      17,
    ],
    ['RRQ option with unterminated name', '0001 61 00 6f63746574 00 7473', 'TFTP_ERR_UNTERMINATED_STRING', 12],
    ['DATA without block number', '0003 00', 'TFTP_ERR_SHORT', 3],
    ['ACK without block number', '0004', 'TFTP_ERR_SHORT', 2],
    ['ACK with trailing bytes', '0004 0001 00', 'TFTP_ERR_TRAILING_BYTES', 4],
    ['ERROR without code', '0005 00', 'TFTP_ERR_SHORT', 3],
  ])('%s → %s', (_name, bytes, code, offset) => {
    const err = catchError(() => decode(hex(bytes)));
    expect(err).toBeInstanceOf(DecodeError);
    expect(err).toMatchObject({ code, offset });
  });

  it('refuses a datagram longer than any TFTP packet', () => {
    const buf = Buffer.alloc(MAX_PACKET_LENGTH + 1);
    buf.writeUInt16BE(3, 0);
    expect(catchError(() => decode(buf))).toMatchObject({ code: 'TFTP_ERR_TOO_LONG' });
  });
});

describe('encode refuses values with no wire form', () => {
  it.each<[string, TftpPacket]>([
    ['NUL in a filename', { op: 'rrq', filename: 'a\0b', mode: 'octet', options: [] }],
    ['a character above 0xff', { op: 'error', code: 0, message: '\u0100' }],
    ['block above 65535', { op: 'ack', block: 65536 }],
    ['negative block', { op: 'data', block: -1, data: Buffer.alloc(0) }],
    ['empty option name', { op: 'oack', options: [{ name: '', value: '1' }] }],
  ])('%s', (_name, packet) => {
    expect(catchError(() => encode(packet))).toMatchObject({ code: 'TFTP_ERR_ENCODE_INVALID' });
  });
});

// ---- properties ----------------------------------------------------------------------------

const str = (min: number) =>
  fc.string({
    unit: fc.integer({ min: 1, max: 255 }).map((c) => String.fromCharCode(c)),
    minLength: min,
    maxLength: 40,
  });
const options = fc.array(fc.record({ name: str(1), value: str(0) }), { maxLength: 6 });
const packetArb: fc.Arbitrary<TftpPacket> = fc.oneof(
  fc.record({ op: fc.constantFrom('rrq' as const, 'wrq' as const), filename: str(0), mode: str(0), options }),
  fc.record({
    op: fc.constant('data' as const),
    block: fc.integer({ min: 0, max: 65535 }),
    data: fc.uint8Array({ maxLength: 1500 }),
  }),
  fc.record({ op: fc.constant('ack' as const), block: fc.integer({ min: 0, max: 65535 }) }),
  fc.record({ op: fc.constant('error' as const), code: fc.integer({ min: 0, max: 65535 }), message: str(0) }),
  fc.record({ op: fc.constant('oack' as const), options }),
);

describe('properties', () => {
  it('decode(encode(p)) equals p, and encodingLength is the encoded length', () => {
    fc.assert(
      fc.property(packetArb, (p) => {
        const bytes = encode(p);
        expect(bytes.length).toBe(encodingLength(p));
        expect(normalize(decode(bytes))).toEqual(normalize(p));
      }),
      { numRuns: 2000 },
    );
  });

  it('random bytes never throw anything but DecodeError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        expectOnlyDecodeError(bytes);
      }),
      { numRuns: 5000 },
    );
  });

  it('mutated valid packets never throw anything but DecodeError', () => {
    fc.assert(
      fc.property(
        packetArb,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
        fc.nat(),
        (p, flips, cut) => {
          const bytes = Buffer.from(encode(p));
          for (const [at, v] of flips) if (bytes.length > 0) bytes[at % bytes.length] = v;
          expectOnlyDecodeError(bytes);
          expectOnlyDecodeError(bytes.subarray(0, cut % (bytes.length + 1)));
        },
      ),
      { numRuns: 3000 },
    );
  });
});

function expectOnlyDecodeError(bytes: Uint8Array): void {
  try {
    const p = decode(bytes);
    expect(typeof p.op).toBe('string');
  } catch (err) {
    expect(err).toBeInstanceOf(DecodeError);
    const e = err as DecodeError;
    expect(e.code).toMatch(/^TFTP_ERR_/);
    expect(e.offset).toBeGreaterThanOrEqual(0);
    expect(e.offset).toBeLessThanOrEqual(Math.max(bytes.length, MAX_PACKET_LENGTH));
  }
}

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected an error');
}

/** Uint8Array and Buffer views compare by content. */
function normalize(p: TftpPacket): unknown {
  return p.op === 'data' ? { ...p, data: Buffer.from(p.data).toString('hex') } : p;
}
