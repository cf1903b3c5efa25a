/**
 * The chart's monitoring kit as Helm renders it (`helm template`, `helm lint --strict`, with the
 * helm of test/support/helm.ts): none of it by default or when switched off; when on, the
 * ServiceMonitor on the Service's http port (the chart's Service only), the PrometheusRule with
 * the alerts of chart/rules/metalboot-alerts.yaml (less the disabled ones, alertLabels added,
 * MetalbootDown for the scrape job) and the dashboard ConfigMap with the sidecar's label. The
 * rendered rules pass Debian's promtool (test/support/promtool.ts): `check rules`, and `test
 * rules` with series that make every alert fire, with its labels and its annotations as
 * Prometheus expands them, and some that must not.
 *
 * That the rules and the dashboard query only what metalboot exports is
 * test/integration/monitoring-metrics.test.ts.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, parseAllDocuments, stringify } from 'yaml';
import { helmBinary } from '../support/helm.js';
import { promtoolBinary } from '../support/promtool.js';

const run = promisify(execFile);
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CHART = path.join(REPO, 'chart');
const RELEASE = 'mb';
const NAMESPACE = 'metal3';
const FULLNAME = `${RELEASE}-metalboot`;

// biome-ignore lint/suspicious/noExplicitAny: a parsed manifest is navigated freely; the assertions check its shape
type Obj = Record<string, any>;
type Values = Record<string, unknown>;

interface Rule {
  alert: string;
  expr: string;
  for: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}
interface Group {
  name: string;
  rules: Rule[];
}

const ruleFileGroups = (): Group[] =>
  (parseYaml(readFileSync(path.join(CHART, 'rules/metalboot-alerts.yaml'), 'utf8')) as { groups: Group[] }).groups;

let helm: string;
let promtool: string;
let scratch: string;

beforeAll(async () => {
  helm = await helmBinary();
  promtool = await promtoolBinary();
  mkdirSync(path.join(REPO, '.cache', 'scratch'), { recursive: true });
  scratch = mkdtempSync(path.join(REPO, '.cache', 'scratch', 'chart-monitoring-'));
}, 600_000);

afterAll(() => {
  if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
});

let files = 0;
function scratchFile(name: string, text: string): string {
  const file = path.join(scratch, `${++files}-${name}`);
  writeFileSync(file, text);
  return file;
}

async function exec(file: string, args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(file, args, { maxBuffer: 16 * 1024 * 1024, timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as Error & { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? e.message };
  }
}

/** `helm lint --strict` and `helm template` of `values`: the documents. */
async function render(values: Values): Promise<Obj[]> {
  const file = scratchFile('values.yaml', JSON.stringify(values));
  const lint = await exec(helm, ['lint', CHART, '--strict', '--namespace', NAMESPACE, '--values', file]);
  expect(lint.code, `helm lint --strict:\n${lint.stdout}\n${lint.stderr}`).toBe(0);
  const out = await exec(helm, ['template', RELEASE, CHART, '--namespace', NAMESPACE, '--values', file]);
  expect(out.code, `helm template:\n${out.stderr}`).toBe(0);
  return parseAllDocuments(out.stdout)
    .map((d) => d.toJS() as Obj | null)
    .filter((d): d is Obj => d !== null);
}

async function renderError(values: Values): Promise<string> {
  const file = scratchFile('values.yaml', JSON.stringify(values));
  const out = await exec(helm, ['template', RELEASE, CHART, '--namespace', NAMESPACE, '--values', file]);
  expect(out.code, 'helm template should fail').not.toBe(0);
  return out.stderr;
}

const KIT_KINDS = ['ServiceMonitor', 'PrometheusRule'];
const isDashboard = (d: Obj) => d.kind === 'ConfigMap' && d.metadata.name === `${FULLNAME}-dashboard`;
const kit = (docs: Obj[]) => docs.filter((d) => KIT_KINDS.includes(d.kind) || isDashboard(d));
const one = (docs: Obj[], kind: string): Obj => {
  const found = docs.filter((d) => d.kind === kind);
  expect(found.map((d) => d.metadata.name)).toEqual([FULLNAME]);
  return found[0]!;
};

const ALL_ON = {
  monitoring: {
    serviceMonitor: { enabled: true },
    prometheusRule: { enabled: true },
    grafanaDashboard: { enabled: true },
  },
};

