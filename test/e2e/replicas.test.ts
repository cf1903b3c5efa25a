// The acceptance test of replicas sharing state, with three metalboot processes
// (src/main.ts, real process boundaries, the default 15/10/2 s election timing) against the
// Kubernetes API server fixture, the Ironic API stand-in and an IPA stand-in over HTTPS with its
// own self-signed certificate (so the proxy pins it).
//
// Every replica runs the Ironic API proxy (HTTP on 127.0.0.1:0) and the callback listener
// (127.0.0.1:0); each port is read back from its log line. All three advertise the same callback
// URL: a TCP balancer on 127.0.0.1 standing in for the Service in front of them, which the test
// points at one replica or another, as kube-proxy would pick one. It shows:
// 1. one leader, and the Secret NAME-callback-tls it creates;
// 2. every replica's callback listener presenting the Secret's certificate, verified against the
//    Secret's ca.crt for 127.0.0.1;
// 3. a heartbeat through replica A's API proxy accepted by Ironic, then Ironic's command to the
//    callback URL it stored, routed to replica B, reaching IPA — Ironic verifying the listener
//    against the agent_verify_ca it got (the Secret's CA), B finding the agent in the ConfigMap
//    A wrote;
// 4. kill -9 of the leader: a new leader, the same CA on the survivors, callbacks through each
//    survivor still reaching IPA.
// No network namespaces are needed: DHCP and TFTP are off.

import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';

import { agentConfigMapName } from '../../src/kube/agent-records.js';
import { IpaApiClient, type IpaAgent, startIpaAgent } from '../support/ipa-fixture.js';
import { type IronicFixture, startIronic } from '../support/ironic-fixture.js';
import { type KubeApiServer, startKubeApiServer } from '../support/kube-apiserver.js';
import { writeKubeconfig } from '../support/kube-config.js';
import {
  type LogLine,
  type ReplicaProcess,
  ReplicaProcesses,
  writeReplicaConfig,
} from '../support/replica-processes.js';
import { startTcpBalancer, type TcpBalancer } from '../support/tcp-balancer.js';
import { until } from '../support/until.js';

const NS = 'metal3';
const ID = 'metalboot';
const SECRET = `${ID}-callback-tls`;
const NODE = '1be26c0b-03f2-4d2e-ae87-c02d7f33c123';
const MAC = '52:54:00:aa:00:01';

let server: KubeApiServer | undefined;
let ironic: IronicFixture | undefined;
let ipa: IpaAgent | undefined;
let balancer: TcpBalancer | undefined;
let dir: string | undefined;
const processes = new ReplicaProcesses();

afterEach(async () => {
  await processes.killAll();
  await balancer?.close();
  await ipa?.close();
  await ironic?.close();
  await server?.close();
  balancer = undefined;
  ipa = undefined;
  ironic = undefined;
  server = undefined;
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

interface Replica {
  readonly process: ReplicaProcess;
  readonly identity: string;
  /** The API proxy (the HTTP listener). */
  readonly apiUrl: string;
  readonly callbackPort: number;
}

/** The port a listener logged (`{listen: {host, port}}` on its start line). */
function loggedPort(line: LogLine): number {
  const listen = line['listen'] as { host?: unknown; port?: unknown } | undefined;
  if (listen?.host !== '127.0.0.1' || typeof listen.port !== 'number')
    throw new Error(`no port in ${JSON.stringify(line)}`);
  return listen.port;
}

function secretText(s: KubeApiServer, key: string): string {
  const v = s.secret(NS, SECRET)?.data?.[key];
  if (v === undefined) throw new Error(`Secret ${SECRET} has no ${key}`);
  return Buffer.from(v, 'base64').toString('utf8');
}

/**
 * A TLS handshake with the callback listener on `port`, trusting `caPem` only and checking the
 * host 127.0.0.1 (Node's default checkServerIdentity); resolves with the leaf it presented.
 */
function handshake(port: number, caPem: string): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: caPem, rejectUnauthorized: true });
    socket.setTimeout(10_000, () => socket.destroy(new Error(`TLS handshake with port ${port} timed out`)));
    socket.once('secureConnect', () => {
      const leaf = socket.getPeerX509Certificate();
      socket.end();
      if (leaf === undefined) reject(new Error('no peer certificate'));
      else resolve(leaf);
    });
    socket.once('error', reject);
  });
}

