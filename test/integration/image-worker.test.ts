/**
 * The image proxy in two worker processes (--image-listen, --image-workers 2), in the product
 * (buildProduct): the scripts and rewritten Ironic configs point images at the workers' port,
 * the workers proxy and cache (one upstream download for concurrent requests), the main port
 * redirects its image paths there, /metrics merges the workers' series, and closing stops them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { request } from 'undici';
import { buildProduct, type Product } from '../../src/wiring/product.js';
import { processRegistry } from '../../src/wiring/registry.js';
import { closeAll, startAll } from '../../src/base/service.js';
import { loadConfig } from '../../src/config/load.js';
import { sha256, startUpstreamHttpd, type UpstreamHttpd } from '../support/upstream-httpd.js';

const KERNEL = randomBytes(3 * 1024 * 1024 + 17);
const INITRAMFS = randomBytes(1024 * 1024);

describe('image worker (--image-listen)', () => {
  let upstream: UpstreamHttpd;
  let product: Product;
  let httpUrl: string;
  let imageUrl: string;
  let imagePort: number;
  const dirs: string[] = [];
  const tmp = () => {
    const d = mkdtempSync(path.join(tmpdir(), 'metalboot-image-worker-'));
    dirs.push(d);
    return d;
  };

  beforeAll(async () => {
    upstream = await startUpstreamHttpd();
    upstream.setFile('/images/ironic-python-agent.kernel', KERNEL);
    upstream.setFile('/images/ironic-python-agent.initramfs', INITRAMFS);
    upstream.setFile(
      '/pxelinux.cfg/52-54-00-00-00-02',
      Buffer.from(
        `#!ipxe\nkernel ${upstream.url}/11111111-2222-3333-4444-555555555555/deploy_kernel ipa-api-url=http://ironic:6385 || goto retry\nboot\n`,
      ),
    );
    const loaded = loadConfig({
      argv: [
        '--server-ip',
        '127.0.0.1/8',
        '--dhcp-listen',
        '127.0.0.1:0',
        '--tftp-listen',
        '',
        '--tftp-root',
        tmp(),
        '--callback-listen',
        '',
        // Port 0: both listeners bind a free port, and what they advertise follows it.
        '--http-listen',
        '127.0.0.1:0',
        '--image-listen',
        '127.0.0.1:0',
        '--image-workers',
        '2',
        '--image-cache-dir',
        tmp(),
        '--ironic-http-url',
        upstream.url,
        '--dhcp-hosts',
        '52:54:00:00:00:01,127.0.0.11;52:54:00:00:00:02,127.0.0.12',
        '--log-level',
        'silent',
      ],
      env: {},
      readFile: () => '',
      localAddresses: () => [],
    });
    if (loaded.kind !== 'config') throw new Error(JSON.stringify(loaded));
    product = buildProduct(loaded.config, { logger: pino({ level: 'silent' }), registry: processRegistry() });
    await startAll(product.services);
    imagePort = product.images!.address().port;
    httpUrl = `http://127.0.0.1:${product.http.address().port}`;
    imageUrl = `http://127.0.0.1:${imagePort}`;
  }, 60_000);

  afterAll(async () => {
    if (product !== undefined) await closeAll(product.services);
    await upstream?.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('is ready, and scripts point kernel and initramfs at the worker', async () => {
    expect(product.readiness.find((c) => c.name === 'image-worker')?.check()).toEqual({
      ok: true,
      detail: '2 of 2 workers listening',
    });
    const res = await request(`${httpUrl}/boot/52:54:00:00:00:01.ipxe`);
    expect(res.statusCode).toBe(200);
    const script = await res.body.text();
    expect(script).toContain(`${imageUrl}/images/ironic-python-agent.kernel`);
    expect(script).toContain(`${imageUrl}/images/ironic-python-agent.initramfs`);
  });

  it("rewrites Ironic's per-node config to fetch through the worker", async () => {
    const script = await (await request(`${httpUrl}/boot/52:54:00:00:00:02.ipxe`)).body.text();
    expect(script).toContain(`kernel ${imageUrl}/11111111-2222-3333-4444-555555555555/deploy_kernel`);
    expect(script).not.toContain(upstream.url);
  });

  it('serves concurrent downloads of one artifact from one upstream fetch', async () => {
    const bodies = await Promise.all(
      Array.from({ length: 6 }, async () => {
        const res = await request(`${imageUrl}/images/ironic-python-agent.kernel`);
        expect(res.statusCode).toBe(200);
        expect(res.headers['content-length']).toBe(String(KERNEL.length));
        return Buffer.from(await res.body.arrayBuffer());
      }),
    );
    for (const b of bodies) expect(sha256(b)).toBe(sha256(KERNEL));
    expect(upstream.fullGets('/images/ironic-python-agent.kernel')).toBe(1);
    const again = await request(`${imageUrl}/images/ironic-python-agent.kernel`);
    expect(again.headers['x-cache']).toBe('hit');
    expect(sha256(Buffer.from(await again.body.arrayBuffer()))).toBe(sha256(KERNEL));
  });

  it('redirects image paths on the main port to the worker', async () => {
    const res = await request(`${httpUrl}/images/ironic-python-agent.initramfs`);
    expect(res.statusCode).toBe(307);
    expect(res.headers['location']).toBe(`${imageUrl}/images/ironic-python-agent.initramfs`);
    await res.body.dump();
    expect(upstream.count('/images/ironic-python-agent.initramfs')).toBe(0);
  });

  it("merges the worker's metrics into /metrics", async () => {
    const text = await (await request(`${httpUrl}/metrics`)).body.text();
    expect(text).toMatch(/metalboot_image_proxy_requests_total\{result="hit"\} [1-9]/);
    expect(text).toMatch(/metalboot_image_cache_entries [1-9]/);
    // Each worker's own event-loop delay and memory, by worker; the supervision's gauge.
    for (const w of ['1', '2']) {
      expect(text).toMatch(
        new RegExp(`^metalboot_image_worker_nodejs_eventloop_lag_p99_seconds\\{worker="${w}"\\} \\d`, 'm'),
      );
      expect(text).toMatch(
        new RegExp(`^metalboot_image_worker_process_resident_memory_bytes\\{worker="${w}"\\} [1-9]`, 'm'),
      );
    }
    expect(text).toMatch(/^metalboot_image_workers\{state="up"\} 2$/m);
    // The process's start time survives the merge (prom-client's aggregation would omit it).
    expect(text).toMatch(/^metalboot_process_start_time_seconds \d+$/m);
    // Main-thread series are still there, once.
    expect(text.match(/^# TYPE metalboot_http_requests_total counter$/gm)).toHaveLength(1);
    expect(text).toContain('metalboot_http_requests_total{route="/boot/:name",status="200"}');
    expect(text).toContain('metalboot_http_requests_total{route="/images/*",status="200"}');
  });

  it('stops the worker on close: the image port refuses connections', async () => {
    await closeAll(product.services);
    const err = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
      const s = net.connect(imagePort, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(undefined);
      });
      s.once('error', (e) => resolve(e));
    });
    expect(err?.code).toBe('ECONNREFUSED');
  });
});
