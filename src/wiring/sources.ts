/** The lease sources wing: the host index, filled by static hosts, BareMetalHost files and the cluster. */
import type { Config } from '../config/load.js';
import type { Service } from '../base/service.js';
import type { HostIndex } from '../leases/host-index.js';
import { HostSources } from '../leases/host-sources.js';
import { BmhFileSource, StaticHostSource } from '../leases/file-sources.js';
import type { Wiring } from './deps.js';

export interface SourcesWing {
  readonly index: HostIndex;
  readonly sources: HostSources;
}

/** `cluster`: the cluster's BareMetalHost watcher, filling `index`, when sources.kube is on. */
export function sourcesWing(config: Config, w: Wiring, index: HostIndex, cluster: Service | undefined): SourcesWing {
  const d = config.dhcp;
  const s = config.sources;
  const staticDefaults = { prefix: d.serverIp.prefix, gateway: d.gateway, dns: d.dns, ntp: d.ntp };
  const members: Service[] = [new StaticHostSource(d.hosts, d.hostsFiles, staticDefaults, index, w.logger)];
  if (s.bmhFiles.length > 0) members.push(new BmhFileSource(s.bmhFiles, s.annotationPrefix, index, w.logger));
  if (cluster !== undefined) members.push(cluster);
  return { index, sources: new HostSources(members, index) };
}
