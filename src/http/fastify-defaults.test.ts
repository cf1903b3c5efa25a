import { pino } from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { addResponseLog, newFastify } from './fastify-defaults.js';

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
