/**
 * The image proxy over real loopback sockets: a listening fastify with the plugin, a stand-in
 * for Ironic's httpd (test/support/upstream-httpd.ts), undici as the client where streaming
 * and truncation matter and raw sockets where the request line itself is the test.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { Agent, request } from 'undici';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { imageProxyPlugin, type ImageProxyOptions } from '../../src/images/plugin.js';
import { sha256, startUpstreamHttpd, type UpstreamHttpd } from '../support/upstream-httpd.js';

const MiB = 1024 * 1024;
const KERNEL = randomBytes(3 * MiB + 123);
const BIG = randomBytes(20 * MiB);
const SMALL = Buffer.from('#!ipxe\nkernel http://x/deploy_kernel\n');
const NODE = '0e0e0e0e-1111-2222-3333-444455556666';

let up: UpstreamHttpd;
const apps: FastifyInstance[] = [];
const dirs: string[] = [];
// A private client pool with room for the storm test.
const client = new Agent({ connections: 200, pipelining: 0 });

interface Proxy {
  readonly app: FastifyInstance;
  readonly url: string;
  readonly port: number;
  readonly registry: Registry;
  readonly cacheDir: string | undefined;
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  /** Files in the cache's entries directory. */
  entryFiles(): string[];
  tmpFiles(): string[];
  /** Waits until no fill is running (a client can finish before its fill is fsynced and stored). */
  settled(): Promise<void>;
}

type ProxyOptions = Partial<Omit<ImageProxyOptions, 'registry' | 'cache'>> & {
  cache?: Partial<NonNullable<ImageProxyOptions['cache']>> | true;
};

async function startProxy(options: ProxyOptions = {}): Promise<Proxy> {
  const registry = new Registry();
  const app = Fastify({ logger: { level: process.env.PROXY_TEST_LOG ?? 'silent' } });
  let cacheDir: string | undefined;
  const { cache, ...rest } = options;
  let cacheOption: ImageProxyOptions['cache'];
  if (cache !== undefined) {
    const c = cache === true ? {} : cache;
    cacheDir = c.dir ?? mkdtempSync(path.join(tmpdir(), 'metalboot-image-cache-'));
    if (c.dir === undefined) dirs.push(cacheDir);
    cacheOption = { maxBytes: 200 * MiB, ...c, dir: cacheDir };
  }
  await app.register(imageProxyPlugin, {
    upstream: up.url,
    registry,
    ...rest,
    ...(cacheOption === undefined ? {} : { cache: cacheOption }),
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  apps.push(app);
  const port = (app.server.address() as net.AddressInfo).port;
  const list = (sub: string): string[] =>
    cacheDir === undefined ? [] : readdirSync(path.join(cacheDir, 'metalboot-image-cache', sub));
  return {
    app,
    port,
    url: `http://127.0.0.1:${port}`,
    registry,
    cacheDir,
    async metric(name, labels = {}) {
      const m = await registry.getSingleMetric(name)?.get();
      if (m === undefined) return Number.NaN;
      return m.values
        .filter((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val))
        .reduce((a, v) => a + v.value, 0);
    },
    entryFiles: () => list('entries'),
    tmpFiles: () => list('tmp'),
    async settled() {
      const running = async (): Promise<number> =>
        (await registry.getSingleMetric('metalboot_image_cache_fills_running')?.get())?.values[0]?.value ?? 0;
      for (let i = 0; i < 500 && (await running()) > 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(await running()).toBe(0);
      expect(list('tmp')).toEqual([]);
    },
  };
}

async function get(p: Proxy, target: string, headers: Record<string, string> = {}, method: 'GET' | 'HEAD' = 'GET') {
  const res = await request(`${p.url}${target}`, { method, headers, dispatcher: client });
  const body = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers, body };
}

/** Sends a raw request line (no client-side normalisation) and returns the status code. */
function rawStatus(port: number, target: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () =>
      s.write(`GET ${target} HTTP/1.1\r\nHost: metalboot\r\nConnection: close\r\n\r\n`),
    );
    let data = '';
    s.setEncoding('latin1');
    s.on('data', (c: string) => (data += c));
    s.on('error', reject);
    s.on('end', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0)));
  });
}

beforeAll(async () => {
  up = await startUpstreamHttpd();
});
afterAll(async () => {
  await up.close();
  await client.close();
});
beforeEach(() => {
  up.clearRequests();
  up.setFile('/images/ironic-python-agent.kernel', KERNEL);
  up.setFile('/images/big.img', BIG);
  up.setFile('/pxelinux.cfg/52-54-00-12-34-56', SMALL, { contentType: 'text/plain' });
  up.setFile(`/${NODE}/deploy_kernel`, KERNEL);
});
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  for (const p of [
    '/images/ironic-python-agent.kernel',
    '/images/big.img',
    '/pxelinux.cfg/52-54-00-12-34-56',
    `/${NODE}/deploy_kernel`,
  ])
    up.behave(p, undefined);
});

