/**
 * The Helm chart, rendered by the real `helm` (test/support/helm.ts fetches it once into
 * .cache/tools) with default and non-default values: the defaults (Multus with vCP's default
 * vip), hostNetwork, no NetworkAttachmentDefinition, TFTP off, replicas behind the provisioning
 * Service, every value set (with a --config ConfigMap), the watcher off, and the values files
 * the vCluster Platform documents for its DHCP server chart (test/fixtures/vcp/). Each rendering
 * must pass `helm lint --strict`, be valid YAML of the expected kinds, and its container
 * arguments must be accepted by metalboot's own configuration loader with the container's
 * environment (SERVER_IP from the vip or the pod IP), giving the configuration the values asked
 * for. Invalid, misspelt or mistyped values must fail with a message that names the value.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { loadConfig, POD_NAMESPACE_FILE, type Config } from '../../src/config/load.js';
import { expandString } from '../../src/config/expand.js';
import { formatIpv4 } from '../../src/net/ipv4.js';
import { helmBinary } from '../support/helm.js';

const run = promisify(execFile);
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CHART = path.join(REPO, 'chart');
/** The values files of vCP's documentation, as written there. */
const VCP_FIXTURES = path.join(REPO, 'test/fixtures/vcp');
const RELEASE = 'mb';
const NAMESPACE = 'metal3';
const FULLNAME = `${RELEASE}-metalboot`;
/** What the downward API gives the pod in these tests. */
const POD_IP = '10.244.1.7';
const NODE_NAME = 'node-a';

/** A parsed manifest: its shape is what the assertions check. */
// biome-ignore lint/suspicious/noExplicitAny: a parsed manifest is navigated freely; the assertions check its shape
type Obj = Record<string, any>;
type Values = Record<string, unknown>;

interface Rendered {
  readonly docs: readonly Obj[];
  readonly sources: ReadonlySet<string>;
  readonly deployment: Obj;
  readonly pod: Obj;
  readonly container: Obj;
  readonly args: readonly string[];
  /** The container's environment as the kubelet would set it (downward API filled in). */
  readonly env: Readonly<Record<string, string>>;
  /** metalboot's configuration from those arguments and that environment. */
  readonly config: Config;
  kinds(): string[];
  find(kind: string, name?: string): Obj | undefined;
}

let helm: string;
let scratch: string;
const renderedSources = new Set<string>();

beforeAll(async () => {
  helm = await helmBinary();
  scratch = mkdtempSync(path.join(tmpdir(), 'metalboot-chart-'));
}, 600_000);

afterAll(() => {
  if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
});

let valuesFileCount = 0;
function valuesFile(values: Values): string {
  const file = path.join(scratch, `values-${++valuesFileCount}.yaml`);
  writeFileSync(file, JSON.stringify(values, null, 2)); // JSON is YAML
  return file;
}

async function helmRun(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(helm, args, { maxBuffer: 16 * 1024 * 1024, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as Error & { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? e.message };
  }
}

/** The container's environment, with the downward API fields a pod would get. */
function containerEnv(container: Obj): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of (container.env ?? []) as Obj[]) {
    if (typeof e.value === 'string') env[e.name] = expandString(e.value, env);
    else if (e.valueFrom?.fieldRef?.fieldPath === 'status.podIP') env[e.name] = POD_IP;
    else if (e.valueFrom?.fieldRef?.fieldPath === 'spec.nodeName') env[e.name] = NODE_NAME;
    else throw new Error(`env ${e.name}: no stand-in for ${JSON.stringify(e.valueFrom)}`);
  }
  return env;
}

/** The files the container sees from ConfigMaps the chart renders: path → content. */
function mountedConfigMapFiles(docs: readonly Obj[], pod: Obj, container: Obj): Map<string, string> {
  const files = new Map<string, string>();
  for (const mount of (container.volumeMounts ?? []) as Obj[]) {
    const volume = ((pod.volumes ?? []) as Obj[]).find((v) => v.name === mount.name);
    const cm = docs.find((d) => d.kind === 'ConfigMap' && d.metadata.name === volume?.configMap?.name);
    for (const [key, text] of Object.entries((cm?.data ?? {}) as Record<string, string>))
      files.set(`${mount.mountPath}/${key}`, text);
  }
  return files;
}

/** Values for a rendering: an object, or a values file of its own. */
type ValuesSource = Values | { readonly file: string };

function valuesPath(values: ValuesSource): string {
  return 'file' in values && typeof values.file === 'string' ? values.file : valuesFile(values);
}

interface RenderOptions {
  /**
   * Flags a values file passes that metalboot does not have yet: the loader must refuse exactly
   * these (as unknown flags) and accept the arguments without them.
   */
  readonly pendingFlags?: readonly string[];
}

