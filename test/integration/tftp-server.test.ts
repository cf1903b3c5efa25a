/**
 * The TFTP server over real loopback sockets, driven by the in-test client: firmware patterns,
 * loss recovery, both port modes, limits, shutdown and a 200-client boot storm.
 */
import dgram from 'node:dgram';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { decode, encode, type TftpPacket } from '../../src/tftp/packet.js';
import { edk2Get, exchange, tftpGet } from '../../lab/tftp-client.js';
import { makeTftpRoot, sha256, startTftpServer, type RunningServer, type TftpRoot } from '../support/tftp-fixture.js';

let root: TftpRoot;
const servers: RunningServer[] = [];

beforeAll(() => {
  // 600 000 bytes at blksize 8 is 75 001 blocks: the block number rolls over.
  root = makeTftpRoot({ 'big.bin': 600_000, 'empty.bin': 0, 'exact.bin': 1024 });
});
afterAll(() => root.remove());
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function start(options: Parameters<typeof startTftpServer>[1] = {}): Promise<RunningServer> {
  // Tests that leave a transfer hanging need not wait the production 5 s at close.
  const s = await startTftpServer(root.dir, { closeTimeoutMs: 100, ...options });
  servers.push(s);
  return s;
}

const expected = (name: string): string => sha256(root.files.get(name)!);

/** A raw peer for packet-level tests. */
async function rawPeer(): Promise<{
  socket: dgram.Socket;
  port: number;
  send(p: TftpPacket | Buffer, port: number): void;
  next(waitMs?: number): Promise<{ packet: TftpPacket; port: number } | undefined>;
  collect(waitMs: number): Promise<{ packet: TftpPacket; port: number }[]>;
  close(): void;
}> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  const queue: { packet: TftpPacket; port: number }[] = [];
  let waiter: (() => void) | undefined;
  socket.on('message', (msg, rinfo) => {
    queue.push({ packet: decode(msg), port: rinfo.port });
    waiter?.();
  });
  return {
    socket,
    port: socket.address().port,
    send: (p, port) => socket.send(Buffer.isBuffer(p) ? p : encode(p), port, '127.0.0.1'),
    async next(waitMs = 2000) {
      if (queue.length === 0) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, waitMs);
          waiter = () => {
            clearTimeout(t);
            resolve();
          };
        });
        waiter = undefined;
      }
      return queue.shift();
    },
    async collect(waitMs) {
      await new Promise((r) => setTimeout(r, waitMs));
      return queue.splice(0);
    },
    close: () => socket.close(),
  };
}

describe('downloads', () => {
  it.each([
    { name: 'RFC 1350 lock-step, no options', options: [] as [string, string][] },
    { name: 'iPXE: blksize 1432', options: [['blksize', '1432']] as [string, string][] },
    {
      name: 'tsize + blksize + windowsize 8',
      options: [
        ['tsize', '0'],
        ['blksize', '1468'],
        ['windowsize', '8'],
      ] as [string, string][],
    },
    {
      name: 'timeout option',
      options: [
        ['timeout', '3'],
        ['blksize', '1024'],
      ] as [string, string][],
    },
  ])('$name', async ({ options }) => {
    const s = await start();
    for (const file of ['undionly.kpxe', 'snponly.efi']) {
      const r = await tftpGet({ port: s.port, file, options });
      expect(sha256(r.data)).toBe(expected(file));
    }
    await s.idle();
    expect(await s.metric('metalboot_tftp_transfers_finished_total', { outcome: 'complete' })).toBe(2);
    expect(await s.metric('metalboot_tftp_transfers_active')).toBe(0);
  });

  it('serves empty files and files that end on a block boundary', async () => {
    const s = await start();
    expect((await tftpGet({ port: s.port, file: 'empty.bin' })).data.length).toBe(0);
    expect(sha256((await tftpGet({ port: s.port, file: 'exact.bin', options: [['blksize', '512']] })).data)).toBe(
      expected('exact.bin'),
    );
  });

  it('rolls the block number over on a file of more than 65535 blocks', async () => {
    const s = await start();
    const r = await tftpGet({
      port: s.port,
      file: 'big.bin',
      options: [
        ['blksize', '8'],
        ['windowsize', '64'],
      ],
      deadlineMs: 60_000,
    });
    expect(r.dataPackets).toBeGreaterThan(65536);
    expect(sha256(r.data)).toBe(expected('big.bin'));
  });

  it('answers tsize with the real size and caps blksize and windowsize', async () => {
    const s = await start({ maxBlksize: 1024, maxWindowsize: 4 });
    const r = await tftpGet({
      port: s.port,
      file: 'snponly.efi',
      options: [
        ['tsize', '0'],
        ['blksize', '9000'],
        ['windowsize', '99'],
        ['foo', 'bar'],
      ],
    });
    expect(Object.fromEntries(r.oack!)).toEqual({
      tsize: String(root.files.get('snponly.efi')!.length),
      blksize: '1024',
      windowsize: '4',
    });
    expect(sha256(r.data)).toBe(expected('snponly.efi'));
  });

  it('serves names with a leading slash and the arch aliases', async () => {
    const s = await start();
    expect(sha256((await tftpGet({ port: s.port, file: '/snponly.efi' })).data)).toBe(expected('snponly.efi'));
    expect(
      sha256((await tftpGet({ port: s.port, file: 'snponly-x86_64.efi', options: [['blksize', '1468']] })).data),
    ).toBe(expected('snponly.efi'));
  });
});