describe('replicas sharing state through the API server', () => {
  it('one CA on every replica; a heartbeat through A, callbacks through the others, before and after kill -9 of the leader', async () => {
    server = await startKubeApiServer();
    const s = server;
    ironic = await startIronic({ nodes: [{ uuid: NODE, macs: [MAC] }] });
    const irn = ironic;
    ipa = await startIpaAgent();
    const agent = ipa;
    balancer = await startTcpBalancer();
    const lb = balancer;
    dir = await mkdtemp(path.join(tmpdir(), 'metalboot-replicas-e2e-'));
    const config = await writeReplicaConfig(dir);
    const args = [
      '--config',
      config,
      '--kubeconfig',
      await writeKubeconfig(s, { dir }),
      '--leader-election-id',
      ID,
      '--leader-election-namespace',
      NS,
      '--ironic-api-url',
      irn.url,
      '--api-advertise-url',
      'http://127.0.0.1:0',
      '--callback-listen',
      '127.0.0.1:0',
      // The same for all three: the Service in front of them.
      '--callback-advertise-url',
      `https://127.0.0.1:${lb.port}`,
    ];
    const procs = [0, 1, 2].map(() => processes.start(args));
    const outputs = (): string => procs.map((p, i) => `--- replica ${i}\n${p.output().slice(-2500)}`).join('\n');
    const noneExited = (): void => {
      for (const p of procs)
        if (p.child.exitCode !== null || p.child.signalCode !== null)
          throw new Error(`a replica exited (${p.child.exitCode ?? p.child.signalCode})`);
    };
    /** `until`, with every replica's last output in the failure. */
    const wait = <T>(f: () => T | undefined, ms: number, what: string, invariant?: () => void): Promise<T> =>
      until(f, ms, what, invariant).catch((err: Error) => {
        throw new Error(`${err.message}\n${outputs()}`);
      });

    // 1. One leader; it creates the Secret, and every replica (the callback listener waits for
    //    the Secret) gets ready.
    const replicas: Replica[] = await wait(
      () => {
        if (!procs.every((p) => p.logged('ready') !== undefined)) return undefined;
        return procs.map((p) => ({
          process: p,
          identity: p.identity()!,
          apiUrl: `http://127.0.0.1:${loggedPort(p.logged('http listener started')!)}`,
          callbackPort: loggedPort(p.logged('callback listener started')!),
        }));
      },
      60_000,
      'every replica ready',
      noneExited,
    );
    expect(new Set(replicas.map((r) => r.identity)).size).toBe(3);
    const holder = (): string | undefined => {
      const h = s.lease(NS, ID)?.spec?.['holderIdentity'];
      return typeof h === 'string' && h !== '' ? h : undefined;
    };
    const first = await wait(holder, 30_000, 'a leader');
    const leading = (rs: readonly Replica[]) => rs.filter((r) => r.process.logged('became leader') !== undefined);
    await wait(() => (leading(replicas).length === 1 ? true : undefined), 10_000, 'the leader logging it');
    const a = replicas.find((r) => r.identity === first)!;
    expect(leading(replicas)).toEqual([a]);
    const [b, c] = replicas.filter((r) => r !== a) as [Replica, Replica];
    expect(s.secret(NS, SECRET)?.type).toBe('kubernetes.io/tls');
    const caPem = secretText(s, 'ca.crt');
    const leafPem = secretText(s, 'tls.crt');
    const secretLeaf = new X509Certificate(leafPem);
    expect(secretLeaf.checkIP('127.0.0.1')).toBe('127.0.0.1');

    // 2. The Secret's certificate on every replica, verified against its CA for 127.0.0.1.
    for (const r of replicas) {
      const leaf = await handshake(r.callbackPort, caPem);
      expect(leaf.raw.equals(secretLeaf.raw), `replica ${r.identity} serves the Secret's leaf`).toBe(true);
    }
    // The same handshake trusting another CA fails: the check above is not vacuous.
    await expect(handshake(a.callbackPort, agent.certPem!)).rejects.toThrow();

    // 3. IPA boots through A's API proxy: lookup, then a heartbeat Ironic accepts.
    const client = new IpaApiClient(a.apiUrl);
    const lookup = await client.lookup([MAC]);
    expect(lookup.status, lookup.text).toBe(200);
    agent.token = lookup.json<{ config: { agent_token: string } }>().config.agent_token;
    const hb = await client.heartbeat(NODE, {
      callback_url: agent.url,
      agent_token: agent.token,
      agent_version: '10.1.0',
      agent_verify_ca: agent.certPem,
    });
    expect(hb.status, hb.text).toBe(202);
    const stored = irn.node(NODE);
    expect(stored.agentUrl).toMatch(new RegExp(`^https://127\\.0\\.0\\.1:${lb.port}/nodes/${NODE}/`));
    expect(stored.agentVerifyCa?.trim()).toBe(caPem.trim());
    // A wrote the record before Ironic's answer was relayed; B and C never saw the heartbeat.
    const cm = s.configMap(NS, agentConfigMapName(`${ID}-agent`, NODE));
    expect(JSON.parse(cm?.data?.['record.json'] ?? '{}')).toMatchObject({ node: NODE, agentUrl: agent.url });
    for (const r of [b, c]) expect(r.process.logged('agent address recorded')).toBeUndefined();

    const forwards = (r: Replica): number =>
      r.process.logs().filter((l) => l['msg'] === 'callback forwarded' && l['node'] === NODE).length;
    /** Ironic runs a command through the balancer, routed to `r`; IPA must see it. */
    const commandThrough = async (r: Replica): Promise<void> => {
      lb.target = r.callbackPort;
      const before = agent.requests.length;
      const forwarded = forwards(r);
      const res = await irn.runCommand(NODE, 'standby.get_partition_uuids', {}, true);
      expect(res.status, res.text).toBe(200);
      expect(res.json<{ command_status: string }>().command_status).toBe('SUCCEEDED');
      expect(lb.routed.at(-1)).toBe(r.callbackPort);
      const got = agent.requests.slice(before).filter((q) => q.method === 'POST');
      expect(got.map((q) => q.url.split('?')[0])).toEqual(['/v1/commands/']);
      expect(JSON.parse(got[0]!.body)).toEqual({ name: 'standby.get_partition_uuids', params: {} });
      await wait(
        () => (forwards(r) > forwarded ? true : undefined),
        10_000,
        `replica ${r.identity} logging the forward`,
      );
    };
    await commandThrough(b);
    // Ironic's agent client really verifies the listener: with another CA pinned, no command.
    const pinned = stored.agentVerifyCa;
    stored.agentVerifyCa = agent.certPem;
    const before = agent.requests.length;
    await expect(irn.runCommand(NODE, 'standby.get_partition_uuids', {}, true)).rejects.toThrow();
    expect(agent.requests.length).toBe(before);
    stored.agentVerifyCa = pinned;

    // 4. kill -9 of the leader (which also wrote the agent record): another one leads, and both
    //    survivors still serve the same CA and reach IPA.
    await a.process.kill();
    const next = await wait(
      () => {
        const h = holder();
        return h !== undefined && h !== first ? h : undefined;
      },
      30_000,
      'a new leader after kill -9',
    );
    expect([b.identity, c.identity]).toContain(next);
    await wait(
      () => (leading([b, c]).length === 1 ? true : undefined),
      10_000,
      'exactly one survivor logging that it leads',
    );
    for (const r of [c, b]) {
      const leaf = await handshake(r.callbackPort, caPem);
      expect(leaf.raw.equals(secretLeaf.raw), `replica ${r.identity} serves the Secret's leaf`).toBe(true);
      await commandThrough(r);
    }
    expect(secretText(s, 'ca.crt')).toBe(caPem);
    for (const r of [b, c]) expect(r.process.logged('callback Secret rotated')).toBeUndefined();
  });
});
