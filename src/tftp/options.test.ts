import { describe, expect, it } from 'vitest';
import { negotiate } from './options.js';
import type { TftpOption } from './packet.js';

const LIMITS = { maxBlksize: 1468, maxWindowsize: 64, maxTimeoutS: 255 };
const SIZE = 173792;

const opts = (...pairs: [string, string][]): TftpOption[] => pairs.map(([name, value]) => ({ name, value }));

describe('negotiate', () => {
  it.each<{
    name: string;
    request: TftpOption[];
    blksize: number;
    windowsize: number;
    timeoutMs?: number;
    oack: TftpOption[];
    ignored?: string[];
  }>([
    { name: 'no options: RFC 1350 defaults, no OACK', request: [], blksize: 512, windowsize: 1, oack: [] },
    {
      name: 'EDK2 probe: tsize=0 answered with the real size',
      request: opts(['tsize', '0'], ['blksize', '1468'], ['windowsize', '4']),
      blksize: 1468,
      windowsize: 4,
      oack: opts(['tsize', String(SIZE)], ['blksize', '1468'], ['windowsize', '4']),
    },
    {
      name: 'iPXE: blksize 1432',
      request: opts(['blksize', '1432']),
      blksize: 1432,
      windowsize: 1,
      oack: opts(['blksize', '1432']),
    },
    {
      name: 'blksize above the maximum is capped',
      request: opts(['blksize', '65464']),
      blksize: 1468,
      windowsize: 1,
      oack: opts(['blksize', '1468']),
    },
    {
      name: 'blksize above RFC 2348 is capped too',
      request: opts(['blksize', '99999']),
      blksize: 1468,
      windowsize: 1,
      oack: opts(['blksize', '1468']),
    },
    {
      name: 'blksize 8 is the minimum',
      request: opts(['blksize', '8']),
      blksize: 8,
      windowsize: 1,
      oack: opts(['blksize', '8']),
    },
    {
      name: 'blksize 7 is left out',
      request: opts(['blksize', '7']),
      blksize: 512,
      windowsize: 1,
      oack: [],
      ignored: ['blksize'],
    },
    {
      name: 'non-numeric blksize is left out',
      request: opts(['blksize', '14x8']),
      blksize: 512,
      windowsize: 1,
      oack: [],
      ignored: ['blksize'],
    },
    {
      name: 'negative blksize is left out',
      request: opts(['blksize', '-1']),
      blksize: 512,
      windowsize: 1,
      oack: [],
      ignored: ['blksize'],
    },
    {
      name: 'empty value is left out',
      request: opts(['blksize', '']),
      blksize: 512,
      windowsize: 1,
      oack: [],
      ignored: ['blksize'],
    },
    {
      name: 'names are case-insensitive and echoed as sent',
      request: opts(['BLKSIZE', '1024'], ['TSize', '0']),
      blksize: 1024,
      windowsize: 1,
      oack: opts(['BLKSIZE', '1024'], ['TSize', String(SIZE)]),
    },
    {
      name: 'tsize with a non-zero value still gets the real size',
      request: opts(['tsize', '5']),
      blksize: 512,
      windowsize: 1,
      oack: opts(['tsize', String(SIZE)]),
    },
    {
      name: 'non-numeric tsize is left out',
      request: opts(['tsize', 'x']),
      blksize: 512,
      windowsize: 1,
      oack: [],
      ignored: ['tsize'],
    },
    {
      name: 'timeout 5 accepted',
      request: opts(['timeout', '5']),
      blksize: 512,
      windowsize: 1,
      timeoutMs: 5000,
      oack: opts(['timeout', '5']),
    },
    {
      name: 'timeout 0 left out',
      request: opts(['timeout', '0']),
      blksize: 512,
      windowsize: 1,
      oack: [],
      ignored: ['timeout'],
    },
    {
      name: 'timeout 256 left out',
      request: opts(['timeout', '256']),
      blksize: 512,
      windowsize: 1,
      oack: [],
      ignored: ['timeout'],
    },
    {
      name: 'windowsize above the maximum is capped',
      request: opts(['windowsize', '1000']),
      blksize: 512,
      windowsize: 64,
      oack: opts(['windowsize', '64']),
    },
    {
      name: 'windowsize 0 left out',
      request: opts(['windowsize', '0']),
      blksize: 512,
      windowsize: 1,
      oack: [],
      ignored: ['windowsize'],
    },
    {
      name: 'windowsize 65536 left out',
      request: opts(['windowsize', '65536']),
      blksize: 512,
      windowsize: 1,
      oack: [],
      ignored: ['windowsize'],
    },
    {
      name: 'unknown options are not echoed',
      request: opts(['multicast', ''], ['utimeout', '1000'], ['blksize', '1400']),
      blksize: 1400,
      windowsize: 1,
      oack: opts(['blksize', '1400']),
      ignored: ['multicast', 'utimeout'],
    },
    {
      name: 'a repeated option counts once, the first',
      request: opts(['blksize', '1000'], ['blksize', '1400']),
      blksize: 1000,
      windowsize: 1,
      oack: opts(['blksize', '1000']),
      ignored: ['blksize'],
    },
    {
      name: 'only unknown options: no OACK at all',
      request: opts(['foo', 'bar']),
      blksize: 512,
      windowsize: 1,
      oack: [],
      ignored: ['foo'],
    },
  ])('$name', ({ request, blksize, windowsize, timeoutMs, oack, ignored }) => {
    const n = negotiate(request, SIZE, LIMITS);
    expect(n.blksize).toBe(blksize);
    expect(n.windowsize).toBe(windowsize);
    expect(n.timeoutMs).toBe(timeoutMs);
    expect(n.oack).toEqual(oack);
    expect(n.ignored).toEqual(ignored ?? []);
  });

  it("leaves out a timeout above the server's maximum, so a silent client cannot hold a slot for minutes", () => {
    const limits = { ...LIMITS, maxTimeoutS: 8 };
    expect(negotiate(opts(['timeout', '255']), SIZE, limits)).toMatchObject({
      timeoutMs: undefined,
      oack: [],
      ignored: ['timeout'],
    });
    expect(negotiate(opts(['timeout', '8']), SIZE, limits)).toMatchObject({
      timeoutMs: 8000,
      oack: opts(['timeout', '8']),
    });
  });

  it('answers the size of an empty file', () => {
    expect(negotiate(opts(['tsize', '0']), 0, LIMITS).oack).toEqual(opts(['tsize', '0']));
  });

  it('never answers a windowsize above half the block-number space', () => {
    expect(
      negotiate(opts(['windowsize', '65535']), 1, { maxBlksize: 1468, maxWindowsize: 65535, maxTimeoutS: 255 })
        .windowsize,
    ).toBe(32767);
  });
});
