/**
 * One read transfer as a state machine. The shell feeds it events (the first send, a packet from
 * the client's TID, a retransmission timeout) and does what each returned step says: send these
 * packets and (re)arm the timer, ignore the packet and leave the timer alone, or end.
 * No sockets, no timers, no clock, no logging.
 *
 * Blocks are counted with absolute numbers 1..totalBlocks; the wire carries them modulo 65536,
 * so block 65535 is followed by block 0 (the rollover tftpd-hpa, iPXE and EDK2 agree on).
 *
 * Lock-step (RFC 1350) is the window size 1 case of RFC 7440:
 * - The server sends a window of up to `windowsize` blocks after the last acknowledged block.
 * - An ACK that acknowledges a block not yet acknowledged moves the window: the next window
 *   starts right after it, resending anything after it that was already sent (RFC 7440 §4: the
 *   client ACKs the last block it received in order when it sees a gap).
 * - An ACK of the last acknowledged block, or of an older one, is a duplicate. It never causes a
 *   send: answering duplicates is the Sorcerer's Apprentice bug (RFC 1123 §4.2.3.1), which
 *   doubles every packet from the first delayed ACK on. Lost packets are the timer's job.
 * - On timeout the window after the last acknowledged block is sent again, with the timeout
 *   doubled each time (capped), at most `retries` times in a row without progress.
 * - With options accepted, the transfer starts with an OACK that the client acknowledges with
 *   ACK 0 (RFC 2347 §2). An ERROR instead of that ACK is the client declining the options, as
 *   EDK2 does after asking for tsize only to size its buffer (code 8, RFC 2347 §2).
 */
import { ERROR_CODE, type TftpOption, type TftpPacket } from './packet.js';

export interface TransferParams {
  readonly data: Uint8Array;
  readonly blksize: number;
  readonly windowsize: number;
  /** Options to acknowledge; empty means start with DATA 1 (no OACK). */
  readonly oack: readonly TftpOption[];
  /** The first retransmission timeout. */
  readonly timeoutMs: number;
  /** Back-off never waits longer than this (or than timeoutMs, if that is larger). */
  readonly maxTimeoutMs: number;
  /** Retransmissions in a row without progress before the transfer is abandoned. */
  readonly retries: number;
}

/** Why a transfer ended: 'complete' and 'options-declined' are normal, the rest are failures. */
export type TransferEnd = 'complete' | 'options-declined' | 'client-error' | 'timeout';

/** Why a packet on the transfer's TID changed nothing. */
export type TransferIgnoreReason =
  | 'duplicate-ack' // acknowledges the block already acknowledged
  | 'stale-ack' // acknowledges a block before that
  | 'ack-out-of-window' // acknowledges a block not sent yet
  | 'unexpected-packet' // not an ACK or ERROR
  | 'transfer-ended';

export type TransferStep =
  | {
      readonly kind: 'send';
      readonly packets: readonly TftpPacket[];
      readonly retransmit: boolean;
      readonly timeoutMs: number;
    }
  | { readonly kind: 'ignore'; readonly reason: TransferIgnoreReason }
  | {
      readonly kind: 'end';
      readonly end: TransferEnd;
      readonly packets: readonly TftpPacket[];
      readonly error?: { code: number; message: string };
    };

type Phase = 'new' | 'oack' | 'data' | 'ended';

const HALF_BLOCK_SPACE = 0x8000;

export class Transfer {
  readonly totalBlocks: number;
  #phase: Phase = 'new';
  /** Highest block acknowledged (0: none, or only the OACK). */
  #acked = 0;
  /** Highest block sent. */
  #sent = 0;
  /** Timeouts in a row without progress. */
  #attempts = 0;
  #payloadBytesSent = 0;
  #packetsResent = 0;

  readonly #p: TransferParams;

  constructor(p: TransferParams) {
    this.#p = p;
    if (p.blksize < 1 || p.windowsize < 1 || p.windowsize >= HALF_BLOCK_SPACE) {
      throw new RangeError('blksize and windowsize must be positive, windowsize below 32768');
    }
    // The last block is shorter than blksize; a file whose size is a multiple of blksize
    // (including an empty file) ends with an empty block (RFC 1350 §6).
    this.totalBlocks = Math.floor(p.data.length / p.blksize) + 1;
  }

  /** Payload bytes put on the wire so far, retransmissions included. */
  get bytesSent(): number {
    return this.#payloadBytesSent;
  }

