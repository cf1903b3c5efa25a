/**
 * The server shell with fake sockets and fake timers: the retransmission schedule, the give-up
 * and the close bound are checked without waiting for a single real second.
 */
import { EventEmitter } from 'node:events';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { FileLookup } from '../boot/ipxe-files.js';
import { decode, encode, type TftpPacket } from './packet.js';
import { TftpServer, type Timers, type UdpSocket } from './tftp-server.js';

interface Sent {
  readonly from: number;
  readonly to: number;
  readonly packet: TftpPacket;
}

class FakeNet {
  readonly sent: Sent[] = [];
  #nextPort = 40000;
  readonly sockets: FakeSocket[] = [];
  create = (): UdpSocket => {
    const s = new FakeSocket(this);
    this.sockets.push(s);
    return s as unknown as UdpSocket;
  };
  allocate(port: number): number {
    return port === 0 ? this.#nextPort++ : port;
  }
}

class FakeSocket extends EventEmitter {
  port = 0;
  closed = false;
  readonly #net: FakeNet;
  constructor(net: FakeNet) {
    super();
    this.#net = net;
  }
  bind(opts: { port: number }, cb: () => void): this {
    this.port = this.#net.allocate(opts.port);
    queueMicrotask(cb);
    return this;
  }
  address(): { address: string; port: number; family: string } {
    return { address: '10.0.0.1', port: this.port, family: 'IPv4' };
  }
  send(buf: Buffer, port: number, _address: string, cb?: (err: Error | null) => void): void {
    if (this.closed) throw new Error('closed');
    this.#net.sent.push({ from: this.port, to: port, packet: decode(buf) });
    cb?.(null);
  }
  close(): void {
    this.closed = true;
  }
  setRecvBufferSize(): void {}
  /** A datagram from the client at 10.0.0.9:`port`. */
  receive(packet: TftpPacket, port = 5000): void {
    this.emit('message', encode(packet), { address: '10.0.0.9', port, family: 'IPv4', size: 0 });
  }
}

class FakeTimers implements Timers {
  #seq = 0;
  readonly pending = new Map<number, { fn: () => void; ms: number }>();
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.#seq;
    this.pending.set(id, { fn, ms });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }
  /** Timers that can also restart a pending timer in place, as Node's Timeout.refresh(). */
  static withRefresh(): FakeTimers & { refreshed: number } {
    const t = Object.assign(new FakeTimers(), { refreshed: 0 });
    (t as Timers).refresh = (handle: unknown) => {
      const pending = t.pending.get(handle as number);
      if (pending === undefined) throw new Error('refresh of a timer that is not pending');
      t.refreshed++;
    };
    return t;
  }
  /** Fires the only pending timer and says how long it was set for. */
  fireOnly(): number {
    expect(this.pending.size).toBe(1);
    const [id, t] = [...this.pending][0]!;
    this.pending.delete(id);
    t.fn();
    return t.ms;
  }
}

const FILE = Buffer.alloc(1000, 7);
const lookup = (name: string): FileLookup =>
  name === 'f'
    ? { kind: 'file', file: { name: 'f', path: '/f', data: FILE, size: FILE.length, mtimeMs: 0, etag: '"f"' } }
    : { kind: 'missing' };

async function setup(singlePort = false, timers = new FakeTimers()) {
  const net = new FakeNet();
  const registry = new Registry();
  const server = new TftpServer({
    listen: { host: '10.0.0.1', port: 69 },
    singlePort,
    files: { lookup },
    logger: pino({ level: 'silent' }),
    registry,
    createSocket: net.create,
    timers,
    retries: 3,
    timeoutMs: 1000,
    maxTimeoutMs: 4000,
    closeTimeoutMs: 5000,
  });
  await server.start();
  const flush = () => new Promise((r) => setImmediate(r));
  return { net, timers, server, registry, listener: net.sockets[0]!, flush };
}