describe('relaying without a cache', () => {
  it('streams a GET with the upstream status and headers', async () => {
    const p = await startProxy();
    const r = await get(p, '/images/ironic-python-agent.kernel');
    expect(r.status).toBe(200);
    expect(sha256(r.body)).toBe(sha256(KERNEL));
    expect(r.headers['content-length']).toBe(String(KERNEL.length));
    expect(r.headers['etag']).toBe(up.etag('/images/ironic-python-agent.kernel'));
    expect(r.headers['last-modified']).toBeDefined();
    expect(r.headers['accept-ranges']).toBe('bytes');
    expect(r.headers['content-type']).toBe('application/octet-stream');
    expect(r.headers['x-cache']).toBe('bypass');
    expect(await p.metric('metalboot_image_proxy_requests_total', { result: 'bypass' })).toBe(1);
    expect(await p.metric('metalboot_image_proxy_served_bytes_total', { source: 'upstream' })).toBe(KERNEL.length);
  });

  it('answers HEAD with the length and no body', async () => {
    const p = await startProxy();
    const r = await get(p, '/images/ironic-python-agent.kernel', {}, 'HEAD');
    expect(r.status).toBe(200);
    expect(r.headers['content-length']).toBe(String(KERNEL.length));
    expect(r.body.length).toBe(0);
    expect(up.requests.at(-1)?.method).toBe('HEAD');
  });

  it('passes Range through (206, Content-Range)', async () => {
    const p = await startProxy();
    const r = await get(p, '/images/ironic-python-agent.kernel', { range: 'bytes=1000-1999' });
    expect(r.status).toBe(206);
    expect(r.headers['content-range']).toBe(`bytes 1000-1999/${KERNEL.length}`);
    expect(r.body.equals(KERNEL.subarray(1000, 2000))).toBe(true);
  });

  it.each<[string, () => Record<string, string>, number]>([
    ['If-None-Match', () => ({ 'if-none-match': up.etag('/images/ironic-python-agent.kernel')! }), 304],
    ['If-Modified-Since', () => ({ 'if-modified-since': new Date(Date.now() + 60_000).toUTCString() }), 304],
    ['If-Match that fails', () => ({ 'if-match': '"other"' }), 412],
    ['If-Range that fails (whole body)', () => ({ range: 'bytes=0-9', 'if-range': '"other"' }), 200],
    [
      'If-Range that holds',
      () => ({ range: 'bytes=0-9', 'if-range': up.etag('/images/ironic-python-agent.kernel')! }),
      206,
    ],
  ])('passes %s through', async (_name, headers, status) => {
    const p = await startProxy();
    const r = await get(p, '/images/ironic-python-agent.kernel', headers());
    expect(r.status).toBe(status);
    const sent = up.requests.at(-1)!.headers;
    for (const k of Object.keys(headers())) expect(sent[k]).toBeDefined();
  });

  it('forwards only allowed headers, with the query string, and drops hop-by-hop answers', async () => {
    up.behave('/pxelinux.cfg/52-54-00-12-34-56', { headers: { 'keep-alive': 'timeout=5', 'x-upstream': 'yes' } });
    const p = await startProxy();
    const r = await get(p, '/pxelinux.cfg/52-54-00-12-34-56?a=1&b=%20', {
      cookie: 'secret=1',
      authorization: 'Bearer x',
      'user-agent': 'iPXE/1.21',
    });
    expect(r.status).toBe(200);
    expect(r.body.equals(SMALL)).toBe(true);
    expect(r.headers['keep-alive']).toBeUndefined();
    expect(r.headers['x-upstream']).toBe('yes');
    const sent = up.requests.at(-1)!;
    expect(sent.url).toBe('/pxelinux.cfg/52-54-00-12-34-56?a=1&b=%20');
    expect(sent.headers['cookie']).toBeUndefined();
    expect(sent.headers['authorization']).toBeUndefined();
    expect(sent.headers['user-agent']).toBe('iPXE/1.21');
    expect(sent.headers['host']).toBe(`127.0.0.1:${up.port}`);
    expect(sent.headers['x-forwarded-for']).toBe('127.0.0.1');
  });

  it("proxies Ironic's per-node directories and passes 404 through", async () => {
    const p = await startProxy();
    expect(sha256((await get(p, `/${NODE}/deploy_kernel`)).body)).toBe(sha256(KERNEL));
    expect((await get(p, '/images/missing')).status).toBe(404);
    expect((await get(p, '/etc/passwd')).status).toBe(404);
    expect((await get(p, '/images/')).status).toBe(404);
  });

  it('answers 502 with a plain reason when the upstream refuses connections', async () => {
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const p = await startProxy({ upstream: `http://127.0.0.1:${port}` });
    const r = await get(p, '/images/ironic-python-agent.kernel');
    expect(r.status).toBe(502);
    expect(r.headers['content-type']).toMatch(/^text\/plain/);
    expect(r.body.toString()).toMatch(/refused the connection \(ECONNREFUSED\)/);
    expect(await p.metric('metalboot_image_proxy_upstream_failures_total', { reason: 'refused' })).toBe(1);
  });

  it('answers 504 when the upstream sends no headers within the idle timeout', async () => {
    up.behave('/images/ironic-python-agent.kernel', { delayHeadersMs: 1500, times: 1 });
    const p = await startProxy({ idleTimeoutMs: 300 });
    const r = await get(p, '/images/ironic-python-agent.kernel');
    expect(r.status).toBe(504);
    expect(r.body.toString()).toMatch(/timed out waiting/);
    expect(await p.metric('metalboot_image_proxy_upstream_failures_total', { reason: 'headers-timeout' })).toBe(1);
  });

  it.each<[string, Parameters<UpstreamHttpd['behave']>[1]]>([
    ['dies', { dieAfterBytes: MiB }],
    ['stalls past the idle timeout', { stallAfterBytes: MiB }],
  ])('truncates the client transfer when the upstream %s mid-stream', async (_name, behaviour) => {
    up.behave('/images/ironic-python-agent.kernel', behaviour);
    const p = await startProxy({ idleTimeoutMs: 500 });
    const res = await request(`${p.url}/images/ironic-python-agent.kernel`, { dispatcher: client });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-length']).toBe(String(KERNEL.length));
    let received = 0;
    const read = (async () => {
      for await (const chunk of res.body) received += (chunk as Buffer).length;
    })();
    await expect(read).rejects.toThrow();
    expect(received).toBeGreaterThan(0);
    expect(received).toBeLessThan(KERNEL.length);
  });

  it('stops the upstream transfer when the client goes away', async () => {
    up.behave('/images/big.img', { chunkBytes: 256 * 1024, chunkDelayMs: 10 });
    const p = await startProxy();
    const res = await request(`${p.url}/images/big.img`, { dispatcher: client });
    let n = 0;
    for await (const chunk of res.body) {
      n += (chunk as Buffer).length;
      if (n >= MiB) break; // leaving the loop destroys the body and the connection
    }
    for (let i = 0; i < 200 && up.requests.at(-1)?.aborted !== true; i++) await new Promise((r) => setTimeout(r, 10));
    expect(up.requests.at(-1)?.aborted).toBe(true);
  });

  it('refuses traversal, encoded separators, NUL and absolute-URI targets without contacting the upstream', async () => {
    const p = await startProxy();
    const before = up.requests.length;
    for (const target of [
      '/images/../etc/passwd',
      '/images/%2e%2e/etc/passwd',
      '/images/%2E%2e/%2e%2E/etc/passwd',
      '/images/.%2e/x',
      '/images/a%2fb',
      '/images/a%2F..%2Fb',
      '/images/a%5c..%5cb',
      '/images/a%00b',
      '/images/%252e%252e/x',
      '/images/%zz',
      'http://evil.example/images/ironic-python-agent.kernel',
      `http://127.0.0.1:${up.port}/images/ironic-python-agent.kernel`,
    ]) {
      expect([target, await rawStatus(p.port, target)]).toEqual([target, 400]);
    }
    expect(up.requests.length).toBe(before);
    // '/images/%zz' never reaches the proxy: fastify's router refuses it (FST_ERR_BAD_URL).
    expect(await p.metric('metalboot_image_proxy_requests_total', { result: 'refused' })).toBe(11);
    // merged slashes and a harmless encoding reach the file
    expect(await rawStatus(p.port, '/images//ironic-python-agent%2Ekernel')).toBe(200);
    expect(up.requests.at(-1)!.url).toBe('/images/ironic-python-agent.kernel');
  });

  it('keeps a base path of the upstream URL', async () => {
    up.setFile('/ironic/images/x', SMALL);
    const p = await startProxy({ upstream: `${up.url}/ironic/` });
    const r = await get(p, '/images/x');
    expect(r.body.equals(SMALL)).toBe(true);
  });

  it('refuses bad options with stable codes', async () => {
    const app = Fastify();
    await expect(
      app.register(imageProxyPlugin, { upstream: 'ftp://x', registry: new Registry() }).ready(),
    ).rejects.toMatchObject({ code: 'IMAGE_PROXY_ERR_BAD_UPSTREAM' });
    const app2 = Fastify();
    await expect(
      app2
        .register(imageProxyPlugin, { upstream: 'http://x', prefixes: ['/a/../b/'], registry: new Registry() })
        .ready(),
    ).rejects.toMatchObject({ code: 'IMAGE_PROXY_ERR_BAD_PREFIX' });
    const app3 = Fastify();
    await expect(
      app3.register(imageProxyPlugin, { upstream: 'http://x', queueTimeoutMs: 0, registry: new Registry() }).ready(),
    ).rejects.toMatchObject({ code: 'IMAGE_PROXY_ERR_BAD_LIMITS' });
  });
});

