/**
 * The composition root's one job: build every wing from a frozen Config, in start order, and
 * hand back the services. main.ts owns the process (signals, exit codes); tests call
 * buildProduct() to run the product in-process. Each wing builder (sources, kube, DHCP, TFTP,
 * proxies, images, HTTP) lives beside this file and only wires.
 */
import { hostname, networkInterfaces } from 'node:os';
import type { Config } from '../config/load.js';
import type { ReadinessCheck, Service } from '../base/service.js';
import { registerReadinessGauge } from '../base/readiness-metrics.js';
import type { BootFiles } from '../boot/boot-files-source.js';
import { IpxeScripts } from '../boot/ipxe-scripts.js';
import { BootTimings } from '../boot/boot-timings.js';
import type { DhcpServer } from '../dhcp/dhcp-server.js';
import type { HttpServer } from '../http/http-server.js';
import type { ImageServer } from '../images/worker-service.js';
import type { BmhWatcher } from '../kube/bmh-watcher.js';
import { loadKubeConfig } from '../kube/kubeconfig.js';
import { HostIndex } from '../leases/host-index.js';
import type { LeasePool } from '../leases/pool.js';
import type { TftpServer } from '../tftp/tftp-server.js';
import type { Deps, Wiring } from './deps.js';
import { dhcpWing } from './dhcp.js';
import { dhcp6Wing } from './dhcp6.js';
import type { Dhcp6Server } from '../dhcp6/dhcp6-server.js';
import { httpWing } from './http.js';
import { imagesWing } from './images.js';
import { kubeWing } from './kube.js';
import { leaderWing } from './leader.js';
import type { LeaderElector } from '../kube/leader-election.js';
import type { KubeConfig } from '@kubernetes/client-node';
import { proxiesWing } from './proxies.js';
import { raWing } from './ra.js';
import type { RouterAdvertiser } from '../ra/router-advertiser.js';
import { sourcesWing } from './sources.js';
import { tftpWing } from './tftp.js';
import { timelineWing } from './timeline.js';

export type { Deps } from './deps.js';

export interface Product {
  /** In start order; closed in reverse. */
  readonly services: readonly Service[];
  readonly index: HostIndex;
  readonly pool: LeasePool;
  readonly dhcp: DhcpServer | undefined;
  /** DHCPv6, when dhcp6 is on. */
  readonly dhcp6: Dhcp6Server | undefined;
  readonly tftp: TftpServer | undefined;
  /** TFTP over IPv6, when dhcp6 is on and tftp.listen6 is not switched off. */
  readonly tftp6: TftpServer | undefined;
  readonly files: BootFiles;
  readonly http: HttpServer;
  /** The image worker with --image-listen. */
  readonly images: ImageServer | undefined;
  /** The conditions /readyz reports, each from the service it concerns. */
  readonly readiness: readonly ReadinessCheck[];
  /** The BareMetalHost watcher when sources.kube is enabled. */
  readonly kube: BmhWatcher | undefined;
  /** The leader elector when leaderElection.id is set. */
  readonly leader: LeaderElector | undefined;
  /** radvd's supervisor when router advertisements are on and have an interface. */
  readonly ra: RouterAdvertiser | undefined;
}

export function buildProduct(config: Config, deps: Deps): Product {
  const w: Wiring = { logger: deps.logger, registry: deps.registry, now: deps.now ?? Date.now };
  const index = new HostIndex();
  const k = config.sources.kube;
  let kc: KubeConfig | undefined = deps.kubeConfig;
  const cluster = (): KubeConfig => (kc ??= loadKubeConfig({ kubeconfig: k.kubeconfig }));
  const name = deps.hostname ?? hostname();
  const kube = k.enabled ? kubeWing(config, w, cluster(), index, name) : undefined;
  const leader = leaderWing(config, w, cluster, name);
  const { sources } = sourcesWing(config, w, index, kube?.watcher);
  const timings = new BootTimings({ registry: w.registry });
  // Every wing reports its milestones here: the boot timelines and the BareMetalHost Events.
  const boots = timelineWing(config, w, {
    index,
    timings,
    events: kube?.recorder,
    macsOfNode: (node) => proxies.agents.macsOf(node),
  });
  const milestones = boots.milestones;
  const tftp = tftpWing(config, w, milestones, index);
  const watcher = kube?.watcher;
  const dhcp = dhcpWing(config, w, {
    index,
    sourcesReady: watcher === undefined ? undefined : () => watcher.status().ready,
    milestones,
    cluster,
  });
  const interfaces = (deps.networkInterfaces ?? networkInterfaces)();
  const dhcp6 = dhcp6Wing(config, w, {
    index,
    sourcesReady: watcher === undefined ? undefined : () => watcher.status().ready,
    cluster,
    interfaces,
    onOutcome: (o) => milestones.dhcp6(o),
  });
  const proxies = proxiesWing(config, w, leader === undefined ? undefined : { cluster, leader }, {
    onAgentCall: (c) => milestones.agentCall(c),
    onForwarded: (c) => milestones.callback(c),
  });
  const images = imagesWing(config, w, (e) => milestones.image(e));

  // The elector first, so it is closed (and releases the lease) last; hosts, then the files DHCP
  // points them at, then the listeners; HTTP last.
  const services: Service[] = [
    ...present(leader),
    sources,
    ...present(kube?.recorder),
    tftp.files,
    ...dhcp.services,
    ...(dhcp6?.services ?? []),
    ...present(tftp.server),
    ...present(tftp.server6),
    ...proxies.services,
    ...images.services,
  ];
  const ra = raWing(config, w, interfaces);
  const readiness: ReadinessCheck[] = [
    ...(dhcp.server === undefined ? [disabled('dhcp')] : []),
    ...(tftp.server === undefined ? [disabled('tftp')] : []),
    ...services.flatMap((s) => s.readiness ?? []),
    ...ra.readiness,
  ];
  registerReadinessGauge(w.registry, readiness);
  const http = httpWing(config, w, {
    scripts: new IpxeScripts(config.http.templatesDir),
    index,
    pool: dhcp.pool,
    files: tftp.files,
    grub: tftp.grub,
    readiness,
    policy: dhcp.policy,
    milestones,
    timings,
    timeline: boots.routes,
    proxies,
    images,
    dhcp6: dhcp6 === undefined ? undefined : { policy: dhcp6.policy, pool: dhcp6.pool },
  });
  services.push(http);
  // Last: closed first, so advertising stops before anything else does.
  if (ra.service !== undefined) services.push(ra.service);
  return {
    services,
    index,
    pool: dhcp.pool,
    dhcp: dhcp.server,
    dhcp6: dhcp6?.server,
    tftp: tftp.server,
    tftp6: tftp.server6,
    files: tftp.files,
    http,
    images: images.worker,
    readiness,
    kube: watcher,
    leader,
    ra: ra.service,
  };
}

function present<T>(s: T | undefined): T[] {
  return s === undefined ? [] : [s];
}

/** A wing switched off by configuration: ready, and /readyz says why. */
function disabled(name: string): ReadinessCheck {
  return { name, check: () => ({ ok: true, detail: 'disabled' }) };
}
