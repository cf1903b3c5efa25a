import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { DataPacket, TftpPacket } from './packet.js';
import { Transfer, type TransferParams, type TransferStep } from './transfer.js';

const params = (over: Partial<TransferParams> = {}): TransferParams => ({
  data: Buffer.from('0123456789abcdefghij'), // 20 bytes
  blksize: 8,
  windowsize: 1,
  oack: [],
  timeoutMs: 1000,
  maxTimeoutMs: 8000,
  retries: 5,
  ...over,
});

const ack = (block: number): TftpPacket => ({ op: 'ack', block });

function sent(step: TransferStep): DataPacket[] {
  expect(step.kind).toBe('send');
  if (step.kind !== 'send') return [];
  return step.packets.filter((p): p is DataPacket => p.op === 'data');
}

const blocks = (step: TransferStep): number[] => sent(step).map((p) => p.block);
const text = (p: DataPacket): string => Buffer.from(p.data).toString();

describe('lock-step (RFC 1350)', () => {
  it('sends 8-byte blocks, ends with the short block, completes on its ACK', () => {
    const t = new Transfer(params());
    expect(t.totalBlocks).toBe(3);
    const s1 = sent(t.start());
    expect(s1.map(text)).toEqual(['01234567']);
    expect(sent(t.onPacket(ack(1))).map(text)).toEqual(['89abcdef']);
    expect(sent(t.onPacket(ack(2))).map(text)).toEqual(['ghij']);
    expect(t.onPacket(ack(3))).toEqual({ kind: 'end', end: 'complete', packets: [] });
    expect(t.ended).toBe(true);
  });

  it('ends a file that is a multiple of blksize with an empty block', () => {
    const t = new Transfer(params({ data: Buffer.alloc(16) }));
    expect(t.totalBlocks).toBe(3);
    t.start();
    t.onPacket(ack(1));
    expect(sent(t.onPacket(ack(2)))[0]!.data.length).toBe(0);
  });

  it('sends one empty block for an empty file', () => {
    const t = new Transfer(params({ data: Buffer.alloc(0) }));
    const s = sent(t.start());
    expect(s).toHaveLength(1);
    expect(s[0]!.data.length).toBe(0);
    expect(t.onPacket(ack(1)).kind).toBe('end');
  });

  it('recovers a lost ACK by retransmitting on timeout, with back-off', () => {
    const t = new Transfer(params());
    t.start();
    t.onPacket(ack(1)); // block 2 sent; its ACK is lost
    const r1 = t.onTimeout();
    expect(blocks(r1)).toEqual([2]);
    expect(r1).toMatchObject({ retransmit: true, timeoutMs: 2000 });
    expect(t.onTimeout()).toMatchObject({ timeoutMs: 4000 });
    expect(t.onTimeout()).toMatchObject({ timeoutMs: 8000 });
    expect(t.onTimeout()).toMatchObject({ timeoutMs: 8000 }); // capped
    // Progress resets the back-off.
    expect(t.onPacket(ack(2))).toMatchObject({ kind: 'send', retransmit: false, timeoutMs: 1000 });
    expect(t.retransmissions).toBe(4);
  });

  it('gives up after `retries` timeouts in a row and tells the client', () => {
    const t = new Transfer(params({ retries: 2 }));
    t.start();
    expect(t.onTimeout().kind).toBe('send');
    expect(t.onTimeout().kind).toBe('send');
    const end = t.onTimeout();
    expect(end).toMatchObject({ kind: 'end', end: 'timeout' });
    expect(end.kind === 'end' && end.packets[0]).toMatchObject({ op: 'error', code: 0 });
    expect(t.onTimeout()).toEqual({ kind: 'ignore', reason: 'transfer-ended' });
  });

  it("never answers a duplicate ACK (Sorcerer's Apprentice)", () => {
    const t = new Transfer(params());
    t.start();
    t.onPacket(ack(1));
    // The ACK of block 1 was only delayed: the client sends it again, or it arrives twice.
    expect(t.onPacket(ack(1))).toEqual({ kind: 'ignore', reason: 'duplicate-ack' });
    expect(t.onPacket(ack(2)).kind).toBe('send');
    expect(t.onPacket(ack(1))).toEqual({ kind: 'ignore', reason: 'stale-ack' });
    expect(t.bytesSent).toBe(20);
  });

  it('ignores ACKs of blocks not sent yet', () => {
    const t = new Transfer(params());
    t.start();
    expect(t.onPacket(ack(2))).toEqual({ kind: 'ignore', reason: 'ack-out-of-window' });
  });

  it('ends on a client ERROR without answering it', () => {
    const t = new Transfer(params());
    t.start();
    expect(t.onPacket({ op: 'error', code: 0, message: 'disk full' })).toEqual({
      kind: 'end',
      end: 'client-error',
      packets: [],
      error: { code: 0, message: 'disk full' },
    });
  });

  it('ignores packets that are neither ACK nor ERROR', () => {
    const t = new Transfer(params());
    t.start();
    expect(t.onPacket({ op: 'data', block: 1, data: Buffer.alloc(1) })).toEqual({
      kind: 'ignore',
      reason: 'unexpected-packet',
    });
  });
});