describe('EDK2 / AAVMF', () => {
  it('tsize probe → OACK → ERROR 8 → RRQ again → download completes', async () => {
    const s = await start();
    const r = await edk2Get({ port: s.port, file: 'snponly.efi', blksize: 1468, windowsize: 4 });
    expect(r.probedSize).toBe(root.files.get('snponly.efi')!.length);
    expect(sha256(r.data)).toBe(expected('snponly.efi'));
    await s.idle();
    expect(await s.metric('metalboot_tftp_transfers_finished_total', { outcome: 'options-declined' })).toBe(1);
    expect(await s.metric('metalboot_tftp_transfers_finished_total', { outcome: 'complete' })).toBe(1);
    expect(await s.metric('metalboot_tftp_transfers_failed_total')).toBe(0);
    expect(await s.metric('metalboot_tftp_transfers_active')).toBe(0);
  });

  it('AAVMF download with tsize=0 blksize=1468 windowsize=4 in one request goes past block 0', async () => {
    const s = await start();
    const r = await tftpGet({
      port: s.port,
      file: 'ipxe.efi',
      options: [
        ['tsize', '0'],
        ['blksize', '1468'],
        ['windowsize', '4'],
      ],
    });
    expect(r.oack!.get('windowsize')).toBe('4');
    expect(sha256(r.data)).toBe(expected('ipxe.efi'));
  });
});

