/**
 * The Ironic API proxy and the callback listener end to end over real loopback sockets:
 * IPA (test/support/ipa-fixture.ts) → API proxy → Ironic (test/support/ironic-fixture.ts), and
 * Ironic's agent client → callback listener → IPA's agent API over HTTPS, verified the way
 * each side verifies the other.
 */
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import Fastify, { type FastifyInstance } from 'fastify';
import pino from 'pino';
import { Registry } from 'prom-client';
import { Agent, request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildProduct } from '../../src/wiring/product.js';
import { closeAll, startAll } from '../../src/base/service.js';
import { loadConfig } from '../../src/config/load.js';
import { AgentStore } from '../../src/proxy/agent-store.js';
import { ironicApiProxy } from '../../src/proxy/api-proxy.js';
import { CallbackServer } from '../../src/proxy/callback-server.js';
import { HttpServer } from '../../src/http/http-server.js';
import { callbackTlsSource } from '../../src/proxy/callback-tls.js';
import { agentIdOf } from '../../src/proxy/callback-url.js';
import { startIronic, type IronicFixture } from '../support/ironic-fixture.js';
import { IpaApiClient, ipaCertificate, startIpaAgent, type IpaAgent } from '../support/ipa-fixture.js';

const MiB = 1024 * 1024;
const logger = pino({ level: process.env.PROXY_TEST_LOG ?? 'silent' });
const NODE_A = '1be26c0b-03f2-4d2e-ae87-c02d7f33c123';
const NODE_B = '2ce37d1c-14a3-4e3f-bf98-d13e8a44d234';
const NODE_C = '3df48e2d-25b4-4f4a-8aa9-e24f9b55e345';
const NODE_D = '4ea59f3e-36c5-4a5b-9bba-f35a0c66f456';
const MAC = { A: '52:54:00:aa:00:01', B: '52:54:00:bb:00:01', C: '52:54:00:cc:00:01', D: '52:54:00:dd:00:01' };

interface Proxy {
  readonly apiUrl: string;
  readonly callbackUrl: string;
  readonly agents: AgentStore;
  readonly callback: CallbackServer;
  readonly app: FastifyInstance;
  readonly registry: Registry;
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  close(): Promise<void>;
}

interface ProxyOptions {
  readonly ironicApiUrl?: string;
  readonly stateDir?: string | undefined;
  readonly apiPort?: number;
  readonly callbackPort?: number;
  readonly insecureSkipVerify?: boolean;
  readonly maxInventoryBytes?: number;
  readonly maxHeartbeatBytes?: number;
  readonly maxBufferedBytes?: number;
  readonly bodyTimeoutMs?: number;
  readonly callbackMaxConnections?: number;
  readonly closeGraceMs?: number;
}

let ironic: IronicFixture;
const dirs: string[] = [];
const open: { close(): Promise<void> }[] = [];

/**
 * The API proxy and the callback listener on 127.0.0.1, on port 0 (a free port, read back once
 * bound) unless a test restarts them on the ports they had.
 */
async function startProxy(o: ProxyOptions = {}): Promise<Proxy> {
  const registry = new Registry();
  const callbackPort = o.callbackPort ?? 0;
  const agents = new AgentStore({ stateDir: o.stateDir, logger, registry });
  const callback = new CallbackServer({
    listen: { host: '127.0.0.1', port: callbackPort },
    advertiseUrl: `http://127.0.0.1:${callbackPort}`,
    agents,
    tls: callbackTlsSource({ stateDir: o.stateDir }),
    insecureSkipVerify: o.insecureSkipVerify,
    logger,
    registry,
    closeGraceMs: o.closeGraceMs,
    maxConnections: o.callbackMaxConnections,
  });
  await agents.start();
  await callback.start();
  // Bound first, then built knowing its port (as the product's HTTP listener is).
  const api = new HttpServer('api', { host: '127.0.0.1', port: o.apiPort ?? 0 }, async (bound, serverFactory) => {
    // Like src/http/fastify-defaults.ts: a 1 MiB body limit that the proxy's routes must not be bound by.
    const app = Fastify({ loggerInstance: logger, bodyLimit: MiB, serverFactory }) as unknown as FastifyInstance;
    await app.register(ironicApiProxy, {
      ironicApiUrl: o.ironicApiUrl ?? ironic.url,
      apiAdvertiseUrl: `http://127.0.0.1:${bound.port}`,
      agents,
      callback,
      registry,
      maxInventoryBytes: o.maxInventoryBytes,
      maxHeartbeatBytes: o.maxHeartbeatBytes,
      maxBufferedBytes: o.maxBufferedBytes,
      bodyTimeoutMs: o.bodyTimeoutMs,
    });
    return app;
  });
  await api.start();
  const app = api.app!;
  const apiUrl = `http://127.0.0.1:${api.address().port}`;
  let closed = false;
  const proxy: Proxy = {
    apiUrl,
    callbackUrl: callback.advertiseUrl,
    agents,
    callback,
    app,
    registry,
    async metric(name, labels = {}) {
      const m = await registry.getSingleMetric(name)?.get();
      if (m === undefined) return Number.NaN;
      return m.values
        .filter((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val))
        .reduce((a, v) => a + v.value, 0);
    },
    async close() {
      if (closed) return;
      closed = true;
      await api.close();
      await callback.close();
      await agents.close();
    },
  };
  open.push(proxy);
  return proxy;
}

function tmp(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'metalboot-ironic-proxy-'));
  dirs.push(d);
  return d;
}

async function agentFor(tls?: false): Promise<IpaAgent> {
  const a = await startIpaAgent(tls === false ? { tls: false } : {});
  open.push(a);
  return a;
}

