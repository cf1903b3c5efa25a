/**
 * How many TCP connections one listener holds at once. Node's `server.maxConnections` closes a
 * connection beyond it as soon as it is accepted (the `drop` event); this counts those by
 * listener and logs them within a budget, so a flood costs a few lines, not one each.
 *
 * Why a cap: every open connection costs memory (socket, parser, buffers), and without a cap a
 * caller can open as many as the file-descriptor limit allows. The bodies a connection may
 * make metalboot hold are bounded apart (the API proxy's body budget).
 */
import type { Server } from 'node:net';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { LogBudget } from './log-budget.js';

/**
 * The default cap of every HTTP listener: far above what a boot storm needs (iPXE holds one
 * connection per host, IPA two, Ironic's conductor one per command in flight), far below what
 * would threaten the pod's memory (a few tens of KB each when idle).
 */
export const MAX_CONNECTIONS = 1024;

const DROPPED = 'metalboot_http_connections_dropped_total';

/** Counts (`metalboot_http_connections_dropped_total{listener}`) and logs the connections `server` drops at its cap. */
export function countDroppedConnections(
  server: Server,
  o: { readonly listener: string; readonly registry: Registry; readonly logger: Logger; readonly now?: () => number },
): void {
  const counter =
    (o.registry.getSingleMetric(DROPPED) as Counter<'listener'> | undefined) ??
    new Counter({
      name: DROPPED,
      help: 'Connections a listener closed at once because it held its maximum (maxConnections), by listener',
      labelNames: ['listener'],
      registers: [o.registry],
    });
  const child = counter.labels(o.listener);
  const budget = new LogBudget<'max-connections'>({ perSecond: 1, burst: 5, now: o.now ?? Date.now });
  server.on('drop', (data?: { readonly remoteAddress?: string }) => {
    child.inc();
    const b = budget.take('max-connections');
    if (b.ok)
      o.logger.warn(
        { listener: o.listener, peer: data?.remoteAddress, max: server.maxConnections, suppressed: b.suppressed },
        'closed a connection: the listener holds its maximum of connections',
      );
  });
}
