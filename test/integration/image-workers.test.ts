/**
 * Several image worker processes on one port (src/images/worker-service.ts) with the real worker
 * code, a shared cache and a stand-in for Ironic's httpd on loopback: one upstream download per
 * artifact across the workers, Range and HEAD answered by every worker, a worker that dies
 * replaced on the same port, and a worker that dies while filling failing its followers in the
 * other worker instead of leaving them waiting.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import cluster from 'node:cluster';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { Agent, request } from 'undici';
import type { ImageServed } from '../../src/images/plugin.js';
import { ImageServer } from '../../src/images/worker-service.js';
import { sha256, startUpstreamHttpd, type UpstreamHttpd } from '../support/upstream-httpd.js';

const KERNEL = randomBytes(3 * 1024 * 1024 + 17);
const INITRAMFS = randomBytes(6 * 1024 * 1024 + 5);

let upstream: UpstreamHttpd;
const dirs: string[] = [];
const servers: ImageServer[] = [];
const agents: Agent[] = [];

beforeAll(async () => {
  upstream = await startUpstreamHttpd();
});
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  for (const a of agents.splice(0)) await a.close();
  upstream.clearRequests();
});
afterAll(async () => {
  await upstream?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function startWorkers(): Promise<{ server: ImageServer; base: string; served: ImageServed[] }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'metalboot-image-workers-'));
  dirs.push(dir);
  const served: ImageServed[] = [];
  const server = new ImageServer({
    listen: { host: '127.0.0.1', port: 0 },
    proxy: { upstream: upstream.url, cache: { dir, maxBytes: 64 * 1024 * 1024 } },
    workers: 2,
    logger: pino({ level: 'silent' }),
    registry: new Registry(),
    restartDelayMs: 50,
    onServed: (e) => served.push(e),
  });
  servers.push(server);
  await server.start();
  return { server, base: `http://127.0.0.1:${server.address().port}`, served };
}

/** A request on a connection of its own, so that the main process hands it to the next worker. */
function fresh(url: string, o: { method?: 'GET' | 'HEAD'; headers?: Record<string, string> } = {}) {
  const agent = new Agent({ pipelining: 0 });
  agents.push(agent);
  return request(url, { dispatcher: agent, method: o.method ?? 'GET', headers: o.headers });
}

