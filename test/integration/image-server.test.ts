/**
 * The image workers' supervision (src/images/worker-service.ts) with a stand-in worker process that
 * dies once after it listens: the service starts it again on the same port, and close() stops it.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { request } from 'undici';
import { ImageServer } from '../../src/images/worker-service.js';

const dir = mkdtempSync(path.join(tmpdir(), 'metalboot-image-server-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function until(what: string, cond: () => boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('ImageServer supervision', () => {
  it('restarts a worker that died, on the same port, and stops it on close', async () => {
    const starts = path.join(dir, 'starts');
    process.env['METALBOOT_TEST_WORKER_STARTS'] = starts;
    const logs: Record<string, unknown>[] = [];
    const logger = pino(
      { level: 'info' },
      {
        write: (line: string) => {
          logs.push(JSON.parse(line) as Record<string, unknown>);
        },
      },
    );
    const registry = new Registry();
    const server = new ImageServer({
      listen: { host: '127.0.0.1', port: 0 },
      proxy: { upstream: 'http://127.0.0.1:9' },
      logger,
      registry,
      workerUrl: new URL('../fixtures/workers/crash-once-image-worker.mjs', import.meta.url),
      restartDelayMs: 50,
    });
    let port = 0;
    try {
      await server.start();
      port = server.address().port;
      expect(port).toBeGreaterThan(0);
      await until('the restarted worker', () => logs.some((l) => l.msg === 'image worker restarted'));
      expect(logs.find((l) => l.msg === 'image worker exited; restarting')).toMatchObject({ code: 3, restartInMs: 50 });
      expect(await registry.metrics()).toContain('metalboot_image_worker_restarts_total 1');
      expect(server.up).toBe(true);
      expect(readFileSync(starts, 'utf8')).toBe('2');
      expect(server.address().port).toBe(port);
      expect(await (await request(`http://127.0.0.1:${port}/`)).body.text()).toBe('instance 2');
      expect(await server.metrics()).toEqual([[]]);
    } finally {
      await server.close();
      delete process.env['METALBOOT_TEST_WORKER_STARTS'];
    }
    expect(server.up).toBe(false);
    const err = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(undefined);
      });
      s.once('error', (e) => resolve(e));
    });
    expect(err?.code).toBe('ECONNREFUSED');
  }, 30_000);
});
