/**
 * The HTTP application, built without listening (tests use inject()). Routes: boot scripts and
 * binaries (boot-routes.ts), operations (ops-routes.ts), and the proxies registered by the
 * composition root.
 */
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { bootRoutes, type BootRoutesOptions } from './boot-routes.js';
import { redactUrl } from '../proxy/redact.js';
import { opsRoutes, type OpsRoutesOptions } from './ops-routes.js';
import { imageProxyPlugin, type ImageProxyOptions } from './image-proxy.js';
import { ironicApiProxy, type IronicApiProxyOptions } from '../proxy/api-proxy.js';

export interface AppOptions {
  readonly logger: Logger;
  readonly registry: Registry;
  readonly boot: Omit<BootRoutesOptions, 'registry'>;
  readonly ops: Omit<OpsRoutesOptions, 'registry'>;
  /** The image proxy to Ironic's HTTP server; absent when no --ironic-http-url is set. */
  readonly imageProxy?: Omit<ImageProxyOptions, 'registry'>;
  /** The Ironic API proxy for IPA; absent when no --ironic-api-url is set. */
  readonly ironicApi?: Omit<IronicApiProxyOptions, 'registry'>;
}

export async function buildApp(o: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: o.logger.child({ component: 'http' }),
    // Per-request access logs would flood a boot storm; errors are logged in onResponse below.
    logController: new LogController({ disableRequestLogging: true }),
    // Large IPA inventories arrive through the API proxy; it streams them, nothing buffers here.
    bodyLimit: 1024 * 1024,
    requestTimeout: 0,
    keepAliveTimeout: 65_000,
  });
  const requests = new Counter({ name: 'metalboot_http_requests_total', help: 'HTTP requests by route and status', labelNames: ['route', 'status'], registers: [o.registry] });
  app.addHook('onResponse', async (req, reply) => {
    requests.inc({ route: req.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) });
    if (reply.statusCode >= 400) req.log.info({ method: req.method, url: redactUrl(req.url), status: reply.statusCode, peer: req.ip }, 'http error response');
    // Image downloads are few per boot and the milestones of one: log each.
    else if ((req.routeOptions.config as { imageProxy?: boolean } | undefined)?.imageProxy === true) {
      req.log.info({ method: req.method, url: req.url, status: reply.statusCode, bytes: Number(reply.getHeader('content-length') ?? 0), ms: Math.round(reply.elapsedTime), peer: req.ip }, 'image served');
    }
  });
  await app.register(bootRoutes, { ...o.boot, registry: o.registry });
  await app.register(opsRoutes, { ...o.ops, registry: o.registry });
  if (o.imageProxy !== undefined) {
    const proxy = o.imageProxy;
    // Routes the proxy adds are tagged so the onResponse hook can log them.
    await app.register(async (scope) => {
      scope.addHook('onRoute', (route) => { route.config = { ...(route.config ?? {}), imageProxy: true } as typeof route.config; });
      await scope.register(imageProxyPlugin, { ...proxy, registry: o.registry });
    });
  }
  if (o.ironicApi !== undefined) await app.register(ironicApiProxy, { ...o.ironicApi, registry: o.registry });
  return app as unknown as FastifyInstance;
}
