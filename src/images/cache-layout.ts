/**
 * Where the image cache keeps its files, and the directory's ownership. One directory of its own
 * under `dir` (--image-cache-dir), so that metalboot never deletes what it did not create,
 * whatever `dir` is. It holds a marker file; a directory of that name that is not empty and has
 * no marker is refused, and so are system directories as `dir` ({@link cacheDirProblem}).
 * ```
 * metalboot-image-cache/.metalboot-image-cache        the marker
 * metalboot-image-cache/entries/<sha256(key)[0..32]>-<generation>   complete entries
 * metalboot-image-cache/tmp/<generation>              fills in progress; emptied at start-up
 * ```
 * The book (cache-book.ts) opens it once, at start-up, and deletes what leaves the index; the
 * serving processes (cache-dir.ts) only open, create and rename files by these paths.
 */
import { existsSync } from 'node:fs';
import { mkdir, open, readdir, rm, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import type { IndexedEntry } from './cache-index.js';
import {
  decodeEntryHeader,
  ENTRY_FILE_NAME,
  entryHeaderLength,
  FIXED_HEADER_LENGTH,
  keyDigest,
} from './cache-entry.js';
import { MetalbootError } from '../base/errors.js';

/** The cache's own directory under --image-cache-dir, and the marker that says it is ours. */
export const CACHE_SUBDIR = 'metalboot-image-cache';
const MARKER = '.metalboot-image-cache';

/** Directories never taken as --image-cache-dir: the cache would sit among system files. */
const SYSTEM_DIRS = new Set([
  '/',
  '/bin',
  '/boot',
  '/dev',
  '/etc',
  '/home',
  '/lib',
  '/lib64',
  '/opt',
  '/proc',
  '/root',
  '/run',
  '/sbin',
  '/srv',
  '/sys',
  '/tmp',
  '/usr',
  '/var',
  '/var/lib',
  '/var/tmp',
]);

/** Why `dir` cannot hold the image cache, or undefined. Pure. */
export function cacheDirProblem(dir: string): string | undefined {
  const resolved = path.resolve(dir);
  if (SYSTEM_DIRS.has(resolved)) return `image cache directory ${resolved} is a system directory; give one of its own`;
  return undefined;
}

export class CacheLayout {
  readonly root: string;
  readonly entriesDir: string;
  readonly tmpDir: string;

  constructor(readonly dir: string) {
    this.root = path.join(dir, CACHE_SUBDIR);
    this.entriesDir = path.join(this.root, 'entries');
    this.tmpDir = path.join(this.root, 'tmp');
  }

  entryPath(file: string): string {
    return path.join(this.entriesDir, file);
  }

  fillPath(id: string): string {
    return path.join(this.tmpDir, id);
  }

  /**
   * Claims the directory, creates what is missing, deletes interrupted fills and broken entries,
   * and returns the entries found, oldest first (a key stored twice after a crash between a
   * rename and the unlink of the old version comes twice; the later one wins).
   */
  async open(log: FastifyBaseLogger): Promise<IndexedEntry[]> {
    await this.#claim();
    await rm(this.tmpDir, { recursive: true, force: true });
    await mkdir(this.tmpDir, { recursive: true });
    await mkdir(this.entriesDir, { recursive: true });
    const found: { entry: IndexedEntry; mtimeMs: number }[] = [];
    for (const name of await readdir(this.entriesDir)) {
      const file = path.join(this.entriesDir, name);
      const entry = ENTRY_FILE_NAME.test(name) ? await readEntry(file, name).catch(() => undefined) : undefined;
      if (entry === undefined) {
        log.warn({ file }, 'image cache: removing a broken entry');
        await rm(file, { recursive: true, force: true });
        continue;
      }
      found.push(entry);
    }
    found.sort((a, b) => a.entry.meta.storedAt - b.entry.meta.storedAt || a.mtimeMs - b.mtimeMs);
    return found.map((f) => f.entry);
  }

  /** Deletes an entry's file (readers that have it open keep reading it). */
  removeEntry(file: string, log: FastifyBaseLogger): void {
    unlink(this.entryPath(file)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') log.warn({ err, file }, 'image cache: cannot delete an entry');
    });
  }

  /** Deletes a fill's temporary file. */
  removeFill(id: string, log: FastifyBaseLogger): void {
    rm(this.fillPath(id), { force: true }).catch((err: unknown) =>
      log.warn({ err, fill: id }, 'image cache: cannot delete a fill'),
    );
  }

  /** Makes sure the cache's directory is its own before anything in it is deleted. */
  async #claim(): Promise<void> {
    const problem = cacheDirProblem(this.dir);
    if (problem !== undefined) throw new MetalbootError('IMAGE_PROXY_ERR_BAD_CACHE_OPTIONS', problem);
    await mkdir(this.root, { recursive: true, mode: 0o700 });
    const marker = path.join(this.root, MARKER);
    if (existsSync(marker)) return;
    if ((await readdir(this.root)).length > 0) {
      throw new MetalbootError(
        'IMAGE_PROXY_ERR_BAD_CACHE_OPTIONS',
        `${this.root} is not empty and has no ${MARKER}: not a metalboot image cache, nothing in it is touched`,
      );
    }
    await writeFile(marker, 'metalboot image cache: metalboot may delete anything in this directory\n', {
      mode: 0o600,
    });
  }
}

async function readEntry(file: string, name: string): Promise<{ entry: IndexedEntry; mtimeMs: number } | undefined> {
  const handle = await open(file, 'r');
  try {
    const st = await handle.stat();
    if (!st.isFile()) return undefined;
    const fixed = Buffer.alloc(FIXED_HEADER_LENGTH);
    await handle.read(fixed, 0, FIXED_HEADER_LENGTH, 0);
    const headerLength = entryHeaderLength(fixed);
    const header = Buffer.alloc(headerLength);
    const { bytesRead } = await handle.read(header, 0, headerLength, 0);
    if (bytesRead !== headerLength) return undefined;
    const meta = decodeEntryHeader(header);
    if (st.size !== headerLength + meta.size || !name.startsWith(`${keyDigest(meta.key)}-`)) return undefined;
    return { entry: { meta, file: name, headerLength, validatedAt: 0 }, mtimeMs: st.mtimeMs };
  } finally {
    await handle.close();
  }
}
