/**
 * The HTTP application, built without listening (tests use inject()). Routes: boot scripts and
 * binaries (boot-routes.ts), operations (ops-routes.ts), and the proxies registered by the
 * composition root.
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { bootRoutes, type BootRoutesOptions } from './boot-routes.js';
import { opsRoutes, type OpsRoutesOptions } from './ops-routes.js';
import { imageRedirects, type ImageProxyOptions, type ImageRedirectOptions } from '../images/plugin.js';
import { addResponseLog, newFastify } from './fastify-defaults.js';
import { registerImageProxy } from '../images/image-app.js';
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
