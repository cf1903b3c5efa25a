/**
 * The iPXE directory as an in-memory file store, shared by the TFTP and HTTP servers.
 *
 * - A file is read into memory the first time it is asked for (every top-level file and alias
 *   target is read at start()), then served from memory.
 * - Freshness: a cached file is re-stat'ed at most once per `recheckMs` (and at once after
 *   fs.watch reports a change in the root), and read again only when its identity, size or
 *   mtime changed. A transfer keeps the Buffer it started with, so replacing a file never
 *   mixes two versions in one download. Stat-based checks also see what fs.watch cannot:
 *   files in subdirectories, symlink targets outside the root, Kubernetes ConfigMap swaps.
 * - Names: aliases (DEFAULT_FILE_ALIASES: served name → path relative to the root) are looked
 *   up first; any other name is a path relative to the root.
 *
 * Name rules (normalizeRequestPath), decided here once for every protocol:
 * - Leading `/` characters are stripped: `/snponly.efi` is `<root>/snponly.efi`, as with
 *   tftpd-hpa's --secure. So an "absolute" name such as `/etc/passwd` never leaves the root; it
 *   means `<root>/etc/passwd`, which does not exist.
 * - Refused: empty names, NUL and other control characters, backslashes (Windows separators,
 *   and a classic traversal vector), drive letters (`C:`), and any `..` segment. `.` segments
 *   and repeated `/` are dropped.
 * - A name that resolves (through symlinks) outside the root is refused, unless it resolves
 *   into one of `extraRoots` (Debian's ipxe package links ipxe.efi → /boot/ipxe.efi).
 */
import { watch, type FSWatcher } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { readFileSync, realpathSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Service } from '../base/service.js';
import { DEFAULT_FILE_ALIASES } from './boot-files.js';
import { MetalbootError } from '../base/errors.js';

export interface IpxeFile {
  /** The name it was asked for, normalized (no leading `/`). */
  readonly name: string;
  /** The real path it was read from. */
  readonly path: string;
  readonly data: Buffer;
  readonly size: number;
  readonly mtimeMs: number;
  /** A strong validator of the content: a quoted hash. */
  readonly etag: string;
}

/** Why a name is refused (never served, whether or not such a file exists). */
export type PathRefusal =
  | 'empty-name'
  | 'control-char'
  | 'backslash'
  | 'drive-letter'
  | 'traversal'
  | 'outside-root'
  | 'too-large';

export type FileLookup =
  | { readonly kind: 'file'; readonly file: IpxeFile }
  | { readonly kind: 'missing' }
  | { readonly kind: 'refused'; readonly reason: PathRefusal };

/** What a protocol server needs from a file store. */
export interface FileSource {
  lookup(name: string): FileLookup;
}

export interface IpxeFilesOptions {
  /** The iPXE directory. */
  readonly root: string;
  /** Served name → path relative to the root. Default DEFAULT_FILE_ALIASES. */
  readonly aliases?: Readonly<Record<string, string>>;
  /** Directories that symlinks in the root may resolve into. Default none. */
  readonly extraRoots?: readonly string[];
  /** Larger files are refused. Default 128 MiB. */
  readonly maxFileSize?: number;
  /** How often a cached file may be re-stat'ed. Default 1000 ms. */
  readonly recheckMs?: number;
  /** Watch the root for changes (off for tests that drive `recheckMs`). Default true. */
  readonly watch?: boolean;
  readonly now?: () => number;
  readonly logger?: Logger;
}

export type NormalizedPath =
  | { readonly kind: 'ok'; readonly path: string }
  | { readonly kind: 'refused'; readonly reason: PathRefusal };

/** Turns a requested name into a safe path relative to the root, or says why not. Pure. */
export function normalizeRequestPath(name: string): NormalizedPath {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is what this does
  if (/[\u0000-\u001f\u007f]/.test(name)) return { kind: 'refused', reason: 'control-char' };
  if (name.includes('\\')) return { kind: 'refused', reason: 'backslash' };
  if (/^[A-Za-z]:/.test(name)) return { kind: 'refused', reason: 'drive-letter' };
  const segments: string[] = [];
  for (const segment of name.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') return { kind: 'refused', reason: 'traversal' };
    segments.push(segment);
  }
  if (segments.length === 0) return { kind: 'refused', reason: 'empty-name' };
  return { kind: 'ok', path: segments.join('/') };
}

interface CacheEntry {
  readonly realPath: string;
  readonly ino: number;
  readonly dev: number;
  readonly size: number;
  readonly mtimeMs: number;
  readonly data: Buffer;
  readonly etag: string;
  /** Served-name views of this entry, so that repeated lookups allocate nothing. */
  readonly views: Map<string, IpxeFile>;
  checkedAt: number;
  generation: number;
}

const DEFAULT_MAX_FILE_SIZE = 128 * 1024 * 1024;

export class IpxeFiles implements Service, FileSource {
  readonly name = 'ipxe-files';
  readonly #root: string;
  readonly #aliases: ReadonlyMap<string, string>;
  readonly #extraRoots: readonly string[];
  readonly #maxFileSize: number;
  readonly #recheckMs: number;
  readonly #now: () => number;
  readonly #log: Logger | undefined;
  readonly #watchEnabled: boolean;
  /** Keyed by the normalized path relative to the root (after alias resolution). */
  readonly #cache = new Map<string, CacheEntry>();
  #realRoot: string | undefined;
  #realExtraRoots: string[] = [];
  #watcher: FSWatcher | undefined;
  /** Bumped by fs.watch: entries checked under an older generation are re-stat'ed. */
  #generation = 0;

