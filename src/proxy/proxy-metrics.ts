/**
 * Prometheus figures of both directions, registered on the registry passed in (never the
 * global one).
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** API proxy routes: the `route` label. */
export type ApiRoute = 'version' | 'lookup' | 'heartbeat' | 'continue_inspection' | 'refused';

/**
 * What happened to a heartbeat: rewritten and accepted by Ironic, passed through unchanged
 * (empty callback_url or no callback listener), refused by us for its body (invalid: malformed,
 * too large, too slow) or for the agent address it names (refused, with the reason counted
 * apart), not read because the bodies in memory were at their budget (overloaded), refused by
 * Ironic (4xx/5xx: bad token, changed callback URL…), or failed in transit.
 */
export type HeartbeatOutcome =
  | 'accepted'
  | 'passthrough'
  | 'invalid'
  | 'refused'
  | 'overloaded'
  | 'rejected'
  | 'failed';

/**
 * Requests the API proxy answered itself because of a bound: `body-budget` (503: the bodies it
 * holds in memory are at their budget), `body-timeout` (408: a body read whole did not arrive
 * in time).
 */
export type ApiRefusal = 'body-budget' | 'body-timeout';

/**
 * Callback listener results: the `result` label. `unknown-node`: no agent recorded for the
 * node; `unknown-agent`: the node's recorded agent is another one than the URL names;
 * `refused`: answered by the listener itself, the reason counted apart.
 */
export type CallbackResult = 'forwarded' | 'unknown-node' | 'unknown-agent' | 'refused' | 'error';

export interface ApiProxyMetrics {
  readonly requests: Counter<'route' | 'status'>;
  readonly duration: Histogram<'route'>;
  readonly failures: Counter<'reason'>;
  readonly requestBytes: Counter<'route'>;
  readonly heartbeats: Counter<'outcome'>;
  /** Heartbeats refused for their agent address, by AgentAddressRefusal (agent-address.ts). */
  readonly heartbeatRefusals: Counter<'reason'>;
  /** Requests refused for a bound, by ApiRefusal. */
  readonly refusals: Counter<'route' | 'reason'>;
}

export interface CallbackMetrics {
  readonly requests: Counter<'result' | 'status'>;
  readonly duration: Histogram;
  readonly failures: Counter<'reason'>;
  /** Requests the listener answered itself, by CallbackRefusal (callback-url.ts). */
  readonly refusals: Counter<'reason'>;
}

const BUCKETS = [0.005, 0.025, 0.1, 0.5, 1, 2.5, 10, 30, 120, 600];

/** `buffered` reports the bytes of bodies the proxy holds in memory now (its BodyBudget). */
export function createApiProxyMetrics(registry: Registry, buffered: () => number): ApiProxyMetrics {
  const registers = [registry];
  new Gauge({
    name: 'metalboot_ironic_api_proxy_buffered_bytes',
    help: 'Bytes of heartbeats and Ironic answers the API proxy holds in memory to rewrite them',
    registers,
    collect() {
      this.set(buffered());
    },
  });
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
    heartbeatRefusals: new Counter({
      name: 'metalboot_ironic_heartbeat_refusals_total',
      help: 'Heartbeats the API proxy refused for the agent address they name, by reason',
      labelNames: ['reason'],
      registers,
    }),
    refusals: new Counter({
      name: 'metalboot_ironic_api_proxy_refusals_total',
      help: 'Requests the API proxy answered itself because of a memory or time bound, by route and reason',
      labelNames: ['route', 'reason'],
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
    refusals: new Counter({
      name: 'metalboot_ipa_callback_refusals_total',
      help: 'Requests the callback listener answered itself without contacting IPA, by reason',
      labelNames: ['reason'],
      registers,
    }),
  };
}
