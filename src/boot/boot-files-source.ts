/**
 * What the TFTP and HTTP servers serve as files: the signed Secure Boot files under their fixed
 * names (shimx64.efi, grubx64.efi, …, each read from where its package installs it), then the
 * iPXE directory. Each signed file is an IpxeFiles of its own directory with one alias, so it is
 * cached, re-stat'ed and refused by the same rules as the iPXE binaries. A signed file whose
 * directory is missing (arm64 files on an x86_64 image) is logged and answered as missing.
 */
import path from 'node:path';
import type { Logger } from 'pino';
import type { Service } from '../base/service.js';
import { IpxeFiles, normalizeRequestPath, type FileLookup, type FileSource } from './ipxe-files.js';

export class BootFiles implements Service, FileSource {
  readonly name = 'boot-files';
  readonly #ipxe: IpxeFiles;
  readonly #signed = new Map<string, IpxeFiles>();
  readonly #started = new Set<IpxeFiles>();
  readonly #paths: ReadonlyMap<string, string>;
  readonly #log: Logger | undefined;

  /** `signed`: served name → file on disk. */
  constructor(ipxe: IpxeFiles, signed: ReadonlyMap<string, string>, logger?: Logger) {
    this.#ipxe = ipxe;
    this.#log = logger?.child({ component: 'boot-files' });
    this.#paths = signed;
    for (const [served, file] of signed) {
      this.#signed.set(
        served,
        new IpxeFiles({ root: path.dirname(file), aliases: { [served]: path.basename(file) }, watch: false, logger }),
      );
    }
  }

  async start(): Promise<void> {
    await this.#ipxe.start();
    for (const [served, files] of this.#signed) {
      try {
        await files.start();
        this.#started.add(files);
        if (files.get(served) === undefined) this.#log?.warn({ file: served }, 'signed file missing');
      } catch {
        // Its directory is missing: the package is not installed (arm64 files on an x86_64 image).
        this.#log?.info({ file: served, path: this.#paths.get(served) }, 'signed file not installed');
      }
    }
  }

  async close(): Promise<void> {
    for (const f of this.#started) await f.close();
    this.#started.clear();
    await this.#ipxe.close();
  }

  lookup(name: string): FileLookup {
    const n = normalizeRequestPath(name);
    const signed = n.kind === 'ok' ? this.#signed.get(n.path) : undefined;
    if (signed === undefined) return this.#ipxe.lookup(name);
    return this.#started.has(signed) ? signed.lookup(n.kind === 'ok' ? n.path : name) : { kind: 'missing' };
  }
}
