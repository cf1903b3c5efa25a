/**
 * The chart's monitoring kit queries only what metalboot exports. Every metric name, label name
 * (in matchers and in by/without/on/ignoring lists) and matched label value of the alert rules
 * (chart/rules/metalboot-alerts.yaml) and of the Grafana dashboard (chart/dashboards/metalboot.json)
 * must be in the /metrics output of metalboot running in-process as the chart runs it
 * (test/support/monitored-product.ts), after it has counted one of each thing these queries
 * look at. Labels the scrape adds (namespace, pod, job, …) are allowed; a label or value that
 * no exercised series carries (a failure that loopback cannot produce, such as the image
 * proxy's limits) must then be declared where the metric is defined in src/: in its labelNames,
 * or as a string literal of its wing (the folder of that file). Also checked: the rule file's shape (promtool checks it
 * again in test/e2e/chart-monitoring.test.ts), the values schema's list of alerts, and the
 * dashboard's structure.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { type Exposition, familyOf, isQueryable, parseExposition } from '../support/exposition.js';
import { type MonitoredProduct, startMonitoredProduct } from '../support/monitored-product.js';
import { promqlNames, type Selector } from '../support/promql-names.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const RULES_FILE = path.join(REPO, 'chart/rules/metalboot-alerts.yaml');
const DASHBOARD_FILE = path.join(REPO, 'chart/dashboards/metalboot.json');

/** Labels Prometheus and the Prometheus Operator put on every series of a target. */
const TARGET_LABELS = new Set(['namespace', 'pod', 'job', 'instance', 'service', 'endpoint', 'container']);

// --- the rule file -------------------------------------------------------------------------

const duration = z.string().regex(/^(\d+(ms|s|m|h|d|w|y))+$/);
const Rule = z
  .object({
    alert: z.string().regex(/^Metalboot[A-Z][A-Za-z]+$/),
    expr: z.string().min(1),
    for: duration,
    labels: z.object({ severity: z.enum(['warning', 'critical']) }).strict(),
    annotations: z
      .object({
        summary: z.string().min(10).max(120),
        description: z.string().min(80),
      })
      .strict(),
  })
  .strict();
const RuleFile = z
  .object({
    groups: z.array(z.object({ name: z.string().regex(/^metalboot\.[a-z]+$/), rules: z.array(Rule).min(1) }).strict()),
  })
  .strict();
type RuleFile = z.infer<typeof RuleFile>;

const ruleFile = (): RuleFile => RuleFile.parse(parseYaml(readFileSync(RULES_FILE, 'utf8')));
const alerts = () => ruleFile().groups.flatMap((g) => g.rules);

// --- the dashboard -------------------------------------------------------------------------

interface Panel {
  id: number;
  type: string;
  title: string;
  description?: string;
  datasource?: { type: string; uid: string };
  gridPos: { h: number; w: number; x: number; y: number };
  targets?: { refId: string; expr: string; datasource?: { uid: string } }[];
  panels?: Panel[];
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: { name: string; type: string; query: string | { query: string } }[] };
}
const dashboard = (): Dashboard => JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as Dashboard;
const allPanels = (d: Dashboard): Panel[] => d.panels.flatMap((p) => [p, ...(p.panels ?? [])]);

/** The queries of the dashboard: each panel's targets, and the variables' label_values(). */
function dashboardQueries(d: Dashboard): { where: string; expr: string; label?: string }[] {
  const out: { where: string; expr: string; label?: string }[] = [];
  for (const p of allPanels(d))
    for (const t of p.targets ?? []) out.push({ where: `panel "${p.title}" ${t.refId}`, expr: t.expr });
  for (const v of d.templating.list) {
    if (v.type !== 'query') continue;
    const q = typeof v.query === 'string' ? v.query : v.query.query;
    const m = /^label_values\((.+),\s*([A-Za-z_][A-Za-z0-9_]*)\)$/.exec(q);
    if (m === null) throw new Error(`variable ${v.name}: not label_values(expr, label): ${q}`);
    out.push({ where: `variable $${v.name}`, expr: m[1]!, label: m[2]! });
  }
  return out;
}

