/**
 * The image proxy on a fastify app: registered into the main HTTP app, or alone as the image
 * worker's app. Kept apart from the main app so that the worker (worker.ts) loads fastify and
 * the proxy, not the boot routes, DHCP or the Ironic proxy.
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { addResponseLog, newFastify } from '../http/fastify-defaults.js';
import { imageProxyPlugin, type ImageProxyOptions } from './plugin.js';

export async function registerImageProxy(
  app: FastifyInstance,
  proxy: Omit<ImageProxyOptions, 'registry'>,
  registry: Registry,
): Promise<void> {
  // Routes the proxy adds are tagged so the onResponse hook can log them.
  await app.register(async (scope) => {
    scope.addHook('onRoute', (route) => {
      route.config = { ...(route.config ?? {}), imageProxy: true } as typeof route.config;
    });
    const onServed = proxy.onServed;
    if (onServed !== undefined)
      scope.addHook('onResponse', async (req, reply) => {
        onServed({
          // Undefined once the client is gone (an aborted download): then the socket's last word, or ''.
          peer: req.ip ?? req.raw.socket?.remoteAddress ?? '',
          method: req.method,
          path: (req.raw.url ?? '').split('?')[0]!,
          status: reply.statusCode,
          bytes: req.method === 'HEAD' ? 0 : Number(reply.getHeader('content-length') ?? 0) || 0,
          ms: reply.elapsedTime,
          complete: reply.raw.writableFinished,
        });
      });
    await scope.register(imageProxyPlugin, { ...proxy, registry });
  });
}

/** The image worker's app: the image proxy alone (worker.ts). */
export async function buildImageApp(o: {
  readonly logger: Logger;
  readonly registry: Registry;
  readonly imageProxy: Omit<ImageProxyOptions, 'registry'>;
}): Promise<FastifyInstance> {
  const app = newFastify(o.logger);
  addResponseLog(app, o.registry, 'image-worker');
  await registerImageProxy(app, o.imageProxy, o.registry);
  return app;
}
