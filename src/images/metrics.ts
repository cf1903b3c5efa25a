/**
 * The image proxy's Prometheus figures, registered on the registry passed in (never the global
 * one). Cache size and entry count are read from the cache when scraped.
 */
import { Counter, Gauge, type Registry } from 'prom-client';

/**
 * How a request was answered:
 * - `hit`: from a fresh cache entry;
 * - `miss`: this request started the upstream download that fills the cache;
 * - `coalesced`: streamed from a download another request started;
 * - `revalidated`: from an entry the upstream just confirmed (304);
 * - `stale`: from an entry the upstream could not confirm (it failed; stale-if-error);
 * - `bypass`: relayed from the upstream without the cache (cache off, HEAD, Range or
 *   conditional request for something not cached, a query string, a path not cached, or an
 *   answer that cannot be stored);
 * - `refused`: a request target the proxy will not forward (400/404);
 * - `error`: the upstream failed before answering (502/504);
 * - `busy`: the proxy's limits turned it away (503 with Retry-After; the reason is in
 *   {@link LimitReason}).
 */
export type RequestResult =
  | 'hit'
  | 'miss'
  | 'coalesced'
  | 'revalidated'
  | 'stale'
  | 'bypass'
  | 'refused'
  | 'error'
  | 'busy';

/**
 * Why a limit of the proxy acted (the `reason` label of `metalboot_image_proxy_limits_total`):
 * - `client-stalled`: a response whose client took no bytes for the client idle timeout was
 *   cut (both its connection and, for a relay, the upstream one closed);
 * - `client-limit`: 503, the client address held its share of upstream connections while the
 *   pool was busy;
 * - `queue-timeout`: 503, no upstream connection became free within the queue timeout.
 */
export type LimitReason = 'client-stalled' | 'client-limit' | 'queue-timeout';

/** Why the proxy asked the upstream: to fill the cache, to revalidate an entry, or to relay. */
export type UpstreamKind = 'fill' | 'revalidate' | 'relay';

export interface ImageProxyMetrics {
  readonly requests: Counter<'result'>;
  readonly upstreamRequests: Counter<'kind'>;
  readonly upstreamFailures: Counter<'reason'>;
  readonly upstreamBytes: Counter;
  readonly servedBytes: Counter<'source'>;
  /** Only where the cache's book is kept (createCacheMetrics). */
  readonly evictions: Counter | undefined;
  readonly fills: Counter<'outcome'>;
  readonly limits: Counter<'reason'>;
}

/** The upstream pool's connections held and requests waiting for one. */
export interface PoolFigures {
  readonly inUse: number;
  readonly waiting: number;
}

export interface CacheFigures {
  readonly bytes: number;
  readonly entries: number;
  readonly fillsRunning: number;
}

export function createImageProxyMetrics(
  registry: Registry,
  cache: (() => CacheFigures) | undefined,
  pool: () => PoolFigures,
): ImageProxyMetrics {
  const registers = [registry];
  new Gauge({
    name: 'metalboot_image_proxy_upstream_connections_in_use',
    help: 'Upstream connections held by a request (relay, fill or revalidation)',
    registers,
    collect() {
      this.set(pool().inUse);
    },
  });
  new Gauge({
    name: 'metalboot_image_proxy_upstream_waiting',
    help: 'Requests waiting for an upstream connection',
    registers,
    collect() {
      this.set(pool().waiting);
    },
  });
  // The cache's own series belong to whoever keeps its book: here, or the main process for workers.
  const evictions = cache === undefined ? undefined : createCacheMetrics(registry, cache);
  return {
    requests: new Counter({
      name: 'metalboot_image_proxy_requests_total',
      help: 'Image proxy requests, by how they were answered',
      labelNames: ['result'],
      registers,
    }),
    upstreamRequests: new Counter({
      name: 'metalboot_image_proxy_upstream_requests_total',
      help: 'Requests sent to the upstream (Ironic httpd), by purpose',
      labelNames: ['kind'],
      registers,
    }),
    upstreamFailures: new Counter({
      name: 'metalboot_image_proxy_upstream_failures_total',
      help: 'Upstream requests that failed, by reason',
      labelNames: ['reason'],
      registers,
    }),
    upstreamBytes: new Counter({
      name: 'metalboot_image_proxy_upstream_bytes_total',
      help: 'Body bytes received from the upstream',
      registers,
    }),
    servedBytes: new Counter({
      name: 'metalboot_image_proxy_served_bytes_total',
      help: 'Body bytes sent to clients, by source (cache or upstream)',
      labelNames: ['source'],
      registers,
    }),
    evictions,
    fills: new Counter({
      name: 'metalboot_image_cache_fills_total',
      help: 'Image cache fills, by outcome (complete, failed, aborted)',
      labelNames: ['outcome'],
      registers,
    }),
    limits: new Counter({
      name: 'metalboot_image_proxy_limits_total',
      help: 'Responses cut or refused by the image proxy limits, by reason (client-stalled, client-limit, queue-timeout)',
      labelNames: ['reason'],
      registers,
    }),
  };
}

/**
 * The series of a cache's book, registered once by the process that keeps it: its size, entries
 * and fills running, and the evictions counter it returns.
 */
export function createCacheMetrics(registry: Registry, figures: () => CacheFigures): Counter {
  const gauges: readonly [string, string, keyof CacheFigures][] = [
    ['metalboot_image_cache_size_bytes', 'Bytes on disk in image cache entries', 'bytes'],
    ['metalboot_image_cache_entries', 'Image cache entries', 'entries'],
    ['metalboot_image_cache_fills_running', 'Upstream downloads being stored in the image cache', 'fillsRunning'],
  ];
  for (const [name, help, key] of gauges) {
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(figures()[key]);
      },
    });
  }
  return new Counter({
    name: 'metalboot_image_cache_evictions_total',
    help: 'Image cache entries evicted to stay under the size limit',
    registers: [registry],
  });
}
