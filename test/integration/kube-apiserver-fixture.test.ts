// Proves test/support/kube-apiserver.ts against the real @kubernetes/client-node 1.x client,
// and records, as assertions, how that client behaves on each fault the BareMetalHost watcher
// must survive: 410 Gone, a cut watch connection, 500s and an absent API server.

import {
  ApiException,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  EventsV1Api,
  type EventsV1Event,
  KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  ListWatch,
  PatchStrategy,
  setHeaderOptions,
  V1MicroTime,
  Watch,
} from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';

import {
  type BareMetalHost,
  type HostInput,
  type KubeApiServer,
  type KubeApiServerOptions,
  startKubeApiServer,
} from '../support/kube-apiserver.js';
import { kubeconfigFor, writeInClusterFiles, writeKubeconfig } from '../support/kube-config.js';
import { summary, watchOnce as watchWith } from '../support/kube-watch.js';

const GROUP = 'metal3.io';
const VERSION = 'v1alpha1';
const PLURAL = 'baremetalhosts';
const NS = 'metal3';
const NS_PATH = `/apis/${GROUP}/${VERSION}/namespaces/${NS}/${PLURAL}`;
const TOKEN = 'test-token';

/** The absence of a reconnect can only be shown by waiting a while; this is that while. */
const SETTLE_MS = 300;
const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, SETTLE_MS));

function host(name: string, extra: Partial<HostInput> = {}, namespace = NS): HostInput {
  return {
    metadata: { name, namespace, annotations: { 'metal3.vcluster.com/ip-address': '10.0.0.10/24' } },
    spec: { bootMACAddress: `52:54:00:00:00:${name.slice(-2).padStart(2, '0')}`, online: true },
    ...extra,
  };
}

let server: KubeApiServer | undefined;
const cleanups: (() => Promise<void> | void)[] = [];
/** A watch whose abort is one of this file's cleanups. */
const watchOnce = (kc: KubeConfig, path: string, query: Record<string, string | number | boolean>) =>
  watchWith(kc, path, query, cleanups);

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await server?.close();
  server = undefined;
});

async function start(options: KubeApiServerOptions = {}): Promise<{ s: KubeApiServer; kc: KubeConfig }> {
  const s = await startKubeApiServer({ token: TOKEN, ...options });
  server = s;
  const kc = new KubeConfig();
  kc.loadFromString(kubeconfigFor(s));
  return { s, kc };
}

function customObjects(kc: KubeConfig): CustomObjectsApi {
  return kc.makeApiClient(CustomObjectsApi);
}

/** The list as it is on the wire (CustomObjectsApi returns the parsed JSON untyped). */
type HostList = {
  apiVersion: string;
  kind: string;
  metadata: { resourceVersion: string; continue?: string; remainingItemCount?: number };
  items: BareMetalHost[];
};

async function listHosts(
  kc: KubeConfig,
  params: {
    limit?: number;
    _continue?: string;
    resourceVersion?: string;
    resourceVersionMatch?: string;
    labelSelector?: string;
  } = {},
): Promise<HostList> {
  return (await customObjects(kc).listNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace: NS,
    plural: PLURAL,
    ...params,
  })) as HostList;
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (err: unknown) => err,
  );
}

/**
 * A BareMetalHost informer with a log of its callbacks. makeInformer(kc, path, listFn) is exactly
 * `new ListWatch(path, new Watch(kc), listFn, false)`; ListWatch is used directly because only
 * its type exposes latestResourceVersion().
 */
function bmhInformer(kc: KubeConfig) {
  const api = customObjects(kc);
  const listFn = async (): Promise<KubernetesListObject<KubernetesObject>> =>
    (await api.listNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: NS,
      plural: PLURAL,
    })) as KubernetesListObject<KubernetesObject>;
  const informer = new ListWatch<KubernetesObject>(NS_PATH, new Watch(kc), listFn, false);
  const log: string[] = [];
  const errors: unknown[] = [];
  informer.on('add', (o) => log.push(`add ${o.metadata?.name ?? ''}`));
  informer.on('update', (o) => log.push(`update ${o.metadata?.name ?? ''}`));
  informer.on('delete', (o) => log.push(`delete ${o.metadata?.name ?? ''}`));
  informer.on('connect', () => log.push('connect'));
  informer.on('error', (err) => {
    log.push('error');
    errors.push(err);
  });
  cleanups.push(() => informer.stop());
  return { informer, log, errors };
}

const requestLine = (s: KubeApiServer, from = 0): string[] =>
  s.requests
    .slice(from)
    .map(
      (r) => `${r.method} ${r.watch ? 'watch' : 'list'} rv=${r.query['resourceVersion'] ?? ''} -> ${r.status ?? '-'}`,
    );

