import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeEntryHeader,
  encodeEntryHeader,
  ENTRY_FILE_NAME,
  entryFileName,
  entryHeaderLength,
  FIXED_HEADER_LENGTH,
  keyDigest,
  type EntryMeta,
} from './cache-entry.js';
import { MetalbootError } from '../base/errors.js';

const META: EntryMeta = {
  key: '/images/ironic-python-agent.kernel',
  size: 12_345_678,
  etag: '"bc614e-62f1c0a2b3c40"',
  lastModified: 'Tue, 01 Jul 2025 10:00:00 GMT',
  contentType: 'application/octet-stream',
  storedAt: 1_751_364_000_000,
};

describe('entry header', () => {
  it('starts with the magic, the version and the metadata length', () => {
    const h = encodeEntryHeader(META);
    expect(h.subarray(0, 5)).toEqual(Buffer.from([0x4d, 0x42, 0x49, 0x43, 0x01]));
    expect(h.readUInt32BE(5)).toBe(h.length - FIXED_HEADER_LENGTH);
    expect(entryHeaderLength(h.subarray(0, FIXED_HEADER_LENGTH))).toBe(h.length);
  });

  it('round-trips, optional fields included', () => {
    expect(decodeEntryHeader(encodeEntryHeader(META))).toEqual(META);
    const bare = { ...META, etag: undefined, lastModified: undefined, contentType: undefined };
    expect(decodeEntryHeader(encodeEntryHeader(bare))).toEqual(bare);
  });

  it('round-trips any metadata', () => {
    fc.assert(
      fc.property(
        fc.record({
          key: fc.string().map((s) => `/${s}`),
          size: fc.nat(),
          etag: fc.option(fc.string(), { nil: undefined }),
          lastModified: fc.option(fc.string(), { nil: undefined }),
          contentType: fc.option(fc.string(), { nil: undefined }),
          storedAt: fc.nat(),
        }),
        (meta) => {
          expect(decodeEntryHeader(encodeEntryHeader(meta))).toEqual(meta);
        },
      ),
    );
  });

  it.each<[string, Buffer]>([
    ['short', Buffer.from('MBIC')],
    ['bad magic', Buffer.concat([Buffer.from('XXXX\x01'), Buffer.alloc(4)])],
    ['unknown version', Buffer.concat([Buffer.from('MBIC\x02'), Buffer.alloc(4)])],
    ['metadata too long', Buffer.concat([Buffer.from('MBIC\x01'), Buffer.from([0, 1, 0, 1])])],
    ['truncated metadata', encodeEntryHeader(META).subarray(0, 20)],
    ['not JSON', Buffer.concat([Buffer.from('MBIC\x01'), Buffer.from([0, 0, 0, 3]), Buffer.from('{{{')])],
    ['no key', Buffer.concat([Buffer.from('MBIC\x01'), Buffer.from([0, 0, 0, 2]), Buffer.from('{}')])],
    ['negative size', encodeEntryHeader({ ...META, size: -1 })],
  ])('refuses a header that is %s with IMAGE_CACHE_ERR_BAD_ENTRY', (_name, buf) => {
    let thrown: unknown;
    try {
      decodeEntryHeader(buf);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(MetalbootError);
    expect(thrown).toMatchObject({ code: 'IMAGE_CACHE_ERR_BAD_ENTRY' });
  });

  it('never throws anything but MetalbootError on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const withMagic = Buffer.concat([Buffer.from('MBIC\x01'), Buffer.from(bytes)]);
        for (const b of [Buffer.from(bytes), withMagic]) {
          try {
            decodeEntryHeader(b);
          } catch (err) {
            expect(err).toBeInstanceOf(MetalbootError);
          }
        }
      }),
    );
  });
});

describe('entry file names', () => {
  it('are the key digest and a generation', () => {
    const name = entryFileName('/images/x', 'abc123');
    expect(name).toBe(`${keyDigest('/images/x')}-abc123`);
    expect(ENTRY_FILE_NAME.test(name)).toBe(true);
    expect(keyDigest('/images/x')).not.toBe(keyDigest('/images/y'));
  });
});
