/**
 * A metalboot TFTP server on loopback for tests: a temporary root with copies of the iPXE
 * binaries (or random files where they are not installed), the real IpxeFiles store, a silent
 * logger and a private metrics registry.
 */
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { IpxeFiles } from '../../src/boot/ipxe-files.js';
import { TftpServer, type TftpServerOptions } from '../../src/tftp/tftp-server.js';

export const IPXE_DIR = '/usr/lib/ipxe';
export const IPXE_BINARIES = ['undionly.kpxe', 'snponly.efi', 'ipxe.efi'] as const;

export const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

export interface TftpRoot {
  readonly dir: string;
  /** File name → content, for every file put in the root. */
  readonly files: ReadonlyMap<string, Buffer>;
  remove(): void;
}

/**
 * A temporary root holding the iPXE binaries (copied, symlinks dereferenced) and, when
 * `/usr/lib/ipxe` lacks one, random bytes of a similar size under the same name. `extra`
 * adds files of random content by size.
 */
export function makeTftpRoot(extra: Readonly<Record<string, number>> = {}): TftpRoot {
  const dir = mkdtempSync(path.join(tmpdir(), 'metalboot-tftp-'));
  const files = new Map<string, Buffer>();
  const fallbackSizes: Record<string, number> = { 'undionly.kpxe': 74213, 'snponly.efi': 173792, 'ipxe.efi': 850528 };
  for (const name of IPXE_BINARIES) {
    const src = path.join(IPXE_DIR, name);
    if (existsSync(src)) copyFileSync(src, path.join(dir, name));
    else writeFileSync(path.join(dir, name), randomBytes(fallbackSizes[name]!));
  }
  for (const [name, size] of Object.entries(extra)) writeFileSync(path.join(dir, name), randomBytes(size));
  for (const name of [...IPXE_BINARIES, ...Object.keys(extra)]) {
    files.set(name, readFileSync(path.join(dir, name)));
  }
  return { dir, files, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface RunningServer {
  readonly server: TftpServer;
  readonly files: IpxeFiles;
  readonly registry: Registry;
  readonly port: number;
  close(): Promise<void>;
  /** Waits (bounded) until no transfer is running: the client may finish before the server
   *  has read its final ACK. */
  idle(timeoutMs?: number): Promise<void>;
  /** The value of a counter or gauge (summed over series matching `labels`). */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
}

export async function startTftpServer(
  root: string,
  options: Partial<Omit<TftpServerOptions, 'files' | 'registry' | 'logger'>> = {},
): Promise<RunningServer> {
  const logger = pino({ level: process.env.TFTP_TEST_LOG ?? 'silent' });
  const registry = new Registry();
  const files = new IpxeFiles({ root, logger });
  await files.start();
  const server = new TftpServer({ listen: { host: '127.0.0.1', port: 0 }, files, registry, logger, ...options });
  await server.start();
  let closed = false;
  return {
    server,
    files,
    registry,
    port: server.address().port,
    async close() {
      if (closed) return;
      closed = true;
      await server.close();
      await files.close();
    },
    async idle(timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      while (server.activeTransfers > 0) {
        if (Date.now() > deadline) throw new Error(`${server.activeTransfers} transfers still running`);
        await new Promise((r) => setTimeout(r, 5));
      }
    },
    async metric(name, labels = {}) {
      const m = registry.getSingleMetric(name);
      if (!m) throw new Error(`no metric ${name}`);
      const { values } = await m.get();
      return values
        .filter((v) =>
          Object.entries(labels).every(([k, want]) => String((v.labels as Record<string, unknown>)[k]) === want),
        )
        .reduce((sum, v) => sum + v.value, 0);
    },
  };
}
