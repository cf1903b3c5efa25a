/**
 * vCP's hostNetwork recipe for real: the chart rendered by `helm template` with
 * test/fixtures/vcp/hostnetwork.yaml as vCP documents it (`dhcp.listenAddr: "$(SERVER_IP):67"`),
 * and metalboot started in a network namespace (the node) with exactly the container's
 * arguments and environment. The kubelet's part is played as it would be: SERVER_IP from the
 * downward API (status.podIP, the node's address under hostNetwork) is the namespace's eth0
 * address, $(VAR) in the arguments is expanded from that environment, and the process runs as
 * root with the container's capabilities (the chart drops ALL and adds NET_BIND_SERVICE, and
 * NET_RAW for radvd's router advertisements; setpriv limits the bounding set the same way). The one stand-in: the pod's service account becomes
 * METALBOOT_KUBECONFIG for the API server fixture, which runs inside the namespace (the
 * in-cluster files live under /var/run/secrets, which a test must not write).
 *
 * A udhcpc on the provisioning LAN gets its BareMetalHost's address; one on the node's other
 * LAN, also with a BareMetalHost, gets nothing.
 *
 *   ns node: eth0 10.83.0.1/24 ── br0 ── ns prov  (udhcpc)
 *            eth1 10.84.0.1/24 ── br1 ── ns other (udhcpc)
 *            127.0.0.1: the API server fixture
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { createLab, requireRoot, requireTools, type Lab } from '../../lab/netns.js';
import { expandString } from '../../src/config/expand.js';
import { helmBinary } from '../support/helm.js';
import type { HostInput } from '../support/kube-apiserver.js';
import { REPO_ROOT, startMetalboot, type MetalbootProcess } from '../support/metalboot-process.js';

const run = promisify(execFile);
const NODE_IP = '10.83.0.1';
const MAC_PROV = '52:54:00:dd:00:01';
const MAC_OTHER = '52:54:00:dd:00:02';

// biome-ignore lint/suspicious/noExplicitAny: a parsed manifest is navigated freely; the assertions check its shape
type Obj = Record<string, any>;

/** The container of the chart's Deployment, rendered from `valuesFile`. */
async function renderContainer(valuesFile: string): Promise<Obj> {
  const { stdout } = await run(
    await helmBinary(),
    ['template', 'mb', path.join(REPO_ROOT, 'chart'), '--namespace', 'metal3', '--values', valuesFile],
    { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 },
  );
  const deployment = parseAllDocuments(stdout)
    .map((d) => d.toJS() as Obj | null)
    .find((d) => d?.kind === 'Deployment');
  expect(deployment?.spec.template.spec.hostNetwork).toBe(true);
  const containers = deployment!.spec.template.spec.containers as Obj[];
  expect(containers).toHaveLength(1);
  return containers[0]!;
}

/** The container's environment as the kubelet sets it, with the downward API filled in. */
function podEnv(container: Obj, fields: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of (container.env ?? []) as Obj[]) {
    if (typeof e.value === 'string') env[e.name] = expandString(e.value, env);
    else if (typeof e.valueFrom?.fieldRef?.fieldPath === 'string' && e.valueFrom.fieldRef.fieldPath in fields)
      env[e.name] = fields[e.valueFrom.fieldRef.fieldPath]!;
    else throw new Error(`env ${e.name}: no stand-in for ${JSON.stringify(e.valueFrom)}`);
  }
  return env;
}

function bmh(name: string, mac: string, cidr: string): HostInput {
  return {
    apiVersion: 'metal3.io/v1alpha1',
    kind: 'BareMetalHost',
    metadata: { name, namespace: 'metal3', annotations: { 'metal3.vcluster.com/ip-address': cidr } },
    spec: { bootMACAddress: mac, online: true },
  };
}