/** IPA's boot: lookup (token), then a heartbeat announcing its agent. */
async function bootIpa(client: IpaApiClient, agent: IpaAgent, node: string, mac: string): Promise<void> {
  const lookup = await client.lookup([mac]);
  expect(lookup.status).toBe(200);
  const token = lookup.json<{ config: { agent_token: string } }>().config.agent_token;
  if (token !== '******') agent.token = token;
  const hb = await heartbeat(client, agent, node);
  expect(hb.status, hb.text).toBe(202);
}

/** What a heartbeat says about an agent: a real fixture, or any URL a caller claims. */
type AgentClaim = Pick<IpaAgent, 'url' | 'token' | 'certPem'>;

function heartbeat(client: IpaApiClient, agent: AgentClaim, node: string, over: Record<string, unknown> = {}) {
  return client.heartbeat(node, {
    callback_url: agent.url,
    agent_token: agent.token,
    agent_version: '10.1.0',
    ...(agent.certPem === undefined ? {} : { agent_verify_ca: agent.certPem }),
    ...over,
  });
}

/** A request with the target sent byte for byte (no client-side normalisation). */
async function rawRequest(port: number, method: string, target: string): Promise<{ status: number; text: string }> {
  const s = net.connect(port, '127.0.0.1');
  await once(s, 'connect');
  s.write(`${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  await once(s, 'end');
  const text = Buffer.concat(chunks).toString('utf8');
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text };
}

beforeAll(async () => {
  ironic = await startIronic({
    nodes: [
      { uuid: NODE_A, macs: [MAC.A] },
      { uuid: NODE_B, macs: [MAC.B] },
      { uuid: NODE_C, macs: [MAC.C] },
      { uuid: NODE_D, macs: [MAC.D] },
    ],
  });
});

afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  for (const n of [NODE_A, NODE_B, NODE_C, NODE_D]) ironic.reboot(n);
  ironic.onHeartbeat = undefined;
  ironic.heartbeatDelayMs = 0;
});

afterAll(async () => {
  await ironic.close();
});

describe('API proxy', () => {
  it("answers version discovery with links to itself and Ironic's microversion headers", async () => {
    const p = await startProxy();
    for (const target of ['/', '/v1', '/v1/']) {
      const res = await request(`${p.apiUrl}${target}`, { headers: { 'x-openstack-request-id': 'req-from-ipa' } });
      const body = (await res.body.json()) as {
        default_version?: { links: { href: string }[] };
        links?: { href: string }[];
      };
      expect(res.statusCode).toBe(200);
      expect(res.headers['x-openstack-ironic-api-maximum-version']).toBe('1.99');
      expect(res.headers['x-openstack-ironic-api-minimum-version']).toBe('1.1');
      expect(res.headers['x-openstack-request-id']).toMatch(/^req-/);
      const links = JSON.stringify(body);
      expect(links).toContain(`${p.apiUrl}/v1/`);
      expect(links).not.toContain(ironic.url);
    }
    const last = ironic.requests.filter((r) => r.url === '/')[0]!;
    expect(last.headers['x-openstack-request-id']).toBe('req-from-ipa');
  });

  it('carries a full inspection: lookup, then a multi-megabyte inventory streamed to Ironic', async () => {
    const p = await startProxy();
    const client = new IpaApiClient(p.apiUrl);
    const lookup = await client.lookup([MAC.A, 'not-a-mac']);
    expect(lookup.status).toBe(200);
    expect(lookup.headers['x-openstack-ironic-api-version']).toBe('1.84');
    const token = lookup.json<{ node: { uuid: string }; config: { agent_token: string } }>();
    expect(token.node.uuid).toBe(NODE_A);
    expect(token.config.agent_token).toMatch(/^[\w-]{20,}$/);
    expect((await client.lookup([MAC.A])).json<{ config: { agent_token: string } }>().config.agent_token).toBe(
      '******',
    );

    // The logs collector makes inventories of megabytes. The first part is sent, and the rest
    // only once Ironic has started receiving: a proxy that buffered the body would hang here.
    const logs = randomBytes(6 * MiB).toString('base64');
    const inventory = Buffer.from(
      JSON.stringify({
        inventory: { interfaces: [{ name: 'eth0', mac_address: MAC.A }], bmc_address: '192.0.2.1' },
        logs,
      }),
    );
    const stream = new PassThrough();
    const answer = client.continueInspection(stream, `?node_uuid=${NODE_A}&evil=1`);
    stream.write(inventory.subarray(0, MiB));
    const deadline = Date.now() + 10_000;
    while (ironic.inspectionBytesSoFar() === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(ironic.inspectionBytesSoFar()).toBeGreaterThan(0);
    stream.end(inventory.subarray(MiB));
    const res = await answer;
    expect(res.status, res.text).toBe(202);
    expect(res.json<{ node: { uuid: string } }>().node.uuid).toBe(NODE_A);
    expect(ironic.node(NODE_A).inspection).toEqual({
      bytes: inventory.length,
      sha256: createHash('sha256').update(inventory).digest('hex'),
    });
    const forwarded = ironic.requests.find((r) => r.url.startsWith('/v1/continue_inspection'))!;
    expect(forwarded.url).toBe(`/v1/continue_inspection?node_uuid=${NODE_A}`);
    expect(forwarded.headers['x-openstack-ironic-api-version']).toBe('1.84');
    expect(await p.metric('metalboot_ironic_api_proxy_request_bytes_total', { route: 'continue_inspection' })).toBe(
      inventory.length,
    );
    // The lookup taught the proxy which node the MAC belongs to.
    expect(p.agents.nodeForMac(MAC.A)).toBe(NODE_A);
  });

  it("hands IPA a lookup answer without Ironic's address", async () => {
    // Ironic writes node.links from its public URL: the address metalboot reaches it by, or
    // [api]public_endpoint when set (another address again).
    const elsewhere = await startIronic({
      nodes: [{ uuid: NODE_A, macs: [MAC.A] }],
      publicUrl: 'https://ironic.mgmt.example:6385',
    });
    open.push(elsewhere);
    for (const upstream of [ironic, elsewhere]) {
      const p = await startProxy({ ironicApiUrl: upstream.url });
      const res = await new IpaApiClient(p.apiUrl).lookup([MAC.A]);
      expect(res.status, res.text).toBe(200);
      expect(res.text).not.toContain(upstream.url);
      expect(res.text).not.toContain(new URL(upstream.url).host);
      expect(res.text).not.toContain('ironic.mgmt.example');
      const body = res.json<{ node: Record<string, unknown>; config: { agent_token: string } }>();
      expect(body.node).toMatchObject({ uuid: NODE_A, properties: {}, instance_info: {}, driver_internal_info: {} });
      expect(body.config.agent_token).toBeTruthy();
      expect(Number(res.headers['content-length'])).toBe(Buffer.byteLength(res.text));
    }
  });

  it('records only the MACs Ironic confirmed, and writes the state only when it changed', async () => {
    const stateDir = tmp();
    const p = await startProxy({ stateDir });
    const agent = await agentFor();
    const client = new IpaApiClient(p.apiUrl);
    // A lookup with the one MAC alone: Ironic found the node by that port.
    await bootIpa(client, agent, NODE_A, MAC.A);
    const file = path.join(stateDir, 'agents', `node-${NODE_A}.json`);
    const written = statSync(file);
    const randomMac = (): string =>
      ['52:54:01', ...[...randomBytes(3)].map((b) => b.toString(16).padStart(2, '0'))].join(':');
    const strangers: string[] = [];
    for (let i = 0; i < 20; i++) {
      const macs = Array.from({ length: 63 }, randomMac);
      strangers.push(...macs);
      // One real MAC and 63 random ones: Ironic answers with the node, confirming only that
      // one of them is its port.
      const res = await client.lookup(i % 2 === 0 ? [MAC.A, ...macs] : [...macs, MAC.A]);
      expect(res.status).toBe(200);
    }
    expect((await client.lookup([MAC.A])).status).toBe(200);
    expect(p.agents.get(NODE_A)?.macs).toEqual([MAC.A]);
    expect(JSON.parse(readFileSync(file, 'utf8')).macs).toEqual([MAC.A]);
    for (const m of strangers.slice(0, 50)) {
      expect(p.agents.nodeForMac(m)).toBeUndefined();
      expect(p.callback.explain(m)).toBeUndefined();
    }
    expect(p.callback.explain(MAC.A)).toMatchObject({ ironicAgent: { node: NODE_A } });
    // Nothing changed: the file was never replaced.
    expect(statSync(file).ino).toBe(written.ino);
  });

  it('refuses an oversized inventory: by its Content-Length before Ironic sees it, or while streaming', async () => {
    const p = await startProxy({ maxInventoryBytes: 2 * MiB });
    const client = new IpaApiClient(p.apiUrl);
    await client.discover();
    const before = ironic.requests.length;
    const declared = await client.continueInspection(Buffer.alloc(3 * MiB, 0x20));
    expect(declared.status).toBe(413);
    expect(ironic.requests.length).toBe(before);

    const stream = new PassThrough();
    const answer = client.continueInspection(stream);
    for (let i = 0; i < 3; i++) stream.write(Buffer.alloc(MiB, 0x20));
    stream.end();
    const res = await answer.catch((err: unknown) => ({ status: -1, text: String(err) }));
    // The proxy answers 413 and closes; a client still sending may see the close first.
    expect([413, -1]).toContain(res.status);
    expect(ironic.requests.slice(before).filter((r) => r.status === 202)).toEqual([]);
  });

  it.each([
    ['GET', '/v1/nodes'],
    ['GET', `/v1/nodes/${NODE_A}`],
    ['PATCH', `/v1/nodes/${NODE_A}`],
    ['GET', '/v1/../v1/nodes'],
    ['GET', '/v1/%2e%2e/v1/nodes'],
    ['GET', '/v1/lookup/../nodes'],
    ['POST', '/v1/lookup'],
    ['GET', '/v1/heartbeat/x'],
    ['DELETE', '/v1/ports'],
    ['GET', '/v1/drivers?detail=true'],
  ])('never forwards %s %s', async (method, target) => {
    const p = await startProxy();
    const before = ironic.requests.length;
    const res = await rawRequest(Number(new URL(p.apiUrl).port), method, target);
    expect(res.status).toBe(404);
    expect(ironic.requests.length).toBe(before);
  });

  it.each([
    ['an encoded slash in the node', `/v1/heartbeat/..%2Fnodes`, 400],
    ['a dot-dot node', `/v1/heartbeat/..`, 400],
  ])('refuses a heartbeat with %s', async (_name, target, status) => {
    const p = await startProxy();
    const before = ironic.requests.length;
    const res = await rawRequest(Number(new URL(p.apiUrl).port), 'POST', target);
    expect(res.status).toBe(status);
    expect(ironic.requests.length).toBe(before);
  });

  it('refuses hostile heartbeat bodies without forwarding them', async () => {
    const p = await startProxy({ maxHeartbeatBytes: 64 * 1024 });
    const before = ironic.requests.length;
    for (const [body, status] of [
      ['{"callback_url": "https://127.0.0.1:9999", ', 400],
      ['[]', 400],
      [JSON.stringify({ callback_url: 'file:///etc/shadow', agent_token: 'x' }), 400],
      [
        JSON.stringify({
          callback_url: 'https://127.0.0.1:9999',
          agent_token: 'x',
          agent_verify_ca: 'not a certificate',
        }),
        400,
      ],
      [JSON.stringify({ callback_url: 'https://127.0.0.1:9999', agent_token: 'x', pad: 'x'.repeat(100 * 1024) }), 413],
    ] as const) {
      const res = await request(`${p.apiUrl}/v1/heartbeat/${NODE_B}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-openstack-ironic-api-version': '1.84' },
        body,
      });
      const text = await res.body.text();
      expect(res.statusCode, text).toBe(status);
      expect(JSON.parse(JSON.parse(text).error_message).faultstring).toBeTruthy();
    }
    expect(ironic.requests.length).toBe(before);
    expect(await p.metric('metalboot_ironic_heartbeats_total', { outcome: 'invalid' })).toBe(5);
  });
});

