import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { registerReadinessGauge } from './readiness-metrics.js';

describe('registerReadinessGauge', () => {
  it('reports each check as 1 or 0 at every scrape', async () => {
    const registry = new Registry();
    let sourcesOk = false;
    registerReadinessGauge(registry, [
      { name: 'dhcp', check: () => ({ ok: true, detail: 'listening' }) },
      { name: 'sources', check: () => ({ ok: sourcesOk, detail: sourcesOk ? 'loaded' : 'loading' }) },
    ]);
    const values = async () =>
      Object.fromEntries(
        (await registry.getSingleMetric('metalboot_readiness_check_ok')!.get()).values.map((v) => [
          v.labels.check,
          v.value,
        ]),
      );
    expect(await values()).toEqual({ dhcp: 1, sources: 0 });
    sourcesOk = true;
    expect(await values()).toEqual({ dhcp: 1, sources: 1 });
    expect(await registry.metrics()).toContain('metalboot_readiness_check_ok{check="sources"} 1');
  });
});