describe('read-through cache', () => {
  it('stores a GET, then serves it from disk without the upstream', async () => {
    const p = await startProxy({ cache: true });
    const a = await get(p, '/images/ironic-python-agent.kernel');
    expect(a.headers['x-cache']).toBe('miss');
    expect(sha256(a.body)).toBe(sha256(KERNEL));
    await p.settled();
    const b = await get(p, '/images/ironic-python-agent.kernel');
    expect(b.headers['x-cache']).toBe('hit');
    expect(b.headers['content-length']).toBe(String(KERNEL.length));
    expect(b.headers['etag']).toBe(up.etag('/images/ironic-python-agent.kernel'));
    expect(sha256(b.body)).toBe(sha256(KERNEL));
    expect(up.count('/images/ironic-python-agent.kernel')).toBe(1);
    expect(p.entryFiles()).toHaveLength(1);
    expect(await p.metric('metalboot_image_cache_entries')).toBe(1);
    expect(await p.metric('metalboot_image_cache_size_bytes')).toBeGreaterThan(KERNEL.length);
    expect(await p.metric('metalboot_image_proxy_upstream_bytes_total')).toBe(KERNEL.length);
    expect(await p.metric('metalboot_image_proxy_served_bytes_total', { source: 'cache' })).toBe(2 * KERNEL.length);
  });

  it('answers Range, HEAD and conditional requests from an entry', async () => {
    const p = await startProxy({ cache: true });
    await get(p, '/images/ironic-python-agent.kernel');
    await p.settled();
    const etag = up.etag('/images/ironic-python-agent.kernel')!;
    const size = KERNEL.length;
    const r = await get(p, '/images/ironic-python-agent.kernel', { range: 'bytes=100-' });
    expect([r.status, r.headers['content-range'], r.headers['content-length']]).toEqual([
      206,
      `bytes 100-${size - 1}/${size}`,
      String(size - 100),
    ]);
    expect(r.body.equals(KERNEL.subarray(100))).toBe(true);
    const suffix = await get(p, '/images/ironic-python-agent.kernel', { range: 'bytes=-10' });
    expect(suffix.body.equals(KERNEL.subarray(size - 10))).toBe(true);
    const bad = await get(p, '/images/ironic-python-agent.kernel', { range: `bytes=${size}-` });
    expect([bad.status, bad.headers['content-range']]).toEqual([416, `bytes */${size}`]);
    const head = await get(p, '/images/ironic-python-agent.kernel', {}, 'HEAD');
    expect([head.status, head.headers['content-length'], head.body.length]).toEqual([200, String(size), 0]);
    expect((await get(p, '/images/ironic-python-agent.kernel', { 'if-none-match': etag })).status).toBe(304);
    expect(
      (await get(p, '/images/ironic-python-agent.kernel', { range: 'bytes=0-9', 'if-range': '"old"' })).status,
    ).toBe(200);
    expect(up.count('/images/ironic-python-agent.kernel')).toBe(1);
  });

  it('serves 100 concurrent requests for one artifact from exactly one upstream download', async () => {
    // A slow upstream: every request arrives while the download is running.
    up.behave('/images/big.img', { chunkBytes: 256 * 1024, chunkDelayMs: 5 });
    const p = await startProxy({ cache: true });
    const results = await Promise.all(
      Array.from({ length: 100 }, async () => {
        const res = await request(`${p.url}/images/big.img`, { dispatcher: client });
        const hash = createHash('sha256');
        for await (const chunk of res.body) hash.update(chunk as Buffer);
        return { status: res.statusCode, length: res.headers['content-length'], sha: hash.digest('hex') };
      }),
    );
    expect(results.map((r) => r.status)).toEqual(Array(100).fill(200));
    expect(results.filter((r) => r.sha === sha256(BIG))).toHaveLength(100);
    expect(results.every((r) => r.length === String(BIG.length))).toBe(true);
    expect(up.count('/images/big.img')).toBe(1);
    expect(await p.metric('metalboot_image_proxy_requests_total', { result: 'miss' })).toBe(1);
    // On a loaded machine a request can arrive after the entry is stored: a hit, still no download.
    const late = await p.metric('metalboot_image_proxy_requests_total', { result: 'hit' });
    expect(await p.metric('metalboot_image_proxy_requests_total', { result: 'coalesced' })).toBe(99 - late);
    expect(await p.metric('metalboot_image_proxy_upstream_bytes_total')).toBe(BIG.length);
    await p.settled();
    expect(p.entryFiles()).toHaveLength(1);
  }, 60_000);

  it('finishes storing a download when the client that started it goes away', async () => {
    up.behave('/images/big.img', { chunkBytes: 256 * 1024, chunkDelayMs: 5 });
    const p = await startProxy({ cache: true });
    const res = await request(`${p.url}/images/big.img`, { dispatcher: client });
    for await (const chunk of res.body) if ((chunk as Buffer).length > 0) break;
    await p.settled();
    expect(await p.metric('metalboot_image_cache_fills_total', { outcome: 'complete' })).toBe(1);
    const hit = await get(p, '/images/big.img');
    expect([hit.headers['x-cache'], sha256(hit.body)]).toEqual(['hit', sha256(BIG)]);
    expect(up.count('/images/big.img')).toBe(1);
  });

  it('truncates every client and stores nothing when the upstream dies mid-stream', async () => {
    // every download dies, so even a client that arrives after the first failure sees one
    up.behave('/images/big.img', { dieAfterBytes: 5 * MiB, chunkBytes: 256 * 1024, chunkDelayMs: 5 });
    const p = await startProxy({ cache: true });
    const outcomes = await Promise.all(
      Array.from({ length: 5 }, async () => {
        const res = await request(`${p.url}/images/big.img`, { dispatcher: client });
        let n = 0;
        try {
          for await (const chunk of res.body) n += (chunk as Buffer).length;
          return { status: res.statusCode, n, error: false };
        } catch {
          return { status: res.statusCode, n, error: true };
        }
      }),
    );
    for (const o of outcomes) {
      expect(o.status).toBe(200);
      expect(o.error).toBe(true);
      expect(o.n).toBeLessThan(BIG.length);
    }
    await p.settled();
    expect(p.entryFiles()).toEqual([]);
    const failedFills = await p.metric('metalboot_image_cache_fills_total', { outcome: 'failed' });
    expect(failedFills).toBeGreaterThanOrEqual(1);
    expect(up.fullGets('/images/big.img')).toBe(failedFills);
    // once the upstream behaves, the next request downloads again, completely
    up.behave('/images/big.img', undefined);
    const again = await get(p, '/images/big.img');
    expect(sha256(again.body)).toBe(sha256(BIG));
    await p.settled();
    expect(up.fullGets('/images/big.img')).toBe(failedFills + 1);
    expect(p.entryFiles()).toHaveLength(1);
  });

  it('revalidates an old entry with a conditional GET and serves it on 304', async () => {
    let clock = 1_000_000;
    const p = await startProxy({ cache: { revalidateAfterMs: 10_000 }, now: () => clock });
    await get(p, '/images/ironic-python-agent.kernel');
    await p.settled();
    clock += 5_000;
    expect((await get(p, '/images/ironic-python-agent.kernel')).headers['x-cache']).toBe('hit');
    clock += 10_000;
    // a slow 304, so that all ten requests arrive while the revalidation is running
    up.behave('/images/ironic-python-agent.kernel', { delayHeadersMs: 200, times: 1 });
    const results = await Promise.all(Array.from({ length: 10 }, () => get(p, '/images/ironic-python-agent.kernel')));
    expect(results.every((r) => sha256(r.body) === sha256(KERNEL))).toBe(true);
    // all ten normally share the revalidation; on a loaded machine a late one finds the entry fresh again
    expect(results.filter((r) => r.headers['x-cache'] === 'revalidated').length).toBeGreaterThanOrEqual(1);
    expect(results.every((r) => r.headers['x-cache'] === 'revalidated' || r.headers['x-cache'] === 'hit')).toBe(true);
    const seen = up.requests.filter((r) => r.path === '/images/ironic-python-agent.kernel');
    expect(seen).toHaveLength(2);
    expect(seen[1]!.headers['if-none-match']).toBe(up.etag('/images/ironic-python-agent.kernel'));
    expect(seen[1]!.status).toBe(304);
    expect((await get(p, '/images/ironic-python-agent.kernel')).headers['x-cache']).toBe('hit');
  });

  it('downloads a changed artifact (new ETag) again and drops the old entry', async () => {
    let clock = 1_000_000;
    const p = await startProxy({ cache: { revalidateAfterMs: 1000 }, now: () => clock });
    await get(p, '/images/ironic-python-agent.kernel');
    await p.settled();
    const oldFile = p.entryFiles();
    const NEW = randomBytes(2 * MiB);
    up.setFile('/images/ironic-python-agent.kernel', NEW, { mtime: new Date(Date.now() + 3_600_000) });
    clock += 2000;
    const r = await get(p, '/images/ironic-python-agent.kernel');
    expect(r.headers['x-cache']).toBe('miss');
    expect(sha256(r.body)).toBe(sha256(NEW));
    expect(r.headers['etag']).toBe(up.etag('/images/ironic-python-agent.kernel'));
    expect(up.fullGets('/images/ironic-python-agent.kernel')).toBe(1);
    expect(up.count('/images/ironic-python-agent.kernel')).toBe(2);
    await p.settled();
    const hit = await get(p, '/images/ironic-python-agent.kernel');
    expect([hit.headers['x-cache'], sha256(hit.body)]).toEqual(['hit', sha256(NEW)]);
    await new Promise((r) => setTimeout(r, 50));
    expect(p.entryFiles()).toHaveLength(1);
    expect(p.entryFiles()).not.toEqual(oldFile);
  });

  it('serves the stored entry when revalidation fails, and drops it when the upstream says 404', async () => {
    let clock = 1_000_000;
    const p = await startProxy({ cache: { revalidateAfterMs: 1000 }, now: () => clock });
    await get(p, '/images/ironic-python-agent.kernel');
    await p.settled();
    clock += 2000;
    up.behave('/images/ironic-python-agent.kernel', { status: 503, times: 1 });
    const stale = await get(p, '/images/ironic-python-agent.kernel');
    expect([stale.status, stale.headers['x-cache'], sha256(stale.body)]).toEqual([200, 'stale', sha256(KERNEL)]);
    up.deleteFile('/images/ironic-python-agent.kernel');
    const gone = await get(p, '/images/ironic-python-agent.kernel');
    expect(gone.status).toBe(404);
    await new Promise((r) => setTimeout(r, 50));
    expect(p.entryFiles()).toEqual([]);
  });

  it('evicts least recently used entries to stay under maxBytes', async () => {
    const maxBytes = Math.floor(3.5 * MiB);
    const p = await startProxy({ cache: { maxBytes } });
    const files = ['/images/a', '/images/b', '/images/c', '/images/d'];
    for (const f of files) up.setFile(f, randomBytes(MiB));
    for (const f of ['/images/a', '/images/b', '/images/c', '/images/a', '/images/d']) {
      // a is read again before d arrives, so b is the least recently used when d needs room
      await get(p, f);
      await p.settled();
    }
    await new Promise((r) => setTimeout(r, 50));
    const onDisk = p
      .entryFiles()
      .reduce((sum, f) => sum + statSync(path.join(p.cacheDir!, 'metalboot-image-cache', 'entries', f)).size, 0);
    expect(onDisk).toBeLessThanOrEqual(maxBytes);
    expect(p.entryFiles()).toHaveLength(3);
    expect(await p.metric('metalboot_image_cache_size_bytes')).toBe(onDisk);
    expect(await p.metric('metalboot_image_cache_evictions_total')).toBe(1);
    expect((await get(p, '/images/a')).headers['x-cache']).toBe('hit');
    expect((await get(p, '/images/b')).headers['x-cache']).toBe('miss');
    // an artifact larger than the whole cache is relayed, not stored
    up.setFile('/images/huge', randomBytes(4 * MiB));
    const huge = await get(p, '/images/huge');
    expect([huge.status, huge.headers['x-cache'], huge.body.length]).toEqual([200, 'bypass', 4 * MiB]);
    for (const f of files) up.deleteFile(f);
    up.deleteFile('/images/huge');
  });

  it('keeps its entries across a restart and revalidates them first', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'metalboot-image-cache-'));
    dirs.push(dir);
    const first = await startProxy({ cache: { dir } });
    await get(first, '/images/ironic-python-agent.kernel');
    await first.settled();
    await first.app.close();
    const second = await startProxy({ cache: { dir } });
    expect(await second.metric('metalboot_image_cache_entries')).toBe(1);
    const r = await get(second, '/images/ironic-python-agent.kernel');
    expect([r.headers['x-cache'], sha256(r.body)]).toEqual(['revalidated', sha256(KERNEL)]);
    expect(up.fullGets('/images/ironic-python-agent.kernel')).toBe(1);
  });

  it('relays what it does not cache: per-MAC configs, query strings, Range and HEAD on a miss', async () => {
    const p = await startProxy({ cache: true });
    expect((await get(p, '/pxelinux.cfg/52-54-00-12-34-56')).headers['x-cache']).toBe('bypass');
    expect((await get(p, '/images/ironic-python-agent.kernel?x=1')).headers['x-cache']).toBe('bypass');
    expect((await get(p, '/images/ironic-python-agent.kernel', { range: 'bytes=0-9' })).headers['x-cache']).toBe(
      'bypass',
    );
    expect((await get(p, '/images/ironic-python-agent.kernel', {}, 'HEAD')).headers['x-cache']).toBe('bypass');
    expect(p.entryFiles()).toEqual([]);
    expect(up.count('/images/ironic-python-agent.kernel')).toBe(3);
  });

  it('shares one failed download between the requests waiting for it (504 to all)', async () => {
    up.behave('/images/ironic-python-agent.kernel', { delayHeadersMs: 3000, times: 1 });
    const p = await startProxy({ cache: true, idleTimeoutMs: 1000 });
    const rs = await Promise.all(Array.from({ length: 5 }, () => get(p, '/images/ironic-python-agent.kernel')));
    expect(rs.map((r) => r.status)).toEqual(Array(5).fill(504));
    expect(up.count('/images/ironic-python-agent.kernel')).toBe(1);
    expect(await p.metric('metalboot_image_proxy_upstream_failures_total', { reason: 'headers-timeout' })).toBe(1);
    expect(await p.metric('metalboot_image_proxy_requests_total', { result: 'error' })).toBe(5);
    expect(p.entryFiles()).toEqual([]);
  });

  it('answers 502 when the upstream refuses the download', async () => {
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const p = await startProxy({ upstream: `http://127.0.0.1:${port}`, cache: true });
    const r = await get(p, '/images/ironic-python-agent.kernel');
    expect([r.status, r.headers['x-cache']]).toEqual([502, 'error']);
  });
});

