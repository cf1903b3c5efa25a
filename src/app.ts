/**
 * Builds every service of metalboot from a frozen Config, in start order. main.ts owns the
 * process (signals, exit codes); tests call buildServices() to run the product in-process.
 */
import { hostname } from 'node:os';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Config } from './config/load.js';
import { HostIndex } from './leases/host-index.js';
import { LeasePool } from './leases/pool.js';
import { LeaseStore } from './leases/lease-store.js';
import { BmhFileSource, StaticHostSource } from './leases/file-sources.js';
import { BmhWatcher } from './kube/bmh-watcher.js';
import { kubeBmhApi } from './kube/bmh-api.js';
import { loadKubeConfig } from './kube/kubeconfig.js';
import { BmhEventRecorder, NO_BOOT_EVENTS, kubeEventSink, type BootEvents } from './kube/boot-events.js';
import { reportDhcpOutcome } from './kube/boot-milestones.js';
import { DhcpServer } from './dhcp/dhcp-server.js';
import type { DhcpPolicy } from './dhcp/decide.js';
import { IpxeFiles } from './boot/ipxe-files.js';
import { TftpServer } from './tftp/tftp-server.js';
import { parseIpv4, type Ipv4 } from './net/ipv4.js';
import { IpxeScripts } from './boot/ipxe-scripts.js';
import { buildApp } from './http/app.js';
import { HttpServer } from './http/http-server.js';
import { ImageServer } from './images/worker-service.js';
import type { ReadinessCheck } from './http/ops-routes.js';
import type { Service } from './base/service.js';
import { AgentStore } from './proxy/agent-store.js';
import { CallbackServer } from './proxy/callback-server.js';
import { callbackTlsSource } from './proxy/callback-tls.js';

export interface Deps {
  readonly logger: Logger;
  readonly registry: Registry;
  readonly now?: () => number;
  /** The cluster to use with sources.kube (default: --kubeconfig, else in-cluster). */
  readonly kubeConfig?: KubeConfig;
}

export interface Product {
  readonly services: readonly Service[];
  readonly index: HostIndex;
  readonly pool: LeasePool;
  readonly dhcp: DhcpServer | undefined;
  readonly tftp: TftpServer | undefined;
  readonly files: IpxeFiles;
  readonly http: HttpServer;
  /** The image worker with --image-listen. */
  readonly images: ImageServer | undefined;
  /** Conditions /readyz reports; services and sources add theirs. */
  readonly readiness: ReadinessCheck[];
  /** The BareMetalHost watcher when sources.kube is enabled. */
  readonly kube: BmhWatcher | undefined;
  /** Boot milestones as Events on BareMetalHosts (no-op without a cluster): for TFTP and HTTP. */
  readonly bootEvents: BootEvents;
}

export function dhcpPolicy(config: Config, tftpServer: Ipv4): DhcpPolicy {
  const d = config.dhcp;
  return {
    serverIp: d.serverIp.address,
    serverPrefix: d.serverIp.prefix,
    ports: { relay: d.listen.port, client: d.clientPort },
    reply: { serverId: d.advertiseIP ?? d.serverIp.address, tftpServer, domainName: d.domainName },
    boot: { bootFiles: d.bootFiles, httpAdvertiseUrl: config.http.advertiseUrl },
    leaseSeconds: d.leaseSeconds,
    rangeGateway: d.gateway,
    rangeDns: d.dns,
    rangeNtp: d.ntp,
  };
}

