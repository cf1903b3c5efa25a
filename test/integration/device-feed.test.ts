/**
 * DeviceFeed with the real socat, on the loopback interface: datagrams to 127.0.0.1:<port> reach
 * socat (bound to lo) and come out of the feed one for one and whole; datagrams others send to
 * the feed port are refused; a killed socat is started again; close() leaves no socat behind,
 * and neither does a parent that exits or is killed without close(); a missing or failing socat
 * fails start() with the code that says which.
 *
 * Needs socat (Debian package socat, which .ci/run installs) and Linux 5.7 or later
 * (SO_BINDTODEVICE without CAP_NET_RAW).
 */
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DeviceFeed, type DeviceFeedOptions } from '../../src/net/device-feed.js';
import { processAlive as alive } from '../support/process-alive.js';

const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/device-feed/feed-process.ts');

interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

let dir: string;
const feeds: DeviceFeed[] = [];
const sockets: dgram.Socket[] = [];
const pids: number[] = [];

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'metalboot-device-feed-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});
afterEach(async () => {
  await Promise.all(feeds.splice(0).map((f) => f.close()));
  for (const s of sockets.splice(0)) s.close();
  for (const pid of pids.splice(0)) if (alive(pid)) process.kill(pid, 'SIGKILL');
});

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * A UDP port on 0.0.0.0 for socat to bind, held until the test ends: the socket that holds it
 * has SO_REUSEADDR, as socat's has (`reuseaddr`), so socat binds beside it while no other
 * process can take the port in between. Datagrams still reach socat, whose socket is bound to
 * the device and so matches them better.
 */
async function heldPort(): Promise<number> {
  const s = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  sockets.push(s);
  s.bind(0, '0.0.0.0');
  await once(s, 'listening');
  return s.address().port;
}

async function sender(): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  sockets.push(s);
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  return s;
}

function send(s: dgram.Socket, buf: Buffer, port: number): Promise<void> {
  return new Promise((resolve, reject) => s.send(buf, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
}

async function startFeed(o: Partial<DeviceFeedOptions> = {}) {
  const logs: LogLine[] = [];
  const received: Buffer[] = [];
  const foreign: dgram.RemoteInfo[] = [];
  const port = await heldPort();
  const feed = new DeviceFeed({
    device: 'lo',
    port,
    recvBufferBytes: 0,
    logger: pino({ level: 'debug' }, { write: (s: string) => logs.push(JSON.parse(s) as LogLine) }),
    onDatagram: (b) => received.push(b),
    onForeign: (r) => foreign.push(r),
    ...o,
  });
  feeds.push(feed);
  return { feed, port, logs, received, foreign };
}

describe('DeviceFeed with socat on lo', () => {
  it('passes each datagram on once and whole, up to the largest UDP payload', async () => {
    const { feed, port, received, foreign } = await startFeed();
    await feed.start();
    expect(feed.readiness.check()).toEqual({ ok: true, detail: `socat on lo (pid ${feed.pid})` });
    const s = await sender();
    const sizes = [1, 300, 1500, 9000, 65_507];
    const sent = sizes.map((n, i) => Buffer.alloc(n, i + 1));
    for (const b of sent) await send(s, b, port);
    await until('every datagram through', () => received.length >= sizes.length);
    await new Promise((r) => setTimeout(r, 200)); // nothing split or doubled arrives late
    expect(received.map((b) => b.length).sort((a, b) => a - b)).toEqual(sizes);
    for (const b of sent) expect(received.some((r) => r.equals(b))).toBe(true);
    expect(foreign).toEqual([]);
  });

  it('an empty datagram does not stop it (socat must not take it for the end of its input)', async () => {
    const { feed, port, received } = await startFeed();
    await feed.start();
    const pid = feed.pid;
    const s = await sender();
    await send(s, Buffer.alloc(0), port);
    await send(s, Buffer.from('after'), port);
    await until('the datagram after the empty one', () => received.some((b) => b.toString() === 'after'));
    expect(feed.pid).toBe(pid);
  });

  it('refuses datagrams on the feed port that socat did not send', async () => {
    const { feed, port, received, foreign } = await startFeed();
    await feed.start();
    const s = await sender();
    await send(s, Buffer.from('not from socat'), feed.feedPort);
    await until('the foreign datagram reported', () => foreign.length === 1);
    expect(foreign[0]).toMatchObject({ address: '127.0.0.1', port: s.address().port });
    await send(s, Buffer.from('via socat'), port);
    await until('the datagram via socat', () => received.length === 1);
    expect(received.map(String)).toEqual(['via socat']);
  });

  it('starts socat again after it is killed, logs why at error, and feeds again', async () => {
    const { feed, port, logs, received } = await startFeed({ restartDelayMs: 50 });
    await feed.start();
    const first = feed.pid!;
    process.kill(first, 'SIGKILL');
    await until('the exit logged', () => logs.some((l) => l.msg === 'socat exited; restarting'));
    const exited = logs.find((l) => l.msg === 'socat exited; restarting')!;
    expect(exited).toMatchObject({ level: 50, pid: first, signal: 'SIGKILL', restartInMs: 50 });
    await until('a new socat', () => feed.pid !== undefined && feed.pid !== first && feed.readiness.check().ok);
    expect(logs.some((l) => l.msg === 'socat restarted' && l.pid === feed.pid)).toBe(true);
    const s = await sender();
    await send(s, Buffer.from('again'), port);
    await until('a datagram through the new socat', () => received.some((b) => b.toString() === 'again'));
    expect(alive(first)).toBe(false);
  });

  it('readiness says so while socat is down', async () => {
    const { feed } = await startFeed({ restartDelayMs: 10_000 });
    await feed.start();
    process.kill(feed.pid!, 'SIGKILL');
    await until('not ready', () => !feed.readiness.check().ok);
    expect(feed.readiness.check()).toEqual({ ok: false, detail: 'socat on lo is down; restarting' });
  });

  it('close() stops socat', async () => {
    const { feed } = await startFeed();
    await feed.start();
    const pid = feed.pid!;
    expect(alive(pid)).toBe(true);
    await feed.close();
    expect(alive(pid)).toBe(false);
    expect(feed.readiness.check()).toEqual({ ok: false, detail: 'not started' });
  });

  it.each([
    ['exit', 'exits without close(): its exit hook kills socat'],
    ['hang', 'is killed with SIGKILL: socat exits at its next datagram (ECONNREFUSED from the closed feed port)'],
  ])(
    'a parent that %s',
    async (mode) => {
      const port = await heldPort();
      const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, String(port), mode], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
      });
      child.stderr.on('data', (d: Buffer) => {
        out += d.toString();
      });
      const exited = once(child, 'exit');
      try {
        await until('socat started by the child', () => /socat \d+/.test(out) || child.exitCode !== null, 20_000);
        const pid = Number(/socat (\d+)/.exec(out)?.[1]);
        expect(pid, out).toBeGreaterThan(0);
        pids.push(pid);
        if (mode === 'hang') {
          child.kill('SIGKILL');
          await exited;
          expect(alive(pid)).toBe(true); // orphaned, until a datagram comes
          const s = await sender();
          const deadline = Date.now() + 5000;
          while (alive(pid) && Date.now() < deadline) {
            await send(s, Buffer.from('anyone?'), port);
            await new Promise((r) => setTimeout(r, 50));
          }
        } else {
          await exited;
          await until('socat gone', () => !alive(pid), 2000).catch(() => undefined);
        }
        expect(alive(pid)).toBe(false);
      } finally {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }
    },
    30_000,
  );
});