describe('deploy loop through both proxies', () => {
  it('heartbeats, then Ironic runs commands on IPA through the callback listener', async () => {
    const stateDir = tmp();
    const p = await startProxy({ stateDir });
    const agent = await agentFor();
    const client = new IpaApiClient(p.apiUrl);
    await bootIpa(client, agent, NODE_B, MAC.B);

    const n = ironic.node(NODE_B);
    expect(n.agentUrl).toBe(`${p.callbackUrl}/nodes/${NODE_B}/${agentIdOf(agent.url, agent.certPem)}`);
    expect(n.agentUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/nodes\//);
    expect(n.agentVerifyCa).toBe(p.callback.ironicCaPem());
    expect(n.agentVerifyCa).not.toBe(agent.certPem);
    const forwarded = ironic.requests.filter((r) => r.url === `/v1/heartbeat/${NODE_B}`)[0]!;
    expect(forwarded.headers['x-openstack-ironic-api-version']).toBe('1.84');

    for (let i = 0; i < 3; i++) expect((await heartbeat(client, agent, NODE_B)).status).toBe(202);
    expect(n.heartbeats).toBe(4);
    expect(n.refusals).toEqual([]);

    // The conductor's agent client, verifying the listener against the CA from the heartbeat.
    const run = await ironic.runCommand(NODE_B, 'deploy.get_deploy_steps', { node: { uuid: NODE_B } }, true);
    expect(run.status, run.text).toBe(200);
    expect(run.json<{ command_status: string; command_result: unknown }>()).toMatchObject({
      command_status: 'SUCCEEDED',
      command_result: { ran: 'deploy.get_deploy_steps' },
    });
    const status = await ironic.commandsStatus(NODE_B);
    expect(status.status).toBe(200);
    expect(status.json<{ commands: unknown[] }>().commands).toHaveLength(1);
    const seen = agent.requests.find((r) => r.method === 'POST')!;
    expect(seen.url).toBe(`/v1/commands/?wait=true&agent_token=${encodeURIComponent(agent.token!)}`);
    expect(JSON.parse(seen.body)).toEqual({ name: 'deploy.get_deploy_steps', params: { node: { uuid: NODE_B } } });

    // A busy agent's 409 passes through; so does a wrong token's 401.
    agent.busy = true;
    const busy = await ironic.runCommand(NODE_B, 'deploy.execute_deploy_step', {}, false);
    expect(busy.status).toBe(409);
    expect(busy.json<{ faultstring: string }>().faultstring).toBe('Agent is busy');
    agent.busy = false;

    // Ironic appends "/v1/commands/" to a URL ending in a slash: "//" is folded.
    const ca = new Agent({ connect: { ca: n.agentVerifyCa } });
    open.push({ close: () => ca.close() });
    const slash = await request(`${n.agentUrl}//v1/commands/?agent_token=${agent.token}`, {
      dispatcher: ca,
    });
    expect(slash.statusCode).toBe(200);
    await slash.body.dump();
    const st = await request(`${n.agentUrl}/v1/status`, { dispatcher: ca });
    expect(st.statusCode).toBe(200);
    expect(await st.body.json()).toMatchObject({ version: '10.1.0' });

    expect(await p.metric('metalboot_ironic_heartbeats_total', { outcome: 'accepted' })).toBe(4);
    expect(await p.metric('metalboot_ipa_callback_requests_total', { result: 'forwarded' })).toBe(5);
    expect(p.callback.explain(MAC.B)).toMatchObject({
      ironicAgent: {
        node: NODE_B,
        callbackUrl: n.agentUrl,
        agentUrl: agent.url,
        agentCertificatePinned: true,
      },
    });
  });

  it('keeps the same callback_url and CA across a restart between two heartbeats', async () => {
    const stateDir = tmp();
    const first = await startProxy({ stateDir });
    // The restarted proxy binds the ports the first one had: its callback URLs stay valid.
    const apiPort = Number(new URL(first.apiUrl).port);
    const callbackPort = first.callback.address().port;
    const agent = await agentFor();
    const client = new IpaApiClient(first.apiUrl);
    await bootIpa(client, agent, NODE_C, MAC.C);
    const url = ironic.node(NODE_C).agentUrl;
    const ca = ironic.node(NODE_C).agentVerifyCa;
    await first.close();

    const second = await startProxy({ stateDir, apiPort, callbackPort });
    // Before any new heartbeat, the persisted mapping already serves Ironic's calls.
    expect((await ironic.runCommand(NODE_C, 'clean.get_clean_steps', {}, true)).status).toBe(200);
    const hb = await heartbeat(client, agent, NODE_C);
    expect(hb.status, hb.text).toBe(202);
    expect(ironic.node(NODE_C).refusals).toEqual([]);
    expect(ironic.node(NODE_C).agentUrl).toBe(url);
    expect(second.callback.ironicCaPem()).toBe(ca);
  });

  it('answers a call that arrives before Ironic has answered the heartbeat that enabled it', async () => {
    const p = await startProxy({ stateDir: tmp() });
    const agent = await agentFor();
    const client = new IpaApiClient(p.apiUrl);
    const lookup = await client.lookup([MAC.D]);
    agent.token = lookup.json<{ config: { agent_token: string } }>().config.agent_token;
    let early: Promise<{ status: number }> | undefined;
    ironic.heartbeatDelayMs = 200;
    ironic.onHeartbeat = (n) => {
      if (n.heartbeats === 1) early = ironic.runCommand(NODE_D, 'standby.get_partition_uuids', {}, true);
    };
    expect((await heartbeat(client, agent, NODE_D)).status).toBe(202);
    expect((await early!).status).toBe(200);
  });

  it('does not let a heartbeat Ironic refused redirect the callbacks', async () => {
    const p = await startProxy({ stateDir: tmp() });
    const agent = await agentFor();
    const client = new IpaApiClient(p.apiUrl);
    await bootIpa(client, agent, NODE_B, MAC.B);
    const impostor = await agentFor();
    const forged = await heartbeat(client, impostor, NODE_B, { agent_token: 'guessed' });
    expect(forged.status).toBe(400);
    // Another agent is another callback_url: Ironic checks that before the token, as the real one does.
    expect(ironic.node(NODE_B).refusals).toEqual(['Detected change in ramdisk provided "callback_url"']);
    expect((await ironic.runCommand(NODE_B, 'x.y', {}, true)).status).toBe(200);
    expect(impostor.requests).toHaveLength(0);
    expect(p.agents.get(NODE_B)?.agentUrl).toBe(agent.url);
    expect(await p.metric('metalboot_ironic_heartbeats_total', { outcome: 'rejected' })).toBe(1);
  });

  it('without a state directory: plain HTTP to Ironic, no agent_verify_ca, the loop still works', async () => {
    const p = await startProxy();
    const agent = await agentFor();
    const client = new IpaApiClient(p.apiUrl);
    await bootIpa(client, agent, NODE_A, MAC.A);
    expect(ironic.node(NODE_A).agentUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/nodes\//);
    expect(ironic.node(NODE_A).agentVerifyCa).toBeUndefined();
    expect((await ironic.runCommand(NODE_A, 'x.y', {}, true)).status).toBe(200);
  });

  it('forwards to a plain-HTTP agent', async () => {
    const p = await startProxy({ stateDir: tmp() });
    const agent = await agentFor(false);
    await bootIpa(new IpaApiClient(p.apiUrl), agent, NODE_A, MAC.A);
    expect(ironic.node(NODE_A).agentVerifyCa).toBe(p.callback.ironicCaPem());
    expect((await ironic.runCommand(NODE_A, 'x.y', {}, true)).status).toBe(200);
  });
});

describe('callback listener refusals', () => {
  it('refuses an agent whose certificate is not the one it sent, unless told to skip verification', async () => {
    const claimed = await ipaCertificate('127.0.0.1');
    const served = await ipaCertificate('127.0.0.1');
    const forged = await startIpaAgent({ tls: claimed, serve: served });
    open.push(forged);
    const p = await startProxy({ stateDir: tmp() });
    await bootIpa(new IpaApiClient(p.apiUrl), forged, NODE_C, MAC.C);
    const res = await ironic.runCommand(NODE_C, 'x.y', {}, true);
    expect(res.status).toBe(502);
    expect(res.text).toMatch(/IPA at https:\/\/127\.0\.0\.1:\d+ presented a certificate that does not verify/);
    expect(forged.requests).toHaveLength(0);
    expect(await p.metric('metalboot_ipa_callback_failures_total', { reason: 'tls-verify' })).toBe(1);
    await p.close();
    ironic.reboot(NODE_C);

    const lax = await startProxy({ stateDir: tmp(), insecureSkipVerify: true });
    await bootIpa(new IpaApiClient(lax.apiUrl), forged, NODE_C, MAC.C);
    expect((await ironic.runCommand(NODE_C, 'x.y', {}, true)).status).toBe(200);
  });

  it('refuses an agent certificate made for another IP', async () => {
    const cert = await ipaCertificate('127.0.0.2');
    const elsewhere = await startIpaAgent({ tls: cert });
    open.push(elsewhere);
    const p = await startProxy({ stateDir: tmp() });
    await bootIpa(new IpaApiClient(p.apiUrl), elsewhere, NODE_D, MAC.D);
    const res = await ironic.runCommand(NODE_D, 'x.y', {}, true);
    expect(res.status).toBe(502);
    expect(res.text).toContain('ERR_TLS_CERT_ALTNAME_INVALID');
  });

  it('answers 502 with the reason when the agent is gone', async () => {
    const p = await startProxy({ stateDir: tmp() });
    const agent = await agentFor();
    await bootIpa(new IpaApiClient(p.apiUrl), agent, NODE_A, MAC.A);
    await agent.close();
    const res = await ironic.runCommand(NODE_A, 'x.y', {}, true);
    expect(res.status).toBe(502);
    expect(res.text).toMatch(/IPA at https:\/\/127\.0\.0\.1:\d+ refused the connection \(ECONNREFUSED\)/);
  });

  const ID = agentIdOf('https://127.0.0.1:9999', undefined);
  it.each([
    ['an unknown node', `/nodes/${NODE_D}/${ID}/v1/commands/`, 404, /unknown node/],
    ['a path outside /nodes', '/v1/commands/', 404, /not found/],
    ['a path without an agent', `/nodes/${NODE_D}/v1/commands/`, 404, /not found/],
    ['a traversal', `/nodes/${NODE_A}/${ID}/../../etc/passwd`, 400, /refused/],
    ['an encoded traversal', `/nodes/${NODE_A}/${ID}/v1/%2e%2e/%2e%2e/x`, 400, /refused/],
    ['an encoded slash', `/nodes/${NODE_A}/${ID}/v1%2f..%2fx`, 400, /refused/],
    ['a bad node', `/nodes/a%2fb/${ID}/v1/status`, 404, /invalid node/],
  ])('refuses %s', async (_name, target, status, text) => {
    const p = await startProxy();
    const res = await rawRequest(Number(new URL(p.callbackUrl).port), 'GET', target);
    expect(res.status).toBe(status);
    expect(res.text).toMatch(text);
  });
});

/** Ironic's faultstring from an error body (`{"error_message": "{\"faultstring\": …}"}`). */
function faultstring(text: string): string {
  return (JSON.parse(JSON.parse(text).error_message) as { faultstring: string }).faultstring;
}

/** A TCP relay on 127.0.0.1:0 to `port`: another address of a listener, as a NAT would make. */
async function tcpRelay(port: number): Promise<{ readonly port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((a) => {
    const b = net.connect(port, '127.0.0.1');
    for (const s of [a, b]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    a.pipe(b).pipe(a);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const relay = {
    port: (server.address() as net.AddressInfo).port,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  open.push(relay);
  return relay;
}

/** A plain-HTTP "agent" on 127.0.0.1:0 that reads requests and never answers them. */
async function silentAgent(): Promise<{ readonly url: string; readonly received: string[] }> {
  const received: string[] = [];
  const server = http.createServer((req) => {
    received.push(`${req.method} ${req.url}`);
    req.resume();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  open.push({
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  });
  return { url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`, received };
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  expect(cond()).toBe(true);
}

describe('the agent record is as strict as Ironic', () => {
  it("refuses a heartbeat that re-points the node to another agent, with Ironic's own answer", async () => {
    const p = await startProxy({ stateDir: tmp() });
    const agent = await agentFor();
    const client = new IpaApiClient(p.apiUrl);
    await bootIpa(client, agent, NODE_A, MAC.A);
    const callbackUrl = ironic.node(NODE_A).agentUrl;

    // The node's token, a TLS agent with a certificate of its own, then a plain-HTTP listener.
    const tlsImpostor = await agentFor();
    const plainImpostor = await agentFor(false);
    for (const impostor of [tlsImpostor, plainImpostor]) {
      const res = await heartbeat(client, { ...impostor, token: agent.token }, NODE_A);
      expect(res.status, res.text).toBe(400);
      expect(faultstring(res.text)).toBe('Detected change in ramdisk provided "callback_url"');
    }
    // Only the certificate changes: refused too.
    const sameUrlOtherCert = await ipaCertificate('127.0.0.1');
    const certOnly = await heartbeat(client, { ...agent, certPem: sameUrlOtherCert.certPem }, NODE_A);
    expect(certOnly.status, certOnly.text).toBe(400);

    expect(ironic.node(NODE_A).agentUrl).toBe(callbackUrl);
    expect(p.agents.get(NODE_A)?.agentUrl).toBe(agent.url);
    const run = await ironic.runCommand(NODE_A, 'deploy.get_deploy_steps', {}, true);
    expect(run.status, run.text).toBe(200);
    expect(agent.requests.filter((r) => r.method === 'POST')).toHaveLength(1);
    expect(tlsImpostor.requests).toHaveLength(0);
    expect(plainImpostor.requests).toHaveLength(0);
    expect(await p.metric('metalboot_ironic_heartbeats_total', { outcome: 'rejected' })).toBe(3);
  });

  it('follows the new agent once Ironic has let go of the old one', async () => {
    const p = await startProxy({ stateDir: tmp() });
    const client = new IpaApiClient(p.apiUrl);
    const first = await agentFor();
    await bootIpa(client, first, NODE_B, MAC.B);

    // A reboot wipes agent_url, agent_verify_ca and the token: the new agent looks up a new one.
    ironic.reboot(NODE_B);
    const second = await agentFor();
    await bootIpa(client, second, NODE_B, MAC.B);
    expect((await ironic.runCommand(NODE_B, 'x.y', {}, true)).status).toBe(200);
    expect(second.requests).toHaveLength(1);

    // Virtual media: the token was pre-generated and survives the power cycle; the agent's
    // address and certificate do not.
    ironic.reboot(NODE_B, { keepToken: true });
    const third = await agentFor();
    third.token = second.token;
    const hb = await heartbeat(client, third, NODE_B);
    expect(hb.status, hb.text).toBe(202);
    expect((await ironic.runCommand(NODE_B, 'x.y', {}, true)).status).toBe(200);
    expect(third.requests).toHaveLength(1);
    expect(first.requests).toHaveLength(0);
    expect(second.requests).toHaveLength(1);
  });

  it('refuses an agent URL whose host is not the address the heartbeat came from', async () => {
    const p = await startProxy({ stateDir: tmp() });
    const agent = await agentFor();
    const client = new IpaApiClient(p.apiUrl);
    agent.token = (await client.lookup([MAC.C])).json<{ config: { agent_token: string } }>().config.agent_token;
    const before = ironic.requests.length;
    const res = await heartbeat(client, { ...agent, url: agent.url.replace('127.0.0.1', '127.0.0.2') }, NODE_C);
    expect(res.status, res.text).toBe(400);
    expect(faultstring(res.text)).toMatch(/callback_url host 127\.0\.0\.2 is not the address the heartbeat came from/);
    expect(ironic.requests.length).toBe(before);
    expect(p.agents.get(NODE_C)).toBeUndefined();
    expect(await p.metric('metalboot_ironic_heartbeat_refusals_total', { reason: 'agent-not-source' })).toBe(1);
  });

  it("refuses an agent URL that is one of metalboot's own listeners", async () => {
    const p = await startProxy({ stateDir: tmp() });
    const client = new IpaApiClient(p.apiUrl);
    const token = (await client.lookup([MAC.D])).json<{ config: { agent_token: string } }>().config.agent_token;
    const before = ironic.requests.length;
    for (const url of [
      p.callbackUrl.replace('https:', 'http:'),
      p.callbackUrl,
      `${p.callbackUrl}/nodes/${NODE_D}`,
      p.apiUrl,
    ]) {
      const res = await heartbeat(client, { url, token, certPem: undefined }, NODE_D);
      expect(res.status, `${url}: ${res.text}`).toBe(400);
      expect(faultstring(res.text)).toMatch(/metalboot's own listener/);
    }
    expect(ironic.requests.length).toBe(before);
    expect(await p.metric('metalboot_ironic_heartbeat_refusals_total', { reason: 'agent-is-metalboot' })).toBe(4);
  });
});

describe('the callback listener is no relay', () => {
  it.each([
    ['POST', '/anything'],
    ['GET', '/anything/else?x=1'],
    ['POST', '/v1/status'],
    ['DELETE', '/v1/commands/'],
    ['PUT', '/v1/commands/'],
    ['PATCH', '/v1/commands/abc'],
    ['POST', '/v1/commands/abc'],
    ['GET', '/v1/commands/abc/def'],
    ['GET', '/v1/nodes'],
    ['GET', '/v2/'],
    ['OPTIONS', '/v1/commands/'],
  ])('answers %s <callback>%s itself with 404, never contacting the agent', async (method, tail) => {
    const p = await startProxy({ stateDir: tmp() });
    const agent = await agentFor();
    await bootIpa(new IpaApiClient(p.apiUrl), agent, NODE_A, MAC.A);
    const ca = new Agent({ connect: { ca: p.callback.ironicCaPem() } });
    open.push({ close: () => ca.close() });
    const res = await request(`${ironic.node(NODE_A).agentUrl}${tail}`, {
      method: method as 'GET',
      dispatcher: ca,
      body: method === 'GET' || method === 'OPTIONS' ? undefined : '{"name":"x","params":{}}',
    });
    const text = await res.body.text();
    expect(res.statusCode, text).toBe(404);
    expect(agent.requests).toHaveLength(0);
    expect(await p.metric('metalboot_ipa_callback_refusals_total', { reason: 'not-agent-api' })).toBe(1);
  });

  it('cuts a loop back into the callback listener at the second pass', async () => {
    const p = await startProxy();
    const relay = await tcpRelay(Number(new URL(p.callbackUrl).port));
    const client = new IpaApiClient(p.apiUrl);
    const token = (await client.lookup([MAC.B])).json<{ config: { agent_token: string } }>().config.agent_token;
    // Another address of the listener (a NodePort, a NAT) is not recognisable as our own.
    const url = `http://127.0.0.1:${relay.port}/nodes/${NODE_B}`;
    const hb = await heartbeat(client, { url, token, certPem: undefined }, NODE_B);
    expect(hb.status, hb.text).toBe(202);
    const run = await Promise.race([
      ironic.runCommand(NODE_B, 'x.y', {}, true),
      new Promise<'hung'>((r) => setTimeout(() => r('hung'), 5000)),
    ]);
    expect(run).not.toBe('hung');
    expect(run === 'hung' ? 0 : run.status).toBe(508);
    expect(await p.metric('metalboot_ipa_callback_refusals_total', { reason: 'loop' })).toBe(1);
  });

  it('closes within its bound while a forward waits for a silent agent', async () => {
    const p = await startProxy({ closeGraceMs: 200 });
    const silent = await silentAgent();
    const client = new IpaApiClient(p.apiUrl);
    const token = (await client.lookup([MAC.C])).json<{ config: { agent_token: string } }>().config.agent_token;
    expect((await heartbeat(client, { url: silent.url, token, certPem: undefined }, NODE_C)).status).toBe(202);
    const run = ironic.runCommand(NODE_C, 'deploy.write_image', {}, true).catch((err: unknown) => err);
    await until(() => silent.received.length === 1);
    const t0 = Date.now();
    await Promise.race([p.callback.close(), new Promise((r) => setTimeout(r, 5000))]);
    expect(Date.now() - t0).toBeLessThan(3000);
    const answer = await run;
    expect(answer instanceof Error ? 'connection closed' : (answer as { status: number }).status).toBeOneOf([
      503,
      'connection closed',
    ]);
  });
});

/** A request whose body is sent only in part: the connection stays open until closed. */
interface SlowRequest {
  /** The status of the answer, once one arrived (0 while none has). */
  status(): number;
  readonly closed: Promise<void>;
  destroy(): void;
}

async function slowRequest(port: number, target: string, declared: number, sent: number): Promise<SlowRequest> {
  const s = net.connect(port, '127.0.0.1');
  await once(s, 'connect');
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  s.on('error', () => undefined);
  const closed = once(s, 'close').then(() => undefined);
  s.write(
    `POST ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
      `X-OpenStack-Ironic-API-Version: 1.84\r\nContent-Length: ${declared}\r\n\r\n`,
  );
  s.write(Buffer.alloc(sent, 0x20));
  open.push({
    async close() {
      s.destroy();
    },
  });
  return {
    status: () => Number(/^HTTP\/1\.1 (\d{3})/.exec(Buffer.concat(chunks).toString('latin1'))?.[1] ?? 0),
    closed,
    destroy: () => s.destroy(),
  };
}

describe('bounded memory and connections', () => {
  it('holds heartbeat bodies up to its budget and refuses the rest with 503; the bytes come down', async () => {
    const budget = 256 * 1024;
    const p = await startProxy({ maxHeartbeatBytes: 64 * 1024, maxBufferedBytes: budget });
    const port = Number(new URL(p.apiUrl).port);
    // 24 heartbeats that each stop a few bytes short of their declared length, as a flood of
    // slow or malicious callers would: at most four fit.
    const slow = await Promise.all(
      Array.from({ length: 24 }, () => slowRequest(port, `/v1/heartbeat/${NODE_A}`, 60_000, 59_990)),
    );
    const buffered = () => p.metric('metalboot_ironic_api_proxy_buffered_bytes');
    await until(() => slow.filter((r) => r.status() !== 0).length >= 20);
    const peak = await buffered();
    expect(peak).toBeLessThanOrEqual(budget);
    expect(peak).toBeGreaterThan(0);
    const refused = slow.filter((r) => r.status() === 503);
    expect(refused.length).toBeGreaterThanOrEqual(20);
    expect(await p.metric('metalboot_ironic_api_proxy_refusals_total', { reason: 'body-budget' })).toBe(refused.length);
    expect(await p.metric('metalboot_ironic_heartbeats_total', { outcome: 'overloaded' })).toBe(refused.length);
    // Refused ones are closed; the others' bytes are given back when their callers go away.
    await Promise.all(refused.map((r) => r.closed));
    for (const r of slow) r.destroy();
    const deadline = Date.now() + 5000;
    while ((await buffered()) !== 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(await buffered()).toBe(0);
    // A real heartbeat goes through again.
    const agent = await agentFor();
    await bootIpa(new IpaApiClient(p.apiUrl), agent, NODE_A, MAC.A);
  });

  it('answers 408 to a heartbeat body that stalls, and gives its bytes back', async () => {
    const p = await startProxy({ bodyTimeoutMs: 200 });
    const stalled = await slowRequest(Number(new URL(p.apiUrl).port), `/v1/heartbeat/${NODE_B}`, 1000, 10);
    await until(() => stalled.status() !== 0);
    expect(stalled.status()).toBe(408);
    await stalled.closed;
    expect(await p.metric('metalboot_ironic_api_proxy_refusals_total', { reason: 'body-timeout' })).toBe(1);
    expect(await p.metric('metalboot_ironic_api_proxy_buffered_bytes')).toBe(0);
  });

  it('closes callback connections beyond its cap', async () => {
    const p = await startProxy({ callbackMaxConnections: 2 });
    const port = Number(new URL(p.callbackUrl).port);
    const held = await Promise.all([0, 1].map(() => slowRequest(port, '/nodes/x/y/v1/commands/', 10, 1)));
    const extra = net.connect(port, '127.0.0.1');
    extra.on('error', () => undefined);
    open.push({ close: async () => void extra.destroy() });
    const closed = await Promise.race([
      once(extra, 'close').then(() => true),
      new Promise<false>((r) => setTimeout(() => r(false), 3000)),
    ]);
    expect(closed).toBe(true);
    expect(await p.metric('metalboot_http_connections_dropped_total', { listener: 'ipa-callback' })).toBe(1);
    for (const h of held) h.destroy();
  });
});

describe('in the product (buildServices)', () => {
  it('wires the API proxy, the callback listener, its readiness and /debug/explain', async () => {
    const stateDir = tmp();
    const root = tmp();
    const yaml = `proxy:\n  stateDir: ${stateDir}\n`;
    const loaded = loadConfig({
      argv: [
        '--config',
        'metalboot.yaml',
        '--server-ip',
        '127.0.0.1/8',
        '--dhcp-listen',
        '127.0.0.1:0',
        '--tftp-listen',
        '',
        '--tftp-root',
        root,
        // Port 0 everywhere: the listeners bind a free port and advertise the one they got.
        '--http-listen',
        '127.0.0.1:0',
        '--callback-listen',
        '127.0.0.1:0',
        '--ironic-api-url',
        ironic.url,
        '--log-level',
        'silent',
      ],
      env: {},
      readFile: () => yaml,
      localAddresses: () => [],
    });
    if (loaded.kind !== 'config') throw new Error(JSON.stringify(loaded));
    const product = buildProduct(loaded.config, { logger, registry: new Registry() });
    open.push({ close: () => closeAll(product.services) });
    await startAll(product.services);
    expect(product.readiness.find((c) => c.name === 'ipa-callback')?.check()).toEqual({
      ok: true,
      detail: 'listening',
    });
    const httpPort = product.http.address().port;
    const callback = product.services.find((s) => s.name === 'ipa-callback') as CallbackServer;
    const callbackPort = callback.address().port;
    expect(httpPort).not.toBe(0);
    expect(callbackPort).not.toBe(0);
    expect(callback.advertiseUrl).toBe(`https://127.0.0.1:${callbackPort}`);
    // IPA is told the API proxy's bound address, never Ironic's or port 0.
    const discovery = await request(`http://127.0.0.1:${httpPort}/v1/`);
    expect(JSON.stringify(await discovery.body.json())).toContain(`http://127.0.0.1:${httpPort}/v1/`);

    const agent = await agentFor();
    const client = new IpaApiClient(`http://127.0.0.1:${httpPort}`);
    await bootIpa(client, agent, NODE_B, MAC.B);
    const callbackUrl = `https://127.0.0.1:${callbackPort}/nodes/${NODE_B}/${agentIdOf(agent.url, agent.certPem)}`;
    expect(ironic.node(NODE_B).agentUrl).toBe(callbackUrl);
    expect((await ironic.runCommand(NODE_B, 'deploy.get_deploy_steps', {}, true)).status).toBe(200);

    const explain = await request(`http://127.0.0.1:${httpPort}/debug/explain?mac=${MAC.B}`);
    expect(await explain.body.json()).toMatchObject({
      ironicAgent: {
        node: NODE_B,
        callbackUrl,
        agentUrl: agent.url,
        agentCertificatePinned: true,
        persisted: true,
      },
    });
  });
});
