/**
 * The lease sources of one process (static hosts, BareMetalHost files, the cluster's
 * BareMetalHosts) as one service: started in order, closed in reverse, and ready once every one
 * has loaded, so DHCP never starts answering from half the hosts.
 */
import { closeAll, startAll, type ReadinessCheck, type Service } from '../base/service.js';
import type { HostIndex } from './host-index.js';

export class HostSources implements Service {
  readonly name = 'sources';
  readonly readiness: readonly ReadinessCheck[];
  readonly #sources: readonly Service[];
  #loaded = false;

  constructor(sources: readonly Service[], index: HostIndex) {
    this.#sources = sources;
    const own: ReadinessCheck = {
      name: 'sources',
      check: () =>
        this.#loaded
          ? { ok: true, detail: `${index.size('bmh')} BareMetalHosts, ${index.size('static')} static hosts` }
          : { ok: false, detail: 'loading' },
    };
    this.readiness = [own, ...sources.flatMap((s) => s.readiness ?? [])];
  }

  async start(): Promise<void> {
    await startAll(this.#sources);
    this.#loaded = true;
  }

  async close(): Promise<void> {
    await closeAll(this.#sources);
  }
}