describe('DeviceFeed start-up failures', () => {
  it('socat missing: NET_ERR_SOCAT_MISSING naming the package', async () => {
    const { feed } = await startFeed({ socat: path.join(dir, 'no-such-socat') });
    const err = await feed.start().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'NET_ERR_SOCAT_MISSING' });
    expect((err as Error).message).toContain('package "socat"');
    expect(feed.readiness.check().ok).toBe(false);
  });

  it('socat that exits at start (no such device): NET_ERR_FEED_START with its stderr', async () => {
    const { feed } = await startFeed({ device: 'nosuchdev0' });
    await expect(feed.start()).rejects.toMatchObject({
      code: 'NET_ERR_FEED_START',
      message: expect.stringMatching(
        /socat exited \(code 1\) before binding to nosuchdev0 port \d+: .*No such device/s,
      ),
    });
  });

  it('socat refused port 67 (no capability of its own): the error says how to give it one', async () => {
    const fake = path.join(dir, 'unprivileged-socat');
    writeFileSync(fake, `#!/bin/sh\necho 'socat[1] E bind(5, {AF=2 0.0.0.0:67}, 16): Permission denied' >&2\nexit 1\n`);
    chmodSync(fake, 0o755);
    const { feed } = await startFeed({ socat: fake });
    await expect(feed.start()).rejects.toMatchObject({
      code: 'NET_ERR_FEED_START',
      message: expect.stringContaining(`CAP_NET_BIND_SERVICE on socat itself: setcap cap_net_bind_service=+ep`),
    });
  });

  it('socat that never binds: NET_ERR_FEED_START after the timeout, and the process is killed', async () => {
    const fake = path.join(dir, 'silent-socat');
    const pidFile = path.join(dir, 'silent-socat.pid');
    writeFileSync(fake, `#!/bin/sh\necho $$ > '${pidFile}'\nexec sleep 30\n`);
    chmodSync(fake, 0o755);
    const { feed } = await startFeed({ socat: fake, readyTimeoutMs: 300 });
    await expect(feed.start()).rejects.toMatchObject({
      code: 'NET_ERR_FEED_START',
      message: expect.stringContaining('did not bind to lo port'),
    });
    const pid = Number(readFileSync(pidFile, 'utf8'));
    pids.push(pid);
    await until('the silent socat killed', () => !alive(pid), 2000);
  });
});
