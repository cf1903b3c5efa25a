/**
 * Prometheus figures of both directions, registered on the registry passed in (never the
 * global one).
 */
import { Counter, Histogram, type Registry } from 'prom-client';

/** API proxy routes: the `route` label. */
export type ApiRoute = 'version' | 'lookup' | 'heartbeat' | 'continue_inspection' | 'refused';

/**
 * What happened to a heartbeat: rewritten and accepted by Ironic, passed through unchanged
 * (empty callback_url or no callback listener), refused by us (invalid body), refused by
 * Ironic (4xx/5xx: bad token, changed URL or CA…), or failed in transit.
 */
export type HeartbeatOutcome = 'accepted' | 'passthrough' | 'invalid' | 'rejected' | 'failed';

/** Callback listener results: the `result` label. */
export type CallbackResult = 'forwarded' | 'unknown-node' | 'refused' | 'error';

export interface ApiProxyMetrics {
  readonly requests: Counter<'route' | 'status'>;
  readonly duration: Histogram<'route'>;
  readonly failures: Counter<'reason'>;
  readonly requestBytes: Counter<'route'>;
  readonly heartbeats: Counter<'outcome'>;
}

export interface CallbackMetrics {
  readonly requests: Counter<'result' | 'status'>;
  readonly duration: Histogram;
  readonly failures: Counter<'reason'>;
}

const BUCKETS = [0.005, 0.025, 0.1, 0.5, 1, 2.5, 10, 30, 120, 600];

export function createApiProxyMetrics(registry: Registry): ApiProxyMetrics {
  const registers = [registry];
  return {
    requests: new Counter({
      name: 'metalboot_ironic_api_proxy_requests_total',
      help: 'IPA → Ironic API requests, by route and status answered',
      labelNames: ['route', 'status'],
      registers,
    }),
    duration: new Histogram({
      name: 'metalboot_ironic_api_proxy_duration_seconds',
      help: 'IPA → Ironic API requests until the answer headers, by route',
      labelNames: ['route'],
      buckets: BUCKETS,
      registers,
    }),
    failures: new Counter({
      name: 'metalboot_ironic_api_proxy_upstream_failures_total',
      help: 'Forwards to the Ironic API that failed, by reason',
      labelNames: ['reason'],
      registers,
    }),
    requestBytes: new Counter({
      name: 'metalboot_ironic_api_proxy_request_bytes_total',
      help: 'Request body bytes forwarded to the Ironic API, by route',
      labelNames: ['route'],
      registers,
    }),
    heartbeats: new Counter({
      name: 'metalboot_ironic_heartbeats_total',
      help: 'IPA heartbeats through the API proxy, by outcome',
      labelNames: ['outcome'],
      registers,
    }),
  };
}

export function createCallbackMetrics(registry: Registry): CallbackMetrics {
  const registers = [registry];
  return {
    requests: new Counter({
      name: 'metalboot_ipa_callback_requests_total',
      help: 'Ironic → IPA requests on the callback listener, by result and status answered',
      labelNames: ['result', 'status'],
      registers,
    }),
    duration: new Histogram({
      name: 'metalboot_ipa_callback_duration_seconds',
      help: 'Ironic → IPA forwards until the answer headers',
      buckets: BUCKETS,
      registers,
    }),
    failures: new Counter({
      name: 'metalboot_ipa_callback_failures_total',
      help: 'Forwards to IPA that failed, by reason',
      labelNames: ['reason'],
      registers,
    }),
  };
}