describe('baremetalhosts list and get (CustomObjectsApi)', () => {
  it('lists with the real BareMetalHostList shape and server-managed metadata', async () => {
    const { s, kc } = await start({ hosts: [host('host-02'), host('host-01'), host('other', {}, 'elsewhere')] });
    const list = await listHosts(kc);
    expect(list).toMatchObject({
      apiVersion: 'metal3.io/v1alpha1',
      kind: 'BareMetalHostList',
      metadata: { resourceVersion: s.resourceVersion },
    });
    expect(list.items.map((h) => h.metadata.name)).toEqual(['host-01', 'host-02']);
    const first = list.items[0];
    expect(first).toMatchObject({
      apiVersion: 'metal3.io/v1alpha1',
      kind: 'BareMetalHost',
      metadata: { namespace: NS, generation: 1 },
    });
    expect(first?.metadata.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(first?.metadata.creationTimestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(typeof first?.metadata.resourceVersion).toBe('string');
  });

  it('pages with limit/continue from the first page’s snapshot', async () => {
    const { s, kc } = await start({ hosts: ['h1', 'h2', 'h3', 'h4', 'h5'].map((n) => host(n)) });
    const page1 = await listHosts(kc, { limit: 2 });
    expect(page1.items.map((h) => h.metadata.name)).toEqual(['h1', 'h2']);
    expect(page1.metadata).toMatchObject({ remainingItemCount: 3 });
    const token = page1.metadata.continue ?? '';
    expect(JSON.parse(Buffer.from(token, 'base64url').toString())).toEqual({
      v: 'meta.k8s.io/v1',
      rv: Number(page1.metadata.resourceVersion),
      start: 'h2\u0000',
    });

    s.deleteHost(NS, 'h3');
    s.upsertHost(host('h6'));
    const page2 = await listHosts(kc, { limit: 2, _continue: token });
    const page3 = await listHosts(kc, { limit: 2, _continue: page2.metadata.continue ?? '' });
    expect([...page2.items, ...page3.items].map((h) => h.metadata.name)).toEqual(['h3', 'h4', 'h5']);
    expect(page3.metadata.resourceVersion).toBe(page1.metadata.resourceVersion);
    expect(page3.metadata.continue).toBeUndefined();
  });

  it('lists across namespaces and filters by label selector', async () => {
    const { kc } = await start({
      hosts: [
        host('b', { metadata: { name: 'b', namespace: 'z', labels: { rack: 'r1' } } }),
        host('a', { metadata: { name: 'a', namespace: 'y', labels: { rack: 'r2' } } }),
        host('c', {}, 'y'),
      ],
    });
    const api = customObjects(kc);
    const all = (await api.listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL })) as HostList;
    expect(all.items.map((h) => `${h.metadata.namespace}/${h.metadata.name}`)).toEqual(['y/a', 'y/c', 'z/b']);
    const r1 = (await api.listClusterCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      labelSelector: 'rack in (r1)',
    })) as HostList;
    expect(r1.items.map((h) => h.metadata.name)).toEqual(['b']);
    const notR1 = (await api.listClusterCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      labelSelector: 'rack!=r1',
    })) as HostList;
    expect(notR1.items.map((h) => h.metadata.name)).toEqual(['a', 'c']);
  });

  it('answers resourceVersionMatch=Exact from history, 410 before the window, 422 without a version', async () => {
    const { s, kc } = await start({ hosts: [host('h1')] });
    const before = s.resourceVersion;
    s.upsertHost(host('h2'));
    const exact = await listHosts(kc, { resourceVersion: before, resourceVersionMatch: 'Exact' });
    expect(exact.items.map((h) => h.metadata.name)).toEqual(['h1']);
    expect(exact.metadata.resourceVersion).toBe(before);
    const notOlder = await listHosts(kc, { resourceVersion: before, resourceVersionMatch: 'NotOlderThan' });
    expect(notOlder.items.map((h) => h.metadata.name)).toEqual(['h1', 'h2']);

    s.compactHistory();
    const expired = await rejection(listHosts(kc, { resourceVersion: before, resourceVersionMatch: 'Exact' }));
    expect(expired).toBeInstanceOf(ApiException);
    expect((expired as ApiException<string>).code).toBe(410);
    // client-node leaves the body of an unexpected status as the raw JSON text.
    expect(JSON.parse((expired as ApiException<string>).body)).toMatchObject({
      kind: 'Status',
      reason: 'Expired',
      code: 410,
      message: 'The resourceVersion for the provided list is too old.',
    });

    const invalid = (await rejection(listHosts(kc, { resourceVersionMatch: 'Exact' }))) as ApiException<string>;
    expect(invalid.code).toBe(422);
    expect(JSON.parse(invalid.body)).toMatchObject({
      reason: 'Invalid',
      details: { causes: [{ field: 'resourceVersionMatch' }] },
    });
  });

  it('returns NotFound and Unauthorized as metav1.Status', async () => {
    const { kc, s } = await start({ hosts: [host('h1')] });
    const got = (await customObjects(kc).getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: NS,
      plural: PLURAL,
      name: 'h1',
    })) as BareMetalHost;
    expect(got.metadata.name).toBe('h1');
    const missing = (await rejection(
      customObjects(kc).getNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: NS,
        plural: PLURAL,
        name: 'nope',
      }),
    )) as ApiException<string>;
    expect(missing.code).toBe(404);
    expect(JSON.parse(missing.body)).toMatchObject({
      reason: 'NotFound',
      message: 'baremetalhosts.metal3.io "nope" not found',
      details: { name: 'nope', group: 'metal3.io', kind: 'baremetalhosts' },
    });

    const wrong = new KubeConfig();
    wrong.loadFromString(kubeconfigFor(s, { token: 'wrong' }));
    const denied = (await rejection(listHosts(wrong))) as ApiException<unknown>;
    expect(denied).toBeInstanceOf(ApiException);
    expect(denied.code).toBe(401);
  });

  it('bumps generation on spec changes only and ignores no-op writes', async () => {
    const { s } = await start({ hosts: [host('h1')] });
    const rv0 = s.resourceVersion;
    expect(s.upsertHost(host('h1')).metadata.resourceVersion).toBe(rv0);
    expect(s.setStatus(NS, 'h1', { provisioning: { state: 'inspecting' } })?.metadata.generation).toBe(1);
    const annotated = s.upsertHost(host('h1', { metadata: { name: 'h1', namespace: NS, annotations: { x: 'y' } } }));
    expect(annotated.metadata.generation).toBe(1);
    expect(annotated.status).toEqual({ provisioning: { state: 'inspecting' } });
    expect(s.upsertHost(host('h1', { spec: { online: false } })).metadata.generation).toBe(2);
    expect(Number(s.resourceVersion)).toBe(Number(rv0) + 3);
  });
});

