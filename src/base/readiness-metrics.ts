/**
 * /readyz as a gauge, so that an alert can say which check fails:
 * `metalboot_readiness_check_ok{check}` is 1 while the check passes and 0 while it fails,
 * evaluated when /metrics is scraped (the same checks, the same answers as /readyz).
 */
import { Gauge, type Registry } from 'prom-client';
import type { ReadinessCheck } from './service.js';

export function registerReadinessGauge(registry: Registry, checks: readonly ReadinessCheck[]): void {
  new Gauge({
    name: 'metalboot_readiness_check_ok',
    help: 'Whether each /readyz check passes (1) or fails (0), evaluated when scraped',
    labelNames: ['check'],
    registers: [registry],
    collect() {
      for (const c of checks) this.set({ check: c.name }, c.check().ok ? 1 : 0);
    },
  });
}
