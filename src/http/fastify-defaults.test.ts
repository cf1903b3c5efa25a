import { once } from 'node:events';
import net from 'node:net';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { addResponseLog, MAX_CONNECTIONS, newFastify } from './fastify-defaults.js';

describe('the response log', () => {
  it('logs an image download without the secrets of its query string', async () => {
    const lines: { msg: string; url?: string }[] = [];
    const app = newFastify(
      pino({ level: 'info' }, { write: (s: string) => lines.push(JSON.parse(s) as { msg: string }) }),
    );
    addResponseLog(app, new Registry());
    app.get('/images/*', { config: { imageProxy: true } }, async () => 'kernel');
    const res = await app.inject({ url: '/images/ipa.kernel?temp_url_sig=abc123&temp_url_expires=99&token=t0k' });
    expect(res.statusCode).toBe(200);
    const line = lines.find((l) => l.msg === 'image served');
    expect(line?.url).toBe('/images/ipa.kernel?temp_url_sig=***&temp_url_expires=99&token=***');
    await app.close();
  });
});

describe('the limits every listener shares', () => {
  const logger = pino({ level: 'silent' });

  it('never parses or buffers a body for a route that does not read one', async () => {
    const app = newFastify(logger);
    const seen: unknown[] = [];
    app.addHook('preHandler', async (req) => {
      seen.push(req.body);
    });
    app.get('/boot/x', async () => 'x');
    const body = JSON.stringify({ pad: 'x'.repeat(512 * 1024) });
    for (const url of ['/nowhere', '/boot/x']) {
      const res = await app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json' }, body });
      expect(res.statusCode).toBe(404);
    }
    expect(seen).toEqual([undefined, undefined]);
    await app.close();
  });

  it('closes connections beyond its cap and counts them', async () => {
    expect(newFastify(logger).server.maxConnections).toBe(MAX_CONNECTIONS);
    const registry = new Registry();
    const app = newFastify(logger, { maxConnections: 2 });
    addResponseLog(app, registry, 'http');
    app.get('/', async () => 'ok');
    await app.listen({ host: '127.0.0.1', port: 0 });
    const port = (app.server.address() as net.AddressInfo).port;
    const sockets: net.Socket[] = [];
    const connect = async (): Promise<net.Socket> => {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => undefined);
      sockets.push(s);
      await once(s, 'connect');
      return s;
    };
    await connect();
    await connect();
    const extra = await connect();
    const closed = await Promise.race([
      once(extra, 'close').then(() => true),
      new Promise<false>((r) => setTimeout(() => r(false), 3000)),
    ]);
    expect(closed).toBe(true);
    const dropped = await registry.getSingleMetric('metalboot_http_connections_dropped_total')?.get();
    expect(dropped?.values).toEqual([{ labels: { listener: 'http' }, value: 1 }]);
    for (const s of sockets) s.destroy();
    await app.close();
  });
});