// --- where a metric is declared in src/ --------------------------------------------------

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    if (statSync(p).isDirectory()) return sourceFiles(p);
    return p.endsWith('.ts') && !p.endsWith('.test.ts') ? [p] : [];
  });
}
const SOURCES = sourceFiles(path.join(REPO, 'src')).map((file) => ({ file, text: readFileSync(file, 'utf8') }));

/**
 * Where `family` is defined in src/: its labelNames there, and the text of its wing (the folder
 * of that file), whose string literals are the label values it can take (a drop reason, a
 * refusal, a lease source).
 */
function declaration(family: string): { labels: Set<string>; wingText: string } | undefined {
  const src = SOURCES.find((s) => s.text.includes(`'${family}'`));
  if (src === undefined) return undefined;
  const from = src.text.indexOf(`'${family}'`);
  const nextName = src.text.indexOf("name: '", from + family.length);
  const slice = src.text.slice(from, nextName === -1 ? undefined : nextName);
  const names = /labelNames: \[([^\]]*)\]/.exec(slice)?.[1] ?? '';
  const wing = path.dirname(src.file);
  return {
    labels: new Set([...names.matchAll(/'([^']+)'/g)].map((m) => m[1]!)),
    wingText: SOURCES.filter((s) => path.dirname(s.file) === wing)
      .map((s) => s.text)
      .join('\n'),
  };
}

// --- the check -----------------------------------------------------------------------------

const LITERALS = /^[A-Za-z0-9_.:-]+(\|[A-Za-z0-9_.:-]+)*$/;

/** What in `expr` is not in `e`: one line per problem, prefixed with `where`. */
function check(e: Exposition, where: string, expr: string, extraGrouping?: string): string[] {
  const problems: string[] = [];
  const names = promqlNames(expr);
  const labelsOf = (metric: string): ReadonlyMap<string, ReadonlySet<string>> =>
    e.samples.get(metric) ?? new Map<string, ReadonlySet<string>>();
  const declared = (metric: string) => declaration(familyOf(e, metric) ?? metric);
  const hasLabel = (metric: string, label: string) =>
    TARGET_LABELS.has(label) || labelsOf(metric).has(label) || declared(metric)?.labels.has(label) === true;
  for (const s of names.selectors) {
    if (s.metric === undefined) {
      problems.push(`${where}: a selector without a metric name`);
      continue;
    }
    if (!isQueryable(e, s.metric)) {
      problems.push(`${where}: metric ${s.metric} is not in /metrics`);
      continue;
    }
    for (const m of s.matchers) {
      if (!hasLabel(s.metric, m.label)) {
        problems.push(`${where}: ${s.metric} has no label ${m.label}`);
        continue;
      }
      if (TARGET_LABELS.has(m.label) || (m.op !== '=' && m.op !== '=~') || !LITERALS.test(m.value)) continue;
      const seen = labelsOf(s.metric).get(m.label);
      for (const v of m.value.split('|'))
        if (seen?.has(v) !== true && declared(s.metric)?.wingText.includes(`'${v}'`) !== true)
          problems.push(`${where}: ${s.metric} has no ${m.label}="${v}"`);
    }
  }
  const groupings = [...names.groupings];
  if (extraGrouping !== undefined)
    groupings.push({ keyword: 'by', labels: [extraGrouping], selectors: names.selectors });
  for (const g of groupings)
    for (const label of g.labels) {
      const metrics = g.selectors.flatMap((s: Selector) => (s.metric === undefined ? [] : [s.metric]));
      if (!metrics.some((metric) => isQueryable(e, metric) && hasLabel(metric, label)))
        problems.push(`${where}: ${g.keyword} (${label}): no label ${label} on ${metrics.join(', ')}`);
    }
  return problems;
}

