// The BareMetalHost watcher and the Event recorder against the Kubernetes API server fixture,
// with the real @kubernetes/client-node: hosts appear, change and disappear in the lease index;
// every fault the fixture can inject is survived without losing an update; readiness follows
// the first list; Events land on the BareMetalHost, aggregated and rate-limited.

import dgram from 'node:dgram';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';

import { BmhWatcher, type BmhWatcherOptions } from '../../src/kube/bmh-watcher.js';
import { kubeBmhApi } from '../../src/kube/bmh-api.js';
import { loadKubeConfig } from '../../src/kube/kubeconfig.js';
import { BmhEventRecorder, kubeEventSink } from '../../src/kube/boot-events.js';
import { HostIndex } from '../../src/leases/host-index.js';
import { bmhToHost } from '../../src/leases/bmh.js';
import type { HostRecord } from '../../src/leases/host.js';
import { formatIpv4 } from '../../src/net/ipv4.js';
import { buildProduct } from '../../src/wiring/product.js';
import { closeAll, startAll } from '../../src/base/service.js';
import { loadConfig } from '../../src/config/load.js';
import { encode } from '../../src/dhcp/codec.js';
import { MESSAGE_TYPE } from '../../src/dhcp/options.js';
import { UEFI_PXE, request } from '../../lab/dhcp-requests.js';
import { parseMac } from '../../src/net/mac.js';
import { tftpGet } from '../../lab/tftp-client.js';
import {
  type HostInput,
  type KubeApiServer,
  type KubeApiServerOptions,
  startKubeApiServer,
} from '../support/kube-apiserver.js';
import { kubeconfigFor, writeInClusterFiles, writeKubeconfig } from '../support/kube-config.js';

const NS = 'metal3';
const P = 'metal3.vcluster.com/';
const TOKEN = 'test-token';
/** Every wait is bounded by this; nothing asserts how long anything took. */
const WAIT_MS = 10_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

function host(
  name: string,
  octet: number,
  extra: {
    annotations?: Record<string, string>;
    namespace?: string;
    status?: Record<string, unknown>;
    finalizers?: string[];
  } = {},
): HostInput {
  const mac = `52:54:00:00:00:${octet.toString(16).padStart(2, '0')}`;
  return {
    metadata: {
      name,
      namespace: extra.namespace ?? NS,
      annotations: extra.annotations ?? { [`${P}ip-address`]: `10.0.0.${octet}/24` },
      ...(extra.finalizers === undefined ? {} : { finalizers: extra.finalizers }),
    },
    spec: { bootMACAddress: mac, online: true },
    ...(extra.status === undefined ? {} : { status: extra.status }),
  };
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function server(options: KubeApiServerOptions = {}): Promise<KubeApiServer> {
  const s = await startKubeApiServer({ token: TOKEN, ...options });
  cleanups.push(() => s.close());
  return s;
}

function kubeConfig(s: KubeApiServer): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromString(kubeconfigFor(s));
  return kc;
}

function watcher(kc: KubeConfig, over: Partial<BmhWatcherOptions> & { namespace?: string | undefined } = {}) {
  const index = new HostIndex();
  const registry = new Registry();
  const namespace = 'namespace' in over ? over.namespace : NS;
  const w = new BmhWatcher({
    api: kubeBmhApi(kc, namespace),
    index,
    annotationPrefix: P,
    namespace,
    logger: pino({ level: 'silent' }),
    registry,
    initialSyncTimeoutMs: 0,
    random: () => 0.5,
    ...over,
    timing: {
      backoffBaseMs: 20,
      backoffCapMs: 200,
      healthyAfterMs: 2_000,
      minWatchMs: 50,
      listTimeoutMs: 3_000,
      watchTimeoutSeconds: 60,
      stallGraceMs: 300,
      ...over.timing,
    },
  });
  cleanups.push(() => w.close());
  /** What a DHCP packet for `octet`'s MAC would find: the lease IP, or the lookup kind. */
  const lookup = (octet: number, mac = `52:54:00:00:00:${octet.toString(16).padStart(2, '0')}`): string => {
    const found = index.lookup(parseMac(mac)!);
    if (found.kind !== 'host') return found.kind;
    return found.host.lease === undefined ? `problem: ${found.host.problem}` : formatIpv4(found.host.lease.ip);
  };
  const state = (octet: number): string | undefined => {
    const found = index.lookup(parseMac(`52:54:00:00:00:${octet.toString(16).padStart(2, '0')}`)!);
    return found.kind === 'host' ? found.host.provisioningState : undefined;
  };
  const metric = async (name: string, labels: Record<string, string> = {}): Promise<number | undefined> => {
    const m = registry.getSingleMetric(name);
    const values = m === undefined ? [] : (await m.get()).values;
    return values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value;
  };
  return { w, index, registry, lookup, state, metric };
}