describe("vCP's hostNetwork recipe: --dhcp-listen=$(SERVER_IP):67 as the chart renders it", () => {
  let lab: Lab;
  let server: MetalbootProcess;
  let args: string[];

  beforeAll(async () => {
    requireRoot();
    requireTools('ip', 'udhcpc', 'socat', 'setpriv');
    const container = await renderContainer(path.join(REPO_ROOT, 'test/fixtures/vcp/hostnetwork.yaml'));
    const env = podEnv(container, { 'status.podIP': NODE_IP, 'spec.nodeName': 'node-a' });
    expect(env.SERVER_IP).toBe(NODE_IP);
    // The kubelet expands $(VAR) in args from the container's environment.
    args = (container.args as string[]).map((a) => expandString(a, env));
    expect(container.securityContext.capabilities).toEqual({ drop: ['ALL'], add: ['NET_BIND_SERVICE', 'NET_RAW'] });

    lab = await createLab();
    await lab.addBridge('br1');
    await lab.addNamespace('node');
    await lab.connect('node', { ip: `${NODE_IP}/24`, ifname: 'eth0' });
    await lab.connect('node', { ip: '10.84.0.1/24', ifname: 'eth1', bridge: 'br1' });
    await lab.addNamespace('prov');
    await lab.connect('prov', { mac: MAC_PROV, ifname: 'eth0' });
    await lab.addNamespace('other');
    await lab.connect('other', { mac: MAC_OTHER, ifname: 'eth0', bridge: 'br1' });

    const hostsFile = path.join(lab.dir, 'hosts.json');
    writeFileSync(
      hostsFile,
      JSON.stringify([bmh('prov-1', MAC_PROV, '10.83.0.60/24'), bmh('other-1', MAC_OTHER, '10.83.0.61/24')]),
    );
    const api = lab.spawnNode('node', path.join(REPO_ROOT, 'test/support/kube-apiserver-main.ts'), [
      hostsFile,
      lab.dir,
    ]);
    const line = await lab.waitForOutput(api, /"kubeconfig"/, 30_000);
    const { kubeconfig } = JSON.parse(/^\{.*"kubeconfig".*\}$/m.exec(line)![0]) as { kubeconfig: string };

    server = await startMetalboot(lab, 'node', args, {
      env: { ...env, METALBOOT_KUBECONFIG: kubeconfig },
      wrapper: ['setpriv', '--bounding-set=-all,+net_bind_service,+net_raw'],
    });
  }, 180_000);

  afterAll(async () => {
    await lab?.close();
  });

  it('the rendered arguments listen for DHCP on the node address', () => {
    expect(args).toContain(`--dhcp-listen=${NODE_IP}:67`);
    expect(args).toContain('--kube');
  });

  it('a host on the provisioning LAN gets its lease, through socat on eth0 with the container capabilities', async () => {
    const r = await lab.exec(
      'prov',
      'udhcpc',
      ['-i', 'eth0', '-f', '-q', '-n', '-t', '5', '-T', '2', '-s', '/bin/true'],
      {
        timeoutMs: 60_000,
      },
    );
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(`${r.stdout}${r.stderr}`).toContain('10.83.0.60');
    await server.waitForLog(
      (l) => l.msg === 'dhcp reply' && l.type === 'ACK' && l.mac === MAC_PROV && l.host === 'metal3/prov-1',
    );
    expect(server.logs().find((l) => l.msg === 'dhcp listening')).toMatchObject({
      listen: `${NODE_IP}:67`,
      interface: 'eth0',
    });
  });

  it("a host on the node's other LAN gets nothing", async () => {
    const r = await lab.exec(
      'other',
      'udhcpc',
      ['-i', 'eth0', '-f', '-q', '-n', '-t', '3', '-T', '1', '-s', '/bin/true'],
      {
        timeoutMs: 30_000,
      },
    );
    expect(r.code, `${r.stdout}\n${r.stderr}`).not.toBe(0);
    expect(server.logs().filter((l) => l.mac === MAC_OTHER)).toEqual([]);
  });
});
