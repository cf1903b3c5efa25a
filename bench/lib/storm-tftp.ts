/**
 * A TFTP read as EDK2's PXE client does it, from a simulated host's own address: RRQ with
 * tsize=0, blksize and windowsize; ERROR 8 to the OACK (the size probe); then a second RRQ from
 * a new port that downloads the file (EDK2 PxeBc: resend after 4 s of silence, 6 retries).
 * Counts the bytes and hashes them as they arrive.
 *
 * The protocol is lab/tftp-client.ts (edk2Get), the client the tests and bench/tftp.ts use;
 * this adds the hash and the storm's error codes, which its report groups failures by.
 */
import { createHash } from 'node:crypto';
import { edk2Get, TftpClientError, type TftpClientErrorCode } from '../../lab/tftp-client.js';

export interface StormTftpOptions {
  readonly localAddress: string;
  readonly server: string;
  readonly port?: number;
  readonly file: string;
  readonly blksize: number;
  readonly windowsize: number;
  readonly timeoutMs: number;
  readonly retries: number;
  /** Both requests together must finish within this. */
  readonly deadlineMs: number;
}

export interface StormTftpResult {
  readonly bytes: number;
  readonly sha256: string;
  readonly probedSize: number;
  /** Packets resent after silence, probe and download together. */
  readonly resends: number;
}

export type StormTftpErrorCode =
  | 'STORM_TFTP_TIMEOUT'
  | 'STORM_TFTP_SERVER_ERROR'
  | 'STORM_TFTP_PROTOCOL'
  | 'STORM_TFTP_SOCKET';

export class StormTftpError extends Error {
  constructor(
    readonly code: StormTftpErrorCode,
    message: string,
    readonly resends: number,
  ) {
    super(message);
  }
}

const CODES: Record<TftpClientErrorCode, StormTftpErrorCode> = {
  TFTP_CLIENT_TIMEOUT: 'STORM_TFTP_TIMEOUT',
  TFTP_CLIENT_SERVER_ERROR: 'STORM_TFTP_SERVER_ERROR',
  TFTP_CLIENT_PROTOCOL: 'STORM_TFTP_PROTOCOL',
  TFTP_CLIENT_SOCKET: 'STORM_TFTP_SOCKET',
};

/** The EDK2 sequence: size probe declined with ERROR 8, then the download. */
export async function edk2Read(o: StormTftpOptions): Promise<StormTftpResult> {
  const hash = createHash('sha256');
  try {
    const r = await edk2Get({
      host: o.server,
      localAddress: o.localAddress,
      port: o.port ?? 69,
      file: o.file,
      blksize: o.blksize,
      windowsize: o.windowsize,
      timeoutMs: o.timeoutMs,
      retries: o.retries,
      deadlineMs: o.deadlineMs,
      onData: (block) => hash.update(block),
    });
    return { bytes: r.bytes, sha256: hash.digest('hex'), probedSize: r.probedSize, resends: r.timeouts };
  } catch (err) {
    if (err instanceof TftpClientError) throw new StormTftpError(CODES[err.code], err.message, err.timeouts);
    throw err;
  }
}