const lines = (s: KubeApiServer, from = 0): string[] =>
  s.requests
    .slice(from)
    .filter((r) => r.path.includes('baremetalhosts'))
    .map((r) => `${r.watch ? 'watch' : 'list'} -> ${r.status ?? '-'}`);

describe('BareMetalHosts from the cluster', () => {
  it('is not ready until the first list has loaded, and retries the list until it does', async () => {
    const s = await server({ hosts: [host('h1', 0x11)] });
    s.failNext(3, 500, (r) => !r.watch && r.path.includes('baremetalhosts'));
    const { w, lookup, metric } = watcher(kubeConfig(s));
    expect(w.status()).toMatchObject({ ready: false, connected: false, restarts: 0 });
    await w.start();
    expect(w.status().ready).toBe(false);
    expect(w.status().detail).toMatch(/^waiting for the first list of baremetalhosts in namespace metal3/);
    await until(() => w.status().ready, 'ready');
    expect(lookup(0x11)).toBe('10.0.0.17');
    await until(() => w.status().connected && s.openWatches === 1, 'watching');
    expect(w.status()).toMatchObject({
      ready: true,
      connected: true,
      hosts: 1,
      restarts: 3,
      lastError: 'list: HTTP 500',
    });
    expect(w.status().detail).toBe('watching baremetalhosts in namespace metal3: 1 host');
    expect(await metric('metalboot_kube_watch_restarts_total', { reason: 'list-failed' })).toBe(3);
    expect(await metric('metalboot_kube_ready')).toBe(1);
    expect(await metric('metalboot_kube_connected')).toBe(1);
    expect(await metric('metalboot_kube_hosts')).toBe(1);
    expect(lines(s)).toEqual(['list -> 500', 'list -> 500', 'list -> 500', 'list -> 200', 'watch -> 200']);
  });

  it('waits in start() for the first list when asked to', async () => {
    const s = await server({ hosts: [host('h1', 0x11)] });
    const { w, lookup } = watcher(kubeConfig(s), { initialSyncTimeoutMs: WAIT_MS });
    await w.start();
    expect(w.status().ready).toBe(true);
    expect(lookup(0x11)).toBe('10.0.0.17');
  });

  it('follows hosts as they appear, change annotations, state and NICs, and disappear', async () => {
    const s = await server({ hosts: [host('h1', 0x11), host('other', 0x21, { namespace: 'elsewhere' })] });
    const { w, lookup, state } = watcher(kubeConfig(s));
    await w.start();
    await until(() => w.status().connected && s.openWatches === 1, 'watching');
    expect(lookup(0x11)).toBe('10.0.0.17');
    expect(lookup(0x21)).toBe('unknown');

    s.upsertHost(host('h2', 0x12));
    await until(() => lookup(0x12) === '10.0.0.18', 'h2 added');

    s.upsertHost(host('h1', 0x11, { annotations: { [`${P}ip-address`]: '10.0.0.99/24' } }));
    await until(() => lookup(0x11) === '10.0.0.99', 'h1 re-addressed');

    s.setStatus(NS, 'h1', {
      provisioning: { state: 'provisioning' },
      hardware: { nics: [{ name: 'eth1', mac: '52:54:00:00:01:11' }] },
    });
    await until(() => state(0x11) === 'provisioning', 'h1 provisioning');
    expect(lookup(0x11, '52:54:00:00:01:11')).toBe('10.0.0.99');

    s.upsertHost(host('h2', 0x12, { annotations: {} }));
    await until(() => lookup(0x12) === `problem: annotation ${P}ip-address is missing`, 'h2 without ip-address');

    s.deleteHost(NS, 'h2');
    await until(() => lookup(0x12) === 'unknown', 'h2 deleted');
    expect(w.status()).toMatchObject({ hosts: 1, restarts: 0 });
  });

  it('keeps a host being deleted (finalizers) until it is gone', async () => {
    const s = await server({ hosts: [host('h1', 0x11, { finalizers: ['baremetalhost.metal3.io'] })] });
    const { w, lookup } = watcher(kubeConfig(s));
    await w.start();
    await until(() => w.status().connected && s.openWatches === 1, 'watching');
    s.deleteHost(NS, 'h1');
    s.upsertHost(host('marker', 0x30));
    await until(() => lookup(0x30) !== 'unknown', 'marker');
    expect(lookup(0x11)).toBe('10.0.0.17');
    s.upsertHost(host('h1', 0x11, { finalizers: [] }));
    await until(() => lookup(0x11) === 'unknown', 'h1 gone');
  });

  it('watches every namespace without --kube-namespace', async () => {
    const s = await server({ hosts: [host('h1', 0x11), host('other', 0x21, { namespace: 'elsewhere' })] });
    const { w, lookup } = watcher(kubeConfig(s), { namespace: undefined });
    await w.start();
    await until(() => w.status().connected && s.openWatches === 1, 'watching');
    expect([lookup(0x11), lookup(0x21)]).toEqual(['10.0.0.17', '10.0.0.33']);
    s.upsertHost(host('third', 0x22, { namespace: 'third' }));
    await until(() => lookup(0x22) === '10.0.0.34', 'host in a third namespace');
    expect(w.status().detail).toBe('watching baremetalhosts in all namespaces: 3 hosts');
  });

  it('lists in pages', async () => {
    const s = await server({ hosts: Array.from({ length: 7 }, (_, i) => host(`h${i}`, 0x40 + i)) });
    const { w, lookup } = watcher(kubeConfig(s), { timing: { listPageSize: 3 } });
    await w.start();
    await until(() => w.status().ready, 'ready');
    expect(lookup(0x46)).toBe('10.0.0.70');
    expect(
      s.requests.filter((r) => !r.watch && r.path.includes('baremetalhosts')).map((r) => r.query['limit']),
    ).toEqual(['3', '3', '3']);
  });
});