describe("the chart's alerts and dashboard query what metalboot exports", () => {
  let m: MonitoredProduct | undefined;
  let exposition: Exposition;

  beforeAll(async () => {
    m = await startMonitoredProduct();
    await m.exercise();
    exposition = parseExposition(await m.metrics());
  }, 60_000);

  afterAll(async () => {
    await m?.close();
  });

  it('every metric, label and label value the alert rules query is in /metrics', () => {
    const problems = alerts().flatMap((r) => check(exposition, `alert ${r.alert}`, r.expr));
    expect(problems).toEqual([]);
  });

  it('every metric, label and label value the dashboard queries is in /metrics', () => {
    const problems = dashboardQueries(dashboard()).flatMap((q) => check(exposition, q.where, q.expr, q.label));
    expect(problems).toEqual([]);
  });

  it.each([
    [
      'a misspelt metric',
      'rate(metalboot_dhcp_droped_total[5m])',
      'metric metalboot_dhcp_droped_total is not in /metrics',
    ],
    ['a misspelt label in a matcher', 'metalboot_dhcp_dropped_total{reasn="declined"}', 'has no label reasn'],
    [
      'a misspelt label value',
      'metalboot_dhcp_dropped_total{reason=~"journal-full|journal_failed"}',
      'reason="journal_failed"',
    ],
    ['a misspelt label in by', 'sum by (reasn) (metalboot_dhcp_dropped_total)', 'by (reasn)'],
    ['a label of another metric in by', 'sum by (reason) (metalboot_leader)', 'by (reason)'],
    ['a histogram queried by its family name', 'metalboot_dhcp_reply_seconds', 'is not in /metrics'],
  ])('the check fails on %s', (_name, expr, problem) => {
    expect(check(exposition, 'test', expr)).toEqual([expect.stringContaining(problem)]);
  });

  it('the check passes labels the scrape adds, histogram series and values declared in src/', () => {
    expect(
      check(
        exposition,
        'test',
        'histogram_quantile(0.9, sum by (le, pod) (rate(metalboot_dhcp_reply_seconds_bucket{namespace="x"}[5m])))' +
          ' + sum by (reason) (metalboot_image_proxy_limits_total{reason="queue-timeout"})',
      ),
    ).toEqual([]);
  });
});

describe('the alert rule file', () => {
  it('has the shape the chart and Prometheus expect: a for, a severity, a summary and a description per alert', () => {
    const file = ruleFile();
    const names = file.groups.flatMap((g) => g.rules.map((r) => r.alert));
    expect(new Set(names).size).toBe(names.length);
  });

  it('every alert can be turned off by name in values.schema.json, and nothing else', () => {
    const schema = JSON.parse(readFileSync(path.join(REPO, 'chart/values.schema.json'), 'utf8'));
    const disabled = schema.properties.monitoring.properties.prometheusRule.properties.disabled;
    expect(disabled.additionalProperties).toBe(false);
    // MetalbootDown is the chart's own (templates/prometheusrule.yaml): it names the scrape job.
    expect(Object.keys(disabled.properties).sort()).toEqual([...alerts().map((r) => r.alert), 'MetalbootDown'].sort());
  });
});

describe('the Grafana dashboard', () => {
  const d = dashboard();
  const panels = allPanels(d);

  it('has a uid, unique panel ids and panels that do not overlap on the 24-column grid', () => {
    expect(d.uid).toMatch(/^[a-z0-9-]{1,40}$/);
    expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
    const cells = new Set<string>();
    for (const p of panels) {
      const g = p.gridPos;
      expect(g.x + g.w, p.title).toBeLessThanOrEqual(24);
      for (let x = g.x; x < g.x + g.w; x++)
        for (let y = g.y; y < g.y + g.h; y++) {
          expect(cells.has(`${x},${y}`), `${p.title} overlaps at ${x},${y}`).toBe(false);
          cells.add(`${x},${y}`);
        }
    }
  });

  it('every panel queries the chosen data source, with a description and unique refIds', () => {
    for (const p of panels.filter((q) => q.type !== 'row')) {
      // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a template string
      expect(p.datasource, p.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
      expect(p.description?.length ?? 0, p.title).toBeGreaterThan(20);
      const refIds = (p.targets ?? []).map((t) => t.refId);
      expect(refIds.length, p.title).toBeGreaterThan(0);
      expect(new Set(refIds).size, p.title).toBe(refIds.length);
    }
  });

  it('every series it selects is filtered by the $namespace and $pod variables', () => {
    for (const p of panels)
      for (const t of p.targets ?? [])
        for (const s of promqlNames(t.expr).selectors)
          expect(s.matchers, `${p.title}: ${s.metric}`).toEqual(
            expect.arrayContaining([
              { label: 'namespace', op: '=~', value: '$namespace' },
              { label: 'pod', op: '=~', value: '$pod' },
            ]),
          );
  });
});