describe('loss and duplicates', () => {
  it('recovers a lost ACK (lock-step)', async () => {
    const s = await start({ timeoutMs: 100 });
    let dropped = false;
    const r = await tftpGet({
      port: s.port,
      file: 'undionly.kpxe',
      dropAck: (block) => {
        if (block !== 5 || dropped) return false;
        dropped = true;
        return true;
      },
    });
    expect(r.acksDropped).toBe(1);
    expect(sha256(r.data)).toBe(expected('undionly.kpxe'));
    expect(await s.metric('metalboot_tftp_retransmissions_total')).toBeGreaterThanOrEqual(1);
  });

  it('recovers a lost ACK 0 of the OACK, and a lost window ACK', async () => {
    const s = await start({ timeoutMs: 100 });
    const drops = new Set([0, 8]);
    const r = await tftpGet({
      port: s.port,
      file: 'snponly.efi',
      options: [
        ['blksize', '1468'],
        ['windowsize', '4'],
      ],
      dropAck: (block) => drops.delete(block),
    });
    expect(r.acksDropped).toBe(2);
    expect(sha256(r.data)).toBe(expected('snponly.efi'));
  });

  it("never answers a duplicate ACK with a second DATA (Sorcerer's Apprentice)", async () => {
    const s = await start({ timeoutMs: 5000 });
    const peer = await rawPeer();
    try {
      peer.send({ op: 'rrq', filename: 'undionly.kpxe', mode: 'octet', options: [] }, s.port);
      const d1 = await peer.next();
      expect(d1?.packet).toMatchObject({ op: 'data', block: 1 });
      peer.send({ op: 'ack', block: 1 }, d1!.port);
      peer.send({ op: 'ack', block: 1 }, d1!.port);
      peer.send({ op: 'ack', block: 1 }, d1!.port);
      const got = await peer.collect(500);
      expect(got.map((g) => g.packet)).toEqual([expect.objectContaining({ op: 'data', block: 2 })]);
      expect(await s.metric('metalboot_tftp_packets_dropped_total', { reason: 'duplicate-ack' })).toBe(2);
    } finally {
      peer.close();
    }
  });

  it('a repeated RRQ while the first answer is in flight starts no second transfer', async () => {
    const s = await start({ timeoutMs: 5000 });
    const peer = await rawPeer();
    try {
      const rrq = {
        op: 'rrq',
        filename: 'undionly.kpxe',
        mode: 'octet',
        options: [{ name: 'tsize', value: '0' }],
      } as const;
      peer.send(rrq, s.port);
      peer.send(rrq, s.port);
      const got = await peer.collect(300);
      expect(got.map((g) => g.packet.op)).toEqual(['oack']);
      expect(await s.metric('metalboot_tftp_transfers_started_total')).toBe(1);
      expect(await s.metric('metalboot_tftp_packets_dropped_total', { reason: 'duplicate-request' })).toBe(1);
    } finally {
      peer.close();
    }
  });

  it('gives up on a silent client after its retries and says so', async () => {
    const s = await start({ timeoutMs: 30, maxTimeoutMs: 60, retries: 2 });
    const peer = await rawPeer();
    try {
      peer.send({ op: 'rrq', filename: 'undionly.kpxe', mode: 'octet', options: [] }, s.port);
      const got: { packet: TftpPacket }[] = [];
      for (let i = 0; i < 4; i++) {
        const next = await peer.next(5000);
        if (next) got.push(next);
      }
      expect(got.map((g) => g.packet.op)).toEqual(['data', 'data', 'data', 'error']);
      expect(got[3]!.packet).toMatchObject({ code: 0, message: 'Transfer timed out' });
      await s.idle();
      expect(await s.metric('metalboot_tftp_transfers_failed_total', { reason: 'timeout' })).toBe(1);
    } finally {
      peer.close();
    }
  });

  it('answers a stranger on a transfer port with ERROR 5 and keeps the transfer', async () => {
    const s = await start({ timeoutMs: 5000 });
    const client = await rawPeer();
    const stranger = await rawPeer();
    try {
      client.send({ op: 'rrq', filename: 'undionly.kpxe', mode: 'octet', options: [] }, s.port);
      const d1 = await client.next();
      stranger.send({ op: 'ack', block: 1 }, d1!.port);
      expect((await stranger.next())?.packet).toMatchObject({ op: 'error', code: 5 });
      expect(await client.collect(100)).toEqual([]); // the stranger's ACK moved nothing
      client.send({ op: 'ack', block: 1 }, d1!.port);
      expect((await client.next())?.packet).toMatchObject({ op: 'data', block: 2 });
    } finally {
      client.close();
      stranger.close();
    }
  });
});

describe('port modes', () => {
  it('per-transfer ports: DATA comes from a new port (RFC 1350 TID)', async () => {
    const s = await start();
    const r = await tftpGet({ port: s.port, file: 'undionly.kpxe', options: [['blksize', '1468']] });
    expect(r.serverPort).not.toBe(s.port);
    expect(sha256(r.data)).toBe(expected('undionly.kpxe'));
  });

  it('single port: everything on the listen port, transfers keyed by client address:port', async () => {
    const s = await start({ singlePort: true, timeoutMs: 100 });
    const results = await Promise.all(
      [
        tftpGet({ port: s.port, file: 'undionly.kpxe' }),
        tftpGet({
          port: s.port,
          file: 'snponly.efi',
          options: [
            ['blksize', '1468'],
            ['windowsize', '4'],
          ],
        }),
        edk2Get({ port: s.port, file: 'ipxe.efi' }),
        tftpGet({ port: s.port, file: 'snponly.efi', dropAck: (b) => b === 3 }),
      ].map((p) => p.then((r) => ({ port: r.serverPort, sha: sha256(r.data) }))),
    );
    expect(results.map((r) => r.port)).toEqual([s.port, s.port, s.port, s.port]);
    expect(results.map((r) => r.sha)).toEqual([
      expected('undionly.kpxe'),
      expected('snponly.efi'),
      expected('ipxe.efi'),
      expected('snponly.efi'),
    ]);
  });

  it('single port: a packet from an unknown peer gets ERROR 5', async () => {
    const s = await start({ singlePort: true });
    const replies = await exchange(s.port, encode({ op: 'ack', block: 7 }), { waitMs: 5000, expectReply: true });
    expect(replies.map((r) => r.packet)).toEqual([{ op: 'error', code: 5, message: 'Unknown transfer ID' }]);
    expect(await s.metric('metalboot_tftp_packets_dropped_total', { reason: 'unknown-tid' })).toBe(1);
  });
});