  constructor(options: IpxeFilesOptions) {
    this.#root = path.resolve(options.root);
    this.#aliases = new Map(Object.entries(options.aliases ?? DEFAULT_FILE_ALIASES));
    this.#extraRoots = options.extraRoots ?? [];
    this.#maxFileSize = options.maxFileSize ?? DEFAULT_MAX_FILE_SIZE;
    this.#recheckMs = options.recheckMs ?? 1000;
    this.#now = options.now ?? Date.now;
    this.#log = options.logger?.child({ component: 'ipxe-files' });
    this.#watchEnabled = options.watch ?? true;
  }

  async start(): Promise<void> {
    const st = await stat(this.#root).catch(() => undefined);
    if (!st?.isDirectory()) {
      throw new MetalbootError('IPXE_ERR_ROOT_NOT_DIRECTORY', `iPXE directory ${this.#root} is not a directory`);
    }
    this.#realRoot = realpathSync(this.#root);
    this.#realExtraRoots = this.#extraRoots.flatMap((dir) => {
      try {
        return [realpathSync(dir)];
      } catch {
        this.#log?.warn({ dir }, 'extra root missing');
        return [];
      }
    });
    if (this.#watchEnabled) {
      try {
        this.#watcher = watch(this.#root, { persistent: false }, () => {
          this.#generation++;
        });
        this.#watcher.on('error', (err) => {
          this.#log?.warn({ err }, 'watch failed, relying on stat');
          this.#watcher?.close();
          this.#watcher = undefined;
        });
      } catch (err) {
        this.#log?.warn({ err }, 'watch failed, relying on stat');
      }
    }
    const names = new Set<string>(this.#aliases.keys());
    for (const entry of await readdir(this.#root, { withFileTypes: true })) {
      if (entry.isFile() || entry.isSymbolicLink()) names.add(entry.name);
    }
    let loaded = 0;
    for (const n of names) {
      const r = this.lookup(n);
      if (r.kind === 'file') loaded++;
      // Debian's ipxe package links ipxe.efi to /boot/ipxe.efi: say why it is not served.
      else if (r.kind === 'refused') this.#log?.warn({ file: n, reason: r.reason }, 'file not served');
    }
    this.#log?.info({ root: this.#root, files: loaded }, 'files loaded');
  }

  async close(): Promise<void> {
    this.#watcher?.close();
    this.#watcher = undefined;
    this.#cache.clear();
    this.#realRoot = undefined;
  }

  /** The file served under `name`, or undefined (missing or refused; see lookup). */
  get(name: string): IpxeFile | undefined {
    const r = this.lookup(name);
    return r.kind === 'file' ? r.file : undefined;
  }

  lookup(name: string): FileLookup {
    const normalized = normalizeRequestPath(name);
    if (normalized.kind === 'refused') return normalized;
    const served = normalized.path;
    const aliasTarget = this.#aliases.get(served);
    let relative = served;
    if (aliasTarget !== undefined) {
      const target = normalizeRequestPath(aliasTarget);
      if (target.kind === 'refused') return target;
      relative = target.path;
    }
    const entry = this.#load(relative);
    if (entry === undefined || entry === 'missing') return { kind: 'missing' };
    if (typeof entry === 'string') return { kind: 'refused', reason: entry };
    let view = entry.views.get(served);
    if (view === undefined) {
      view = {
        name: served,
        path: entry.realPath,
        data: entry.data,
        size: entry.size,
        mtimeMs: entry.mtimeMs,
        etag: entry.etag,
      };
      entry.views.set(served, view);
    }
    return { kind: 'file', file: view };
  }

  #load(relative: string): CacheEntry | PathRefusal | 'missing' | undefined {
    if (this.#realRoot === undefined) return undefined; // not started
    const now = this.#now();
    const cached = this.#cache.get(relative);
    if (cached !== undefined && cached.generation === this.#generation && now - cached.checkedAt < this.#recheckMs) {
      return cached;
    }
    let realPath: string;
    let st: ReturnType<typeof statSync>;
    try {
      realPath = realpathSync(path.join(this.#root, relative));
      if (!this.#inside(realPath)) {
        this.#cache.delete(relative);
        return 'outside-root';
      }
      st = statSync(realPath);
    } catch {
      this.#cache.delete(relative);
      return 'missing';
    }
    if (!st.isFile()) {
      this.#cache.delete(relative);
      return 'missing';
    }
    if (st.size > this.#maxFileSize) {
      this.#cache.delete(relative);
      return 'too-large';
    }
    if (
      cached !== undefined &&
      cached.realPath === realPath &&
      cached.ino === st.ino &&
      cached.dev === st.dev &&
      cached.size === st.size &&
      cached.mtimeMs === st.mtimeMs
    ) {
      cached.checkedAt = now;
      cached.generation = this.#generation;
      return cached;
    }
    let data: Buffer;
    try {
      data = readFileSync(realPath);
    } catch {
      this.#cache.delete(relative);
      return 'missing';
    }
    const entry: CacheEntry = {
      realPath,
      ino: st.ino,
      dev: st.dev,
      // The size of what was read: a file being rewritten may have changed since the stat.
      size: data.length,
      mtimeMs: st.mtimeMs,
      data,
      etag: `"${createHash('sha256').update(data).digest('base64url').slice(0, 27)}"`,
      views: new Map(),
      checkedAt: now,
      generation: this.#generation,
    };
    this.#cache.set(relative, entry);
    this.#log?.debug({ file: relative, size: data.length }, cached === undefined ? 'file loaded' : 'file reloaded');
    return entry;
  }

  #inside(realPath: string): boolean {
    const roots = this.#realRoot === undefined ? this.#realExtraRoots : [this.#realRoot, ...this.#realExtraRoots];
    return roots.some((r) => realPath === r || realPath.startsWith(r.endsWith(path.sep) ? r : r + path.sep));
  }
}