describe('recovery', () => {
  async function connected(over: Partial<BmhWatcherOptions> = {}, options: KubeApiServerOptions = {}) {
    const s = await server({ hosts: [host('h1', 0x11), host('h2', 0x12)], ...options });
    const x = watcher(kubeConfig(s), over);
    await x.w.start();
    await until(() => x.w.status().connected && s.openWatches === 1, 'connected');
    return { s, ...x };
  }

  it.each(['end', 'close', 'reset', 'mid-chunk'] as const)(
    're-watches from its last version after a dropped connection (%s), losing nothing',
    async (mode) => {
      // minWatchMs 0: a clean end right after opening is not taken for a server that closes at once.
      const { s, w, lookup } = await connected({ timing: { minWatchMs: 0 } });
      const seen = s.requests.length;
      expect(s.dropWatchConnections(mode)).toBe(1);
      s.upsertHost(host('h3', 0x13));
      s.deleteHost(NS, 'h2');
      s.upsertHost(host('h1', 0x11, { annotations: { [`${P}ip-address`]: '10.0.0.71/24' } }));
      await until(
        () => lookup(0x13) === '10.0.0.19' && lookup(0x12) === 'unknown' && lookup(0x11) === '10.0.0.71',
        'changes made while cut',
      );
      await until(() => w.status().connected && s.openWatches === 1, 'reconnected');
      // The server's history filled the gap: no relist.
      expect(lines(s, seen).every((l) => l.startsWith('watch'))).toBe(true);
      expect(w.status().restarts).toBe(mode === 'end' ? 0 : 1);
    },
  );

  it('backs off and retries a 500 on the watch request', async () => {
    const { s, w, lookup, metric } = await connected();
    const seen = s.requests.length;
    s.failNext(2, 500, (r) => r.watch);
    s.dropWatchConnections('reset');
    s.upsertHost(host('h3', 0x13));
    await until(() => lookup(0x13) === '10.0.0.19', 'h3 after 500s');
    await until(() => w.status().connected && s.openWatches === 1, 'reconnected');
    expect(lines(s, seen)).toEqual(['watch -> 500', 'watch -> 500', 'watch -> 200']);
    expect(await metric('metalboot_kube_watch_restarts_total', { reason: 'watch-failed' })).toBe(2);
    expect(await metric('metalboot_kube_watch_restarts_total', { reason: 'connection-lost' })).toBe(1);
  });

  it('relists on 410 Gone, removing hosts deleted while it was away', async () => {
    const { s, w, lookup } = await connected();
    await s.pauseAvailability('refuse');
    await until(() => !w.status().connected, 'disconnected');
    s.deleteHost(NS, 'h2');
    s.upsertHost(host('h3', 0x13));
    s.setStatus(NS, 'h1', { provisioning: { state: 'provisioned' } });
    s.compactHistory();
    const seen = s.requests.length;
    await s.resume();
    await until(() => lookup(0x12) === 'unknown' && lookup(0x13) === '10.0.0.19', 'relisted');
    await until(() => w.status().connected && s.openWatches === 1, 'reconnected');
    expect(w.status().hosts).toBe(2);
    expect(lines(s, seen)).toEqual(['watch -> 200', 'list -> 200', 'watch -> 200']);
  });

  it('relists after an ERROR event, and after 410 delivered as one', async () => {
    const { s, w, lookup, metric } = await connected();
    s.sendWatchError(500);
    await until(() => s.openWatches === 1 && w.status().connected, 'after error event');
    s.sendWatchError(410);
    s.upsertHost(host('h3', 0x13));
    await until(() => lookup(0x13) === '10.0.0.19', 'h3');
    expect(await metric('metalboot_kube_watch_restarts_total', { reason: 'error-event' })).toBe(1);
    expect(await metric('metalboot_kube_watch_restarts_total', { reason: 'expired' })).toBe(1);
  });

  it.each(['refuse', 'reset', '503'] as const)(
    'keeps serving the last known hosts while the API server is away (%s), then catches up',
    async (mode) => {
      const { s, w, lookup, metric } = await connected();
      await s.pauseAvailability(mode);
      await until(() => !w.status().connected && w.status().restarts >= 2, 'noticed the outage');
      const away = w.status();
      expect(away).toMatchObject({ ready: true, connected: false, hosts: 2 });
      expect(away.detail).toMatch(
        /^not connected to the API server since \S+; serving 2 hosts from the last known state \(last error: (watch|list): /,
      );
      expect(await metric('metalboot_kube_connected')).toBe(0);
      expect([lookup(0x11), lookup(0x12)]).toEqual(['10.0.0.17', '10.0.0.18']);
      s.upsertHost(host('h3', 0x13));
      s.deleteHost(NS, 'h1');
      await s.resume();
      await until(() => lookup(0x13) === '10.0.0.19' && lookup(0x11) === 'unknown', 'caught up');
      await until(() => w.status().connected && s.openWatches === 1, 'reconnected');
      expect(w.status().detail).toBe('watching baremetalhosts in namespace metal3: 2 hosts');
    },
  );

  it('abandons a stalled stream once the server should have ended it, and catches up', async () => {
    const { s, w, lookup, metric } = await connected({ timing: { watchTimeoutSeconds: 1, stallGraceMs: 300 } });
    expect(s.requests.at(-1)?.query).toMatchObject({ allowWatchBookmarks: 'true', timeoutSeconds: '1' });
    expect(s.stallWatches()).toBe(1);
    s.upsertHost(host('h3', 0x13));
    s.setStatus(NS, 'h2', { provisioning: { state: 'inspecting' } });
    await until(() => lookup(0x13) === '10.0.0.19', 'h3 after the stall');
    expect(await metric('metalboot_kube_watch_restarts_total', { reason: 'stalled' })).toBe(1);
    await until(() => w.status().connected && s.openWatches === 1, 'reconnected');
  });

  it('re-watches after the server ends the watch at timeoutSeconds, without a relist or a restart', async () => {
    const { s, w, lookup } = await connected({ timing: { watchTimeoutSeconds: 1 } });
    const seen = s.requests.length;
    await until(() => s.requests.length > seen, 'a second watch');
    s.upsertHost(host('h3', 0x13));
    await until(() => lookup(0x13) === '10.0.0.19', 'h3');
    expect(lines(s, seen).every((l) => l === 'watch -> 200')).toBe(true);
    expect(w.status().restarts).toBe(0);
  });

  it('keeps its version current with bookmarks, so a compaction needs no relist', async () => {
    const { s, lookup } = await connected();
    // Writes elsewhere move the global version past everything this watch has seen.
    s.upsertHost(host('x', 0x50, { namespace: 'elsewhere' }));
    s.upsertHost(host('y', 0x51, { namespace: 'elsewhere' }));
    s.sendBookmark();
    await sleep(100);
    s.compactHistory();
    const seen = s.requests.length;
    s.dropWatchConnections('end');
    s.upsertHost(host('h3', 0x13));
    await until(() => lookup(0x13) === '10.0.0.19', 'h3');
    expect(lines(s, seen)).toEqual(['watch -> 200']);
  });

  it('closes promptly while the API server is away', async () => {
    const { s, w } = await connected();
    await s.pauseAvailability('refuse');
    await until(() => w.status().restarts >= 2, 'retrying');
    await w.close();
    const seen = s.requests.length;
    await s.resume();
    await sleep(200);
    expect(s.requests.length).toBe(seen);
  });
});

describe('configuration', () => {
  it('connects with --kubeconfig', async () => {
    const s = await server({ tls: true, hosts: [host('h1', 0x11)] });
    const file = await writeKubeconfig(s);
    const { w, lookup } = watcher(loadKubeConfig({ kubeconfig: file }));
    await w.start();
    await until(() => w.status().ready, 'ready');
    expect(lookup(0x11)).toBe('10.0.0.17');
  });

  it('connects in-cluster with the service account', async () => {
    const s = await server({ tls: true, hosts: [host('h1', 0x11)] });
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
    const { w, lookup } = watcher(loadKubeConfig({ inClusterPathPrefix: files.pathPrefix }));
    await w.start();
    await until(() => w.status().connected && s.openWatches === 1, 'watching');
    expect(lookup(0x11)).toBe('10.0.0.17');
  });

  it('coexists with BareMetalHost manifest files in the same index', async () => {
    const s = await server({ hosts: [host('h1', 0x11)] });
    const { w, index, lookup } = watcher(kubeConfig(s));
    const file = bmhToHost(
      {
        apiVersion: 'metal3.io/v1alpha1',
        kind: 'BareMetalHost',
        metadata: { name: 'f1', namespace: NS, annotations: { [`${P}ip-address`]: '10.0.0.80/24' } },
        spec: { bootMACAddress: '52:54:00:00:00:80' },
      },
      { annotationPrefix: P, from: '/etc/bmh.yaml' },
    );
    if (file.kind !== 'host') throw new Error(file.reason);
    index.replaceAll('bmh', [file.host]);
    await w.start();
    await until(() => w.status().connected && s.openWatches === 1, 'watching');
    expect([lookup(0x11), lookup(0x80)]).toEqual(['10.0.0.17', '10.0.0.80']);
    // A manifest reload does not touch cluster hosts, and a relist does not touch file hosts.
    index.replaceAll('bmh', [file.host]);
    s.dropWatchConnections('end');
    s.compactHistory();
    s.upsertHost(host('h2', 0x12));
    await until(() => lookup(0x12) === '10.0.0.18', 'relisted');
    expect([lookup(0x11), lookup(0x80)]).toEqual(['10.0.0.17', '10.0.0.80']);
  });
});

describe('Events on the BareMetalHost', () => {
  async function setup(limits: ConstructorParameters<typeof BmhEventRecorder>[0]['limits'] = {}) {
    const s = await server({ hosts: [host('h1', 0x11), host('h2', 0x12)] });
    const kc = kubeConfig(s);
    const x = watcher(kc);
    await x.w.start();
    await until(() => x.w.status().ready, 'ready');
    const registry = new Registry();
    const events = new BmhEventRecorder({
      sink: kubeEventSink(kc),
      resolve: (h) => x.w.refFor(h),
      logger: pino({ level: 'silent' }),
      registry,
      source: { component: 'metalboot', instance: 'metalboot-0' },
      limits,
    });
    cleanups.push(() => events.close());
    const hostOf = (octet: number): HostRecord => {
      const found = x.index.lookup(parseMac(`52:54:00:00:00:${octet.toString(16)}`)!);
      if (found.kind !== 'host') throw new Error(`no host ${octet}`);
      return found.host;
    };
    const suppressed = async (why: string) =>
      (await registry.getSingleMetric('metalboot_kube_events_suppressed_total')!.get()).values.find(
        (v) => v.labels['why'] === why,
      )?.value;
    return { s, events, hostOf, suppressed, ...x };
  }

  it('posts boot milestones as core/v1 Events about the host, with its uid', async () => {
    const { s, events, hostOf } = await setup();
    const h1 = hostOf(0x11);
    events.leaseOffered(
      h1,
      '10.0.0.17/24',
      'to 52:54:00:00:00:11 (PXE firmware, arch 7); boot file snponly.efi over TFTP',
    );
    events.bootFileServed(h1, 'snponly.efi', 'tftp');
    events.scriptServed(h1, 'inspector', 'IPA ramdisk, callback http://10.0.0.1:8080/v1/continue_inspection');
    events.dropped(hostOf(0x12), 'host-not-servable', `annotation ${P}ip-address is missing`);
    await events.flush();
    const got = s.events(NS);
    expect(got.map((e) => [e.involvedObject.name, e.type, e.reason, e.message])).toEqual([
      [
        'h1',
        'Normal',
        'DHCPLeaseOffered',
        'offered 10.0.0.17/24 to 52:54:00:00:00:11 (PXE firmware, arch 7); boot file snponly.efi over TFTP',
      ],
      ['h1', 'Normal', 'BootFileServed', 'served snponly.efi over TFTP'],
      [
        'h1',
        'Normal',
        'BootScriptServed',
        'served the inspector boot script: IPA ramdisk, callback http://10.0.0.1:8080/v1/continue_inspection',
      ],
      [
        'h2',
        'Warning',
        'DHCPDropped',
        `DHCP request not answered: host-not-servable (annotation ${P}ip-address is missing)`,
      ],
    ]);
    expect(got[0]).toMatchObject({
      involvedObject: {
        apiVersion: 'metal3.io/v1alpha1',
        kind: 'BareMetalHost',
        namespace: NS,
        name: 'h1',
        uid: s.host(NS, 'h1')!.metadata.uid,
      },
      source: { component: 'metalboot' },
      reportingComponent: 'metalboot',
      reportingInstance: 'metalboot-0',
      count: 1,
    });
    expect(got[0]!.metadata.name).toMatch(/^h1\.[0-9a-f]+$/);
  });

  it('aggregates repeats into one Event and rate-limits a boot loop', async () => {
    const { s, events, hostOf, suppressed } = await setup({ perObject: { burst: 4, perSecond: 1 / 60 } });
    const h1 = hostOf(0x11);
    for (let i = 0; i < 20; i++) events.bootFileServed(h1, 'undionly.kpxe', 'tftp');
    await events.flush();
    const got = s.events(NS);
    expect(got).toHaveLength(1);
    expect(got[0]).toMatchObject({ reason: 'BootFileServed', count: 4 });
    expect(await suppressed('object-rate')).toBe(16);
    // The three repeats let through while the create was in flight went out as one PATCH.
    const writes = s.requests.filter((r) => r.path.includes('/events'));
    expect(writes.map((r) => `${r.method} ${r.status ?? '-'}`)).toEqual(['POST 201', 'PATCH 200']);
    // Another host is not held back by this one's loop.
    events.bootFileServed(hostOf(0x12), 'undionly.kpxe', 'tftp');
    await events.flush();
    expect(s.events(NS)).toHaveLength(2);
  });

  it('drops events, without blocking or throwing, while the API server is away', async () => {
    const { s, events, hostOf } = await setup();
    await s.pauseAvailability('refuse');
    const h1 = hostOf(0x11);
    expect(() => events.leaseOffered(h1, '10.0.0.17/24')).not.toThrow();
    await events.flush();
    await s.resume();
    events.leaseAcknowledged(h1, '10.0.0.17/24');
    await events.flush();
    expect(s.events(NS).map((e) => e.reason)).toEqual(['DHCPLeaseAcknowledged']);
  });
});

describe('in the product (buildServices with --kube)', () => {
  /** The whole product on loopback against the fixture; TFTP on a free port when `tftp` is set. */
  async function startProduct(s: KubeApiServer, root: string, tftp: boolean) {
    const kubeconfig = await writeKubeconfig(s);
    const loaded = loadConfig({
      argv: [
        '--kube',
        '--kubeconfig',
        kubeconfig,
        '--kube-namespace',
        NS,
        '--server-ip',
        '127.0.0.1/8',
        '--dhcp-listen',
        '127.0.0.1:0',
        '--tftp-listen',
        tftp ? '127.0.0.1:0' : '',
        '--tftp-root',
        root,
        '--http-listen',
        '127.0.0.1:0',
        '--callback-listen',
        '',
        '--log-level',
        'silent',
      ],
      env: {},
      readFile: () => '',
      localAddresses: () => [],
    });
    if (loaded.kind !== 'config') throw new Error(JSON.stringify(loaded));
    const product = buildProduct(loaded.config, { logger: pino({ level: 'silent' }), registry: new Registry() });
    cleanups.push(() => closeAll(product.services));
    await startAll(product.services);
    return product;
  }

  it('serves cluster hosts, reports readiness, and turns DHCP outcomes into Events', async () => {
    const s = await server({ tls: true, hosts: [host('h1', 0x11), host('h2', 0x12, { annotations: {} })] });
    const dir = await mkdtemp(join(tmpdir(), 'metalboot-kube-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const product = await startProduct(s, dir, false);
    // start() waited for the first list: the cluster's hosts are there before DHCP listens.
    const kube = product.readiness.find((c) => c.name === 'kubernetes');
    expect(kube?.check()).toEqual({ ok: true, detail: 'watching baremetalhosts in namespace metal3: 2 hosts' });
    expect(product.index.lookup(parseMac('52:54:00:00:00:11')!).kind).toBe('host');

    // h2 has no ip-address annotation: its DISCOVER is dropped, and the host says why.
    const client = dgram.createSocket('udp4');
    cleanups.push(() => new Promise<void>((r) => client.close(() => r())));
    const discover = encode(request({ type: MESSAGE_TYPE.DISCOVER, mac: '52:54:00:00:00:12', options: UEFI_PXE }));
    client.send(discover, product.dhcp!.address().port, '127.0.0.1');
    await s.waitFor(() => s.events(NS).length === 1, WAIT_MS, 'the DHCPDropped event');
    expect(s.events(NS)[0]).toMatchObject({
      involvedObject: { kind: 'BareMetalHost', name: 'h2', uid: s.host(NS, 'h2')!.metadata.uid },
      reason: 'DHCPDropped',
      type: 'Warning',
      message: `DHCP request not answered: host-not-servable (annotation ${P}ip-address is missing)`,
    });

    // Annotating the host fixes it on the next packet.
    s.upsertHost(host('h2', 0x12));
    await until(() => {
      const f = product.index.lookup(parseMac('52:54:00:00:00:12')!);
      return f.kind === 'host' && f.host.lease !== undefined;
    }, 'h2 annotated');
  });

  it('a completed TFTP transfer becomes a BootFileServed event on the host whose lease it came from', async () => {
    // The host's lease is 127.0.0.1, so the loopback TFTP client below is that host.
    const s = await server({ hosts: [host('h9', 0x19, { annotations: { [`${P}ip-address`]: '127.0.0.1/8' } })] });
    const root = await mkdtemp(join(tmpdir(), 'metalboot-kube-tftp-'));
    cleanups.push(() => rm(root, { recursive: true, force: true }));
    await writeFile(join(root, 'snponly.efi'), Buffer.alloc(5000, 1));
    const product = await startProduct(s, root, true);
    const got = await tftpGet({
      host: '127.0.0.1',
      port: product.tftp!.address().port,
      file: 'snponly.efi',
      options: [['blksize', '1468']],
    });
    expect(got.data.length).toBe(5000);
    await s.waitFor(() => s.events(NS).some((e) => e.reason === 'BootFileServed'), WAIT_MS, 'the BootFileServed event');
    expect(s.events(NS).find((e) => e.reason === 'BootFileServed')).toMatchObject({
      involvedObject: { kind: 'BareMetalHost', name: 'h9' },
      type: 'Normal',
    });
  });
});