describe('baremetalhosts watch (Watch.watch)', () => {
  it('streams ADDED, MODIFIED and DELETED, and replays history after a resourceVersion', async () => {
    const { s, kc } = await start({ hosts: [host('h1')] });
    const from = s.resourceVersion;
    const w = watchOnce(kc, NS_PATH, { resourceVersion: from });
    await s.waitFor(() => s.openWatches === 1);
    s.upsertHost(host('h2'));
    s.setStatus(NS, 'h2', { provisioning: { state: 'provisioned' } });
    const deleted = s.deleteHost(NS, 'h2');
    s.upsertHost(host('x', {}, 'other-namespace'));
    await s.waitFor(() => w.events.length === 3);
    expect(summary(w.events)).toEqual(['ADDED h2', 'MODIFIED h2', 'DELETED h2']);
    // DELETED carries the last state at the deletion's resourceVersion.
    expect(w.events[2]?.object.metadata?.resourceVersion).toBe(deleted?.metadata.resourceVersion);
    const rvs = w.events.map((e) => Number(e.object.metadata?.resourceVersion));
    expect(rvs).toEqual([...rvs].sort((a, b) => a - b));

    const replay = watchOnce(kc, NS_PATH, { resourceVersion: from });
    await s.waitFor(() => replay.events.length === 3);
    expect(summary(replay.events)).toEqual(summary(w.events));
    const fresh = watchOnce(kc, NS_PATH, {});
    await s.waitFor(() => fresh.events.length === 1);
    expect(summary(fresh.events)).toEqual(['ADDED h1']);
  });

  it('sends BOOKMARKs only when allowed, carrying only the resourceVersion', async () => {
    const { s, kc } = await start({ hosts: [host('h1')] });
    const withBookmarks = watchOnce(kc, NS_PATH, { resourceVersion: s.resourceVersion, allowWatchBookmarks: true });
    const without = watchOnce(kc, NS_PATH, { resourceVersion: s.resourceVersion });
    await s.waitFor(() => s.openWatches === 2);
    // An Event write moves the global resourceVersion without any BareMetalHost event.
    await kc.makeApiClient(CoreV1Api).createNamespacedEvent({
      namespace: NS,
      body: {
        metadata: { name: 'e1' },
        involvedObject: { kind: 'BareMetalHost', name: 'h1', namespace: NS },
        reason: 'Test',
      },
    });
    s.sendBookmark();
    s.upsertHost(host('h2'));
    await s.waitFor(() => withBookmarks.events.length === 2 && without.events.length === 1);
    expect(summary(without.events)).toEqual(['ADDED h2']);
    expect(withBookmarks.events[0]).toEqual({
      type: 'BOOKMARK',
      object: {
        kind: 'BareMetalHost',
        apiVersion: 'metal3.io/v1alpha1',
        metadata: { resourceVersion: String(Number(s.resourceVersion) - 1) },
      },
    });
  });

  it('answers a watch from an expired resourceVersion with 200, one ERROR 410 Status, then the end', async () => {
    const { s, kc } = await start({ hosts: [host('h1')] });
    const old = s.resourceVersion;
    s.upsertHost(host('h2'));
    s.compactHistory();
    const w = watchOnce(kc, NS_PATH, { resourceVersion: old });
    expect(await w.done).toBeNull();
    expect(w.events).toEqual([
      {
        type: 'ERROR',
        object: {
          kind: 'Status',
          apiVersion: 'v1',
          metadata: {},
          status: 'Failure',
          message: `too old resource version: ${old} (${s.resourceVersion})`,
          reason: 'Expired',
          code: 410,
        },
      },
    ]);
    expect(s.requests.at(-1)?.status).toBe(200);
  });

  it('expires by history size as well as by compaction', async () => {
    const { s, kc } = await start({ historyLimit: 2 });
    const old = s.resourceVersion;
    s.upsertHost(host('h1'));
    // Once an event has been evicted, the oldest servable version is one before the oldest kept event.
    const oldest = s.resourceVersion;
    s.upsertHost(host('h2'));
    s.upsertHost(host('h3'));
    const w = watchOnce(kc, NS_PATH, { resourceVersion: old });
    await w.done;
    expect(w.events[0]?.object).toMatchObject({ code: 410, message: `too old resource version: ${old} (${oldest})` });
    const ok = watchOnce(kc, NS_PATH, { resourceVersion: oldest });
    await s.waitFor(() => ok.events.length === 2);
    expect(summary(ok.events)).toEqual(['ADDED h2', 'ADDED h3']);
  });

  it('turns label-selector transitions into ADDED and DELETED', async () => {
    const { s, kc } = await start();
    const w = watchOnce(kc, NS_PATH, { labelSelector: 'rack=r1' });
    await s.waitFor(() => s.openWatches === 1);
    const labelled = (rack: string): HostInput =>
      host('h1', { metadata: { name: 'h1', namespace: NS, labels: { rack } } });
    s.upsertHost(labelled('r2'));
    s.upsertHost(labelled('r1'));
    s.setStatus(NS, 'h1', { provisioning: { state: 'ready' } });
    s.upsertHost(labelled('r2'));
    await s.waitFor(() => w.events.length === 3);
    expect(summary(w.events)).toEqual(['ADDED h1', 'MODIFIED h1', 'DELETED h1']);
  });

  it('serves watch-list: initial ADDED events closed by an initial-events-end BOOKMARK', async () => {
    const { s, kc } = await start({ hosts: [host('h1'), host('h2')] });
    const w = watchOnce(kc, NS_PATH, {
      sendInitialEvents: true,
      resourceVersionMatch: 'NotOlderThan',
      allowWatchBookmarks: true,
      fieldSelector: 'metadata.name=h2',
    });
    await s.waitFor(() => w.events.length === 2);
    expect(summary(w.events)).toEqual(['ADDED h2', 'BOOKMARK BareMetalHost']);
    expect(w.events[1]?.object.metadata).toEqual({
      resourceVersion: s.resourceVersion,
      annotations: { 'k8s.io/initial-events-end': 'true' },
    });
    const named = watchOnce(kc, `${NS_PATH}/h1`, {});
    await s.waitFor(() => named.events.length === 1);
    expect(summary(named.events)).toEqual(['ADDED h1']);
    const unsupported = watchOnce(kc, NS_PATH, { fieldSelector: 'spec.online=true' });
    expect(await unsupported.done).toMatchObject({ statusCode: 400 });
  });

  it('marks a host with finalizers deleted, then deletes it when the finalizers go', async () => {
    const { s, kc } = await start({
      hosts: [host('h1', { metadata: { name: 'h1', namespace: NS, finalizers: ['baremetalhost.metal3.io'] } })],
    });
    const w = watchOnce(kc, NS_PATH, { resourceVersion: s.resourceVersion });
    await s.waitFor(() => s.openWatches === 1);
    const marked = s.deleteHost(NS, 'h1');
    expect(marked?.metadata.deletionTimestamp).toBeDefined();
    expect(marked?.metadata.generation).toBe(2);
    s.upsertHost(host('h1', { metadata: { name: 'h1', namespace: NS, finalizers: [] } }));
    await s.waitFor(() => w.events.length === 2);
    expect(summary(w.events)).toEqual(['MODIFIED h1', 'DELETED h1']);
    expect(s.host(NS, 'h1')).toBeUndefined();
  });

  it('ends the stream cleanly after timeoutSeconds', async () => {
    const { s, kc } = await start();
    const w = watchOnce(kc, NS_PATH, { resourceVersion: s.resourceVersion, timeoutSeconds: 1 });
    expect(await w.done).toBeNull();
    expect(w.events).toEqual([]);
  });

  it('answers a resourceVersion from the future with ERROR 504 after waiting', async () => {
    const { s, kc } = await start({ tooLargeResourceVersionWaitMs: 50 });
    const w = watchOnce(kc, NS_PATH, { resourceVersion: Number(s.resourceVersion) + 10 });
    expect(await w.done).toBeNull();
    expect(w.events[0]).toMatchObject({
      type: 'ERROR',
      object: { code: 504, reason: 'Timeout', details: { causes: [{ reason: 'ResourceVersionTooLarge' }] } },
    });
  });

  // What Watch.watch's done() receives for each way a stream can be cut (client-node 1.4,
  // node-fetch 2.7): a clean end is not an error; everything else is.
  it.each([
    { mode: 'end', expected: null },
    { mode: 'close', expected: { code: 'ERR_STREAM_PREMATURE_CLOSE', message: 'Premature close' } },
    { mode: 'mid-chunk', expected: { code: 'ERR_STREAM_PREMATURE_CLOSE', message: 'Premature close' } },
    { mode: 'reset', expected: { code: 'ECONNRESET' } },
  ] as const)('a watch cut by dropWatchConnections($mode) ends with done($expected)', async ({ mode, expected }) => {
    const { s, kc } = await start();
    const w = watchOnce(kc, NS_PATH, { resourceVersion: s.resourceVersion });
    await s.waitFor(() => s.openWatches === 1);
    s.upsertHost(host('h1'));
    await s.waitFor(() => w.events.length === 1);
    expect(s.dropWatchConnections(mode)).toBe(1);
    const err = await w.done;
    if (expected === null) expect(err).toBeNull();
    else expect(err).toMatchObject(expected);
    expect(s.openWatches).toBe(0);
  });

  it('does not notice a stalled stream by itself: no events, no done(), until the connection is cut', async () => {
    const { s, kc } = await start();
    const w = watchOnce(kc, NS_PATH, { resourceVersion: s.resourceVersion });
    await s.waitFor(() => s.openWatches === 1);
    expect(s.stallWatches()).toBe(1);
    s.upsertHost(host('h1'));
    let finished = false;
    void w.done.then(() => {
      finished = true;
    });
    await settle();
    expect(w.events).toEqual([]);
    expect(finished).toBe(false);
    s.dropWatchConnections('reset');
    expect(await w.done).toMatchObject({ code: 'ECONNRESET' });
  });

  it('reports an HTTP 500 on the watch request as done(err) with statusCode', async () => {
    const { s, kc } = await start();
    s.failNext(1, 500, (r) => r.watch);
    const w = watchOnce(kc, NS_PATH, {});
    expect(await w.done).toMatchObject({ statusCode: 500, message: 'Internal Server Error' });
  });
});