describe('hostile input', () => {
  const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
  const rrq = (name: string, mode = 'octet'): Buffer =>
    Buffer.concat([hex('0001'), Buffer.from(name, 'latin1'), hex('00'), Buffer.from(mode), hex('00')]);

  it.each<{ name: string; bytes: Buffer; reply: { code: number } | undefined; counter: [string, string] }>([
    {
      name: 'garbage',
      bytes: Buffer.from('\xde\xad\xbe\xef garbage', 'latin1'),
      reply: { code: 4 },
      counter: ['metalboot_tftp_packets_dropped_total', 'unknown-opcode'],
    },
    { name: 'one byte', bytes: hex('01'), reply: undefined, counter: ['metalboot_tftp_packets_dropped_total', 'runt'] },
    {
      name: 'truncated RRQ',
      bytes: hex('0001 756e64696f6e6c79'),
      reply: { code: 4 },
      counter: ['metalboot_tftp_packets_dropped_total', 'malformed-request'],
    },
    {
      name: 'RRQ without mode',
      bytes: hex('0001 61 00'),
      reply: { code: 4 },
      counter: ['metalboot_tftp_packets_dropped_total', 'malformed-request'],
    },
    {
      name: 'unknown opcode 9',
      bytes: hex('0009 0001'),
      reply: { code: 4 },
      counter: ['metalboot_tftp_packets_dropped_total', 'unknown-opcode'],
    },
    {
      name: 'stray ERROR is not answered',
      bytes: hex('0005 0000 00'),
      reply: undefined,
      counter: ['metalboot_tftp_packets_dropped_total', 'stray-error'],
    },
    {
      name: 'stray ACK on the request port',
      bytes: hex('0004 0001'),
      reply: undefined,
      counter: ['metalboot_tftp_packets_dropped_total', 'unexpected-opcode'],
    },
    {
      name: 'traversal',
      bytes: rrq('../../../etc/passwd'),
      reply: { code: 2 },
      counter: ['metalboot_tftp_requests_refused_total', 'access-violation'],
    },
    {
      name: 'traversal inside a path',
      bytes: rrq('arm64-efi/../../etc/passwd'),
      reply: { code: 2 },
      counter: ['metalboot_tftp_requests_refused_total', 'access-violation'],
    },
    {
      name: 'backslash traversal',
      bytes: rrq('..\\..\\etc\\passwd'),
      reply: { code: 2 },
      counter: ['metalboot_tftp_requests_refused_total', 'access-violation'],
    },
    {
      name: 'control character',
      bytes: rrq('snponly.efi\n'),
      reply: { code: 2 },
      counter: ['metalboot_tftp_requests_refused_total', 'access-violation'],
    },
    // A NUL ends the name: what follows is read as the mode, and "octet" as an option name
    // without a value.
    {
      name: 'NUL injection',
      bytes: rrq('snponly.efi\u0000../../etc/passwd'),
      reply: { code: 4 },
      counter: ['metalboot_tftp_packets_dropped_total', 'malformed-request'],
    },
    {
      name: 'NUL injection into the mode',
      bytes: Buffer.concat([rrq('snponly.efi\u0000../../etc/passwd'), Buffer.from('x'), hex('00')]),
      reply: { code: 4 },
      counter: ['metalboot_tftp_requests_refused_total', 'unknown-mode'],
    },
    {
      name: 'absolute path stays in the root',
      bytes: rrq('/etc/passwd'),
      reply: { code: 1 },
      counter: ['metalboot_tftp_requests_refused_total', 'not-found'],
    },
    {
      name: 'missing file',
      bytes: rrq('nope.efi'),
      reply: { code: 1 },
      counter: ['metalboot_tftp_requests_refused_total', 'not-found'],
    },
    {
      name: 'netascii',
      bytes: rrq('snponly.efi', 'netascii'),
      reply: { code: 4 },
      counter: ['metalboot_tftp_requests_refused_total', 'netascii'],
    },
    {
      name: 'write request',
      bytes: Buffer.concat([hex('0002'), Buffer.from('x'), hex('00'), Buffer.from('octet'), hex('00')]),
      reply: { code: 2 },
      counter: ['metalboot_tftp_requests_refused_total', 'write-request'],
    },
  ])('$name', async ({ bytes, reply, counter }) => {
    const s = await start();
    const replies = await exchange(
      s.port,
      bytes,
      reply === undefined ? { waitMs: 300 } : { waitMs: 5000, expectReply: true },
    );
    if (reply === undefined) expect(replies).toEqual([]);
    else expect(replies.map((r) => r.packet)).toEqual([expect.objectContaining({ op: 'error', ...reply })]);
    expect(await s.metric(counter[0], { reason: counter[1] })).toBe(1);
    expect(await s.metric('metalboot_tftp_transfers_started_total')).toBe(0);
    // And the server keeps serving.
    expect(sha256((await tftpGet({ port: s.port, file: 'undionly.kpxe' })).data)).toBe(expected('undionly.kpxe'));
  });

  it('keeps serving through a burst of random datagrams', async () => {
    const s = await start();
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
    for (let i = 0; i < 500; i++) {
      const len = (i * 7919) % 600;
      const buf = Buffer.alloc(len);
      for (let j = 0; j < len; j++) buf[j] = (i * 31 + j * 17) & 0xff;
      if (len >= 2 && i % 3 === 0) buf[1] = 1 + (i % 7);
      buf[0] = i % 5 === 0 ? 0 : buf[0]!;
      sock.send(buf, s.port, '127.0.0.1');
    }
    const r = await tftpGet({ port: s.port, file: 'snponly.efi', options: [['blksize', '1468']] });
    sock.close();
    expect(sha256(r.data)).toBe(expected('snponly.efi'));
  });
});

