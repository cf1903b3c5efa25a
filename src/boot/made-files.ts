/**
 * Files a TFTP client gets that are made per request rather than read from a directory, for the
 * Secure Boot chain, whose GRUB speaks TFTP only (Debian's grubnetx64 has no http module):
 * - GRUB configurations (`grub/grub.cfg`, `grub.cfg-01-<mac>`, …), rendered for the host the
 *   name or the client's address means (grub-configs.ts);
 * - images (`images/…`, `agent_images/…`, Ironic's `<node-uuid>/…`), fetched through the image
 *   proxy (and so its cache) and held in memory for a short while, so that the size probe and
 *   the transfer, and hosts booting together, share one fetch.
 */
import type { FileLookup, IpxeFile } from './ipxe-files.js';
import { normalizeRequestPath } from './ipxe-files.js';
import { parseGrubName, renderGrubConfig, type GrubConfigOptions, type RenderedGrubConfig } from './grub-configs.js';
import type { Fetched } from './http-fetch.js';

export interface MadeFilesOptions {
  readonly grub: GrubConfigOptions;
  /** The image proxy's URL (no trailing slash). */
  readonly imageBaseUrl: string;
  readonly fetchImage: (url: string) => Promise<Fetched>;
  /** How long a fetched image is kept for the next request. Default 120 s. */
  readonly keepMs?: number;
  /** At most this many images are kept. Default 4. */
  readonly keepCount?: number;
  /** At most this many bytes of images are kept, the oldest dropped first. Default 1.5 GiB. */
  readonly keepBytes?: number;
  readonly now?: () => number;
  /** Told every GRUB configuration served (logs, boot events). */
  readonly onGrubConfig?: (peer: string, name: string, config: RenderedGrubConfig) => void;
  /** Told every image fetch that failed. */
  readonly onImageError?: (peer: string, name: string, reason: string) => void;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** True for a TFTP name that is an image behind the image proxy. Pure. */
export function isImageName(name: string): boolean {
  const n = normalizeRequestPath(name);
  if (n.kind !== 'ok' || !n.path.includes('/')) return false;
  const first = n.path.split('/')[0]!;
  return first === 'images' || first === 'agent_images' || UUID.test(first);
}

function fileOf(name: string, where: string, data: Buffer, now: number): IpxeFile {
  return {
    name,
    path: where,
    data,
    size: data.length,
    mtimeMs: now,
    // Size and time, not a hash: hashing a 500 MiB initramfs would hold the event loop for a second.
    etag: `"${data.length.toString(16)}-${now.toString(16)}"`,
  };
}

export function madeFiles(o: MadeFilesOptions): (name: string, peer: string) => Promise<FileLookup> | undefined {
  const keepMs = o.keepMs ?? 120_000;
  const keepCount = o.keepCount ?? 4;
  const keepBytes = o.keepBytes ?? 1.5 * 2 ** 30;
  const now = o.now ?? Date.now;
  const images = new Map<string, { at: number; result: Promise<Fetched>; bytes: number }>();
  /** Drops the oldest kept images until the count and the bytes fit. */
  const trim = () => {
    let bytes = 0;
    for (const v of images.values()) bytes += v.bytes;
    for (const [k, v] of images) {
      if (images.size <= keepCount && bytes <= keepBytes) break;
      images.delete(k);
      bytes -= v.bytes;
    }
  };

  const image = (path: string): Promise<Fetched> => {
    const t = now();
    for (const [k, v] of images) if (t - v.at > keepMs) images.delete(k);
    const kept = images.get(path);
    if (kept !== undefined) return kept.result;
    const result = o.fetchImage(`${o.imageBaseUrl}/${path}`);
    const entry = { at: t, result, bytes: 0 };
    images.set(path, entry);
    // A failure is not kept: the next request tries again. A success counts against the budget.
    void result.then((r) => {
      if (images.get(path) !== entry) return;
      if (r.kind !== 'data') images.delete(path);
      else {
        entry.bytes = r.data.length;
        trim();
      }
    });
    trim();
    return result;
  };

  return (name, peer) => {
    if (parseGrubName(name).kind !== 'not-grub') {
      return renderGrubConfig(name, peer, o.grub).then((c): FileLookup => {
        if (c === undefined) return { kind: 'missing' };
        o.onGrubConfig?.(peer, name, c);
        return { kind: 'file', file: fileOf(name, 'metalboot', Buffer.from(c.text, 'utf8'), now()) };
      });
    }
    if (!isImageName(name)) return undefined;
    const path = (normalizeRequestPath(name) as { path: string }).path;
    return image(path).then((r): FileLookup => {
      if (r.kind === 'data') return { kind: 'file', file: fileOf(path, `${o.imageBaseUrl}/${path}`, r.data, now()) };
      if (r.kind === 'error') o.onImageError?.(peer, path, r.reason);
      return { kind: 'missing' };
    });
  };
}