describe('image workers sharing one port and one cache', () => {
  it('downloads an artifact from the upstream once for concurrent clients of both workers', async () => {
    upstream.setFile('/images/ipa.kernel', KERNEL);
    // A slow upstream, so that every client arrives while the fill runs.
    upstream.behave('/images/ipa.kernel', { chunkBytes: 256 * 1024, chunkDelayMs: 20, times: 1 });
    const { base, served } = await startWorkers();
    const bodies = await Promise.all(
      Array.from({ length: 8 }, async () => {
        const res = await fresh(`${base}/images/ipa.kernel`);
        expect(res.statusCode).toBe(200);
        return { cache: res.headers['x-cache'], body: Buffer.from(await res.body.arrayBuffer()) };
      }),
    );
    for (const b of bodies) expect(sha256(b.body)).toBe(sha256(KERNEL));
    expect(upstream.fullGets('/images/ipa.kernel')).toBe(1);
    expect(bodies.filter((b) => b.cache === 'miss')).toHaveLength(1);
    await until('every response reported', () => served.length === 8);
    // Both workers answered, and the one that did not fill followed the other's fill.
    expect(new Set(served.map((e) => e.worker))).toEqual(new Set([1, 2]));
    // Once stored, either worker serves it from the cache.
    for (let i = 0; i < 4; i++) {
      const res = await fresh(`${base}/images/ipa.kernel`);
      expect(res.headers['x-cache']).toBe('hit');
      expect(sha256(Buffer.from(await res.body.arrayBuffer()))).toBe(sha256(KERNEL));
    }
    expect(upstream.fullGets('/images/ipa.kernel')).toBe(1);
  });

  it('answers Range and HEAD on every worker', async () => {
    upstream.setFile('/images/ipa.initramfs', INITRAMFS);
    const { base, served } = await startWorkers();
    const first = await fresh(`${base}/images/ipa.initramfs`);
    expect(sha256(Buffer.from(await first.body.arrayBuffer()))).toBe(sha256(INITRAMFS));
    const seen = { head: new Set<number>(), range: new Set<number>() };
    const head = async () => {
      const res = await fresh(`${base}/images/ipa.initramfs`, { method: 'HEAD' });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-length']).toBe(String(INITRAMFS.length));
      expect(res.headers['accept-ranges']).toBe('bytes');
      await res.body.dump();
    };
    const range = async () => {
      const res = await fresh(`${base}/images/ipa.initramfs`, { headers: { range: 'bytes=1000000-1999999' } });
      expect(res.statusCode).toBe(206);
      expect(res.headers['content-range']).toBe(`bytes 1000000-1999999/${INITRAMFS.length}`);
      expect(Buffer.from(await res.body.arrayBuffer()).equals(INITRAMFS.subarray(1_000_000, 2_000_000))).toBe(true);
    };
    // Connections go to the workers in turn: HEAD then Range, then Range then HEAD, reaches both.
    for (let i = 0; i < 20 && (seen.head.size < 2 || seen.range.size < 2); i++) {
      const before = served.length;
      for (const ask of i % 2 === 0 ? [head, range] : [range, head]) await ask();
      await until('both reported', () => served.length >= before + 2);
      for (const e of served.slice(before)) {
        if (e.method === 'HEAD' && e.status === 200) seen.head.add(e.worker!);
        if (e.method === 'GET' && e.status === 206) seen.range.add(e.worker!);
      }
    }
    expect(seen).toEqual({ head: new Set([1, 2]), range: new Set([1, 2]) });
    expect(upstream.fullGets('/images/ipa.initramfs')).toBe(1);
  });

  it('replaces a worker that dies, on the same port, and keeps serving meanwhile', async () => {
    upstream.setFile('/images/ipa.kernel', KERNEL);
    const { server, base } = await startWorkers();
    const port = server.address().port;
    const before = server.pids();
    expect(before.size).toBe(2);
    process.kill(before.get(1)!, 'SIGKILL');
    await until('worker 1 down', () => server.pids().get(1) === undefined);
    // Worker 2 answers every connection while worker 1 is away.
    const res = await fresh(`${base}/images/ipa.kernel`);
    expect(sha256(Buffer.from(await res.body.arrayBuffer()))).toBe(sha256(KERNEL));
    await until('worker 1 replaced', () => server.pids().get(1) !== undefined);
    expect(server.pids().get(1)).not.toBe(before.get(1));
    expect(server.pids().get(2)).toBe(before.get(2));
    expect(server.address().port).toBe(port);
    for (let i = 0; i < 4; i++) {
      const again = await fresh(`${base}/images/ipa.kernel`);
      expect(again.statusCode).toBe(200);
      await again.body.dump();
    }
  });

  it('fails the followers of a fill whose worker died, and fills again on the next request', async () => {
    upstream.setFile('/images/ipa.initramfs', INITRAMFS);
    // The first download stalls after 1 MiB: the fill is still running when its worker is killed.
    upstream.behave('/images/ipa.initramfs', { stallAfterBytes: 1024 * 1024, times: 1 });
    const { server, base } = await startWorkers();
    const pids = server.pids();
    const downloads = Array.from({ length: 4 }, () =>
      fresh(`${base}/images/ipa.initramfs`).then(
        async (res) => {
          try {
            return (await res.body.arrayBuffer()).byteLength;
          } catch {
            return -1;
          }
        },
        () => -1,
      ),
    );
    await until('the fill under way', () => upstream.fullGets('/images/ipa.initramfs') === 1);
    // The filler is the worker whose metrics count an upstream fill.
    let filler: number | undefined;
    await until('the filler known', async () => {
      const parts = (await server.metrics()) as { name: string; values: { value: number; labels: object }[] }[][];
      parts.forEach((part, i) => {
        const fills = part.find((m) => m.name === 'metalboot_image_proxy_upstream_requests_total');
        if (fills?.values.some((v) => v.value > 0)) filler = i + 1;
      });
      return filler !== undefined;
    });
    process.kill(pids.get(filler!)!, 'SIGKILL');
    // Every client gets a truncated transfer (or a reset), none waits forever.
    const got = await Promise.all(downloads);
    for (const n of got) expect(n).not.toBe(INITRAMFS.length);
    // The next request starts a new download that completes.
    const res = await fresh(`${base}/images/ipa.initramfs`);
    expect(res.statusCode).toBe(200);
    expect(sha256(Buffer.from(await res.body.arrayBuffer()))).toBe(sha256(INITRAMFS));
    expect(upstream.fullGets('/images/ipa.initramfs')).toBe(2);
  });

  it('fails to start on a port in use, with the listen error, and leaves no worker behind', async () => {
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      const server = new ImageServer({
        listen: { host: '127.0.0.1', port },
        proxy: { upstream: upstream.url },
        workers: 2,
        logger: pino({ level: 'silent' }),
        registry: new Registry(),
      });
      servers.push(server);
      await expect(server.start()).rejects.toMatchObject({ code: 'EADDRINUSE' });
      expect(server.up).toBe(false);
      await until('no worker left', () => server.pids().size === 0 && Object.keys(cluster.workers ?? {}).length === 0);
    } finally {
      await new Promise((r) => taken.close(r));
    }
  });
});
