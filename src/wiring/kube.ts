/**
 * The Kubernetes wing: the BareMetalHost watcher (a lease source) and the boot Events recorder
 * (fed by the milestones every protocol reports through: wiring/timeline.ts).
 */
import type { KubeConfig } from '@kubernetes/client-node';
import type { Config } from '../config/load.js';
import type { HostIndex } from '../leases/host-index.js';
import { BmhWatcher } from '../kube/bmh-watcher.js';
import { kubeBmhApi } from '../kube/bmh-api.js';
import { BmhEventRecorder, kubeEventSink } from '../kube/boot-events.js';
import type { Wiring } from './deps.js';

export interface KubeWing {
  readonly watcher: BmhWatcher;
  readonly recorder: BmhEventRecorder;
}

export function kubeWing(config: Config, w: Wiring, kc: KubeConfig, index: HostIndex, hostname: string): KubeWing {
  const k = config.sources.kube;
  const { logger, registry, now } = w;
  const watcher = new BmhWatcher({
    api: kubeBmhApi(kc, k.namespace),
    index,
    annotationPrefix: config.sources.annotationPrefix,
    namespace: k.namespace,
    logger,
    registry,
    now,
  });
  const recorder = new BmhEventRecorder({
    sink: kubeEventSink(kc),
    resolve: (h) => watcher.refFor(h),
    logger,
    registry,
    source: { instance: hostname, host: config.nodeName },
  });
  return { watcher, recorder };
}
