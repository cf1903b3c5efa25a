/**
 * RFC 2347 option negotiation for a read request: which requested options the server accepts,
 * with what values, and what the OACK says. Pure: the request's options and the file size in,
 * the transfer parameters and the OACK out.
 *
 * Rules (RFC 2347 §2-§3 and each option's RFC):
 * - Option names are case-insensitive; the OACK echoes the client's own spelling.
 * - A repeated option counts once (the first); an unknown or malformed option is left out of
 *   the OACK, which tells the client it was not accepted. Unknown options are never echoed.
 * - blksize (RFC 2348): 8..65464; the server answers min(requested, maxBlksize). Below 8 the
 *   option is left out; above 65464 it is capped like any other large value (as tftpd-hpa does).
 * - tsize (RFC 2349 §3): in a read request the client sends 0; the server always answers with
 *   the real size of the file, whatever value was sent.
 * - timeout (RFC 2349 §2): 1..maxTimeoutS seconds (at most 255), accepted as asked; anything
 *   else is left out (the RFC lets the server accept the value or leave the option out, never
 *   change it). A client may not make a transfer that gets no ACK hold its slot for minutes.
 * - windowsize (RFC 7440 §3): 1..65535 requested; the server answers min(requested,
 *   maxWindowsize).
 * - No accepted option means no OACK: the transfer starts with DATA 1 (RFC 2347 §2).
 */
import { DEFAULT_BLKSIZE, MAX_BLKSIZE, type TftpOption } from './packet.js';

export const MIN_BLKSIZE = 8;
/** RFC 7440 §3 allows 65535; a window must stay under half the 16-bit block space so that a
 *  rolled-over ACK number maps back to exactly one block. */
export const MAX_WINDOWSIZE = 32767;
export const MIN_TIMEOUT_S = 1;
export const MAX_TIMEOUT_S = 255;

export interface NegotiationLimits {
  /** The largest blksize the server will answer; 512..65464. */
  readonly maxBlksize: number;
  /** The largest windowsize the server will answer; 1..MAX_WINDOWSIZE. */
  readonly maxWindowsize: number;
  /** The largest `timeout` accepted, in seconds; 1..255. */
  readonly maxTimeoutS: number;
}

export interface Negotiated {
  readonly blksize: number;
  readonly windowsize: number;
  /** The client's `timeout` option in milliseconds, when it sent an acceptable one. */
  readonly timeoutMs: number | undefined;
  /** The options to send back in an OACK, in request order; empty means send no OACK. */
  readonly oack: readonly TftpOption[];
  /** Names of options that were requested and not accepted (unknown, malformed, repeated). */
  readonly ignored: readonly string[];
}

const DECIMAL = /^[0-9]{1,10}$/;

function parseDecimal(value: string): number | undefined {
  return DECIMAL.test(value) ? Number(value) : undefined;
}

export function negotiate(requested: readonly TftpOption[], fileSize: number, limits: NegotiationLimits): Negotiated {
  let blksize = DEFAULT_BLKSIZE;
  let windowsize = 1;
  let timeoutMs: number | undefined;
  const oack: TftpOption[] = [];
  const ignored: string[] = [];
  const seen = new Set<string>();
  const maxBlksize = Math.min(Math.max(limits.maxBlksize, MIN_BLKSIZE), MAX_BLKSIZE);
  const maxWindowsize = Math.min(Math.max(limits.maxWindowsize, 1), MAX_WINDOWSIZE);

  for (const { name, value } of requested) {
    const key = name.toLowerCase();
    if (seen.has(key)) {
      ignored.push(name);
      continue;
    }
    seen.add(key);
    const n = parseDecimal(value);
    switch (key) {
      case 'blksize':
        if (n === undefined || n < MIN_BLKSIZE) break;
        blksize = Math.min(n, maxBlksize);
        oack.push({ name, value: String(blksize) });
        continue;
      case 'tsize':
        if (n === undefined) break;
        oack.push({ name, value: String(fileSize) });
        continue;
      case 'timeout':
        if (n === undefined || n < MIN_TIMEOUT_S || n > Math.min(MAX_TIMEOUT_S, limits.maxTimeoutS)) break;
        timeoutMs = n * 1000;
        oack.push({ name, value: String(n) });
        continue;
      case 'windowsize':
        if (n === undefined || n < 1 || n > 65535) break;
        windowsize = Math.min(n, maxWindowsize);
        oack.push({ name, value: String(windowsize) });
        continue;
    }
    ignored.push(name);
  }
  return { blksize, windowsize, timeoutMs, oack, ignored };
}