describe('TftpServer with injected sockets and timers', () => {
  it('retransmits with doubling timeouts, capped, then gives up with an ERROR', async () => {
    const { net, timers, server, listener, flush } = await setup();
    listener.receive({ op: 'rrq', filename: 'f', mode: 'octet', options: [] });
    await flush();
    expect(net.sent.map((s) => s.packet)).toMatchObject([{ op: 'data', block: 1 }]);
    const transferPort = net.sent[0]!.from;
    expect(transferPort).not.toBe(69);
    expect([timers.fireOnly(), timers.fireOnly(), timers.fireOnly()]).toEqual([1000, 2000, 4000]);
    expect(timers.fireOnly()).toBe(4000); // the fourth timeout: retries (3) used up
    expect(net.sent.map((s) => s.packet.op)).toEqual(['data', 'data', 'data', 'data', 'error']);
    expect(timers.pending.size).toBe(0);
    expect(server.activeTransfers).toBe(0);
    await flush();
    expect(net.sockets[1]!.closed).toBe(true);
  });

  it('progress resets the back-off', async () => {
    const { net, timers, listener, flush } = await setup();
    listener.receive({ op: 'rrq', filename: 'f', mode: 'octet', options: [] });
    await flush();
    timers.fireOnly(); // DATA 1 again, next wait 2000
    net.sockets[1]!.receive({ op: 'ack', block: 1 });
    expect(net.sent.at(-1)!.packet).toMatchObject({ op: 'data', block: 2 });
    expect([...timers.pending.values()].map((t) => t.ms)).toEqual([1000]);
  });

  it('with refreshable timers, progress restarts the one timer; a changed delay replaces it', async () => {
    const timers = FakeTimers.withRefresh();
    const { net, listener, flush } = await setup(false, timers);
    listener.receive({ op: 'rrq', filename: 'f', mode: 'octet', options: [{ name: 'blksize', value: '100' }] });
    await flush();
    const transfer = net.sockets[1]!;
    transfer.receive({ op: 'ack', block: 0 });
    transfer.receive({ op: 'ack', block: 1 });
    const [first] = [...timers.pending.keys()];
    transfer.receive({ op: 'ack', block: 2 });
    expect(timers.refreshed).toBe(3); // ACK 0, 1 and 2: same delay, same timer
    expect([...timers.pending.keys()]).toEqual([first]);
    expect(timers.fireOnly()).toBe(1000); // DATA 3 again, next wait 2000
    transfer.receive({ op: 'ack', block: 3 });
    expect([...timers.pending.values()].map((t) => t.ms)).toEqual([1000]); // back to 1000: a new timer
    expect(timers.refreshed).toBe(3);
    expect(net.sent.at(-1)!.packet).toMatchObject({ op: 'data', block: 4 });
  });

  it('single port: DATA leaves from the listen port and ACKs arrive there', async () => {
    const { net, server, listener, flush } = await setup(true);
    listener.receive({ op: 'rrq', filename: 'f', mode: 'octet', options: [{ name: 'blksize', value: '600' }] });
    await flush();
    expect(net.sent.at(-1)).toMatchObject({ from: 69, to: 5000, packet: { op: 'oack' } });
    listener.receive({ op: 'ack', block: 0 });
    listener.receive({ op: 'ack', block: 1 });
    listener.receive({ op: 'ack', block: 2 });
    expect(net.sent.map((s) => s.packet.op)).toEqual(['oack', 'data', 'data']);
    expect(server.activeTransfers).toBe(0);
    expect(net.sockets).toHaveLength(1);
  });

  it('close waits for running transfers up to its bound, then aborts them', async () => {
    const { net, timers, server, listener, flush } = await setup();
    listener.receive({ op: 'rrq', filename: 'f', mode: 'octet', options: [] });
    await flush();
    const closing = server.close();
    expect(listener.closed).toBe(true); // no new requests from now on
    const bound = [...timers.pending.values()].find((t) => t.ms === 5000);
    expect(bound).toBeDefined();
    bound!.fn();
    await closing;
    expect(net.sent.at(-1)!.packet).toEqual({ op: 'error', code: 0, message: 'Server shutting down' });
    expect(server.activeTransfers).toBe(0);
  });

  it('close returns as soon as the last transfer completes', async () => {
    const { net, server, listener, flush } = await setup();
    listener.receive({ op: 'rrq', filename: 'f', mode: 'octet', options: [] });
    await flush();
    const closing = server.close();
    net.sockets[1]!.receive({ op: 'ack', block: 1 });
    net.sockets[1]!.receive({ op: 'ack', block: 2 });
    await closing;
    expect(net.sent.map((s) => s.packet.op)).toEqual(['data', 'data']);
  });
});

describe('TftpServer logs under a flood', () => {
  it('logs a burst of refusals, then none, while the metric counts every one', async () => {
    const lines: { msg: string; suppressed?: number }[] = [];
    const net = new FakeNet();
    const registry = new Registry();
    const server = new TftpServer({
      listen: { host: '10.0.0.1', port: 69 },
      files: { lookup },
      logger: pino({ level: 'info' }, { write: (s: string) => lines.push(JSON.parse(s) as { msg: string }) }),
      registry,
      createSocket: net.create,
      timers: new FakeTimers(),
      now: () => 5000,
    });
    await server.start();
    const listener = net.sockets[0]!;
    for (let i = 0; i < 200; i++) listener.receive({ op: 'rrq', filename: `nope-${i}`, mode: 'octet', options: [] });
    await new Promise((r) => setImmediate(r));
    const refused = (await registry.getMetricsAsJSON()).find((m) => m.name === 'metalboot_tftp_requests_refused_total');
    expect(refused?.values.find((v) => v.labels.reason === 'not-found')?.value).toBe(200);
    expect(lines.filter((l) => l.msg === 'request refused')).toHaveLength(20);
    await server.close();
  });
});