async function render(values: ValuesSource, options: RenderOptions = {}): Promise<Rendered> {
  const file = valuesPath(values);
  const lint = await helmRun(['lint', CHART, '--strict', '--namespace', NAMESPACE, '--values', file]);
  expect(lint.code, `helm lint --strict:\n${lint.stdout}\n${lint.stderr}`).toBe(0);
  const out = await helmRun(['template', RELEASE, CHART, '--namespace', NAMESPACE, '--values', file]);
  expect(out.code, `helm template:\n${out.stderr}`).toBe(0);
  // Values of the chart's own shape render without Helm's coalescing warnings.
  expect(out.stderr).not.toMatch(/warning/i);

  const sources = new Set([...out.stdout.matchAll(/^# Source: metalboot\/(templates\/\S+)$/gm)].map((m) => m[1]!));
  for (const s of sources) renderedSources.add(s);
  const docs: Obj[] = [];
  for (const doc of parseAllDocuments(out.stdout)) {
    expect(doc.errors.map((e) => e.message)).toEqual([]);
    const obj = doc.toJS() as Obj | null;
    if (obj === null) continue;
    expect(typeof obj.apiVersion).toBe('string');
    expect(typeof obj.kind).toBe('string');
    expect(obj.metadata?.name).toMatch(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
    docs.push(obj);
  }
  const find = (kind: string, name?: string) =>
    docs.find((d) => d.kind === kind && (name === undefined || d.metadata.name === name));
  const deployments = docs.filter((d) => d.kind === 'Deployment');
  expect(deployments).toHaveLength(1);
  const deployment = deployments[0]!;
  const pod = deployment.spec.template.spec as Obj;
  expect(pod.containers).toHaveLength(1);
  const container = pod.containers[0] as Obj;
  const args = container.args as string[];
  expect(
    args.every((a) => typeof a === 'string' && a.startsWith('--')),
    `args: ${args.join(' ')}`,
  ).toBe(true);
  const env = containerEnv(container);
  const files = mountedConfigMapFiles(docs, pod, container);
  // The kubelet expands $(VAR) in args from the container's environment; metalboot does too.
  // What the kubelet adds to every container: the API server's Service in the environment and,
  // with the token mounted, the service account's namespace file.
  const kubeletEnv = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443', ...env };
  if (pod.automountServiceAccountToken === true) files.set(POD_NAMESPACE_FILE, NAMESPACE);
  const load = (argv: readonly string[]) =>
    loadConfig({
      argv: argv.map((a) => expandString(a, env)),
      env: kubeletEnv,
      readFile: (p) => {
        const text = files.get(p);
        if (text === undefined) throw Object.assign(new Error(`ENOENT: ${p}`), { code: 'ENOENT' });
        return text;
      },
      localAddresses: () => [],
    });
  const pending = options.pendingFlags ?? [];
  const isPending = (a: string) => pending.some((f) => a === f || a.startsWith(`${f}=`));
  if (pending.length > 0) {
    const refused = load(args);
    expect(refused.kind === 'invalid' ? refused.errors : [], 'the flags metalboot does not have yet').toEqual(
      pending.map((f) => `${f}: unknown flag (see --help)`),
    );
  }
  const loaded = load(args.filter((a) => !isPending(a)));
  if (loaded.kind !== 'config')
    throw new Error(`metalboot refuses the chart's arguments ${JSON.stringify(args)}: ${JSON.stringify(loaded)}`);
  return {
    docs,
    sources,
    deployment,
    pod,
    container,
    args,
    env,
    config: loaded.config,
    kinds: () => docs.map((d) => d.kind).sort(),
    find,
  };
}

async function renderError(values: Values): Promise<string> {
  const out = await helmRun(['template', RELEASE, CHART, '--namespace', NAMESPACE, '--values', valuesFile(values)]);
  expect(out.code, 'helm template should fail').not.toBe(0);
  return out.stderr;
}

/** Checks that hold for every rendering. */
function commonChecks(r: Rendered, v: { httpPort: number; hostNetwork: boolean }): void {
  const { container, pod, deployment } = r;
  // Probes on the HTTP port: liveness /healthz, readiness /readyz.
  const httpPort = (container.ports as Obj[]).find((p) => p.name === 'http');
  expect(httpPort).toMatchObject({ containerPort: v.httpPort, protocol: 'TCP' });
  expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
  expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
  expect(container.startupProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
  expect(r.config.http.listen.port).toBe(v.httpPort);
  // SERVER_IP is always there; $(SERVER_IP) is all that --server-ip refers to.
  expect(r.env.SERVER_IP).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
  expect(r.args.filter((a) => a.startsWith('--server-ip'))).toEqual([
    expect.stringMatching(/^--server-ip=\$\(SERVER_IP\)(\/\d+)?$/),
  ]);
  expect(formatIpv4(r.config.dhcp.serverIp.address)).toBe(r.env.SERVER_IP);
  // Root under hostNetwork, uid 1000 otherwise; NET_BIND_SERVICE either way, and never
  // allowPrivilegeEscalation: false (it would disable the image's file capability).
  const sc = container.securityContext as Obj;
  if (v.hostNetwork) {
    expect(pod.hostNetwork).toBe(true);
    expect(pod.dnsPolicy).toBe('ClusterFirstWithHostNet');
    expect(sc).toMatchObject({ runAsUser: 0, runAsGroup: 0, runAsNonRoot: false });
  } else {
    expect(pod.hostNetwork).toBeUndefined();
    expect(sc).toMatchObject({ runAsUser: 1000, runAsNonRoot: true });
  }
  expect(sc.capabilities.add).toContain('NET_BIND_SERVICE');
  expect(sc.allowPrivilegeEscalation).not.toBe(false);
  // Router advertisements (radvd): NET_RAW for its raw socket, /tmp for its files; neither when off.
  const tmp = ((pod.volumes ?? []) as Obj[]).find((v) => v.name === 'tmp');
  const tmpMount = ((container.volumeMounts ?? []) as Obj[]).find((m) => m.name === 'tmp');
  if (r.config.routerAdvertisements.enabled) {
    expect(sc.capabilities.add).toContain('NET_RAW');
    expect(tmp).toEqual({ name: 'tmp', emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } });
    expect(tmpMount).toEqual({ name: 'tmp', mountPath: '/tmp' });
  } else {
    expect(sc.capabilities?.add ?? []).not.toContain('NET_RAW');
    expect(tmp).toBeUndefined();
    expect(tmpMount).toBeUndefined();
  }
  // Selectors match the pod; Services target ports the container has.
  const podLabels = deployment.spec.template.metadata.labels as Obj;
  expect(podLabels).toMatchObject(deployment.spec.selector.matchLabels);
  const portNames = new Set((container.ports as Obj[]).map((p) => p.name));
  for (const svc of r.docs.filter((d) => d.kind === 'Service')) {
    expect(podLabels).toMatchObject(svc.spec.selector);
    for (const p of svc.spec.ports as Obj[])
      expect(portNames, `${svc.metadata.name} → ${p.targetPort}`).toContain(p.targetPort);
  }
  // The ServiceAccount the pod runs as exists when the chart creates one.
  const sa = r.find('ServiceAccount');
  if (sa !== undefined) expect(pod.serviceAccountName).toBe(sa.metadata.name);
}

/** The RBAC of the BareMetalHost watcher, as a ClusterRole or a Role in `namespace`. */
function expectRbac(r: Rendered, namespace: string | undefined): void {
  const roleKind = namespace === undefined ? 'ClusterRole' : 'Role';
  const role = r.find(roleKind);
  expect(role, roleKind).toBeDefined();
  expect(role!.metadata.namespace).toBe(namespace);
  const rules = role!.rules as Obj[];
  expect(rules).toContainEqual({
    apiGroups: ['metal3.io'],
    resources: ['baremetalhosts'],
    verbs: ['get', 'list', 'watch'],
  });
  expect(rules).toContainEqual({ apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] });
  expect(rules).toContainEqual({ apiGroups: ['events.k8s.io'], resources: ['events'], verbs: ['create', 'patch'] });
  const binding = r.find(`${roleKind}Binding`);
  expect(binding!.roleRef).toEqual({
    apiGroup: 'rbac.authorization.k8s.io',
    kind: roleKind,
    name: role!.metadata.name,
  });
  expect(binding!.subjects).toEqual([{ kind: 'ServiceAccount', name: r.pod.serviceAccountName, namespace: NAMESPACE }]);
  expect(r.args).toContain('--kube');
  expect(r.config.sources.kube.enabled).toBe(true);
  expect(r.pod.automountServiceAccountToken).toBe(true);
}

function nadConfig(r: Rendered): Obj {
  const nad = r.find('NetworkAttachmentDefinition');
  expect(nad).toBeDefined();
  expect(nad!.apiVersion).toBe('k8s.cni.cncf.io/v1');
  return JSON.parse(nad!.spec.config as string) as Obj;
}

const VIP = '192.168.100.2/24';

describe('helm chart', () => {
  it("the bare defaults: vCP's defaults (vip 192.168.100.3/24, pull Always, no resources), and metalboot starts", async () => {
    const r = await render({});
    commonChecks(r, { httpPort: 8080, hostNetwork: false });
    expect(r.container.imagePullPolicy).toBe('Always');
    expect(r.container.resources).toBeUndefined();
    expect(r.container.env).toContainEqual({ name: 'SERVER_IP', value: '192.168.100.3' });
    expect(nadConfig(r).ipam).toEqual({ type: 'static', addresses: [{ address: '192.168.100.3/24' }] });
    expect(r.args).toEqual([
      '--server-ip=$(SERVER_IP)/24',
      '--dhcp-listen=0.0.0.0:67',
      '--tftp-listen=$(SERVER_IP):69',
      '--http-listen=0.0.0.0:8080',
      '--image-listen=0.0.0.0:8082',
      '--callback-listen=0.0.0.0:8081',
      '--kube',
    ]);
    expect(r.config.dhcp.serverIp).toEqual({ address: r.config.dhcp.serverIp.address, prefix: 24 });
    expect(formatIpv4(r.config.dhcp.serverIp.address)).toBe('192.168.100.3');
    expect(r.config.dhcp.advertiseIP).toBeUndefined();
    expect(r.config.tftp.listen).toEqual({ host: '192.168.100.3', port: 69 });
    expect(r.kinds()).not.toContain('ConfigMap');
    expect(r.find('Service', `${FULLNAME}-provisioning`)).toBeUndefined();
  });

  it.each([
    [
      'replicas > 1 sharing one vip',
      { replicas: 2, networkAttachmentDefinition: { vip: VIP } },
      /replicas > 1 with a NetworkAttachmentDefinition/,
    ],
    [
      'an empty vip while the attachment is enabled',
      { networkAttachmentDefinition: { vip: '' } },
      /networkAttachmentDefinition\.vip is required/,
    ],
    [
      'a config that is not JSON',
      { networkAttachmentDefinition: { vip: VIP, config: '{"type": "bridge",' } },
      /networkAttachmentDefinition\.config is not a JSON object/,
    ],
  ])('refuses %s', async (_name, values, message) => {
    expect(await renderError(values)).toMatch(message);
  });

  // values.schema.json: Helm names the value's path (and the key, for an unknown one).
  it.each([
    ['a misspelt top-level value', { replica: 2 }, /at '': additional properties 'replica' not allowed/],
    [
      'a misspelt listen address',
      { dhcp: { listenAdr: '0.0.0.0:67' } },
      /at '\/dhcp': additional properties 'listenAdr' not allowed/,
    ],
    ['a port given as a string', { dhcp: { port: '67' } }, /at '\/dhcp\/port': got string, want integer/],
    [
      'a misspelt Service field',
      { provisioningService: { type: 'LoadBalancer', loadBalancerIp: '192.168.100.20' } },
      /at '\/provisioningService': additional properties 'loadBalancerIp' not allowed/,
    ],
    [
      'a misspelt Service metadata key',
      { provisioningService: { type: 'LoadBalancer', metadata: { annotation: { a: 'b' } } } },
      /at '\/provisioningService\/metadata': additional properties 'annotation' not allowed/,
    ],
    [
      'an unknown Service type',
      { provisioningService: { type: 'LoadBalancr' } },
      /at '\/provisioningService\/type': value must be one of/,
    ],
    [
      'a vip without its prefix',
      { networkAttachmentDefinition: { vip: '192.168.100.2' } },
      /at '\/networkAttachmentDefinition\/vip': '192\.168\.100\.2' does not match pattern/,
    ],
    [
      'a server address that is not an address',
      { hostNetwork: true, dhcp: { serverIP: 'auto' } },
      /at '\/dhcp\/serverIP': 'auto' does not match pattern/,
    ],
    ['a pull policy that does not exist', { image: { pullPolicy: 'Sometimes' } }, /at '\/image\/pullPolicy'/],
    ['hostNetwork as a string', { hostNetwork: 'yes' }, /at '\/hostNetwork': got string, want boolean/],
    [
      'an interface name with a separator',
      { routerAdvertisements: { interface: 'eth0,eth1' } },
      /at '\/routerAdvertisements\/interface': 'eth0,eth1' does not match pattern/,
    ],
    [
      'a misspelt router-advertisement value',
      { routerAdvertisements: { enable: false } },
      /at '\/routerAdvertisements': additional properties 'enable' not allowed/,
    ],
  ])('the schema refuses %s, naming it', async (_name, values, message) => {
    expect(await renderError(values)).toMatch(message);
  });

  it('Multus (defaults with the vip): bridge br0 with the vip as static IPAM, SERVER_IP from the vip', async () => {
    const r = await render({ networkAttachmentDefinition: { vip: VIP } });
    commonChecks(r, { httpPort: 8080, hostNetwork: false });
    expect(r.kinds()).toEqual([
      'ClusterRole',
      'ClusterRoleBinding',
      'Deployment',
      'NetworkAttachmentDefinition',
      'Service',
      'ServiceAccount',
    ]);
    expect(nadConfig(r)).toEqual({
      cniVersion: '0.3.1',
      type: 'bridge',
      bridge: 'br0',
      name: `${FULLNAME}-provisioning`,
      ipam: { type: 'static', addresses: [{ address: VIP }] },
    });
    expect(r.find('NetworkAttachmentDefinition')!.metadata.annotations).toBeUndefined();
    expect(r.deployment.spec.template.metadata.annotations['k8s.v1.cni.cncf.io/networks']).toBe(
      `${NAMESPACE}/${FULLNAME}-provisioning`,
    );
    expect(r.deployment.spec.strategy).toEqual({ type: 'Recreate' });
    expect(r.container.env).toContainEqual({ name: 'SERVER_IP', value: '192.168.100.2' });
    expect(r.args).toEqual([
      '--server-ip=$(SERVER_IP)/24',
      '--dhcp-listen=0.0.0.0:67',
      '--tftp-listen=$(SERVER_IP):69',
      '--http-listen=0.0.0.0:8080',
      '--image-listen=0.0.0.0:8082',
      '--callback-listen=0.0.0.0:8081',
      '--kube',
    ]);
    expect(r.config.dhcp.serverIp.prefix).toBe(24);
    expect(r.config.dhcp.listen).toEqual({ host: '0.0.0.0', port: 67 });
    expect(r.config.tftp.listen).toEqual({ host: '192.168.100.2', port: 69 });
    expect(r.config.tftp.singlePort).toBe(false);
    expect(r.config.proxy.callbackListen).toEqual({ host: '0.0.0.0', port: 8081 });
    expect(r.config.http.advertiseUrl).toBe('http://192.168.100.2:8080');
    expect(r.config.http.imageListen).toEqual({ host: '0.0.0.0', port: 8082 });
    // No proxy.ironicHttpUrl, nothing to proxy: no worker, images stay on the HTTP port.
    expect(r.config.http.imageAdvertiseUrl).toBe('http://192.168.100.2:8080');
    expect(r.container.image).toBe('metalboot:0.1.0');
    expect(r.container.ports).toEqual([
      { name: 'dhcp', containerPort: 67, protocol: 'UDP' },
      { name: 'tftp', containerPort: 69, protocol: 'UDP' },
      { name: 'http', containerPort: 8080, protocol: 'TCP' },
      { name: 'images', containerPort: 8082, protocol: 'TCP' },
      { name: 'callback', containerPort: 8081, protocol: 'TCP' },
    ]);
    expect(r.container.securityContext).toEqual({
      runAsNonRoot: true,
      runAsUser: 1000,
      runAsGroup: 1000,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'], add: ['NET_BIND_SERVICE', 'NET_RAW'] },
    });
    expectRbac(r, undefined);
  });

  it('hostNetwork: root, no NetworkAttachmentDefinition, SERVER_IP from status.podIP', async () => {
    // The vip is set but ignored: hostNetwork skips the attachment.
    const r = await render({ hostNetwork: true, networkAttachmentDefinition: { vip: VIP } });
    commonChecks(r, { httpPort: 8080, hostNetwork: true });
    expect(r.kinds()).toEqual(['ClusterRole', 'ClusterRoleBinding', 'Deployment', 'Service', 'ServiceAccount']);
    expect(r.deployment.spec.template.metadata.annotations ?? {}).not.toHaveProperty(['k8s.v1.cni.cncf.io/networks']);
    expect(r.container.env).toContainEqual({
      name: 'SERVER_IP',
      valueFrom: { fieldRef: { fieldPath: 'status.podIP' } },
    });
    expect(r.args[0]).toBe('--server-ip=$(SERVER_IP)');
    expect(formatIpv4(r.config.dhcp.serverIp.address)).toBe(POD_IP);
    expect(r.config.tftp.listen).toEqual({ host: POD_IP, port: 69 });
    expect(r.deployment.spec.strategy).toEqual({ type: 'Recreate' });
    expectRbac(r, undefined);
  });

  it('router advertisements: on by default (NET_RAW, /tmp), an interface of choice, or off', async () => {
    const on = await render({ networkAttachmentDefinition: { vip: VIP } });
    commonChecks(on, { httpPort: 8080, hostNetwork: false });
    expect(on.config.routerAdvertisements.enabled).toBe(true);
    expect(on.config.routerAdvertisements.interface).toBeUndefined();
    expect(on.args.filter((a) => a.startsWith('--router-advertisements'))).toEqual([]);

    const chosen = await render({
      networkAttachmentDefinition: { vip: VIP },
      routerAdvertisements: { interface: 'net1' },
    });
    commonChecks(chosen, { httpPort: 8080, hostNetwork: false });
    expect(chosen.args).toContain('--router-advertisements-interface=net1');
    expect(chosen.config.routerAdvertisements).toMatchObject({ enabled: true, interface: 'net1' });

    // Under hostNetwork (root) too: NET_RAW is not among root's capabilities once ALL is dropped.
    const host = await render({ hostNetwork: true });
    commonChecks(host, { httpPort: 8080, hostNetwork: true });
    expect(host.container.securityContext.capabilities).toEqual({
      drop: ['ALL'],
      add: ['NET_BIND_SERVICE', 'NET_RAW'],
    });

    const off = await render({ networkAttachmentDefinition: { vip: VIP }, routerAdvertisements: { enabled: false } });
    commonChecks(off, { httpPort: 8080, hostNetwork: false });
    expect(off.args).toContain('--router-advertisements=false');
    expect(off.config.routerAdvertisements.enabled).toBe(false);
    expect(off.container.securityContext.capabilities).toEqual({ drop: ['ALL'], add: ['NET_BIND_SERVICE'] });
    expect(off.pod.volumes).toBeUndefined();

    // A securityContext of the user's own without capabilities gets NET_RAW alone.
    const own = await render({
      networkAttachmentDefinition: { vip: VIP },
      securityContext: { runAsNonRoot: true, runAsUser: 1000, capabilities: null },
    });
    expect(own.container.securityContext.capabilities).toEqual({ add: ['NET_RAW'] });
  });

  it('dhcp6: off by default; with serverIP, DHCPv6 flags, dual-stack listeners, and metalboot loads them', async () => {
    const off = await render({ networkAttachmentDefinition: { vip: VIP } });
    expect(off.args.some((a) => a.startsWith('--dhcp6'))).toBe(false);
    expect(off.config.dhcp6).toBeUndefined();

    const on = await render({
      networkAttachmentDefinition: { vip: VIP },
      dhcp6: {
        serverIP: 'fd00:77::3/64',
        interface: 'net1',
        ranges: ['fd00:77::100,fd00:77::1ff,600'],
        dns: ['fd00:77::53', 'fd00:77::54'],
        ntp: ['fd00:77::123'],
        domainSearch: ['prov.example'],
      },
      config: { dhcp6: { leaseFile: '/var/lib/metalboot/leases6.journal' } },
    });
    expect(on.args).toEqual(
      expect.arrayContaining([
        '--dhcp6-server-ip=fd00:77::3/64',
        '--dhcp6-interface=net1',
        '--dhcp6-range=fd00:77::100,fd00:77::1ff,600',
        '--dhcp6-dns=fd00:77::53,fd00:77::54',
        '--dhcp6-ntp=fd00:77::123',
        '--dhcp6-domain-search=prov.example',
        '--http-listen=[::]:8080',
        '--callback-listen=[::]:8081',
        '--image-listen=[::]:8082',
      ]),
    );
    const d6 = on.config.dhcp6!;
    expect(d6.interface).toBe('net1');
    expect(d6.ranges).toHaveLength(1);
    expect(d6.leaseFile).toBe('/var/lib/metalboot/leases6.journal');
    expect(on.config.tftp.listen6).toEqual({ host: 'fd00:77::3', port: 69 });
    expect(on.config.http.listen).toEqual({ host: '::', port: 8080 });
    // Dual stack on the attachment: the vip and the IPv6 server address as static IPAM.
    const nad = on.find('NetworkAttachmentDefinition')!;
    expect(JSON.parse(nad.spec.config as string).ipam).toEqual({
      type: 'static',
      addresses: [{ address: VIP }, { address: 'fd00:77::3/64' }],
    });
  });

  it('hostNetwork with dhcp.serverIP: that address and prefix', async () => {
    const r = await render({ hostNetwork: true, dhcp: { serverIP: '172.22.0.2/23' } });
    commonChecks(r, { httpPort: 8080, hostNetwork: true });
    expect(r.container.env).toContainEqual({ name: 'SERVER_IP', value: '172.22.0.2' });
    expect(r.args[0]).toBe('--server-ip=$(SERVER_IP)/23');
    expect(r.config.dhcp.serverIp.prefix).toBe(23);
  });

  it('NetworkAttachmentDefinition disabled: pod network, non-root, SERVER_IP from status.podIP', async () => {
    const r = await render({ networkAttachmentDefinition: { enabled: false } });
    commonChecks(r, { httpPort: 8080, hostNetwork: false });
    expect(r.kinds()).not.toContain('NetworkAttachmentDefinition');
    expect(r.deployment.spec.template.metadata.annotations ?? {}).not.toHaveProperty(['k8s.v1.cni.cncf.io/networks']);
    expect(r.container.env).toContainEqual({
      name: 'SERVER_IP',
      valueFrom: { fieldRef: { fieldPath: 'status.podIP' } },
    });
    expect(formatIpv4(r.config.dhcp.serverIp.address)).toBe(POD_IP);
    expect(r.deployment.spec.strategy).toBeUndefined();
  });

  it('TFTP disabled: --tftp-listen= (""), no TFTP port', async () => {
    const r = await render({ networkAttachmentDefinition: { vip: VIP }, tftp: { listenAddr: '' } });
    commonChecks(r, { httpPort: 8080, hostNetwork: false });
    expect(r.args).toContain('--tftp-listen=');
    expect(r.args).not.toContain('--tftp-single-port');
    expect(r.config.tftp.listen).toBeUndefined();
    expect((r.container.ports as Obj[]).map((p) => p.name)).toEqual(['dhcp', 'http', 'images', 'callback']);
  });

  it('http.imagePort 0: the image proxy in-process on the HTTP port, no images port', async () => {
    const r = await render({ networkAttachmentDefinition: { vip: VIP }, http: { imagePort: 0 } });
    commonChecks(r, { httpPort: 8080, hostNetwork: false });
    expect(r.args.filter((a) => a.startsWith('--image-'))).toEqual([]);
    expect((r.container.ports as Obj[]).map((p) => p.name)).toEqual(['dhcp', 'tftp', 'http', 'callback']);
    expect(r.config.http.imageListen).toBeUndefined();
    expect(r.config.http.imageAdvertiseUrl).toBe('http://192.168.100.2:8080');
  });

  it('http.imageWorkers: that many image worker processes; unset, the binary picks one per core but one', async () => {
    const r = await render({ networkAttachmentDefinition: { vip: VIP }, http: { imageWorkers: 3 } });
    commonChecks(r, { httpPort: 8080, hostNetwork: false });
    expect(r.args).toContain('--image-workers=3');
    expect(r.config.http.imageWorkers).toBe(3);
    const d = await render({ networkAttachmentDefinition: { vip: VIP } });
    expect(d.args.filter((a) => a.startsWith('--image-workers'))).toEqual([]);
    expect(d.config.http.imageWorkers).toBeGreaterThanOrEqual(1);
  });

  it('replicas behind the provisioning Service: UDP 67/69 and TCP http/callback, TFTP single port', async () => {
    const r = await render({
      replicas: 3,
      networkAttachmentDefinition: { enabled: false },
      provisioningService: { type: 'LoadBalancer', loadBalancerIP: '192.168.100.10', externalTrafficPolicy: 'Local' },
    });
    commonChecks(r, { httpPort: 8080, hostNetwork: false });
    expect(r.deployment.spec.replicas).toBe(3);
    expect(r.deployment.spec.strategy).toBeUndefined();
    const svc = r.find('Service', `${FULLNAME}-provisioning`);
    expect(svc).toBeDefined();
    expect(svc!.spec).toMatchObject({
      type: 'LoadBalancer',
      loadBalancerIP: '192.168.100.10',
      externalTrafficPolicy: 'Local',
    });
    expect(svc!.spec.ports).toEqual([
      { name: 'dhcp', port: 67, targetPort: 'dhcp', protocol: 'UDP' },
      { name: 'tftp', port: 69, targetPort: 'tftp', protocol: 'UDP' },
      { name: 'http', port: 8080, targetPort: 'http', protocol: 'TCP' },
      { name: 'images', port: 8082, targetPort: 'images', protocol: 'TCP' },
      { name: 'callback', port: 8081, targetPort: 'callback', protocol: 'TCP' },
    ]);
    expect(r.args).toContain('--tftp-single-port');
    expect(r.args).toContain('--http-advertise-url=http://192.168.100.10:8080');
    expect(r.args.filter((a) => a.startsWith('--image-advertise-url'))).toEqual([]);
    expect(r.config.http.imageAdvertiseUrl).toBe('http://192.168.100.10:8080');
    const withIronic = await render({
      networkAttachmentDefinition: { enabled: false },
      provisioningService: { type: 'LoadBalancer', loadBalancerIP: '192.168.100.10' },
      proxy: { ironicHttpUrl: 'http://ironic.metal3.svc:6180' },
    });
    expect(withIronic.args).toContain('--image-advertise-url=http://192.168.100.10:8082');
    expect(withIronic.config.http.imageAdvertiseUrl).toBe('http://192.168.100.10:8082');
    // DHCP clients must see the Service address as the server (option 54, next-server).
    expect(r.args).toContain('--dhcp-advertise-ip=192.168.100.10');
    expect(formatIpv4(r.config.dhcp.advertiseIP!)).toBe('192.168.100.10');
    expect(formatIpv4(r.config.dhcp.serverIp.address)).toBe(POD_IP);
    expect(r.config.tftp.singlePort).toBe(true);
    expect(r.config.http.advertiseUrl).toBe('http://192.168.100.10:8080');
  });

  it("provisioningService as vCP reads it: any spec field, nested metadata, a ports override, the chart's selector", async () => {
    const ports = [
      { name: 'dhcp', port: 67, targetPort: 'dhcp', protocol: 'UDP' },
      { name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' },
    ];
    const r = await render({
      networkAttachmentDefinition: { enabled: false },
      provisioningService: {
        type: 'NodePort',
        externalTrafficPolicy: 'Local',
        allocateLoadBalancerNodePorts: false,
        sessionAffinity: 'ClientIP',
        loadBalancerSourceRanges: [],
        loadBalancerIP: '',
        selector: { app: 'something-else' },
        metadata: {
          labels: { tier: 'provisioning' },
          annotations: { 'metallb.io/loadBalancerIPs': '192.168.100.30' },
        },
        ports,
      },
    });
    const svc = r.find('Service', `${FULLNAME}-provisioning`)!;
    expect(svc.metadata.labels).toMatchObject({ tier: 'provisioning', 'app.kubernetes.io/name': 'metalboot' });
    expect(svc.metadata.annotations).toEqual({ 'metallb.io/loadBalancerIPs': '192.168.100.30' });
    // Empty fields are left out (Kubernetes reads them as unset); false is a value.
    expect(svc.spec).toEqual({
      type: 'NodePort',
      selector: { 'app.kubernetes.io/name': 'metalboot', 'app.kubernetes.io/instance': RELEASE },
      externalTrafficPolicy: 'Local',
      allocateLoadBalancerNodePorts: false,
      sessionAffinity: 'ClientIP',
      ports,
    });
    // MetalLB's address annotation is the Service's address when nothing else names it.
    expect(r.args).toContain('--dhcp-advertise-ip=192.168.100.30');
    expect(r.config.http.advertiseUrl).toBe('http://192.168.100.30:8080');
  });

  it("provisioningService with this chart's earlier keys: enabled and annotations still work", async () => {
    const r = await render({
      networkAttachmentDefinition: { enabled: false },
      provisioningService: {
        enabled: true,
        annotations: { 'lb.example/pool': 'prov' },
        loadBalancerIP: '192.168.100.10',
        externalIPs: [],
      },
    });
    const svc = r.find('Service', `${FULLNAME}-provisioning`)!;
    expect(svc.spec.type).toBe('LoadBalancer');
    expect(svc.spec.loadBalancerIP).toBe('192.168.100.10');
    expect(svc.spec).not.toHaveProperty('externalIPs');
    expect(svc.spec).not.toHaveProperty('enabled');
    expect(svc.metadata.annotations).toEqual({ 'lb.example/pool': 'prov' });
    expect(r.args).toContain('--dhcp-advertise-ip=192.168.100.10');
    // enabled: false wins over a type.
    const off = await render({
      networkAttachmentDefinition: { enabled: false },
      provisioningService: { enabled: false, type: 'LoadBalancer' },
    });
    expect(off.find('Service', `${FULLNAME}-provisioning`)).toBeUndefined();
    expect(off.args).not.toContain('--tftp-single-port');
  });

  it.each([
    // [name, values, --dhcp-listen, --tftp-listen, --http-listen, --callback-listen]
    [
      "vCP's shape, through tpl",
      { dhcp: { port: 1067 }, tftp: { port: 1069 }, http: { port: 9080 }, proxy: { callbackPort: 9081 } },
      ['0.0.0.0:1067', '$(SERVER_IP):1069', '0.0.0.0:9080', '0.0.0.0:9081'],
    ],
    [
      "vCP's shape, written out",
      {
        dhcp: { listenAddr: '$(SERVER_IP):67' },
        tftp: { listenAddr: '0.0.0.0:69' },
        http: { listenAddr: ':8080' },
        proxy: { callbackListenAddr: '$(SERVER_IP):{{ .Values.proxy.callbackPort }}' },
      },
      ['$(SERVER_IP):67', '0.0.0.0:69', ':8080', '$(SERVER_IP):8081'],
    ],
    [
      "this chart's earlier shape: an address and a port",
      {
        dhcp: { listenAddr: '0.0.0.0', port: 67 },
        tftp: { listenAddr: '$(SERVER_IP)', port: 1069 },
        http: { listenAddr: '0.0.0.0', port: 9080 },
        proxy: { callbackListenAddr: '0.0.0.0', callbackPort: 9081 },
      },
      ['0.0.0.0:67', '$(SERVER_IP):1069', '0.0.0.0:9080', '0.0.0.0:9081'],
    ],
  ])('listen addresses, %s', async (_name, values, [dhcp, tftp, http, callback]) => {
    const r = await render({ networkAttachmentDefinition: { vip: VIP }, ...values });
    expect(r.args).toEqual(
      expect.arrayContaining([
        `--dhcp-listen=${dhcp}`,
        `--tftp-listen=${tftp}`,
        `--http-listen=${http}`,
        `--callback-listen=${callback}`,
      ]),
    );
    const port = (a: string) => Number(a.split(':').at(-1));
    const host = (a: string) => (a.startsWith(':') ? '0.0.0.0' : expandString(a.split(':')[0]!, r.env));
    expect(r.config.dhcp.listen).toEqual({ host: host(dhcp!), port: port(dhcp!) });
    expect(r.config.tftp.listen).toEqual({ host: host(tftp!), port: port(tftp!) });
    expect(r.config.http.listen).toEqual({ host: host(http!), port: port(http!) });
    expect(r.config.proxy.callbackListen).toEqual({ host: host(callback!), port: port(callback!) });
    // The container's ports and the Service's follow the listen addresses.
    const containerPorts = Object.fromEntries((r.container.ports as Obj[]).map((p) => [p.name, p.containerPort]));
    expect(containerPorts).toMatchObject({ dhcp: port(dhcp!), tftp: port(tftp!), http: port(http!) });
    expect(containerPorts.callback).toBe(port(callback!));
  });

  it.each([
    // [name, values, SERVER_IP (env), --server-ip, --dhcp-advertise-ip]
    [
      'the default: the pod itself',
      { networkAttachmentDefinition: { vip: VIP } },
      '192.168.100.2',
      '$(SERVER_IP)/24',
      undefined,
    ],
    ['"": this chart\'s earlier default', { dhcp: { serverIP: '' } }, '192.168.100.3', '$(SERVER_IP)/24', undefined],
    [
      'with a prefix of its own',
      { hostNetwork: true, dhcp: { serverIP: '$(SERVER_IP)/22' } },
      POD_IP,
      '$(SERVER_IP)/22',
      undefined,
    ],
    [
      "an address under hostNetwork: the pod's own",
      { hostNetwork: true, dhcp: { serverIP: '172.22.0.2/23' } },
      '172.22.0.2',
      '$(SERVER_IP)/23',
      undefined,
    ],
    [
      'an address on the pod network without the attachment: the relay target in front',
      { networkAttachmentDefinition: { enabled: false }, dhcp: { serverIP: '192.168.100.20' } },
      POD_IP,
      '$(SERVER_IP)',
      '192.168.100.20',
    ],
    [
      "an address with the provisioning Service: its address, over the Service's",
      {
        hostNetwork: true,
        dhcp: { serverIP: '192.168.100.20' },
        provisioningService: { type: 'LoadBalancer', loadBalancerIP: '192.168.100.10' },
      },
      POD_IP,
      '$(SERVER_IP)',
      '192.168.100.20',
    ],
  ])('dhcp.serverIP, %s', async (_name, values, serverIp, serverIpArg, advertise) => {
    const r = await render(values);
    expect(r.env.SERVER_IP).toBe(serverIp);
    expect(r.args).toContain(`--server-ip=${serverIpArg}`);
    expect(r.args.filter((a) => a.startsWith('--dhcp-advertise-ip'))).toEqual(
      advertise === undefined ? [] : [`--dhcp-advertise-ip=${advertise}`],
    );
    expect(formatIpv4(r.config.dhcp.serverIp.address)).toBe(serverIp);
    expect(r.config.dhcp.advertiseIP === undefined ? undefined : formatIpv4(r.config.dhcp.advertiseIP)).toBe(advertise);
    if (advertise !== undefined) expect(r.config.http.advertiseUrl).toBe(`http://${advertise}:8080`);
  });

  it('every value set: image, scheduling, ports, URLs, namespaced RBAC, extraArgs and extraEnv reach the pod', async () => {
    const macvlan = '{"cniVersion":"0.3.1","type":"macvlan","master":"eno2","mode":"bridge"}';
    const values = {
      image: {
        registry: 'registry.lab.internal:5000/infra',
        repository: 'metalboot',
        tag: '1.2.3',
        pullPolicy: 'IfNotPresent',
      },
      imagePullSecrets: [{ name: 'pull-secret' }],
      fullnameOverride: 'boot',
      podAnnotations: { 'prometheus.io/scrape': 'true' },
      podLabels: { tier: 'provisioning' },
      resources: { requests: { cpu: '250m', memory: '256Mi' }, limits: { memory: '1Gi' } },
      nodeSelector: { 'node-role.kubernetes.io/provisioning': '' },
      tolerations: [{ key: 'provisioning', operator: 'Exists', effect: 'NoSchedule' }],
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [{ matchExpressions: [{ key: 'metal3/prov', operator: 'In', values: ['yes'] }] }],
          },
        },
      },
      securityContext: {
        runAsNonRoot: true,
        runAsUser: 1000,
        runAsGroup: 1000,
        capabilities: { drop: ['ALL'], add: ['NET_BIND_SERVICE'] },
        seccompProfile: { type: 'RuntimeDefault' },
      },
      config: {
        dhcp: { domainName: 'prov.lab', leaseSeconds: 7200 },
        tftp: { maxBlksize: 1428 },
        proxy: { stateDir: '/var/lib/metalboot/proxy' },
      },
      extraArgs: [
        '--inspector-extra-kernel-param=ipa-debug=1',
        '--log-level=debug',
        '--dhcp-hosts=52:54:00:12:34:56,10.20.0.50',
      ],
      extraEnv: [{ name: 'METALBOOT_INSPECTOR_COLLECTORS', value: 'default,logs,pci-devices' }],
      extraVolumes: [{ name: 'cache', emptyDir: { sizeLimit: '30Gi' } }],
      extraVolumeMounts: [{ name: 'cache', mountPath: '/var/cache/metalboot' }],
      networkAttachmentDefinition: {
        name: 'prov-net',
        vip: '10.20.0.5/22',
        resourceName: 'bridge.network.kubevirt.io/br-prov',
        config: macvlan,
      },
      dhcp: { port: 67, listenAddr: '0.0.0.0' },
      tftp: { port: 69, listenAddr: '$(SERVER_IP)', singlePort: true },
      http: {
        port: 9080,
        listenAddr: '0.0.0.0',
        advertiseUrl: 'http://10.20.0.5:9080',
        imagePort: 9082,
        imageAdvertiseUrl: 'http://10.20.0.5:9082',
      },
      proxy: {
        callbackPort: 9081,
        callbackListenAddr: '0.0.0.0',
        callbackAdvertiseUrl: 'http://boot.metal3.svc:9081',
        apiAdvertiseUrl: 'http://10.20.0.5:9080',
        ironicHttpUrl: 'http://ironic.metal3.svc:6180',
        ironicApiUrl: 'https://ironic.metal3.svc:6385',
      },
      kube: { enabled: true, namespace: 'bmh' },
      serviceAccount: { create: true, name: 'boot-sa', annotations: { owner: 'platform' } },
      service: { enabled: true, annotations: { 'prometheus.io/port': '9080' } },
    };
    const r = await render(values);
    commonChecks(r, { httpPort: 9080, hostNetwork: false });
    expect(r.kinds()).toEqual([
      'ConfigMap',
      'Deployment',
      'NetworkAttachmentDefinition',
      'Role',
      'RoleBinding',
      'Service',
      'ServiceAccount',
    ]);
    expect(r.deployment.metadata.name).toBe('boot');
    expect(r.container.image).toBe('registry.lab.internal:5000/infra/metalboot:1.2.3');
    expect(r.container.imagePullPolicy).toBe('IfNotPresent');
    expect(r.pod.imagePullSecrets).toEqual([{ name: 'pull-secret' }]);
    expect(r.deployment.spec.template.metadata.annotations).toEqual({
      'k8s.v1.cni.cncf.io/networks': `${NAMESPACE}/prov-net`,
      'prometheus.io/scrape': 'true',
      'checksum/config': expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    expect(r.deployment.spec.template.metadata.labels).toMatchObject({ tier: 'provisioning' });
    expect(r.container.resources).toEqual(values.resources);
    expect(r.pod.nodeSelector).toEqual(values.nodeSelector);
    expect(r.pod.tolerations).toEqual(values.tolerations);
    expect(r.pod.affinity).toEqual(values.affinity);
    // Helm merges a map value with the default map (a key set to null removes a default).
    // NET_RAW added for radvd (router advertisements are on by default).
    expect(r.container.securityContext).toEqual({
      ...values.securityContext,
      capabilities: { drop: ['ALL'], add: ['NET_BIND_SERVICE', 'NET_RAW'] },
      readOnlyRootFilesystem: true,
    });
    expect(r.pod.volumes).toEqual([
      { name: 'config', configMap: { name: 'boot-config' } },
      { name: 'tmp', emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } },
      ...values.extraVolumes,
    ]);
    expect(r.container.volumeMounts).toEqual([
      { name: 'config', mountPath: '/etc/metalboot/config', readOnly: true },
      { name: 'tmp', mountPath: '/tmp' },
      ...values.extraVolumeMounts,
    ]);
    const nad = r.find('NetworkAttachmentDefinition')!;
    expect(nad.metadata.name).toBe('prov-net');
    expect(nad.metadata.annotations).toEqual({
      'k8s.v1.cni.cncf.io/resourceName': 'bridge.network.kubevirt.io/br-prov',
    });
    expect(nadConfig(r)).toEqual({
      cniVersion: '0.3.1',
      type: 'macvlan',
      master: 'eno2',
      mode: 'bridge',
      name: 'prov-net',
      ipam: { type: 'static', addresses: [{ address: '10.20.0.5/22' }] },
    });
    expect(r.container.env).toContainEqual({ name: 'SERVER_IP', value: '10.20.0.5' });
    expect(r.container.env).toContainEqual(values.extraEnv[0]);
    expect(r.args).toEqual([
      '--config=/etc/metalboot/config/metalboot.yaml',
      '--server-ip=$(SERVER_IP)/22',
      '--dhcp-listen=0.0.0.0:67',
      '--tftp-listen=$(SERVER_IP):69',
      '--tftp-single-port',
      '--http-listen=0.0.0.0:9080',
      '--http-advertise-url=http://10.20.0.5:9080',
      '--image-listen=0.0.0.0:9082',
      '--image-advertise-url=http://10.20.0.5:9082',
      '--callback-listen=0.0.0.0:9081',
      '--callback-advertise-url=http://boot.metal3.svc:9081',
      '--api-advertise-url=http://10.20.0.5:9080',
      '--ironic-http-url=http://ironic.metal3.svc:6180',
      '--ironic-api-url=https://ironic.metal3.svc:6385',
      '--kube',
      '--kube-namespace=bmh',
      ...values.extraArgs,
    ]);
    const c = r.config;
    expect(c.http.imageListen).toEqual({ host: '0.0.0.0', port: 9082 });
    expect(c.http.imageAdvertiseUrl).toBe('http://10.20.0.5:9082');
    expect(c.dhcp.serverIp.prefix).toBe(22);
    expect(c.tftp.listen).toEqual({ host: '10.20.0.5', port: 69 });
    expect(c.proxy).toMatchObject({
      callbackListen: { host: '0.0.0.0', port: 9081 },
      callbackAdvertiseUrl: 'http://boot.metal3.svc:9081',
      apiAdvertiseUrl: 'http://10.20.0.5:9080',
      ironicHttpUrl: 'http://ironic.metal3.svc:6180',
      ironicApiUrl: 'https://ironic.metal3.svc:6385',
    });
    expect(c.sources.kube).toMatchObject({ enabled: true, namespace: 'bmh' });
    expect(c.inspector.extraKernelParams).toEqual(['ipa-debug=1']);
    expect(c.inspector.collectors).toBe('default,logs,pci-devices'); // from extraEnv
    expect(c.log.level).toBe('debug');
    expect(c.dhcp.hosts).toHaveLength(1);
    // From the ConfigMap, through --config.
    expect(c.dhcp.domainName).toBe('prov.lab');
    expect(c.dhcp.leaseSeconds).toBe(7200);
    expect(c.tftp.maxBlksize).toBe(1428);
    expect(c.proxy.stateDir).toBe('/var/lib/metalboot/proxy');
    expect(r.find('ServiceAccount')).toMatchObject({
      metadata: { name: 'boot-sa', annotations: { owner: 'platform' } },
    });
    expect(r.find('Service', 'boot')!.metadata.annotations).toEqual({ 'prometheus.io/port': '9080' });
    expect(r.find('Service', 'boot')!.spec.ports.map((p: Obj) => p.port)).toEqual([9080, 9082, 9081]);
    expectRbac(r, 'bmh');
  });

  describe("vCP's documented values files (test/fixtures/vcp), unchanged", () => {
    const fixture = (name: string) => ({ file: path.join(VCP_FIXTURES, name) });

    it('hostNetwork: "$(SERVER_IP):67" is the DHCP listen address, not "$(SERVER_IP):67:67"', async () => {
      const r = await render(fixture('hostnetwork.yaml'));
      commonChecks(r, { httpPort: 8080, hostNetwork: true });
      expect(r.kinds()).not.toContain('NetworkAttachmentDefinition');
      expect(r.args).toEqual([
        '--server-ip=$(SERVER_IP)',
        '--dhcp-listen=$(SERVER_IP):67',
        '--tftp-listen=$(SERVER_IP):69',
        '--http-listen=0.0.0.0:8080',
        '--image-listen=0.0.0.0:8082',
        '--callback-listen=0.0.0.0:8081',
        '--kube',
        '--inspector-extra-kernel-param=console=ttyS0,115200n8',
        '--installer-extra-kernel-param=console=ttyS0,115200n8',
      ]);
      expect(r.config.dhcp.listen).toEqual({ host: POD_IP, port: 67 });
      expect(r.config.tftp.listen).toEqual({ host: POD_IP, port: 69 });
      expect(formatIpv4(r.config.dhcp.serverIp.address)).toBe(POD_IP);
      expect(r.config.inspector.extraKernelParams).toEqual(['console=ttyS0,115200n8']);
      expect(r.config.installer.extraKernelParams).toEqual(['console=ttyS0,115200n8']);
    });

    it.each([
      ['multus-bridge.yaml', '192.168.100.2/24', { type: 'bridge', bridge: 'br0', isDefaultGateway: false }],
      ['multus-macvlan.yaml', '10.0.0.2/24', { type: 'macvlan', master: 'eth0', mode: 'bridge' }],
    ])('Multus, %s: the CNI JSON string with the vip as static IPAM', async (file, vip, cni) => {
      const r = await render(fixture(file));
      commonChecks(r, { httpPort: 8080, hostNetwork: false });
      expect(nadConfig(r)).toEqual({
        cniVersion: '0.3.1',
        ...cni,
        name: `${FULLNAME}-provisioning`,
        ipam: { type: 'static', addresses: [{ address: vip }] },
      });
      const [ip, prefix] = vip.split('/');
      expect(r.env.SERVER_IP).toBe(ip);
      expect(r.args.slice(0, 3)).toEqual([
        `--server-ip=$(SERVER_IP)/${prefix}`,
        '--dhcp-listen=0.0.0.0:67',
        '--tftp-listen=$(SERVER_IP):69',
      ]);
      expect(r.config.dhcp.serverIp.prefix).toBe(Number(prefix));
      expect(r.config.dhcp.listen).toEqual({ host: '0.0.0.0', port: 67 });
      expect(r.config.tftp.listen).toEqual({ host: ip, port: 69 });
      expect(r.config.http.advertiseUrl).toBe(`http://${ip}:8080`);
    });

    it('HA: replicas behind a relay and a MetalLB LoadBalancer, clients sent to its address', async () => {
      const r = await render(fixture('ha-loadbalancer.yaml'));
      commonChecks(r, { httpPort: 8080, hostNetwork: false });
      expect(r.deployment.spec.replicas).toBe(2);
      expect(r.kinds()).not.toContain('NetworkAttachmentDefinition');
      const svc = r.find('Service', `${FULLNAME}-provisioning`);
      expect(svc?.metadata.annotations).toEqual({ 'metallb.universe.tf/loadBalancerIPs': '192.168.100.20' });
      expect(svc?.spec.type).toBe('LoadBalancer');
      expect(svc?.spec.ports.map((p: Obj) => `${p.protocol}/${p.port}`)).toEqual([
        'UDP/67',
        'UDP/69',
        'TCP/8080',
        'TCP/8082',
        'TCP/8081',
      ]);
      expect(r.env.SERVER_IP).toBe(POD_IP);
      expect(r.args).toEqual(
        expect.arrayContaining([
          '--server-ip=$(SERVER_IP)',
          '--dhcp-listen=0.0.0.0:67',
          '--dhcp-advertise-ip=192.168.100.20',
          '--tftp-listen=$(SERVER_IP):69',
          '--tftp-single-port',
          '--http-advertise-url=http://192.168.100.20:8080',
        ]),
      );
      const c = r.config;
      expect(formatIpv4(c.dhcp.serverIp.address)).toBe(POD_IP);
      expect(formatIpv4(c.dhcp.advertiseIP!)).toBe('192.168.100.20');
      expect(c.dhcp.listen).toEqual({ host: '0.0.0.0', port: 67 });
      expect(c.tftp.listen).toEqual({ host: POD_IP, port: 69 });
      expect(c.tftp.singlePort).toBe(true);
      expect(c.http.advertiseUrl).toBe('http://192.168.100.20:8080');
      expect(c.proxy.apiAdvertiseUrl).toBe('http://192.168.100.20:8080');
      // Leader election, in the release namespace (the pod's own), with a Role for its Lease.
      expect(c.leaderElection).toMatchObject({ id: 'vcluster-platform-dhcp-server', namespace: NAMESPACE });
      expect(r.pod.automountServiceAccountToken).toBe(true);
      const role = r.find('Role', `${FULLNAME}-leader-election`);
      expect(role?.metadata.namespace).toBe(NAMESPACE);
      // Least privilege for what replicas share: Leases (election, range), ConfigMaps (agent
      // records), and one named Secret (the callback CA) besides create, which RBAC cannot name.
      expect(role?.rules).toEqual([
        {
          apiGroups: ['coordination.k8s.io'],
          resources: ['leases'],
          verbs: ['get', 'list', 'watch', 'create', 'update', 'delete'],
        },
        { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'create', 'update'] },
        { apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
        {
          apiGroups: [''],
          resources: ['secrets'],
          resourceNames: ['vcluster-platform-dhcp-server-callback-tls'],
          verbs: ['get', 'list', 'watch', 'update'],
        },
      ]);
      const binding = r.find('RoleBinding', `${FULLNAME}-leader-election`);
      expect(binding?.roleRef).toEqual({
        apiGroup: 'rbac.authorization.k8s.io',
        kind: 'Role',
        name: role?.metadata.name,
      });
      expect(binding?.subjects).toEqual([
        { kind: 'ServiceAccount', name: r.pod.serviceAccountName, namespace: NAMESPACE },
      ]);
    });
  });

  it('watcher, RBAC, ServiceAccount, Service and callback listener off: a Deployment alone', async () => {
    const r = await render({
      networkAttachmentDefinition: { enabled: false },
      kube: { enabled: false },
      serviceAccount: { create: false },
      service: { enabled: false },
      proxy: { callbackListenAddr: '' },
    });
    commonChecks(r, { httpPort: 8080, hostNetwork: false });
    expect(r.kinds()).toEqual(['Deployment']);
    expect(r.args).not.toContain('--kube');
    expect(r.args).toContain('--callback-listen=');
    expect(r.config.sources.kube.enabled).toBe(false);
    expect(r.config.proxy.callbackListen).toBeUndefined();
    expect(r.pod.serviceAccountName).toBe('default');
    expect(r.pod.automountServiceAccountToken).toBe(false);
  });

  it('the loader check is live: an argument metalboot does not know fails the rendering', async () => {
    await expect(
      render({ networkAttachmentDefinition: { enabled: false }, extraArgs: ['--no-such-flag'] }),
    ).rejects.toThrow(/--no-such-flag: unknown flag/);
  });

  it('NOTES name the provisioning address and the explain endpoint', async () => {
    const out = await helmRun([
      'install',
      RELEASE,
      CHART,
      '--dry-run=client',
      '--namespace',
      NAMESPACE,
      '--values',
      valuesFile({ networkAttachmentDefinition: { vip: VIP } }),
    ]);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toContain(
      `Provisioning address (SERVER_IP): ${VIP}, on the NetworkAttachmentDefinition ${FULLNAME}-provisioning`,
    );
    expect(out.stdout).toContain('/debug/explain?mac=');
    expect(out.stdout).toContain(
      "Router advertisements (iPXE's IPv6 answer): on the interface that holds the server IP",
    );
    expect(out.stdout).toContain('DHCP: 0.0.0.0:67\n');
    expect(out.stdout).not.toContain('Served on the interface that owns this address only');
  });

  it.each([
    [
      'hostnetwork.yaml',
      ['DHCP: $(SERVER_IP):67\n  Served on the interface that owns this address only: socat, bound to that interface'],
    ],
    [
      'ha-loadbalancer.yaml',
      [
        'Clients see the server as: 192.168.100.20',
        `Provisioning Service: ${FULLNAME}-provisioning`,
        'TFTP: $(SERVER_IP):69 (single port)',
      ],
    ],
  ])("NOTES for vCP's %s", async (file, lines) => {
    const out = await helmRun([
      'install',
      RELEASE,
      CHART,
      '--dry-run=client',
      '--namespace',
      NAMESPACE,
      '--values',
      path.join(VCP_FIXTURES, file),
    ]);
    expect(out.code, out.stderr).toBe(0);
    for (const line of lines) expect(out.stdout).toContain(line);
  });

  it('the monitoring kit: a ServiceMonitor, a PrometheusRule and the dashboard ConfigMap (test/e2e/chart-monitoring.test.ts has the detail)', async () => {
    const r = await render({
      monitoring: {
        serviceMonitor: { enabled: true },
        prometheusRule: { enabled: true },
        grafanaDashboard: { enabled: true },
      },
    });
    commonChecks(r, { httpPort: 8080, hostNetwork: false });
    expect(r.find('ServiceMonitor', FULLNAME)?.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(r.find('PrometheusRule', FULLNAME)?.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(r.find('ConfigMap', `${FULLNAME}-dashboard`)?.metadata.labels).toMatchObject({ grafana_dashboard: '1' });
  });

  it('chart/README.md has a row for every value of values.yaml', () => {
    const values = parseYaml(readFileSync(path.join(CHART, 'values.yaml'), 'utf8')) as Obj;
    const readme = readFileSync(path.join(CHART, 'README.md'), 'utf8');
    // Maps documented as a whole: their keys are free-form.
    const whole = new Set(['resources', 'securityContext', 'config', 'networkAttachmentDefinition.config']);
    const keys: string[] = [];
    const walk = (o: Obj, prefix: string) => {
      for (const [k, v] of Object.entries(o)) {
        const name = prefix === '' ? k : `${prefix}.${k}`;
        if (v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length > 0 && !whole.has(name))
          walk(v as Obj, name);
        else keys.push(name);
      }
    };
    walk(values, '');
    // A row is `| \`key\` |`, or `| \`key\` † |` for a value vCP does not document.
    const hasRow = (k: string) => readme.includes(`| \`${k}\` |`) || readme.includes(`| \`${k}\` † |`);
    expect(keys.filter((k) => !hasRow(k))).toEqual([]);
  });

  it('every template was rendered by some case above', () => {
    const templates = readdirSync(path.join(CHART, 'templates'))
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => `templates/${f}`);
    expect([...renderedSources].sort()).toEqual(templates.sort());
  });
});