describe('baremetalhosts informer (makeInformer / ListWatch)', () => {
  it('lists, then watches from the list’s resourceVersion: hosts appear, change and disappear', async () => {
    const { s, kc } = await start({ hosts: [host('h1')] });
    const { informer, log } = bmhInformer(kc);
    await informer.start();
    await s.waitFor(() => s.openWatches === 1);
    expect(requestLine(s)).toEqual([`GET list rv= -> 200`, `GET watch rv=${s.resourceVersion} -> 200`]);
    s.upsertHost(host('h2'));
    s.setStatus(NS, 'h1', { provisioning: { state: 'provisioning' } });
    s.deleteHost(NS, 'h2');
    await s.waitFor(() => log.length === 5);
    expect(log).toEqual(['connect', 'add h1', 'add h2', 'update h1', 'delete h2']);
    expect(informer.list(NS).map((h) => h.metadata?.name)).toEqual(['h1']);
    expect(informer.latestResourceVersion()).toBe(s.resourceVersion);
  });

  it('on 410 Gone relists, catching up with changes and deletes made meanwhile, without an error', async () => {
    const { s, kc } = await start({ hosts: [host('h1'), host('h2')] });
    const { informer, log, errors } = bmhInformer(kc);
    await informer.start();
    await s.waitFor(() => s.openWatches === 1);
    const seen = s.requests.length;
    const staleRv = s.resourceVersion;
    // End the stream, change things while the client is away, and forget the history.
    s.dropWatchConnections('end');
    s.upsertHost(host('h3'));
    s.deleteHost(NS, 'h2');
    s.setStatus(NS, 'h1', { provisioning: { state: 'ready' } });
    s.compactHistory();
    await s.waitFor(() => s.openWatches === 1 && s.requests.length === seen + 3);
    expect(requestLine(s, seen)).toEqual([
      `GET watch rv=${staleRv} -> 200`,
      'GET list rv= -> 200',
      `GET watch rv=${s.resourceVersion} -> 200`,
    ]);
    await s.waitFor(() => log.length === 8);
    expect(log.slice(3)).toEqual(['connect', 'connect', 'delete h2', 'update h1', 'add h3']);
    expect(errors).toEqual([]);
  });

  it('re-watches from its last resourceVersion, without a list, when the stream ends cleanly', async () => {
    const { s, kc } = await start({ hosts: [host('h1')] });
    const { informer, log, errors } = bmhInformer(kc);
    await informer.start();
    await s.waitFor(() => s.openWatches === 1);
    const seen = s.requests.length;
    s.dropWatchConnections('end');
    s.upsertHost(host('h2'));
    await s.waitFor(() => log.includes('add h2'));
    expect(requestLine(s, seen)).toEqual([`GET watch rv=${Number(s.resourceVersion) - 1} -> 200`]);
    expect(errors).toEqual([]);
  });

  it('ignores a non-410 ERROR event: the stream ends and it re-watches from the same version', async () => {
    const { s, kc } = await start({ hosts: [host('h1')] });
    const { informer, errors } = bmhInformer(kc);
    await informer.start();
    await s.waitFor(() => s.openWatches === 1);
    const seen = s.requests.length;
    s.sendWatchError(500);
    await s.waitFor(() => s.openWatches === 1 && s.requests.length === seen + 1);
    expect(requestLine(s, seen)).toEqual([`GET watch rv=${s.resourceVersion} -> 200`]);
    expect(errors).toEqual([]);
  });

  it.each(['reset', 'close', 'mid-chunk'] as const)(
    'stops for good after a connection cut (%s): an error callback, no reconnect',
    async (mode) => {
      const { s, kc } = await start({ hosts: [host('h1')] });
      const { informer, log, errors } = bmhInformer(kc);
      await informer.start();
      await s.waitFor(() => s.openWatches === 1);
      const seen = s.requests.length;
      s.dropWatchConnections(mode);
      await s.waitFor(() => errors.length === 1);
      s.upsertHost(host('h2'));
      await settle();
      expect(s.requests.length).toBe(seen);
      expect(log).not.toContain('add h2');
      expect(errors[0]).toMatchObject({ code: mode === 'reset' ? 'ECONNRESET' : 'ERR_STREAM_PREMATURE_CLOSE' });

      // Supervision is the caller's job. start() again keeps the last resourceVersion: it
      // re-watches from there without a list, and the server's history fills the gap.
      const lastRv = informer.latestResourceVersion();
      await informer.start();
      await s.waitFor(() => log.includes('add h2'));
      expect(requestLine(s, seen)).toEqual([`GET watch rv=${lastRv} -> 200`]);
    },
  );

  it('stops after a 500 on the list (ApiException) or on the watch (statusCode)', async () => {
    const { s, kc } = await start({ hosts: [host('h1')] });
    const { informer, errors } = bmhInformer(kc);
    s.failNext(1, 500);
    await informer.start();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(ApiException);
    expect((errors[0] as ApiException<string>).code).toBe(500);
    expect(s.openWatches).toBe(0);

    s.failNext(1, 500, (r) => r.watch);
    await informer.start();
    await s.waitFor(() => errors.length === 2);
    expect(errors[1]).toMatchObject({ statusCode: 500 });
    await settle();
    expect(s.openWatches).toBe(0);
    expect(requestLine(s)).toEqual([
      'GET list rv= -> 500',
      'GET list rv= -> 200',
      `GET watch rv=${s.resourceVersion} -> 500`,
    ]);
  });

  it('is never sent bookmarks: ListWatch does not ask for them', async () => {
    const { s, kc } = await start({ hosts: [host('h1')] });
    const { informer } = bmhInformer(kc);
    await informer.start();
    await s.waitFor(() => s.openWatches === 1);
    expect(s.requests.at(-1)?.query).toEqual({ watch: 'true', resourceVersion: s.resourceVersion });
  });

  it('errors and stops when the API server goes away mid-watch', async () => {
    const { s, kc } = await start({ hosts: [host('h1')] });
    const { informer, errors } = bmhInformer(kc);
    await informer.start();
    await s.waitFor(() => s.openWatches === 1);
    await s.pauseAvailability('refuse');
    await s.waitFor(() => errors.length === 1);
    expect(errors[0]).toMatchObject({ code: 'ECONNRESET' });
    await s.resume();
    await settle();
    expect(s.openWatches).toBe(0);
  });
});