/** A client that sends a GET and then never reads: its socket is paused from the start. */
interface StalledClient {
  readonly socket: net.Socket;
  /** Reads what arrived and what follows, until the server closes the connection. */
  drain(): Promise<{ head: string; bytes: number }>;
}

const stalled: net.Socket[] = [];
afterEach(() => {
  for (const s of stalled.splice(0)) s.destroy();
});

function stalledGet(port: number, target: string, localAddress = '127.0.0.1'): Promise<StalledClient> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress }, () => {
      socket.pause();
      socket.write(`GET ${target} HTTP/1.1\r\nHost: metalboot\r\n\r\n`);
      resolve({
        socket,
        drain: () =>
          new Promise((done) => {
            let head = '';
            let bytes = 0;
            socket.on('data', (c: Buffer) => {
              if (head.length < 512) head += c.subarray(0, 512).toString('latin1');
              bytes += c.length;
            });
            socket.on('close', () => done({ head, bytes }));
            socket.on('error', () => {});
            socket.resume();
          }),
      });
    });
    socket.once('error', reject);
    stalled.push(socket);
  });
}

const sleepMs = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `f` every 20 ms until it holds or `ms` have passed; returns its last value. */
async function eventually(f: () => Promise<boolean> | boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await f()) return true;
    await sleepMs(20);
  }
  return f();
}