describe('limits', () => {
  it('refuses a client over its cap with a clear ERROR, counted, once half the slots are taken', async () => {
    const s = await start({ maxPerClient: 2, maxTransfers: 4, timeoutMs: 5000 });
    const peers = await Promise.all([rawPeer(), rawPeer(), rawPeer()]);
    try {
      for (const p of peers) p.send({ op: 'rrq', filename: 'undionly.kpxe', mode: 'octet', options: [] }, s.port);
      const firsts = await Promise.all(peers.map((p) => p.next()));
      const ops = firsts.map((f) => f?.packet.op).sort();
      expect(ops).toEqual(['data', 'data', 'error']);
      const refusal = firsts.find((f) => f?.packet.op === 'error')!.packet;
      expect(refusal).toMatchObject({ code: 0, message: expect.stringMatching(/too many transfers/i) });
      expect(await s.metric('metalboot_tftp_requests_refused_total', { reason: 'client-busy' })).toBe(1);
    } finally {
      for (const p of peers) p.close();
    }
  });

  it('ends a transfer that holds its slot past maxTransferMs, with an ERROR, counted', async () => {
    // Retransmissions alone would keep it for 20 × 100 ms; the slot limit ends it first.
    const s = await start({ timeoutMs: 100, maxTimeoutMs: 100, retries: 20, maxTransferMs: 400 });
    const peer = await rawPeer();
    try {
      peer.send({ op: 'rrq', filename: 'undionly.kpxe', mode: 'octet', options: [] }, s.port);
      const packets = await peer.collect(1500);
      const end = packets.find((p) => p.packet.op === 'error');
      expect(end?.packet).toMatchObject({ op: 'error', message: 'Transfer time limit reached' });
      expect(await s.metric('metalboot_tftp_transfers_failed_total', { reason: 'too-long' })).toBe(1);
    } finally {
      peer.close();
    }
  });

  it('refuses over the server-wide cap', async () => {
    const s = await start({ maxTransfers: 1, timeoutMs: 5000 });
    const a = await rawPeer();
    const b = await rawPeer();
    try {
      a.send({ op: 'rrq', filename: 'undionly.kpxe', mode: 'octet', options: [] }, s.port);
      expect((await a.next())?.packet.op).toBe('data');
      b.send({ op: 'rrq', filename: 'undionly.kpxe', mode: 'octet', options: [] }, s.port);
      expect((await b.next())?.packet).toMatchObject({ op: 'error', code: 0, message: expect.stringMatching(/busy/i) });
      expect(await s.metric('metalboot_tftp_requests_refused_total', { reason: 'server-busy' })).toBe(1);
    } finally {
      a.close();
      b.close();
    }
  });
});