describe('events (CoreV1Api, EventsV1Api)', () => {
  const involved = { apiVersion: 'metal3.io/v1alpha1', kind: 'BareMetalHost', name: 'h1', namespace: NS, uid: 'u-1' };

  it('creates, patches and lists core/v1 events, recorded for assertions', async () => {
    const { s, kc } = await start();
    const core = kc.makeApiClient(CoreV1Api);
    const first = new Date('2030-01-02T03:04:05.678Z');
    const created = await core.createNamespacedEvent({
      namespace: NS,
      body: {
        metadata: { generateName: 'h1.' },
        involvedObject: involved,
        reason: 'LeaseOffered',
        message: 'offered 10.0.0.10',
        type: 'Normal',
        count: 1,
        firstTimestamp: first,
        lastTimestamp: first,
        source: { component: 'metalboot' },
      },
    });
    expect(created.metadata?.name).toMatch(/^h1\.[a-z0-9]{5}$/);
    expect(created.metadata?.uid).toBeDefined();
    expect(s.requests.at(-1)).toMatchObject({ method: 'POST', status: 201 });
    const name = created.metadata?.name ?? '';

    // client-node's default patch content type is application/json-patch+json.
    await core.patchNamespacedEvent({ namespace: NS, name, body: [{ op: 'replace', path: '/count', value: 2 }] });
    const later = new Date('2030-01-02T03:05:00Z');
    await core.patchNamespacedEvent(
      { namespace: NS, name, body: { count: 3, lastTimestamp: later } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await core.patchNamespacedEvent(
      { namespace: NS, name, body: { message: 'offered again' } },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    );

    const [recorded] = s.events(NS);
    expect(recorded).toMatchObject({
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name, namespace: NS },
      involvedObject: involved,
      reason: 'LeaseOffered',
      message: 'offered again',
      count: 3,
      // metav1.Time is whole seconds on the wire.
      firstTimestamp: '2030-01-02T03:04:05Z',
      lastTimestamp: '2030-01-02T03:05:00Z',
      eventTime: null,
    });

    await core.createNamespacedEvent({
      namespace: NS,
      body: { metadata: { name: 'other' }, involvedObject: { ...involved, name: 'h2' }, reason: 'ScriptServed' },
    });
    const list = await core.listNamespacedEvent({ namespace: NS, fieldSelector: 'involvedObject.name=h1' });
    expect(list.items.map((e) => e.metadata?.name)).toEqual([name]);
  });

  it('rejects what the real server rejects', async () => {
    const { kc } = await start();
    const core = kc.makeApiClient(CoreV1Api);
    const mismatch = (await rejection(
      core.createNamespacedEvent({
        namespace: NS,
        body: { metadata: { name: 'e1' }, involvedObject: { ...involved, namespace: 'elsewhere' }, reason: 'X' },
      }),
    )) as ApiException<string>;
    expect(mismatch.code).toBe(422);
    expect(JSON.parse(mismatch.body)).toMatchObject({
      reason: 'Invalid',
      message:
        'Event "e1" is invalid: involvedObject.namespace: Invalid value: "elsewhere": does not match event.namespace',
    });

    await core.createNamespacedEvent({
      namespace: NS,
      body: { metadata: { name: 'e1' }, involvedObject: involved, reason: 'X' },
    });
    const dup = (await rejection(
      core.createNamespacedEvent({
        namespace: NS,
        body: { metadata: { name: 'e1' }, involvedObject: involved, reason: 'X' },
      }),
    )) as ApiException<string>;
    expect(dup.code).toBe(409);
    expect(JSON.parse(dup.body)).toMatchObject({ reason: 'AlreadyExists' });

    const missing = (await rejection(
      core.patchNamespacedEvent({ namespace: NS, name: 'nope', body: [{ op: 'replace', path: '/count', value: 2 }] }),
    )) as ApiException<string>;
    expect(missing.code).toBe(404);
    const stale = (await rejection(
      core.patchNamespacedEvent(
        { namespace: NS, name: 'e1', body: { metadata: { resourceVersion: '1' }, count: 9 } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      ),
    )) as ApiException<string>;
    expect(stale.code).toBe(409);
    expect(JSON.parse(stale.body)).toMatchObject({ reason: 'Conflict' });
  });

  it('serves events.k8s.io/v1 from the same store', async () => {
    const { s, kc } = await start();
    const events = kc.makeApiClient(EventsV1Api);
    const created = await events.createNamespacedEvent({
      namespace: NS,
      body: {
        metadata: { name: 'e1' },
        eventTime: new Date('2030-01-02T03:04:05.123Z'),
        regarding: involved,
        reason: 'BootFileServed',
        note: 'snponly.efi',
        type: 'Normal',
        action: 'Serve',
        reportingController: 'metalboot.io/metalboot',
        reportingInstance: 'metalboot-0',
      },
    });
    expect(created.regarding?.name).toBe('h1');
    expect(s.events()[0]).toMatchObject({
      involvedObject: involved,
      message: 'snponly.efi',
      reportingComponent: 'metalboot.io/metalboot',
      eventTime: '2030-01-02T03:04:05.123000Z',
    });
    const incomplete = { metadata: { name: 'e2' }, regarding: involved, reason: 'X' } as unknown as EventsV1Event;
    const invalid = (await rejection(
      events.createNamespacedEvent({ namespace: NS, body: incomplete }),
    )) as ApiException<string>;
    expect(invalid.code).toBe(422);
    expect(JSON.parse(invalid.body).details.causes.map((c: { field: string }) => c.field)).toEqual(
      expect.arrayContaining(['eventTime', 'reportingController', 'action']),
    );
  });
});

describe('availability, faults and transport', () => {
  it.each([
    { mode: 'refuse', expected: { code: 'ECONNREFUSED' } },
    { mode: 'reset', expected: { code: 'ECONNRESET' } },
    { mode: '503', expected: { code: 503 } },
  ] as const)(
    'while paused ($mode) requests fail with $expected, and work again after resume()',
    async ({ mode, expected }) => {
      const { s, kc } = await start({ hosts: [host('h1')] });
      await s.pauseAvailability(mode);
      expect(await rejection(listHosts(kc))).toMatchObject(expected);
      await s.resume();
      expect((await listHosts(kc)).items).toHaveLength(1);
    },
  );

  it('fails exactly the next n requests, with the status asked for', async () => {
    const { s, kc } = await start();
    s.failNext(2, 503);
    expect(await rejection(listHosts(kc))).toMatchObject({ code: 503 });
    expect(await rejection(listHosts(kc))).toMatchObject({ code: 503 });
    await listHosts(kc);
    s.failNext(1, 429);
    const limited = (await rejection(listHosts(kc))) as ApiException<string>;
    expect(limited.headers['retry-after']).toBe('1');
    expect(s.requests.map((r) => r.status)).toEqual([503, 503, 200, 429]);
  });

  it('serves HTTPS to a kubeconfig file with the CA, and to in-cluster configuration', async () => {
    const s = await startKubeApiServer({ tls: true, token: TOKEN, hosts: [host('h1')] });
    server = s;
    expect(s.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const fromFile = new KubeConfig();
    fromFile.loadFromFile(await writeKubeconfig(s, { namespace: NS }));
    expect((await listHosts(fromFile)).items).toHaveLength(1);

    const files = await writeInClusterFiles(s, { namespace: NS });
    const saved = { host: process.env['KUBERNETES_SERVICE_HOST'], port: process.env['KUBERNETES_SERVICE_PORT'] };
    cleanups.push(() => {
      for (const [k, v] of [
        ['KUBERNETES_SERVICE_HOST', saved.host],
        ['KUBERNETES_SERVICE_PORT', saved.port],
      ] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    });
    Object.assign(process.env, files.env);
    const inCluster = new KubeConfig();
    inCluster.loadFromCluster(files.pathPrefix);
    expect(inCluster.getContextObject(inCluster.getCurrentContext())?.namespace).toBe(NS);
    expect((await listHosts(inCluster)).items).toHaveLength(1);
    const w = watchOnce(inCluster, NS_PATH, {});
    await s.waitFor(() => w.events.length === 1);
    expect(s.requests.every((r) => r.status === 200)).toBe(true);
  });
});

describe('leases (CoordinationV1Api)', () => {
  const spec = (holder: string, at: number) => ({
    holderIdentity: holder,
    leaseDurationSeconds: 15,
    renewTime: new V1MicroTime(at),
    acquireTime: new V1MicroTime(at),
    leaseTransitions: 0,
  });

  it('creates, reads, updates with a resourceVersion precondition and deletes', async () => {
    const { s, kc } = await start();
    const api = kc.makeApiClient(CoordinationV1Api);
    const created = await api.createNamespacedLease({
      namespace: NS,
      body: { metadata: { name: 'metalboot' }, spec: spec('a', Date.UTC(2026, 0, 1)) },
    });
    expect(created.metadata?.uid).toBeTruthy();
    expect(typeof created.metadata?.resourceVersion).toBe('string');
    const stored = s.lease(NS, 'metalboot');
    expect(stored?.spec?.['renewTime']).toBe('2026-01-01T00:00:00.000000Z');

    const dup = (await rejection(
      api.createNamespacedLease({ namespace: NS, body: { metadata: { name: 'metalboot' }, spec: spec('b', 0) } }),
    )) as ApiException<string>;
    expect(dup.code).toBe(409);
    expect(JSON.parse(dup.body)).toMatchObject({ kind: 'Status', reason: 'AlreadyExists', code: 409 });

    const read = await api.readNamespacedLease({ namespace: NS, name: 'metalboot' });
    expect(read.spec?.holderIdentity).toBe('a');
    const updated = await api.replaceNamespacedLease({
      namespace: NS,
      name: 'metalboot',
      body: { ...read, spec: { ...spec('a', Date.UTC(2026, 0, 1, 0, 0, 2)) } },
    });
    expect(Number(updated.metadata?.resourceVersion)).toBeGreaterThan(Number(read.metadata?.resourceVersion));

    // The same precondition again: stale now.
    const stale = (await rejection(
      api.replaceNamespacedLease({ namespace: NS, name: 'metalboot', body: { ...read, spec: spec('b', 0) } }),
    )) as ApiException<string>;
    expect(stale.code).toBe(409);
    expect(JSON.parse(stale.body)).toMatchObject({ reason: 'Conflict', details: { kind: 'leases' } });
    expect(s.lease(NS, 'metalboot')?.spec?.['holderIdentity']).toBe('a');

    const list = await api.listNamespacedLease({ namespace: NS });
    expect(list.items.map((l) => l.metadata?.name)).toEqual(['metalboot']);

    await api.deleteNamespacedLease({ namespace: NS, name: 'metalboot' });
    const gone = (await rejection(
      api.readNamespacedLease({ namespace: NS, name: 'metalboot' }),
    )) as ApiException<string>;
    expect(gone.code).toBe(404);
    expect(JSON.parse(gone.body)).toMatchObject({
      reason: 'NotFound',
      message: 'leases.coordination.k8s.io "metalboot" not found',
    });
  });

  it('refuses a MicroTime without six fractional digits, as the real decoder does', async () => {
    const { kc } = await start();
    const api = kc.makeApiClient(CoordinationV1Api);
    const bad = (await rejection(
      api.createNamespacedLease({
        namespace: NS,
        // A plain Date serialises with toISOString(): three digits.
        body: { metadata: { name: 'x' }, spec: { holderIdentity: 'a', renewTime: new Date(0) as V1MicroTime } },
      }),
    )) as ApiException<string>;
    expect(bad.code).toBe(400);
    expect(JSON.parse(bad.body)).toMatchObject({ reason: 'BadRequest' });
  });
});