/** A GET from a given loopback address that gives up after `ms` (the test fails instead of hanging). */
async function getFrom(p: Proxy, target: string, localAddress: string, ms: number) {
  const agent = new Agent({ localAddress });
  try {
    const res = await request(`${p.url}${target}`, { dispatcher: agent, signal: AbortSignal.timeout(ms) });
    const body = Buffer.from(await res.body.arrayBuffer());
    return { status: res.statusCode, headers: res.headers, body };
  } finally {
    await agent.destroy();
  }
}

describe('clients that never read', () => {
  it('cuts relayed downloads whose client stopped reading, so the pool serves others', async () => {
    // More never-reading clients than upstream connections, each from an address of its own
    // (no per-client limit helps here): only the idle timeout frees the pool.
    const p = await startProxy({ connections: 4, clientIdleTimeoutMs: 1000, queueTimeoutMs: 20_000 });
    for (let i = 0; i < 6; i++) await stalledGet(p.port, '/images/big.img', `127.0.0.${10 + i}`);
    await eventually(() => up.count('/images/big.img') >= 4, 15_000);
    const r = await getFrom(p, '/images/ironic-python-agent.kernel', '127.0.0.2', 20_000);
    expect([r.status, sha256(r.body)]).toEqual([200, sha256(KERNEL)]);
    // The kernel got a connection only once a stalled download was cut: how many were cut by
    // then depends on which waiter the freed connections went to first (the two queued stalled
    // downloads or the kernel), so only "at least one" is certain here.
    expect(await p.metric('metalboot_image_proxy_limits_total', { reason: 'client-stalled' })).toBeGreaterThanOrEqual(
      1,
    );
    // every stalled download is cut in turn, and gives its upstream connection back
    expect(
      await eventually(
        async () =>
          (await p.metric('metalboot_image_proxy_limits_total', { reason: 'client-stalled' })) === 6 &&
          (await p.metric('metalboot_image_proxy_upstream_connections_in_use')) === 0,
        20_000,
      ),
    ).toBe(true);
  }, 60_000);

  it('refuses relays beyond the per-client limit while the pool is busy (503, Retry-After)', async () => {
    const p = await startProxy({ connections: 4, connectionsPerClient: 1 });
    // one address, four never-reading downloads: it may take half the pool alone, not more
    for (let i = 0; i < 4; i++) await stalledGet(p.port, '/images/big.img');
    await eventually(() => up.count('/images/big.img') >= 2, 15_000);
    const same = await getFrom(p, '/images/ironic-python-agent.kernel', '127.0.0.1', 5000);
    expect([same.status, same.headers['retry-after'], same.headers['x-cache']]).toEqual([503, '5', 'busy']);
    expect(same.body.toString()).toMatch(/too many downloads from this client/);
    const other = await getFrom(p, '/images/ironic-python-agent.kernel', '127.0.0.2', 5000);
    expect([other.status, sha256(other.body)]).toEqual([200, sha256(KERNEL)]);
    expect(up.count('/images/big.img')).toBe(2);
    expect(await p.metric('metalboot_image_proxy_limits_total', { reason: 'client-limit' })).toBe(3);
    expect(await p.metric('metalboot_image_proxy_requests_total', { result: 'busy' })).toBe(3);
  }, 30_000);

  it('answers 503 to a request that waits longer than the queue timeout for a connection', async () => {
    const p = await startProxy({ connections: 2, queueTimeoutMs: 300 });
    await stalledGet(p.port, '/images/big.img', '127.0.0.10');
    await stalledGet(p.port, '/images/big.img', '127.0.0.11');
    await eventually(() => up.count('/images/big.img') >= 2, 15_000);
    // The client would wait 20 s; the proxy answers once its 300 ms queue timeout is up.
    const r = await getFrom(p, '/images/ironic-python-agent.kernel', '127.0.0.2', 20_000);
    expect([r.status, r.headers['retry-after'], r.headers['x-cache']]).toEqual([503, '5', 'busy']);
    expect(r.body.toString()).toMatch(/no upstream connection/);
    expect(up.count('/images/ironic-python-agent.kernel')).toBe(0);
    expect(await p.metric('metalboot_image_proxy_limits_total', { reason: 'queue-timeout' })).toBe(1);
    // only the two downloads that got a connection were sent
    expect(await p.metric('metalboot_image_proxy_upstream_requests_total', { kind: 'relay' })).toBe(2);
  }, 30_000);

  it('lets a never-reading client of a cache fill hold neither the fill nor a connection, and cuts it', async () => {
    up.behave('/images/big.img', { chunkBytes: 256 * 1024, chunkDelayMs: 2 });
    // one upstream connection: anything that held it would block the last request
    const p = await startProxy({ cache: true, connections: 1, clientIdleTimeoutMs: 1000 });
    const reader = await stalledGet(p.port, '/images/big.img', '127.0.0.10');
    await eventually(() => up.count('/images/big.img') === 1, 2000);
    const coalesced = await getFrom(p, '/images/big.img', '127.0.0.2', 10_000);
    expect([coalesced.status, sha256(coalesced.body)]).toEqual([200, sha256(BIG)]);
    await p.settled();
    expect(await p.metric('metalboot_image_cache_fills_total', { outcome: 'complete' })).toBe(1);
    const other = await getFrom(p, '/images/ironic-python-agent.kernel', '127.0.0.2', 10_000);
    expect([other.status, sha256(other.body)]).toEqual([200, sha256(KERNEL)]);
    // the stalled reader holds a file descriptor until the idle timeout closes its connection
    expect(
      await eventually(
        async () => (await p.metric('metalboot_image_proxy_limits_total', { reason: 'client-stalled' })) === 1,
        5000,
      ),
    ).toBe(true);
    const seen = await reader.drain();
    expect(seen.head).toMatch(/^HTTP\/1\.1 200/);
    expect(seen.bytes).toBeLessThan(BIG.length);
  }, 30_000);
});