export function buildServices(config: Config, deps: Deps): Product {
  const { logger, registry } = deps;
  const now = deps.now ?? Date.now;
  const index = new HostIndex();
  const serverIp = config.dhcp.serverIp.address;
  const services: Service[] = [];

  const staticDefaults = { prefix: config.dhcp.serverIp.prefix, gateway: config.dhcp.gateway, dns: config.dhcp.dns, ntp: config.dhcp.ntp };
  services.push(new StaticHostSource(config.dhcp.hosts, config.dhcp.hostsFiles, staticDefaults, index, logger));
  if (config.sources.bmhFiles.length > 0) services.push(new BmhFileSource(config.sources.bmhFiles, config.sources.annotationPrefix, index, logger));
  let kube: BmhWatcher | undefined;
  let bootEvents: BootEvents = NO_BOOT_EVENTS;
  if (config.sources.kube.enabled) {
    const k = config.sources.kube;
    const kc = deps.kubeConfig ?? loadKubeConfig({ kubeconfig: k.kubeconfig });
    const watcher = new BmhWatcher({ api: kubeBmhApi(kc, k.namespace), index, annotationPrefix: config.sources.annotationPrefix, namespace: k.namespace, logger, registry, now });
    const recorder = new BmhEventRecorder({ sink: kubeEventSink(kc), resolve: (h) => watcher.refFor(h), logger, registry, source: { instance: hostname(), host: process.env['NODE_NAME'] } });
    services.push(watcher, recorder);
    kube = watcher;
    bootEvents = recorder;
  }

  const files = new IpxeFiles({ root: config.tftp.root, aliases: config.tftp.aliases, extraRoots: config.tftp.extraRoots, logger });
  services.push(files);

  const pool = new LeasePool({ ranges: config.dhcp.ranges, isClaimed: (ip) => index.isClaimed(ip), serverIp });
  const leases = new LeaseStore(pool, config.dhcp.ranges.length > 0 ? config.dhcp.leaseFile : undefined, now, logger.child({ component: 'leases' }));
  services.push({ name: 'leases', start: () => leases.start(), close: () => leases.close() });

  let dhcp: DhcpServer | undefined;
  if (config.dhcp.enabled) {
    // next-server: the advertised address when replicas sit behind a Service, else where TFTP listens.
    const tftpHost = config.dhcp.advertiseIP ?? (config.tftp.listen !== undefined && config.tftp.listen.host !== '0.0.0.0' ? parseIpv4(config.tftp.listen.host)! : serverIp);
    const sourcesReady = kube === undefined ? undefined : () => kube!.status().ready;
    dhcp = new DhcpServer({ listen: config.dhcp.listen, policy: dhcpPolicy(config, tftpHost), state: { index, pool, now, sourcesReady }, leases, logger, registry,
      onOutcome: kube === undefined ? undefined : (o) => reportDhcpOutcome(o, bootEvents) });
    services.push(dhcp);
  }

  let tftp: TftpServer | undefined;
  if (config.tftp.listen !== undefined) {
    const t = config.tftp;
    tftp = new TftpServer({
      listen: t.listen!, singlePort: t.singlePort, files, maxBlksize: t.maxBlksize, maxWindowsize: t.maxWindowsize,
      maxTransfers: t.maxTransfers, maxPerClient: t.maxPerClient, timeoutMs: t.timeoutMs, retries: t.retries, logger, registry,
      onComplete: kube === undefined ? undefined : (e) => {
        const ip = parseIpv4(e.peer);
        const host = ip === undefined ? undefined : index.hostByIp(ip);
        if (host !== undefined) bootEvents.bootFileServed(host, e.file, 'tftp');
      },
    });
    services.push(tftp);
  }
  const readiness: ReadinessCheck[] = [
    { name: 'dhcp', check: () => ({ ok: dhcp === undefined || dhcp.listening, detail: dhcp === undefined ? 'disabled' : dhcp.listening ? 'listening' : 'not listening' }) },
    { name: 'tftp', check: () => ({ ok: tftp === undefined || isListening(tftp), detail: tftp === undefined ? 'disabled' : isListening(tftp) ? 'listening' : 'not listening' }) },
    { name: 'sources', check: () => ({ ok: sourcesLoaded, detail: sourcesLoaded ? `${index.size('bmh')} BareMetalHosts, ${index.size('static')} static hosts` : 'loading' }) },
  ];
  if (kube !== undefined) {
    const k = kube;
    readiness.push({ name: 'kubernetes', check: () => ({ ok: k.status().ready, detail: k.status().detail }) });
  }
  let sourcesLoaded = false;
  services.splice(services.indexOf(files), 0, { name: 'sources-loaded', start: async () => { sourcesLoaded = true; }, close: async () => undefined });

  // Ironic proxy: agent addresses (kept in proxy.stateDir), then the callback listener; both before HTTP.
  const agents = new AgentStore({ stateDir: config.proxy.stateDir, logger, registry, now });
  let ipaCallback: CallbackServer | undefined;
  if (config.proxy.ironicApiUrl !== undefined) {
    services.push(agents);
    if (config.proxy.callbackListen !== undefined) {
      const p = config.proxy;
      const cb = new CallbackServer({ listen: p.callbackListen!, advertiseUrl: p.callbackAdvertiseUrl, agents, tls: callbackTlsSource(p), insecureSkipVerify: p.callbackInsecureSkipVerify, logger, registry, now });
      services.push(cb);
      readiness.push({ name: 'ipa-callback', check: () => ({ ok: isListening(cb), detail: isListening(cb) ? 'listening' : 'not listening' }) });
      ipaCallback = cb;
    }
  }
  const callback = ipaCallback;

  // The image proxy: in its own worker thread with --image-listen, else in the HTTP app.
  const imageProxy = config.proxy.ironicHttpUrl === undefined ? undefined : {
    upstream: config.proxy.ironicHttpUrl,
    cache: config.http.imageCacheDir === undefined ? undefined : { dir: config.http.imageCacheDir, maxBytes: config.http.imageCacheMaxBytes },
  };
  let images: ImageServer | undefined;
  if (imageProxy !== undefined && config.http.imageListen !== undefined) {
    const worker = new ImageServer({ listen: config.http.imageListen, proxy: imageProxy, logger });
    services.push(worker);
    readiness.push({ name: 'image-worker', check: () => ({ ok: worker.up, detail: worker.up ? 'listening' : 'not listening' }) });
    images = worker;
  }
  const imageWorker = images;

  const scripts = new IpxeScripts(config.http.templatesDir);
  const policy = dhcpPolicy(config, serverIp);
  const http = new HttpServer('http', config.http.listen, () => buildApp({
    logger,
    registry,
    boot: {
      scripts, index, files, baseUrl: config.http.advertiseUrl, imageBaseUrl: config.http.imageAdvertiseUrl, apiUrl: config.proxy.apiAdvertiseUrl,
      ironicHttpUrl: config.proxy.ironicHttpUrl, ironicApiUrl: config.proxy.ironicApiUrl, annotationPrefix: config.sources.annotationPrefix,
      inspector: config.inspector, installer: config.installer,
      onServed: kube === undefined ? undefined : (e) => { if (e.host !== undefined && e.what === 'script') bootEvents.scriptServed(e.host, e.name); },
    },
    ops: {
      readiness, policy: config.dhcp.enabled ? policy : undefined, state: { index, pool, now },
      explainExtras: [(mac) => agents.explain(mac, callback === undefined ? undefined : (node) => callback.callbackUrlFor(node))],
      extraMetrics: imageWorker === undefined ? [] : [() => imageWorker.metrics()],
    },
    imageProxy: imageWorker === undefined ? imageProxy : undefined,
    imageRedirect: imageWorker === undefined ? undefined : { target: config.http.imageAdvertiseUrl },
    ironicApi: config.proxy.ironicApiUrl === undefined ? undefined : {
      ironicApiUrl: config.proxy.ironicApiUrl, apiAdvertiseUrl: config.proxy.apiAdvertiseUrl, agents, callback,
    },
  }));
  services.push(http);
  return { services, index, pool, dhcp, tftp, files, http, images: imageWorker, readiness, kube, bootEvents };
}

function isListening(s: { address(): unknown }): boolean {
  try {
    s.address();
    return true;
  } catch {
    return false;
  }
}

/** Starts services in order; if one fails, closes those already started (reverse order) and rethrows. */
export async function startAll(services: readonly Service[]): Promise<void> {
  const started: Service[] = [];
  try {
    for (const s of services) {
      await s.start();
      started.push(s);
    }
  } catch (err) {
    await closeAll(started);
    throw err;
  }
}

export async function closeAll(services: readonly Service[]): Promise<void> {
  for (const s of [...services].reverse()) {
    try {
      await s.close();
    } catch {
      // Closing is best effort: one stuck service must not keep the others open.
    }
  }
}