  /** Packets (DATA or OACK) sent again after a timeout or a go-back. */
  get retransmissions(): number {
    return this.#packetsResent;
  }

  get lastAcked(): number {
    return this.#acked;
  }

  /** True until the client has acknowledged anything beyond the OACK. */
  get pristine(): boolean {
    return this.#acked === 0 && this.#phase !== 'ended';
  }

  get ended(): boolean {
    return this.#phase === 'ended';
  }

  start(): TransferStep {
    if (this.#phase !== 'new') return { kind: 'ignore', reason: 'unexpected-packet' };
    if (this.#p.oack.length > 0) {
      this.#phase = 'oack';
      return {
        kind: 'send',
        packets: [{ op: 'oack', options: this.#p.oack }],
        retransmit: false,
        timeoutMs: this.#timeout(),
      };
    }
    this.#phase = 'data';
    return this.#sendWindow(false);
  }

  onPacket(packet: TftpPacket): TransferStep {
    if (this.#phase === 'ended' || this.#phase === 'new') return { kind: 'ignore', reason: 'transfer-ended' };
    if (packet.op === 'error') {
      const end: TransferEnd = this.#phase === 'oack' ? 'options-declined' : 'client-error';
      this.#phase = 'ended';
      return { kind: 'end', end, packets: [], error: { code: packet.code, message: packet.message } };
    }
    if (packet.op !== 'ack') return { kind: 'ignore', reason: 'unexpected-packet' };
    if (this.#phase === 'oack') {
      if (packet.block !== 0) return { kind: 'ignore', reason: 'ack-out-of-window' };
      this.#phase = 'data';
      this.#attempts = 0;
      return this.#sendWindow(false);
    }
    // Map the 16-bit number onto the absolute blocks acked..sent (a span under 32768 blocks).
    const delta = (packet.block - this.#acked) & 0xffff;
    if (delta === 0) return { kind: 'ignore', reason: 'duplicate-ack' };
    const block = this.#acked + delta;
    if (block > this.#sent) {
      return { kind: 'ignore', reason: delta >= HALF_BLOCK_SPACE ? 'stale-ack' : 'ack-out-of-window' };
    }
    this.#acked = block;
    this.#attempts = 0;
    if (block === this.totalBlocks) {
      this.#phase = 'ended';
      return { kind: 'end', end: 'complete', packets: [] };
    }
    // A partial ACK means the blocks after it were lost: go back (RFC 7440 §4).
    return this.#sendWindow(block < this.#sent);
  }

  onTimeout(): TransferStep {
    if (this.#phase === 'ended' || this.#phase === 'new') return { kind: 'ignore', reason: 'transfer-ended' };
    this.#attempts++;
    if (this.#attempts > this.#p.retries) {
      this.#phase = 'ended';
      return {
        kind: 'end',
        end: 'timeout',
        packets: [{ op: 'error', code: ERROR_CODE.NOT_DEFINED, message: 'Transfer timed out' }],
      };
    }
    if (this.#phase === 'oack') {
      this.#packetsResent++;
      return {
        kind: 'send',
        packets: [{ op: 'oack', options: this.#p.oack }],
        retransmit: true,
        timeoutMs: this.#timeout(),
      };
    }
    return this.#sendWindow(true);
  }

  /** Sends the window after the last acknowledged block. */
  #sendWindow(retransmit: boolean): TransferStep {
    const from = this.#acked + 1;
    const last = Math.min(this.#acked + this.#p.windowsize, this.totalBlocks);
    const packets: TftpPacket[] = [];
    for (let block = from; block <= last; block++) {
      const data = this.#blockData(block);
      packets.push({ op: 'data', block: block & 0xffff, data });
      this.#payloadBytesSent += data.length;
      if (block <= this.#sent) this.#packetsResent++;
    }
    this.#sent = Math.max(this.#sent, last);
    return { kind: 'send', packets, retransmit, timeoutMs: this.#timeout() };
  }

  #blockData(block: number): Uint8Array {
    const start = (block - 1) * this.#p.blksize;
    return this.#p.data.subarray(start, Math.min(start + this.#p.blksize, this.#p.data.length));
  }

  #timeout(): number {
    const cap = Math.max(this.#p.maxTimeoutMs, this.#p.timeoutMs);
    return Math.min(this.#p.timeoutMs * 2 ** this.#attempts, cap);
  }
}