describe('option acknowledgment (RFC 2347)', () => {
  const oack = [{ name: 'tsize', value: '20' }];

  it('starts with an OACK and sends DATA 1 on ACK 0', () => {
    const t = new Transfer(params({ oack }));
    expect(t.start()).toMatchObject({ kind: 'send', packets: [{ op: 'oack', options: oack }] });
    expect(t.onPacket(ack(1))).toEqual({ kind: 'ignore', reason: 'ack-out-of-window' });
    expect(blocks(t.onPacket(ack(0)))).toEqual([1]);
    expect(t.onPacket(ack(0))).toEqual({ kind: 'ignore', reason: 'duplicate-ack' });
  });

  it('resends the OACK when ACK 0 is lost', () => {
    const t = new Transfer(params({ oack }));
    t.start();
    expect(t.onTimeout()).toMatchObject({ kind: 'send', retransmit: true, packets: [{ op: 'oack' }] });
  });

  it('EDK2 probe: ERROR 8 instead of ACK 0 is a declined negotiation, not a failure', () => {
    const t = new Transfer(params({ oack }));
    t.start();
    expect(t.onPacket({ op: 'error', code: 8, message: '' })).toMatchObject({ kind: 'end', end: 'options-declined' });
  });
});

describe('windowed (RFC 7440)', () => {
  const data = Buffer.from('abcdefghijklmnopqrstuvwxyz'); // 26 bytes, 4-byte blocks: 7 blocks

  it('sends a window at a time and moves it on each ACK of its last block', () => {
    const t = new Transfer(params({ data, blksize: 4, windowsize: 4, oack: [{ name: 'windowsize', value: '4' }] }));
    t.start();
    expect(blocks(t.onPacket(ack(0)))).toEqual([1, 2, 3, 4]);
    expect(blocks(t.onPacket(ack(4)))).toEqual([5, 6, 7]);
    expect(t.onPacket(ack(7)).kind).toBe('end');
  });

  it('goes back to the block after a partial ACK (the client saw a gap)', () => {
    const t = new Transfer(params({ data, blksize: 4, windowsize: 4 }));
    t.start(); // 1..4
    const s = t.onPacket(ack(2)); // 3 lost
    expect(blocks(s)).toEqual([3, 4, 5, 6]);
    expect(s).toMatchObject({ retransmit: true });
  });

  it('on timeout, resends from the block after the last acknowledged one', () => {
    const t = new Transfer(params({ data, blksize: 4, windowsize: 4 }));
    t.start();
    t.onPacket(ack(4)); // 5..7 sent
    expect(blocks(t.onTimeout())).toEqual([5, 6, 7]);
  });

  it('does not resend a window for a duplicate ACK of an old block', () => {
    const t = new Transfer(params({ data, blksize: 4, windowsize: 4 }));
    t.start();
    t.onPacket(ack(4));
    expect(t.onPacket(ack(4))).toEqual({ kind: 'ignore', reason: 'duplicate-ack' });
    expect(t.onPacket(ack(2))).toEqual({ kind: 'ignore', reason: 'stale-ack' });
    expect(t.retransmissions).toBe(0);
  });
});

describe('block-number rollover', () => {
  it.each([
    { windowsize: 1, name: 'lock-step' },
    { windowsize: 16, name: 'window 16' },
  ])('delivers a file of more than 65535 blocks intact ($name)', ({ windowsize }) => {
    const blksize = 8;
    const data = randomBytes(65535 * blksize * 2 + 77); // 131080 blocks: rolls over twice
    const t = new Transfer(params({ data, blksize, windowsize }));
    const received: Buffer[] = [];
    const seenNumbers = new Set<number>();
    let wrongNumbers = 0;
    let expected = 1; // absolute
    let step = t.start();
    while (step.kind === 'send') {
      let lastInOrder = -1;
      for (const p of step.packets) {
        if (p.op !== 'data') continue;
        if (p.block !== (expected & 0xffff)) wrongNumbers++;
        seenNumbers.add(p.block);
        received.push(Buffer.from(p.data));
        lastInOrder = p.block;
        expected++;
      }
      step = t.onPacket(ack(lastInOrder));
    }
    expect(wrongNumbers).toBe(0);
    expect(step).toMatchObject({ kind: 'end', end: 'complete' });
    expect(seenNumbers.has(0)).toBe(true); // 65535 → 0
    expect(Buffer.concat(received).equals(data)).toBe(true);
    expect(t.totalBlocks).toBe(Math.floor(data.length / blksize) + 1);
  });

  it('maps a rolled-over ACK onto the right absolute block during a window across 65535 → 0', () => {
    const blksize = 8;
    const data = Buffer.alloc(65540 * blksize);
    const t = new Transfer(params({ data, blksize, windowsize: 8 }));
    t.start(); // 1..8
    let acked = 0;
    let step: TransferStep | undefined;
    while (acked < 65528) {
      acked += 8;
      step = t.onPacket(ack(acked & 0xffff));
    }
    // The window after 65528 crosses the rollover: 65529..65535, then wire block 0.
    expect(blocks(step!)).toEqual([65529, 65530, 65531, 65532, 65533, 65534, 65535, 0]);
    // A partial ACK of 65535 goes back to absolute 65536, which is wire block 0.
    // (The file has 65541 blocks, the last one empty.)
    expect(blocks(t.onPacket(ack(65535)))).toEqual([0, 1, 2, 3, 4, 5]);
    // ACK of wire block 0 is absolute 65536, not block 0 from the start of the file.
    expect(blocks(t.onPacket(ack(0)))[0]).toBe(1);
    expect(t.lastAcked).toBe(65536);
  });
});
