/**
 * The boot storm's TFTP read against metalboot's TFTP server on loopback: what it checks a
 * download by (bytes, sha256, probed size) and the error codes the storm report groups by.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IpxeFiles } from '../../src/boot/ipxe-files.js';
import { TftpServer } from '../../src/tftp/tftp-server.js';
import { edk2Read, StormTftpError, type StormTftpOptions } from './storm-tftp.js';

const FILE = randomBytes(100_000);
let dir: string;
let files: IpxeFiles;
let server: TftpServer;
let options: StormTftpOptions;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'metalboot-storm-tftp-'));
  writeFileSync(path.join(dir, 'snponly.efi'), FILE);
  const logger = pino({ level: 'silent' });
  files = new IpxeFiles({ root: dir, logger });
  await files.start();
  server = new TftpServer({ listen: { host: '127.0.0.1', port: 0 }, files, registry: new Registry(), logger });
  await server.start();
  options = {
    localAddress: '127.0.0.2',
    server: '127.0.0.1',
    port: server.address().port,
    file: 'snponly.efi',
    blksize: 1468,
    windowsize: 4,
    timeoutMs: 1_000,
    retries: 2,
    deadlineMs: 10_000,
  };
});

afterAll(async () => {
  await server.close();
  await files.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('edk2Read', () => {
  it('downloads the file from the host address, hashing what arrives', async () => {
    const r = await edk2Read(options);
    expect(r).toEqual({
      bytes: FILE.length,
      sha256: createHash('sha256').update(FILE).digest('hex'),
      probedSize: FILE.length,
      resends: 0,
    });
  });

  it('fails with STORM_TFTP_SERVER_ERROR for a file the server does not have', async () => {
    const err = await edk2Read({ ...options, file: 'missing.efi' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StormTftpError);
    expect((err as StormTftpError).code).toBe('STORM_TFTP_SERVER_ERROR');
  });

  it('fails with STORM_TFTP_TIMEOUT when nothing answers, counting its resends', async () => {
    const err = await edk2Read({ ...options, port: 9, timeoutMs: 20, retries: 2 }).catch((e: unknown) => e);
    expect((err as StormTftpError).code).toBe('STORM_TFTP_TIMEOUT');
    expect((err as StormTftpError).resends).toBe(2);
  });
});
