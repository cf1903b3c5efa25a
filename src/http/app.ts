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
import { imageProxyPlugin, imageRedirects, type ImageProxyOptions, type ImageRedirectOptions } from './image-proxy.js';
import { ironicApiProxy, type IronicApiProxyOptions } from '../proxy/api-proxy.js';

export interface AppOptions {
  readonly logger: Logger;
  readonly registry: Registry;
  readonly boot: Omit<BootRoutesOptions, 'registry'>;
  readonly ops: Omit<OpsRoutesOptions, 'registry'>;
  /** The image proxy to Ironic's HTTP server; absent when no --ironic-http-url is set. */
  readonly imageProxy?: Omit<ImageProxyOptions, 'registry'>;
  /**
   * With the image proxy in the worker (--image-listen): its paths on this port answer 307 to
   * the worker's URL, for clients that still use the main port (a hand-written script).
   */
  readonly imageRedirect?: ImageRedirectOptions;
  /** The Ironic API proxy for IPA; absent when no --ironic-api-url is set. */
  readonly ironicApi?: Omit<IronicApiProxyOptions, 'registry'>;
}

/** Fastify's settings for every HTTP listener of metalboot. */
function newFastify(logger: Logger): FastifyInstance {
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
function addResponseLog(app: FastifyInstance, registry: Registry): void {
  const requests = new Counter({ name: 'metalboot_http_requests_total', help: 'HTTP requests by route and status', labelNames: ['route', 'status'], registers: [registry] });
  app.addHook('onResponse', async (req, reply) => {
    requests.inc({ route: req.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) });
    if (reply.statusCode >= 400) req.log.info({ method: req.method, url: redactUrl(req.url), status: reply.statusCode, peer: req.ip }, 'http error response');
    // Image downloads are few per boot and the milestones of one: log each.
    else if ((req.routeOptions.config as { imageProxy?: boolean } | undefined)?.imageProxy === true) {
      req.log.info({ method: req.method, url: req.url, status: reply.statusCode, bytes: Number(reply.getHeader('content-length') ?? 0), ms: Math.round(reply.elapsedTime), peer: req.ip }, 'image served');
    }
  });
}

async function registerImageProxy(app: FastifyInstance, proxy: Omit<ImageProxyOptions, 'registry'>, registry: Registry): Promise<void> {
  // Routes the proxy adds are tagged so the onResponse hook can log them.
  await app.register(async (scope) => {
    scope.addHook('onRoute', (route) => { route.config = { ...(route.config ?? {}), imageProxy: true } as typeof route.config; });
    await scope.register(imageProxyPlugin, { ...proxy, registry });
  });
}

export async function buildApp(o: AppOptions): Promise<FastifyInstance> {
  const app = newFastify(o.logger);
  addResponseLog(app, o.registry);
  await app.register(bootRoutes, { ...o.boot, registry: o.registry });
  await app.register(opsRoutes, { ...o.ops, registry: o.registry });
  if (o.imageProxy !== undefined) await registerImageProxy(app, o.imageProxy, o.registry);
  else if (o.imageRedirect !== undefined) await app.register(imageRedirects, o.imageRedirect);
  if (o.ironicApi !== undefined) await app.register(ironicApiProxy, { ...o.ironicApi, registry: o.registry });
  return app;
}

/** The image worker's app: the image proxy alone (image-worker.ts). */
export async function buildImageApp(o: { readonly logger: Logger; readonly registry: Registry; readonly imageProxy: Omit<ImageProxyOptions, 'registry'> }): Promise<FastifyInstance> {
  const app = newFastify(o.logger);
  addResponseLog(app, o.registry);
  await registerImageProxy(app, o.imageProxy, o.registry);
  return app;
}
