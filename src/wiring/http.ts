/**
 * The HTTP wing: the main HTTP application, built without listening (tests use inject()).
 * Routes: boot scripts and binaries (http/boot-routes.ts), operations (http/ops-routes.ts), the
 * image proxy or its redirects (images/), and the Ironic API proxy (proxy/).
 *
 * The app is built once its listener is bound and the image worker listens (it starts first),
 * so an advertise URL with port 0 (`--http-listen :0`, `--image-listen :0`) names the port each
 * one got.
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { bootRoutes, type BootRoutesOptions } from '../http/boot-routes.js';
import { opsRoutes, type OpsRoutesOptions } from '../http/ops-routes.js';
import { timelineRoutes, type TimelineRoutesOptions } from '../http/timeline-routes.js';
import { imageRedirects, type ImageProxyOptions, type ImageRedirectOptions } from '../images/plugin.js';
import { addResponseLog, newFastify } from '../http/fastify-defaults.js';
import { registerImageProxy } from '../images/image-app.js';
import { ironicApiProxy, type IronicApiProxyOptions } from '../proxy/api-proxy.js';
import type { Config } from '../config/load.js';
import type { ReadinessCheck } from '../base/service.js';
import type { IpxeScripts } from '../boot/ipxe-scripts.js';
import type { BootFiles } from '../boot/boot-files-source.js';
import type { GrubConfigOptions } from '../boot/grub-configs.js';
import type { DhcpPolicy } from '../dhcp/policy.js';
import { HttpServer, type ServerFactory } from '../http/http-server.js';
import { withBoundPort } from '../net/listen-address.js';
import type { BootMilestones } from '../kube/boot-milestones.js';
import type { BootTimings } from '../boot/boot-timings.js';
import { parseMac } from '../net/mac.js';
import type { HostIndex } from '../leases/host-index.js';
import type { LeasePool, LeasePool6 } from '../leases/pool.js';
import type { Dhcp6Policy } from '../dhcp6/policy.js';
import { explain6 } from '../http/explain.js';
import type { Wiring } from './deps.js';
import type { ImagesWing } from './images.js';
import type { ProxiesWing } from './proxies.js';

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
  /** The server the app is served on, already bound (HttpServer); default fastify's own. */
  readonly serverFactory?: ServerFactory;
  /** /debug/boots and /ui. */
  readonly timeline?: TimelineRoutesOptions;
}

export async function buildApp(o: AppOptions): Promise<FastifyInstance> {
  const app = newFastify(o.logger, { serverFactory: o.serverFactory });
  addResponseLog(app, o.registry);
  await app.register(bootRoutes, { ...o.boot, registry: o.registry });
  await app.register(opsRoutes, { ...o.ops, registry: o.registry });
  if (o.timeline !== undefined) await app.register(timelineRoutes, o.timeline);
  if (o.imageProxy !== undefined) await registerImageProxy(app, o.imageProxy, o.registry);
  else if (o.imageRedirect !== undefined) await app.register(imageRedirects, o.imageRedirect);
  if (o.ironicApi !== undefined) await app.register(ironicApiProxy, { ...o.ironicApi, registry: o.registry });
  return app;
}

export interface HttpWingInput {
  readonly scripts: IpxeScripts;
  readonly index: HostIndex;
  readonly pool: LeasePool;
  readonly files: BootFiles;
  /** GRUB configurations (the Secure Boot chain), also served over HTTP. */
  readonly grub?: GrubConfigOptions;
  readonly readiness: readonly ReadinessCheck[];
  readonly policy: DhcpPolicy | undefined;
  /** Told every script and binary served (wiring/timeline.ts). */
  readonly milestones: BootMilestones;
  /** Each host's time from ACK to its first script request. */
  readonly timings: BootTimings;
  /** /debug/boots and /ui. */
  readonly timeline: TimelineRoutesOptions;
  readonly proxies: ProxiesWing;
  readonly images: ImagesWing;
  /** DHCPv6's policy and pool, for /debug/explain; undefined when DHCPv6 is off. */
  readonly dhcp6: { readonly policy: Dhcp6Policy; readonly pool: LeasePool6 } | undefined;
}

export function httpWing(config: Config, w: Wiring, i: HttpWingInput): HttpServer {
  const { logger, registry, now } = w;
  const { agents, callback, ironicApi } = i.proxies;
  const { worker, proxy } = i.images;
  const m = i.milestones;
  return new HttpServer('http', config.http.listen, (bound, serverFactory) => {
    // Port 0 in an advertise URL: the port the listener serving it got.
    const baseUrl = withBoundPort(config.http.advertiseUrl, bound.port);
    const apiUrl = withBoundPort(config.proxy.apiAdvertiseUrl, bound.port);
    const imagePort = worker === undefined ? bound.port : worker.address().port;
    const imageBaseUrl = withBoundPort(config.http.imageAdvertiseUrl, imagePort);
    const v6 = config.dhcp6?.urls;
    return buildApp({
      logger,
      registry,
      serverFactory,
      boot: {
        scripts: i.scripts,
        index: i.index,
        files: i.files,
        baseUrl,
        imageBaseUrl,
        apiUrl,
        ipv6:
          v6 === undefined
            ? undefined
            : {
                baseUrl: withBoundPort(v6.advertiseUrl, bound.port),
                imageBaseUrl: withBoundPort(v6.imageAdvertiseUrl, imagePort),
                apiUrl: withBoundPort(v6.apiAdvertiseUrl, bound.port),
              },
        ironicHttpUrl: config.proxy.ironicHttpUrl,
        ironicApiUrl: config.proxy.ironicApiUrl,
        annotationPrefix: config.sources.annotationPrefix,
        inspector: config.inspector,
        installer: config.installer,
        onServed: (e) => m.http(e),
        grub: i.grub === undefined ? undefined : { ...i.grub, baseUrl, apiUrl },
      },
      ops: {
        readiness: i.readiness,
        policy: i.policy,
        state: { index: i.index, pool: i.pool, now },
        explainExtras: [
          (mac) => {
            const d6 = i.dhcp6;
            const m6 = parseMac(mac);
            return d6 === undefined || m6 === undefined
              ? undefined
              : { dhcp6: explain6(m6, d6.policy, { index: i.index, pool: d6.pool, now }) };
          },
          (mac) => {
            const timing = parseMac(mac) === undefined ? undefined : i.timings.explain(parseMac(mac)!);
            return timing === undefined ? undefined : { timing };
          },
          (mac) =>
            agents.explain(
              mac,
              callback === undefined ? undefined : (node, agent) => callback.callbackUrlFor(node, agent),
            ),
        ],
        extraMetrics: worker === undefined ? [] : [() => worker.metrics()],
      },
      timeline: i.timeline,
      imageProxy: worker === undefined ? proxy : undefined,
      imageRedirect: worker === undefined ? undefined : { target: imageBaseUrl },
      ironicApi:
        ironicApi === undefined
          ? undefined
          : {
              ...ironicApi,
              apiAdvertiseUrl: apiUrl,
              ownPorts: [...(ironicApi.ownPorts ?? []), bound.port, ...(worker === undefined ? [] : [imagePort])],
            },
    });
  });
}
