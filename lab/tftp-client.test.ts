/**
 * The lab's TFTP client against a scripted server on loopback: the hooks the benchmarks use
 * (own source address, blocks handed over instead of kept) and how it fails. Downloads from
 * metalboot's own server are in test/integration/tftp-server.test.ts.
 */
import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { decode, encode, type RequestPacket, type TftpPacket } from '../src/tftp/packet.js';
import { edk2Get, tftpGet, TftpClientError } from './tftp-client.js';

interface Peer {
  readonly address: string;
  readonly port: number;
}

/** A one-socket server that answers each packet with whatever `script` returns (nothing: silence). */
async function scriptedServer(
  script: (p: TftpPacket, from: Peer) => TftpPacket | undefined,
): Promise<{ port: number; seen: { p: TftpPacket; from: Peer }[] }> {
  const socket = dgram.createSocket('udp4');
  sockets.push(socket);
  const seen: { p: TftpPacket; from: Peer }[] = [];
  socket.on('message', (msg, rinfo) => {
    const p = decode(msg);
    seen.push({ p, from: { address: rinfo.address, port: rinfo.port } });
    const reply = script(p, rinfo);
    if (reply !== undefined) socket.send(encode(reply), rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return { port: socket.address().port, seen };
}

const sockets: dgram.Socket[] = [];
afterEach(() => {
  for (const s of sockets.splice(0)) s.close();
});

/** Lock-step RFC 1350 with 512-byte blocks; options, when asked for, are acknowledged as given. */
function lockStep(file: Buffer): (p: TftpPacket) => TftpPacket | undefined {
  const block = (n: number): TftpPacket => ({ op: 'data', block: n, data: file.subarray((n - 1) * 512, n * 512) });
  return (p) => {
    if (p.op === 'rrq') {
      const options = (p as RequestPacket).options.map((o) =>
        o.name === 'tsize'
          ? { name: 'tsize', value: String(file.length) }
          : o.name === 'blksize'
            ? { name: 'blksize', value: '512' }
            : { name: o.name, value: '1' },
      );
      return options.length > 0 ? { op: 'oack', options } : block(1);
    }
    if (p.op === 'ack' && p.block * 512 <= file.length) return block(p.block + 1);
    return undefined;
  };
}

const FILE = Buffer.from(Array.from({ length: 1300 }, (_, i) => i % 251));

describe('tftpGet', () => {
  it('sends from localAddress and hands each in-order block to onData, keeping none', async () => {
    const server = await scriptedServer(lockStep(FILE));
    const blocks: Buffer[] = [];
    const r = await tftpGet({
      port: server.port,
      file: 'f',
      localAddress: '127.0.0.2',
      onData: (b) => blocks.push(Buffer.from(b)),
    });
    expect(server.seen[0]?.from.address).toBe('127.0.0.2');
    expect(blocks.map((b) => b.length)).toEqual([512, 512, 276]);
    expect(Buffer.concat(blocks).equals(FILE)).toBe(true);
    expect(r.data.length).toBe(0);
    expect(r.bytes).toBe(1300);
    expect(r.timeouts).toBe(0);
  });

  it('keeps the blocks without onData', async () => {
    const server = await scriptedServer(lockStep(FILE));
    const r = await tftpGet({ port: server.port, file: 'f' });
    expect(r.data.equals(FILE)).toBe(true);
    expect(r.bytes).toBe(1300);
  });

  it('fails with TFTP_CLIENT_SERVER_ERROR and the packet when the server says no', async () => {
    const server = await scriptedServer(() => ({ op: 'error', code: 1, message: 'File not found' }));
    const err = await tftpGet({ port: server.port, file: 'missing' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TftpClientError);
    expect((err as TftpClientError).code).toBe('TFTP_CLIENT_SERVER_ERROR');
    expect((err as TftpClientError).error?.code).toBe(1);
  });

  it('fails with TFTP_CLIENT_TIMEOUT after its retries, counting the resends', async () => {
    const server = await scriptedServer(() => undefined);
    const err = await tftpGet({ port: server.port, file: 'f', timeoutMs: 20, retries: 2 }).catch((e: unknown) => e);
    expect((err as TftpClientError).code).toBe('TFTP_CLIENT_TIMEOUT');
    expect((err as TftpClientError).timeouts).toBe(2);
    expect((err as TftpClientError).message).toBe('f: no answer after 2 resends');
    expect(server.seen.filter((s) => s.p.op === 'rrq')).toHaveLength(3);
  });

  it('gives up at the deadline however patient its retries', async () => {
    const server = await scriptedServer(() => undefined);
    const err = await tftpGet({ port: server.port, file: 'f', timeoutMs: 5_000, deadlineMs: 50 }).catch(
      (e: unknown) => e,
    );
    expect((err as TftpClientError).code).toBe('TFTP_CLIENT_TIMEOUT');
    expect((err as TftpClientError).message).toBe('f: deadline');
  });

  it('fails with TFTP_CLIENT_SOCKET when it cannot bind its address', async () => {
    const err = await tftpGet({ port: 9, file: 'f', localAddress: '192.0.2.1' }).catch((e: unknown) => e);
    expect((err as TftpClientError).code).toBe('TFTP_CLIENT_SOCKET');
  });
});

describe('edk2Get', () => {
  it('probes the size, declines the OACK with ERROR 8, then downloads from a new port', async () => {
    const server = await scriptedServer(lockStep(FILE));
    const r = await edk2Get({ port: server.port, file: 'f' });
    expect(r.probedSize).toBe(1300);
    expect(r.data.equals(FILE)).toBe(true);
    const rrqs = server.seen.filter((s) => s.p.op === 'rrq');
    expect(rrqs.map((s) => (s.p as RequestPacket).options.map((o) => o.name))).toEqual([
      ['tsize', 'blksize', 'windowsize'],
      ['blksize', 'windowsize'],
    ]);
    expect(rrqs[0]!.from.port).not.toBe(rrqs[1]!.from.port);
    const abort = server.seen.find((s) => s.p.op === 'error');
    expect(abort?.p).toMatchObject({ op: 'error', code: 8 });
  });

  it("counts the probe's resends in a failed download", async () => {
    let probes = 0;
    const answer = lockStep(FILE);
    // The first probe RRQ is lost; the download's RRQ is never answered.
    const server = await scriptedServer((p) => {
      if (p.op !== 'rrq') return answer(p);
      if (!p.options.some((o) => o.name === 'tsize')) return undefined;
      return ++probes === 1 ? undefined : answer(p);
    });
    const err = await edk2Get({ port: server.port, file: 'f', timeoutMs: 20, retries: 3 }).catch((e: unknown) => e);
    expect((err as TftpClientError).code).toBe('TFTP_CLIENT_TIMEOUT');
    expect((err as TftpClientError).timeouts).toBe(1 + 3);
  });
});
