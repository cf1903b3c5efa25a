/**
 * What every metalboot HTTP listener shares: fastify's settings, the response counter and the
 * error and image-download log lines. The main app and the image worker's app both start here.
 */
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { redactUrl } from '../relay/redact.js';

/** Fastify's settings for every HTTP listener of metalboot. */
export function newFastify(logger: Logger): FastifyInstance {
  return Fastify({
    loggerInstance: logger.child({ component: 'http' }),
    // Per-request access logs would flood a boot storm; errors are logged in onResponse below.
    logController: new LogController({ disableRequestLogging: true }),
    // Large IPA inventories arrive through the API proxy; it streams them, nothing buffers here.
    bodyLimit: 1024 * 1024,
    requestTimeout: 0,
    keepAliveTimeout: 65_000,
  }) as unknown as FastifyInstance;
}

/** Counts every response and logs errors and image downloads. */
export function addResponseLog(app: FastifyInstance, registry: Registry): void {
  const requests = new Counter({
    name: 'metalboot_http_requests_total',
    help: 'HTTP requests by route and status',
    labelNames: ['route', 'status'],
    registers: [registry],
  });
  app.addHook('onResponse', async (req, reply) => {
    requests.inc({ route: req.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) });
    if (reply.statusCode >= 400)
      req.log.info(
        { method: req.method, url: redactUrl(req.url), status: reply.statusCode, peer: req.ip },
        'http error response',
      );
    // Image downloads are few per boot and the milestones of one: log each.
    else if ((req.routeOptions.config as { imageProxy?: boolean } | undefined)?.imageProxy === true) {
      req.log.info(
        {
          method: req.method,
          url: redactUrl(req.url),
          status: reply.statusCode,
          bytes: Number(reply.getHeader('content-length') ?? 0),
          ms: Math.round(reply.elapsedTime),
          peer: req.ip,
        },
        'image served',
      );
    }
  });
}
