/**
 * The process's Prometheus registry: prom-client's default metrics (event-loop delay, heap, GC,
 * CPU, resident memory, start time) under the `metalboot_` prefix, beside the wings' own. One
 * function so that main.ts and the tests that check the chart's dashboard and alerts against
 * /metrics build the same registry.
 */
import { Registry, collectDefaultMetrics } from 'prom-client';

export function processRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'metalboot_' });
  return registry;
}
