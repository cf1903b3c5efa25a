/**
 * The image store's interface, against a stand-in for Ironic's httpd on loopback: what get()
 * answers, and how many upstream requests it takes.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreamHttpd, type UpstreamHttpd } from '../../test/support/upstream-httpd.js';
import { createImageProxyMetrics } from './metrics.js';
import type { ObjectRequest } from './ranges.js';
import { ImageStore, type ImageRequest, type StoreAnswer } from './store.js';
import { parseUpstream, Upstream } from './upstream.js';

const KEY = '/images/kernel';
const BODY = randomBytes(300 * 1024);

let up: UpstreamHttpd;
const cleanups: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  up = await startUpstreamHttpd();
});
afterAll(async () => {
  await up.close();
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  up.behave(KEY, undefined);
  up.clearRequests();
});

interface Setup {
  readonly store: ImageStore;
  readonly upstream: Upstream;
  readonly registry: Registry;
  /** Waits until no fill is running. */
  settled(): Promise<void>;
}

async function setup(
  o: { upstream?: string; now?: () => number; revalidateAfterMs?: number; connections?: number } = {},
): Promise<Setup> {
  up.setFile(KEY, BODY);
  const dir = mkdtempSync(path.join(tmpdir(), 'metalboot-image-store-'));
  const registry = new Registry();
  const upstream = new Upstream(parseUpstream(o.upstream ?? up.url), {
    connections: o.connections ?? 8,
    connectionsPerClient: 2,
    queueTimeoutMs: 200,
    connectTimeoutMs: 1000,
    idleTimeoutMs: 2000,
  });
  const store = new ImageStore({
    dir,
    maxBytes: 10 * 1024 * 1024,
    revalidateAfterMs: o.revalidateAfterMs ?? 60_000,
    upstream,
    metrics: createImageProxyMetrics(registry, undefined, () => upstream.figures()),
    logger: pino({ level: 'silent' }),
    now: o.now ?? Date.now,
  });
  await store.open();
  cleanups.push(
    () => rmSync(dir, { recursive: true, force: true }),
    () => upstream.close(),
    () => store.close(),
  );
  return {
    store,
    upstream,
    registry,
    async settled() {
      for (let i = 0; i < 200 && store.figures().fillsRunning > 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(store.figures().fillsRunning).toBe(0);
    },
  };
}

const request = (conditions: Partial<ObjectRequest> = {}, partial = false): ImageRequest => ({
  conditions: { method: 'GET', ...conditions },
  partial,
  userAgent: 'store-test',
});

async function bytes(a: StoreAnswer): Promise<Buffer> {
  if (a.kind !== 'object' || a.body === undefined) throw new Error(`no body in ${a.kind}`);
  const chunks: Buffer[] = [];
  for await (const c of a.body) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('ImageStore.get', () => {
  it('starts one download for concurrent misses, streams it to all, then serves the entry', async () => {
    const { store, settled } = await setup();
    up.behave(KEY, { delayHeadersMs: 100, times: 1 });
    const answers = await Promise.all([
      store.get(KEY, request()),
      store.get(KEY, request()),
      store.get(KEY, request()),
    ]);
    expect(answers.map((a) => (a.kind === 'object' ? a.result : a.kind))).toEqual(['miss', 'coalesced', 'coalesced']);
    for (const a of answers) expect((await bytes(a)).equals(BODY)).toBe(true);
    await settled();
    const hit = await store.get(KEY, request());
    expect(hit).toMatchObject({
      kind: 'object',
      result: 'hit',
      answer: { status: 200 },
      meta: { key: KEY, size: BODY.length, etag: up.etag(KEY) },
    });
    expect((await bytes(hit)).equals(BODY)).toBe(true);
    expect(up.fullGets(KEY)).toBe(1);
    expect(store.figures()).toMatchObject({ entries: 1, fillsRunning: 0 });
  });

  it('asks the upstream nothing for a HEAD or a partial request of what it does not hold', async () => {
    const { store } = await setup();
    expect(await store.get(KEY, request({ method: 'HEAD' }))).toEqual({ kind: 'relay', response: undefined });
    expect(await store.get(KEY, request({ range: 'bytes=0-9' }, true))).toEqual({ kind: 'relay', response: undefined });
    expect(up.count(KEY)).toBe(0);
  });

  it('answers Range and preconditions from a stored object, opening only the bytes asked for', async () => {
    const { store, settled } = await setup();
    await bytes(await store.get(KEY, request()));
    await settled();
    const part = await store.get(KEY, request({ range: 'bytes=10-19' }, true));
    expect(part).toMatchObject({
      kind: 'object',
      result: 'hit',
      answer: { status: 206, range: { start: 10, end: 19 } },
    });
    expect((await bytes(part)).equals(BODY.subarray(10, 20))).toBe(true);
    expect(await store.get(KEY, request({ ifNoneMatch: up.etag(KEY) }, true))).toMatchObject({
      kind: 'object',
      answer: { status: 304 },
      body: undefined,
    });
    expect(await store.get(KEY, request({ method: 'HEAD' }))).toMatchObject({
      kind: 'object',
      answer: { status: 200 },
      body: undefined,
    });
    expect(up.count(KEY)).toBe(1);
  });

  it('hands an answer it does not store to the request that asked, and has the others relay', async () => {
    const { store } = await setup();
    up.deleteFile(KEY);
    up.behave(KEY, { delayHeadersMs: 100, times: 1 });
    const [first, second] = await Promise.all([store.get(KEY, request()), store.get(KEY, request())]);
    expect(first.kind === 'relay' && first.response?.statusCode).toBe(404);
    if (first.kind === 'relay') await first.response?.body.dump();
    expect(second).toEqual({ kind: 'relay', response: undefined });
    expect(up.count(KEY)).toBe(1);
  });

  it('shares a failed upstream request and counts the failure once', async () => {
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const { store, registry } = await setup({ upstream: `http://127.0.0.1:${port}` });
    const answers = await Promise.all([store.get(KEY, request()), store.get(KEY, request())]);
    expect(answers.map((a) => a.kind)).toEqual(['failure', 'failure']);
    const failures = await registry.getSingleMetric('metalboot_image_proxy_upstream_failures_total')!.get();
    expect(failures.values).toEqual([{ labels: { reason: 'refused' }, value: 1 }]);
  });

  it('revalidates a stale entry with one conditional GET for concurrent requests', async () => {
    let clock = 1_000_000;
    const { store, settled } = await setup({ now: () => clock, revalidateAfterMs: 1000 });
    await bytes(await store.get(KEY, request()));
    await settled();
    clock += 2000;
    up.behave(KEY, { delayHeadersMs: 100, times: 1 });
    const answers = await Promise.all([
      store.get(KEY, request()),
      store.get(KEY, request()),
      store.get(KEY, request()),
    ]);
    expect(answers.map((a) => (a.kind === 'object' ? a.result : a.kind))).toEqual([
      'revalidated',
      'revalidated',
      'revalidated',
    ]);
    for (const a of answers) expect((await bytes(a)).equals(BODY)).toBe(true);
    const seen = up.requests.filter((r) => r.path === KEY);
    expect(seen.map((r) => [r.headers['if-none-match'], r.status])).toEqual([
      [undefined, 200],
      [up.etag(KEY), 304],
    ]);
    const hit = await store.get(KEY, request());
    expect(hit).toMatchObject({ kind: 'object', result: 'hit' });
    expect((await bytes(hit)).equals(BODY)).toBe(true);
  });

  it('fails a download that gets no upstream connection in time, and serves a stored entry instead of revalidating', async () => {
    let clock = 1_000_000;
    const { store, upstream, registry, settled } = await setup({
      connections: 1,
      now: () => clock,
      revalidateAfterMs: 1000,
    });
    up.setFile('/images/other', BODY);
    // a download whose client reads nothing holds the only connection
    const holder = await upstream.request({ path: '/images/other', method: 'GET', headers: {}, client: '10.0.0.1' });
    const [a, b] = await Promise.all([store.get(KEY, request()), store.get(KEY, request())]);
    for (const x of [a, b])
      expect(x).toMatchObject({ kind: 'failure', error: { code: 'IMAGE_PROXY_ERR_QUEUE_TIMEOUT' } });
    expect(up.count(KEY)).toBe(0);
    holder.body.destroy();
    await bytes(await store.get(KEY, request()));
    await settled();
    clock += 2000;
    const again = await upstream.request({ path: '/images/other', method: 'GET', headers: {}, client: '10.0.0.1' });
    const stale = await store.get(KEY, request());
    expect(stale).toMatchObject({ kind: 'object', result: 'stale' });
    expect((await bytes(stale)).equals(BODY)).toBe(true);
    again.body.destroy();
    expect(await registry.getSingleMetric('metalboot_image_proxy_upstream_failures_total')!.get()).toMatchObject({
      values: [],
    });
    up.deleteFile('/images/other');
  });
});