describe('made files (the dynamic hook: GRUB configurations, images for GRUB)', () => {
  const madeFile = (name: string, data: Buffer) => ({
    kind: 'file' as const,
    file: { name, path: 'made', data, size: data.length, mtimeMs: 0, etag: '"m"' },
  });

  it('serves a file made for the request, and falls back to the directory for names it does not make', async () => {
    const made = Buffer.from('set timeout=0\n');
    const s = await start({
      dynamic: (name) => (name.startsWith('grub/') ? Promise.resolve(madeFile(name, made)) : undefined),
    });
    expect((await tftpGet({ port: s.port, file: 'grub/grub.cfg' })).data).toEqual(made);
    expect(sha256((await tftpGet({ port: s.port, file: 'undionly.kpxe' })).data)).toBe(expected('undionly.kpxe'));
  });

  it('counts requests waiting for a made file against the transfer slots: past them, server-busy', async () => {
    const never = new Promise<never>(() => {});
    const s = await start({ maxTransfers: 1, timeoutMs: 5000, dynamic: () => never });
    const a = await rawPeer();
    const b = await rawPeer();
    try {
      a.send({ op: 'rrq', filename: 'images/a.kernel', mode: 'octet', options: [] }, s.port);
      // Even a file of the directory waits for a slot the made file holds.
      b.send({ op: 'rrq', filename: 'undionly.kpxe', mode: 'octet', options: [] }, s.port);
      expect((await b.next())?.packet).toMatchObject({ op: 'error', code: 0, message: expect.stringMatching(/busy/i) });
      expect(await s.metric('metalboot_tftp_requests_refused_total', { reason: 'server-busy' })).toBe(1);
    } finally {
      a.close();
      b.close();
    }
  });
});

describe('close', () => {
  it('lets a running transfer finish within the bound', async () => {
    const s = await startTftpServer(root.dir, { closeTimeoutMs: 10_000 });
    const download = tftpGet({ port: s.port, file: 'snponly.efi', ackDelayMs: 2 });
    for (let i = 0; i < 500 && s.server.activeTransfers === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(s.server.activeTransfers).toBe(1);
    await s.close();
    expect(sha256((await download).data)).toBe(expected('snponly.efi'));
    expect(await s.metric('metalboot_tftp_transfers_finished_total', { outcome: 'complete' })).toBe(1);
  });

  it('aborts what is still running at the bound and tells the client', async () => {
    const s = await startTftpServer(root.dir, { closeTimeoutMs: 100, timeoutMs: 5000 });
    const peer = await rawPeer();
    try {
      peer.send({ op: 'rrq', filename: 'undionly.kpxe', mode: 'octet', options: [] }, s.port);
      expect((await peer.next())?.packet.op).toBe('data');
      await s.close();
      expect((await peer.next())?.packet).toMatchObject({ op: 'error', message: 'Server shutting down' });
      expect(await s.metric('metalboot_tftp_transfers_failed_total', { reason: 'shutdown' })).toBe(1);
    } finally {
      peer.close();
    }
  });
});

describe('boot storm', () => {
  it('200 concurrent downloads from one address (hosts behind a NAT) all complete with the default limits', async () => {
    const s = await start();
    const kinds = [
      (i: number) =>
        tftpGet({
          port: s.port,
          file: 'undionly.kpxe',
          options: [['blksize', '1432']],
          deadlineMs: 120_000,
          timeoutMs: 1000 + i,
        }),
      (i: number) => edk2Get({ port: s.port, file: 'snponly.efi', deadlineMs: 120_000, timeoutMs: 1000 + i }),
      (i: number) => tftpGet({ port: s.port, file: 'snponly.efi', deadlineMs: 120_000, timeoutMs: 1000 + i }),
      (i: number) =>
        tftpGet({
          port: s.port,
          file: 'ipxe.efi',
          options: [
            ['tsize', '0'],
            ['blksize', '1468'],
            ['windowsize', '8'],
          ],
          deadlineMs: 120_000,
          timeoutMs: 1000 + i,
        }),
    ];
    const names = ['undionly.kpxe', 'snponly.efi', 'snponly.efi', 'ipxe.efi'];
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => kinds[i % 4]!(i).then((r) => sha256(r.data))),
    );
    for (const [i, sha] of results.entries()) expect(sha, `download ${i}`).toBe(expected(names[i % 4]!));
    await s.idle();
    expect(await s.metric('metalboot_tftp_transfers_finished_total', { outcome: 'complete' })).toBe(200);
    expect(await s.metric('metalboot_tftp_transfers_failed_total')).toBe(0);
  }, 180_000);
});
