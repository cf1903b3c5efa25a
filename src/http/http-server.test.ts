import { pino } from 'pino';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { newFastify } from './fastify-defaults.js';
import { HttpServer } from './http-server.js';

describe('the HTTP listener', () => {
  it('logs the port it got when bound to port 0, and serves on it', async () => {
    const lines: { msg: string; listener?: string; listen?: { host: string; port: number } }[] = [];
    const logger = pino({ level: 'info' }, { write: (s: string) => lines.push(JSON.parse(s) as { msg: string }) });
    const server = new HttpServer('http', { host: '127.0.0.1', port: 0 }, async (_bound, serverFactory) => {
      const app = newFastify(logger, { serverFactory });
      app.get('/x', async () => 'x');
      return app;
    });
    await server.start();
    try {
      const port = server.address().port;
      expect(port).toBeGreaterThan(0);
      const line = lines.find((l) => l.msg === 'http listener started');
      expect(line).toMatchObject({ listener: 'http', listen: { host: '127.0.0.1', port } });
      const res = await request(`http://127.0.0.1:${port}/x`);
      expect(await res.body.text()).toBe('x');
    } finally {
      await server.close();
    }
  });
});