describe('the monitoring kit in the chart', () => {
  it.each([
    ['by default', {}],
    [
      'when switched off, whatever else is set',
      {
        monitoring: {
          serviceMonitor: { enabled: false, labels: { release: 'kps' }, interval: '15s' },
          prometheusRule: { enabled: false, alertLabels: { team: 'metal3' } },
          grafanaDashboard: { enabled: false, labelKey: 'dashboards', namespace: 'monitoring' },
        },
      },
    ],
  ])('renders nothing of it %s', async (_name, values) => {
    expect(kit(await render(values))).toEqual([]);
  });

  it.each([
    ['serviceMonitor', ['ServiceMonitor']],
    ['prometheusRule', ['PrometheusRule']],
    ['grafanaDashboard', ['ConfigMap']],
  ])('renders %s alone when only it is on', async (key, kinds) => {
    const docs = await render({ monitoring: { [key]: { enabled: true } } });
    expect(kit(docs).map((d) => d.kind)).toEqual(kinds);
  });

  it("the ServiceMonitor scrapes /metrics on the http port of the chart's Service, and that Service only", async () => {
    const docs = await render({
      ...ALL_ON,
      http: { port: 9090 },
      provisioningService: { type: 'LoadBalancer' },
      monitoring: {
        ...ALL_ON.monitoring,
        serviceMonitor: {
          enabled: true,
          labels: { release: 'kube-prometheus-stack' },
          interval: '15s',
          scrapeTimeout: '5s',
          relabelings: [{ action: 'replace', targetLabel: 'site', replacement: 'dc1' }],
          metricRelabelings: [{ action: 'drop', sourceLabels: ['__name__'], regex: 'metalboot_nodejs_gc_.*' }],
        },
      },
    });
    const sm = one(docs, 'ServiceMonitor');
    expect(sm.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(sm.metadata.namespace).toBe(NAMESPACE);
    expect(sm.metadata.labels).toMatchObject({
      release: 'kube-prometheus-stack',
      'app.kubernetes.io/instance': RELEASE,
    });
    expect(sm.spec.namespaceSelector).toEqual({ matchNames: [NAMESPACE] });
    expect(sm.spec.endpoints).toEqual([
      {
        port: 'http',
        path: '/metrics',
        scheme: 'http',
        interval: '15s',
        scrapeTimeout: '5s',
        relabelings: [
          { action: 'keep', sourceLabels: ['__meta_kubernetes_service_name'], regex: FULLNAME },
          { action: 'replace', targetLabel: 'site', replacement: 'dc1' },
        ],
        metricRelabelings: [{ action: 'drop', sourceLabels: ['__name__'], regex: 'metalboot_nodejs_gc_.*' }],
      },
    ]);
    // Its selector picks both Services (same labels); the keep relabeling leaves the chart's.
    const services = docs.filter((d) => d.kind === 'Service');
    expect(services.map((s) => s.metadata.name).sort()).toEqual([FULLNAME, `${FULLNAME}-provisioning`]);
    for (const s of services) expect(s.metadata.labels).toMatchObject(sm.spec.selector.matchLabels);
    // The port named http is the container's HTTP port, where /metrics is served.
    const service = docs.find((d) => d.kind === 'Service' && d.metadata.name === FULLNAME)!;
    expect(service.spec.ports).toContainEqual({ name: 'http', port: 9090, targetPort: 'http', protocol: 'TCP' });
    const container = docs.find((d) => d.kind === 'Deployment')!.spec.template.spec.containers[0];
    expect(container.ports).toContainEqual(expect.objectContaining({ name: 'http', containerPort: 9090 }));
    expect(container.args).toContain('--http-listen=0.0.0.0:9090');
  });

  it.each([
    [
      'a ServiceMonitor without the Service',
      { service: { enabled: false }, monitoring: { serviceMonitor: { enabled: true } } },
      /monitoring\.serviceMonitor\.enabled needs service\.enabled/,
    ],
    [
      'a misspelt key',
      { monitoring: { serviceMonitor: { enabeld: true } } },
      /additional properties 'enabeld' not allowed/,
    ],
    [
      'an interval that is not a duration',
      { monitoring: { serviceMonitor: { interval: '30' } } },
      /monitoring\/serviceMonitor\/interval/,
    ],
    [
      'disabling an alert that does not exist',
      { monitoring: { prometheusRule: { disabled: { MetalbootDhcpAdressDeclined: true } } } },
      /additional properties 'MetalbootDhcpAdressDeclined' not allowed/,
    ],
    [
      'a label key the sidecar could not have',
      { monitoring: { grafanaDashboard: { labelKey: 'grafana dashboard' } } },
      /monitoring\/grafanaDashboard\/labelKey/,
    ],
  ])('refuses %s', async (_name, values, message) => {
    expect(await renderError(values)).toMatch(message);
  });

  it("the PrometheusRule carries the rule file's alerts, less the disabled, with alertLabels, and MetalbootDown", async () => {
    const docs = await render({
      monitoring: {
        serviceMonitor: { enabled: true },
        prometheusRule: {
          enabled: true,
          labels: { release: 'kube-prometheus-stack' },
          alertLabels: { team: 'metal3', severity: 'page' },
          disabled: { MetalbootDhcpAddressDeclined: true, MetalbootEventLoopLagging: true },
        },
      },
    });
    const pr = one(docs, 'PrometheusRule');
    expect(pr.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(pr.metadata.labels).toMatchObject({ release: 'kube-prometheus-stack' });
    const groups = pr.spec.groups as Group[];
    const expected = ruleFileGroups().map((g) => ({
      name: g.name,
      rules: g.rules
        .filter((r) => r.alert !== 'MetalbootDhcpAddressDeclined' && r.alert !== 'MetalbootEventLoopLagging')
        // The alert's own severity is kept.
        .map((r) => ({ ...r, labels: { team: 'metal3', ...r.labels } })),
    }));
    expect(groups.slice(0, -1)).toEqual(expected);
    const job = `job="${FULLNAME}", namespace="${NAMESPACE}"`;
    expect(groups.at(-1)).toEqual({
      name: 'metalboot.scrape',
      rules: [
        {
          alert: 'MetalbootDown',
          expr: `up{${job}} == 0 or absent(up{${job}})`,
          for: '5m',
          labels: { severity: 'critical', team: 'metal3' },
          annotations: {
            summary: expect.any(String),
            description: expect.stringContaining(
              `kubectl -n ${NAMESPACE} get pods -l app.kubernetes.io/instance=${RELEASE}`,
            ),
          },
        },
      ],
    });
  });

  it('the PrometheusRule has no MetalbootDown without the ServiceMonitor (no job to name)', async () => {
    const pr = one(await render({ monitoring: { prometheusRule: { enabled: true } } }), 'PrometheusRule');
    expect((pr.spec.groups as Group[]).map((g) => g.name)).toEqual(ruleFileGroups().map((g) => g.name));
  });

  it("the dashboard ConfigMap holds dashboards/metalboot.json under the sidecar's label", async () => {
    const file = readFileSync(path.join(CHART, 'dashboards/metalboot.json'), 'utf8');
    const defaults = (await render(ALL_ON)).find(isDashboard)!;
    expect(defaults.metadata.namespace).toBe(NAMESPACE);
    expect(defaults.metadata.labels).toMatchObject({ grafana_dashboard: '1', 'app.kubernetes.io/instance': RELEASE });
    expect(defaults.metadata.annotations).toBeUndefined();
    expect(Object.keys(defaults.data)).toEqual(['metalboot.json']);
    expect(defaults.data['metalboot.json']).toBe(file.trim());
    expect(JSON.parse(defaults.data['metalboot.json'])).toMatchObject({ uid: 'metalboot', title: 'metalboot' });

    const custom = (
      await render({
        monitoring: {
          grafanaDashboard: {
            enabled: true,
            labelKey: 'example.com/dashboard',
            labelValue: 'metal3',
            labels: { team: 'metal3' },
            annotations: { grafana_folder: 'Metal3' },
            namespace: 'monitoring',
          },
        },
      })
    ).find(isDashboard)!;
    expect(custom.metadata.namespace).toBe('monitoring');
    expect(custom.metadata.labels).toMatchObject({ 'example.com/dashboard': 'metal3', team: 'metal3' });
    expect(custom.metadata.labels.grafana_dashboard).toBeUndefined();
    expect(custom.metadata.annotations).toEqual({ grafana_folder: 'Metal3' });
  });
});

// --- promtool ------------------------------------------------------------------------------

/** Series of one pod, as the ServiceMonitor's scrape labels them. */
const POD = { namespace: NAMESPACE, pod: `${FULLNAME}-7d9f-abcde`, job: FULLNAME, instance: '10.244.1.7:8080' };
const series = (name: string, labels: Record<string, string>, values: string, of = POD) => ({
  series: `${name}{${Object.entries({ ...of, ...labels })
    .map(([k, v]) => `${k}="${v}"`)
    .join(', ')}}`,
  values,
});
const POD_B = { ...POD, pod: `${FULLNAME}-7d9f-fghij`, instance: '10.244.2.9:8080' };
const byPod = { namespace: POD.namespace, pod: POD.pod };

interface AlertCase {
  readonly alert: string;
  readonly what: string;
  readonly input: readonly { series: string; values: string }[];
  readonly at: string;
  /** The labels of each alert expected at `at`, beyond alertname and the rule's own; [] for none. */
  readonly alerts: readonly Record<string, string>[];
  /** What {{ $value }} shows. */
  readonly value?: string;
}

const CASES: readonly AlertCase[] = [
  {
    alert: 'MetalbootDown',
    what: 'a pod that does not answer scrapes',
    input: [series('up', {}, '1 1 0x10')],
    at: '9m',
    alerts: [{ ...POD }],
  },
  {
    alert: 'MetalbootDown',
    what: 'no pod to scrape',
    input: [],
    at: '6m',
    alerts: [{ job: FULLNAME, namespace: NAMESPACE }],
  },
  { alert: 'MetalbootDown', what: 'a pod that answers', input: [series('up', {}, '1x20')], at: '10m', alerts: [] },
  {
    alert: 'MetalbootDhcpHostsRefused',
    what: 'a BareMetalHost without an address asking again and again',
    input: [
      series('metalboot_dhcp_dropped_total', { reason: 'host-not-servable' }, '0+6x30'),
      series('metalboot_dhcp_dropped_total', { reason: 'unknown-host' }, '0+60x30'),
    ],
    at: '25m',
    alerts: [{ ...byPod, reason: 'host-not-servable' }],
  },
  {
    alert: 'MetalbootDhcpHostsRefused',
    what: 'only strangers (unknown-host) dropped',
    input: [series('metalboot_dhcp_dropped_total', { reason: 'unknown-host' }, '0+60x30')],
    at: '25m',
    alerts: [],
  },
  {
    alert: 'MetalbootDhcpLeaseWriteFailing',
    what: 'a full journal disk',
    input: [series('metalboot_dhcp_dropped_total', { reason: 'journal-full' }, '0+2x10')],
    at: '8m',
    alerts: [{ ...byPod, reason: 'journal-full' }],
  },
  {
    alert: 'MetalbootDhcpLeaseConflicts',
    what: 'a third of range REQUESTs lost to another replica',
    input: [
      // 6 conflicts a minute on one replica, 6 range ACKs a minute on each: 6 / (12 + 6).
      series('metalboot_dhcp_dropped_total', { reason: 'lease-conflict' }, '0+6x40'),
      series('metalboot_dhcp_replies_total', { type: 'ACK', source: 'range' }, '0+6x40'),
      series('metalboot_dhcp_replies_total', { type: 'ACK', source: 'range' }, '0+6x40', POD_B),
    ],
    at: '35m',
    alerts: [{ namespace: NAMESPACE, job: FULLNAME }],
  },
  {
    alert: 'MetalbootDhcpLeaseConflicts',
    what: 'a few conflicts among many range ACKs',
    input: [
      series('metalboot_dhcp_dropped_total', { reason: 'lease-conflict' }, '0+1x40'),
      series('metalboot_dhcp_replies_total', { type: 'ACK', source: 'range' }, '0+20x40'),
    ],
    at: '35m',
    alerts: [],
  },
  {
    alert: 'MetalbootDhcpRangeExhausted',
    what: 'a full range',
    input: [series('metalboot_dhcp_dropped_total', { reason: 'pool-exhausted' }, '0+1x20')],
    at: '12m',
    alerts: [{ ...byPod }],
  },
  {
    alert: 'MetalbootDhcpAddressDeclined',
    what: 'one DHCPDECLINE',
    input: [series('metalboot_dhcp_dropped_total', { reason: 'declined' }, '0 0 0 1 1 1 1 1 1 1')],
    at: '6m',
    alerts: [{ ...byPod }],
  },
  {
    alert: 'MetalbootDhcpSourcesLoading',
    what: 'BareMetalHosts that never load',
    input: [series('metalboot_dhcp_dropped_total', { reason: 'sources-loading' }, '0+5x20')],
    at: '17m',
    alerts: [{ ...byPod }],
  },
  {
    alert: 'MetalbootDhcpSendFailing',
    what: 'replies the kernel refuses',
    input: [series('metalboot_dhcp_dropped_total', { reason: 'send-failed' }, '0+5x20')],
    at: '12m',
    alerts: [{ ...byPod }],
  },
  {
    alert: 'MetalbootTftpRequestsRefused',
    what: 'a boot file that is not there',
    input: [series('metalboot_tftp_requests_refused_total', { reason: 'not-found' }, '0+2x30')],
    at: '22m',
    alerts: [{ ...byPod, reason: 'not-found' }],
  },
  {
    alert: 'MetalbootTftpRequestsRefused',
    what: 'write requests (a client error, not the server)',
    input: [series('metalboot_tftp_requests_refused_total', { reason: 'write-request' }, '0+2x30')],
    at: '22m',
    alerts: [],
  },
  {
    alert: 'MetalbootTftpTransfersFailing',
    what: 'a fifth of transfers timing out',
    input: [
      series('metalboot_tftp_transfers_started_total', {}, '0+10x40'),
      series('metalboot_tftp_transfers_failed_total', { reason: 'timeout' }, '0+2x40'),
    ],
    at: '35m',
    alerts: [{ ...byPod }],
  },
  {
    alert: 'MetalbootHostsStuckBooting',
    what: 'a host silent for 15 minutes after its iPXE stage',
    input: [series('metalboot_boot_oldest_idle_seconds', { state: 'ipxe' }, '0+60x20')],
    at: '17m',
    alerts: [{ ...byPod, state: 'ipxe' }],
  },
  {
    alert: 'MetalbootHostsStuckBooting',
    what: 'a host that reached its agent and went quiet (done inspecting, not stuck)',
    input: [series('metalboot_boot_oldest_idle_seconds', { state: 'agent' }, '0+60x20')],
    at: '17m',
    alerts: [],
  },
  {
    alert: 'MetalbootImageRequestsFailing',
    what: 'hosts getting 502s',
    input: [series('metalboot_image_proxy_requests_total', { result: 'error' }, '0+3x20')],
    at: '12m',
    alerts: [{ ...byPod }],
  },
  {
    alert: 'MetalbootImageUpstreamFailing',
    what: "Ironic's httpd refusing connections",
    input: [series('metalboot_image_proxy_upstream_failures_total', { reason: 'refused' }, '0+3x20')],
    at: '17m',
    alerts: [{ ...byPod, reason: 'refused' }],
  },
  {
    alert: 'MetalbootImageProxySaturated',
    what: 'downloads turned away',
    input: [series('metalboot_image_proxy_requests_total', { result: 'busy' }, '0+3x20')],
    at: '17m',
    alerts: [{ ...byPod }],
  },
  {
    alert: 'MetalbootImageWorkerRestarting',
    what: 'the worker died once',
    input: [series('metalboot_image_worker_restarts_total', {}, '0 0 0 1 1 1 1 1')],
    at: '6m',
    alerts: [{ ...byPod }],
  },
  {
    alert: 'MetalbootNoLeader',
    what: 'two followers and no leader',
    input: [series('metalboot_leader', {}, '0x10'), series('metalboot_leader', {}, '0x10', POD_B)],
    at: '7m',
    alerts: [{ namespace: NAMESPACE, job: FULLNAME }],
  },
  {
    alert: 'MetalbootNoLeader',
    what: 'a leader and a follower',
    input: [series('metalboot_leader', {}, '1x10'), series('metalboot_leader', {}, '0x10', POD_B)],
    at: '7m',
    alerts: [],
  },
  {
    alert: 'MetalbootSeveralLeaders',
    what: 'two replicas that both lead',
    input: [series('metalboot_leader', {}, '1x10'), series('metalboot_leader', {}, '1x10', POD_B)],
    at: '7m',
    alerts: [{ namespace: NAMESPACE, job: FULLNAME }],
    value: '2',
  },
  {
    alert: 'MetalbootKubeWatchDisconnected',
    what: 'no BareMetalHost watch',
    input: [series('metalboot_kube_connected', {}, '1 1 0x15')],
    at: '14m',
    alerts: [{ ...byPod }],
  },
  {
    alert: 'MetalbootNotReady',
    what: 'a readiness check that keeps failing',
    input: [
      series('metalboot_readiness_check_ok', { check: 'sources' }, '0x15'),
      series('metalboot_readiness_check_ok', { check: 'dhcp' }, '1x15'),
    ],
    at: '12m',
    alerts: [{ ...byPod, check: 'sources' }],
  },
  {
    alert: 'MetalbootRestarting',
    what: 'three starts in ten minutes',
    input: [series('metalboot_process_start_time_seconds', {}, '1000 1000 1000 1180 1180 1300 1300 1600 1600 1600')],
    at: '9m',
    alerts: [{ ...POD }],
  },
  {
    alert: 'MetalbootEventLoopLagging',
    what: 'a main thread 200 ms late',
    input: [series('metalboot_nodejs_eventloop_lag_p99_seconds', {}, '0.2x15')],
    at: '12m',
    alerts: [{ ...byPod }],
  },
];

/** An annotation as Prometheus expands it for an alert with `labels`; a label it lacks fails the test. */
function expand(template: string, labels: Record<string, string>, value: string | undefined, where: string): string {
  const out = template
    .replace(/\{\{\s*\$labels\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g, (_m, name: string) => {
      const v = labels[name];
      if (v === undefined) throw new Error(`${where}: {{ $labels.${name} }}, but the alert has no label ${name}`);
      return v;
    })
    .replace(/\{\{\s*\$value\s*\}\}/g, () => {
      if (value === undefined) throw new Error(`${where}: {{ $value }} without a value in the case`);
      return value;
    });
  if (out.includes('{{')) throw new Error(`${where}: a template this test cannot expand: ${out}`);
  return out;
}

describe('the rendered alerts under promtool', () => {
  let rules: Rule[];
  let rulesFile: string;

  beforeAll(async () => {
    const pr = one(
      await render({
        monitoring: {
          serviceMonitor: { enabled: true },
          prometheusRule: { enabled: true, alertLabels: { team: 'metal3' } },
        },
      }),
      'PrometheusRule',
    );
    rules = (pr.spec.groups as Group[]).flatMap((g) => g.rules);
    rulesFile = scratchFile('rules.yaml', stringify({ groups: pr.spec.groups }));
  });

  it('promtool check rules accepts them', async () => {
    const out = await exec(promtool, ['check', 'rules', rulesFile]);
    expect(out.code, `${out.stdout}\n${out.stderr}`).toBe(0);
    expect(out.stdout).toContain(`SUCCESS: ${rules.length} rules found`);
  });

  it('every alert has a case below that makes it fire', () => {
    const fired = new Set(CASES.filter((c) => c.alerts.length > 0).map((c) => c.alert));
    expect(rules.map((r) => r.alert).filter((a) => !fired.has(a))).toEqual([]);
  });

  it('promtool test rules: each alert fires on its case, with its labels and expanded annotations, and not on the others', async () => {
    const tests = CASES.map((c) => {
      const rule = rules.find((r) => r.alert === c.alert);
      if (rule === undefined) throw new Error(`no alert ${c.alert}`);
      return {
        name: `${c.alert}: ${c.what}`,
        interval: '1m',
        input_series: c.input,
        alert_rule_test: [
          {
            eval_time: c.at,
            alertname: c.alert,
            exp_alerts: c.alerts.map((labels) => {
              const all = { ...labels, ...rule.labels };
              return {
                exp_labels: all,
                exp_annotations: Object.fromEntries(
                  Object.entries(rule.annotations).map(([k, v]) => [
                    k,
                    expand(v, all, c.value, `${c.alert} annotation ${k}`),
                  ]),
                ),
              };
            }),
          },
        ],
      };
    });
    const testFile = scratchFile(
      'rules.test.yaml',
      stringify({ rule_files: [path.basename(rulesFile)], evaluation_interval: '1m', tests }),
    );
    const out = await exec(promtool, ['test', 'rules', testFile]);
    expect(out.code, `${out.stdout}\n${out.stderr}`).toBe(0);
    expect(out.stdout).toContain('SUCCESS');
  });
});
