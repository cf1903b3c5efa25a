/**
 * The on-disk form of one cache entry: a small header, then the object's bytes. Pure.
 *
 * ```
 *  0       4    5            9                  9+n                     9+n+size
 *  +-------+----+------------+------------------+-----------------------+
 *  | MBIC  | 01 | n (u32 BE) | meta (JSON, n B) | body (meta.size bytes)|
 *  +-------+----+------------+------------------+-----------------------+
 * ```
 *
 * Keeping the metadata inside the file makes an entry one file, created by one rename: there is
 * no moment at which the body exists without its validators, or the reverse. A file whose length
 * is not exactly header + meta.size is a broken entry and is deleted at start-up.
 *
 * File names are `<sha256(key)[0..32]>-<generation>`: a new version of an artifact gets a new
 * name, so a reader that opened the old name never sees the new bytes under the old metadata.
 */
import { createHash } from 'node:crypto';
import { MetalbootError } from '../base/errors.js';

export interface EntryMeta {
  /** The canonical request path (see paths.ts). */
  readonly key: string;
  /** Body length in bytes: the upstream's Content-Length. */
  readonly size: number;
  readonly etag: string | undefined;
  readonly lastModified: string | undefined;
  readonly contentType: string | undefined;
  /** Epoch milliseconds when the body was stored. */
  readonly storedAt: number;
}

const MAGIC = Buffer.from('MBIC', 'latin1');
const VERSION = 1;
/** Magic, version byte and the JSON length. */
export const FIXED_HEADER_LENGTH = 9;
/** A header longer than this is not ours (keys are paths, validators are short). */
const MAX_META_LENGTH = 64 * 1024;

export function encodeEntryHeader(meta: EntryMeta): Buffer {
  const json = Buffer.from(
    JSON.stringify({
      key: meta.key,
      size: meta.size,
      etag: meta.etag,
      lastModified: meta.lastModified,
      contentType: meta.contentType,
      storedAt: meta.storedAt,
    }),
    'utf8',
  );
  const head = Buffer.alloc(FIXED_HEADER_LENGTH);
  MAGIC.copy(head, 0);
  head.writeUInt8(VERSION, 4);
  head.writeUInt32BE(json.length, 5);
  return Buffer.concat([head, json]);
}

const bad = (message: string): MetalbootError => new MetalbootError('IMAGE_CACHE_ERR_BAD_ENTRY', message);

/** Length of the whole header given its fixed part, or throws `IMAGE_CACHE_ERR_BAD_ENTRY`. */
export function entryHeaderLength(fixed: Buffer): number {
  if (fixed.length < FIXED_HEADER_LENGTH) throw bad('short header');
  if (!fixed.subarray(0, 4).equals(MAGIC)) throw bad('bad magic');
  if (fixed.readUInt8(4) !== VERSION) throw bad('unknown version');
  const n = fixed.readUInt32BE(5);
  if (n > MAX_META_LENGTH) throw bad('metadata too long');
  return FIXED_HEADER_LENGTH + n;
}

const optionalString = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** Decodes a whole header (as long as {@link entryHeaderLength} said). */
export function decodeEntryHeader(header: Buffer): EntryMeta {
  const length = entryHeaderLength(header);
  if (header.length < length) throw bad('short header');
  let raw: unknown;
  try {
    raw = JSON.parse(header.subarray(FIXED_HEADER_LENGTH, length).toString('utf8'));
  } catch {
    throw bad('metadata is not JSON');
  }
  if (typeof raw !== 'object' || raw === null) throw bad('metadata is not an object');
  const o = raw as Record<string, unknown>;
  if (typeof o['key'] !== 'string' || !o['key'].startsWith('/')) throw bad('metadata has no key');
  if (typeof o['size'] !== 'number' || !Number.isSafeInteger(o['size']) || o['size'] < 0)
    throw bad('metadata has no size');
  if (typeof o['storedAt'] !== 'number' || !Number.isFinite(o['storedAt'])) throw bad('metadata has no storedAt');
  return {
    key: o['key'],
    size: o['size'],
    etag: optionalString(o['etag']),
    lastModified: optionalString(o['lastModified']),
    contentType: optionalString(o['contentType']),
    storedAt: o['storedAt'],
  };
}

/** The stable part of an entry's file name. */
export const keyDigest = (key: string): string => createHash('sha256').update(key).digest('hex').slice(0, 32);

/** `<digest>-<generation>`; generation is any [a-z0-9]+ token unique per fill. */
export const entryFileName = (key: string, generation: string): string => `${keyDigest(key)}-${generation}`;

export const ENTRY_FILE_NAME = /^[0-9a-f]{32}-[a-z0-9]+$/;
