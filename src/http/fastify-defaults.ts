/**
 * What every metalboot HTTP listener shares: fastify's settings, the connection cap, the
 * response counter and the error and image-download log lines. The main app and the image
 * worker's app both start here.
 */
import type { RequestListener, Server } from 'node:http';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { countDroppedConnections, MAX_CONNECTIONS } from '../base/connection-cap.js';
import { redactUrl } from '../relay/redact.js';

export { MAX_CONNECTIONS };

export interface ListenerOptions {
  /** Connections held at once; one more is closed as soon as it is accepted. Default MAX_CONNECTIONS. */
  readonly maxConnections?: number;
  /** Serve on a server made (and bound) elsewhere (http-server.ts); default fastify makes one. */
  readonly serverFactory?: (handler: RequestListener) => Server;
}

/**
 * Fastify's settings for every HTTP listener of metalboot. No route parses a body: the API
 * proxy reads its own (bounded, within its budget), and every other route answers without
 * reading one, so a body sent to them is discarded as it arrives instead of buffered (fastify's
 * JSON parser would hold up to bodyLimit per request, on a 404 too).
 */
export function newFastify(logger: Logger, o: ListenerOptions = {}): FastifyInstance {
  const app = Fastify({
    loggerInstance: logger.child({ component: 'http' }),
    // Per-request access logs would flood a boot storm; errors are logged in onResponse below.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 1024 * 1024,
    ...(o.serverFactory === undefined ? {} : { serverFactory: o.serverFactory }),
  }) as unknown as FastifyInstance;
  // Set on the server itself: fastify applies its own settings only to a server it made.
  // Large IPA inventories arrive through the API proxy, streamed, over slow links.
  app.server.requestTimeout = 0;
  app.server.keepAliveTimeout = 65_000;
  app.server.maxConnections = o.maxConnections ?? MAX_CONNECTIONS;
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));
  return app;
}

/**
 * Counts every response and logs errors and image downloads; counts and logs the connections
 * the listener (named `listener` in the metrics) closed at its cap.
 */
export function addResponseLog(app: FastifyInstance, registry: Registry, listener = 'http'): void {
  countDroppedConnections(app.server, { listener, registry, logger: app.log as unknown as Logger });
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
