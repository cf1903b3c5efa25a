/** /metrics, /healthz, /readyz and /debug/explain. */
import type { FastifyInstance } from 'fastify';
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue, type Registry } from 'prom-client';
import { parseMac } from '../net/mac.js';
import { explain, explainWithoutDhcp } from './explain.js';
import type { DhcpState } from '../dhcp/decide.js';
import type { DhcpPolicy } from '../dhcp/policy.js';
import type { ReadinessCheck } from '../base/service.js';

export interface OpsRoutesOptions {
  readonly registry: Registry;
  readonly readiness: readonly ReadinessCheck[];
  readonly policy: DhcpPolicy | undefined;
  readonly state: DhcpState;
  /** Extra per-MAC explanations from other parts (e.g. the callback proxy's node mapping). */
  readonly explainExtras?: readonly ((mac: string) => Record<string, unknown> | undefined)[];
  /**
   * Metrics of other processes (the image workers) as prom-client JSON, merged into /metrics:
   * each source gives one part per process that answered.
   */
  readonly extraMetrics?: readonly (() => Promise<readonly unknown[][]>)[];
}

type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

export async function opsRoutes(app: FastifyInstance, o: OpsRoutesOptions): Promise<void> {
  app.get('/metrics', async (_req, reply) => {
    const extra = o.extraMetrics ?? [];
    if (extra.length === 0) return reply.type(o.registry.contentType).send(await o.registry.metrics());
    // Series of one name from several processes are summed (AggregatorRegistry, made for cluster
    // workers); the workers' own process series carry a `worker` label and stay apart. Its 'omit'
    // aggregator (process_start_time_seconds) would drop this process's series: kept as they are.
    const own = (await o.registry.getMetricsAsJSON()).map((m) =>
      m.aggregator === 'omit' ? { ...m, aggregator: 'first' as const } : m,
    );
    const parts = [own, ...(await Promise.all(extra.map((f) => f()))).flat()] as MetricsJson[];
    return reply.type(o.registry.contentType).send(await AggregatorRegistry.aggregate(parts).metrics());
  });
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const checks = o.readiness.map((c) => ({ name: c.name, ...c.check() }));
    const ok = checks.every((c) => c.ok);
    return reply.code(ok ? 200 : 503).send({ status: ok ? 'ready' : 'not ready', checks });
  });
  app.get<{ Querystring: { mac?: string } }>('/debug/explain', async (req, reply) => {
    const mac = parseMac(req.query.mac ?? '');
    if (mac === undefined) return reply.code(400).send({ error: 'give ?mac=aa:bb:cc:dd:ee:ff' });
    const out = o.policy === undefined ? explainWithoutDhcp(mac, o.state.index) : explain(mac, o.policy, o.state);
    for (const extra of o.explainExtras ?? []) Object.assign(out, extra(mac));
    return out;
  });
}
