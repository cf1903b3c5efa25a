// The watcher shell with a scripted API: the hangs a real API server fixture cannot produce
// (a list that never answers, a watch whose response never starts) and the sleep/random
// injection. Short real timers; every wait bounded.
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { BmhWatcher } from './bmh-watcher.js';
import type { BmhApi, BmhListPage, WatchEventType } from './bmh-api.js';
import { loadKubeConfig } from './kubeconfig.js';
import { HostIndex } from '../leases/host-index.js';
import { parseMac } from '../net/mac.js';

const P = 'metal3.vcluster.com/';
const item = (name: string, octet: number, rv: string) => ({
  apiVersion: 'metal3.io/v1alpha1',
  kind: 'BareMetalHost',
  metadata: {
    name,
    namespace: 'm3',
    uid: `u-${name}`,
    resourceVersion: rv,
    annotations: { [`${P}ip-address`]: `10.0.0.${octet}/24` },
  },
  spec: { bootMACAddress: `52:54:00:00:00:${octet.toString(16).padStart(2, '0')}` },
});

type Step =
  | { list: 'hang' | BmhListPage | Error }
  | { watch: 'hang' | 'open'; events?: [WatchEventType, unknown][]; done?: unknown };

/** An API that plays `steps` in order and records each call. */
function scripted(steps: Step[]) {
  const calls: string[] = [];
  const aborted: string[] = [];
  const api: BmhApi = {
    list({ signal }) {
      const s = steps.shift();
      if (s === undefined || !('list' in s)) throw new Error(`unexpected list (next: ${JSON.stringify(s)})`);
      calls.push('list');
      if (s.list === 'hang') {
        return new Promise((_, reject) =>
          signal.addEventListener('abort', () => {
            aborted.push('list');
            reject(signal.reason);
          }),
        );
      }
      return s.list instanceof Error ? Promise.reject(s.list) : Promise.resolve(s.list);
    },
    watch({ resourceVersion }, onEvent, onDone) {
      const s = steps.shift();
      if (s === undefined || !('watch' in s)) {
        // Nothing scripted: an open, quiet watch.
        calls.push(`watch ${resourceVersion}`);
        return Promise.resolve({ abort: () => aborted.push(`watch ${resourceVersion}`) });
      }
      calls.push(`watch ${resourceVersion}`);
      if (s.watch === 'hang') return new Promise(() => {});
      setImmediate(() => {
        for (const [t, o] of s.events ?? []) onEvent(t, o);
        if ('done' in s) onDone(s.done);
      });
      return Promise.resolve({ abort: () => aborted.push(`watch ${resourceVersion}`) });
    },
  };
  return { api, calls, aborted };
}

function watcher(api: BmhApi, over: Partial<ConstructorParameters<typeof BmhWatcher>[0]> = {}) {
  const index = over.index ?? new HostIndex();
  const sleeps: number[] = [];
  const w = new BmhWatcher({
    api,
    index,
    annotationPrefix: P,
    namespace: 'm3',
    logger: pino({ level: 'silent' }),
    registry: new Registry(),
    initialSyncTimeoutMs: 0,
    random: () => 1,
    sleep: async (ms) => {
      sleeps.push(ms);
      await new Promise((r) => setTimeout(r, 1));
    },
    timing: {
      backoffBaseMs: 100,
      backoffCapMs: 400,
      listTimeoutMs: 50,
      watchTimeoutSeconds: 1,
      stallGraceMs: 50,
      minWatchMs: 0,
    },
    ...over,
  });
  const lookup = (octet: number) =>
    index.lookup(parseMac(`52:54:00:00:00:${octet.toString(16).padStart(2, '0')}`)!).kind;
  return { w, index, sleeps, lookup };
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('BmhWatcher shell', () => {
  it('abandons a list that never answers, and sleeps the injected backoff before retrying', async () => {
    const { api, calls, aborted } = scripted([
      { list: 'hang' },
      { list: 'hang' },
      { list: { resourceVersion: '5', continue: undefined, items: [item('a', 0x11, '5')] } },
    ]);
    const { w, sleeps, lookup } = watcher(api);
    await w.start();
    await until(() => w.status().ready, 'ready');
    expect(lookup(0x11)).toBe('host');
    expect(aborted).toEqual(['list', 'list']);
    expect(sleeps).toEqual([100, 200]);
    expect(w.status()).toMatchObject({ restarts: 2, lastError: 'list: list took longer than 50 ms' });
    await until(() => calls.includes('watch 5'), 'watch');
    await w.close();
  });

  it('abandons a watch whose response never starts, and resumes from the same version', async () => {
    const { api, calls } = scripted([
      { list: { resourceVersion: '5', continue: undefined, items: [] } },
      { watch: 'hang' },
      { watch: 'open', events: [['ADDED', item('b', 0x12, '6')]] },
    ]);
    const { w, lookup } = watcher(api);
    await w.start();
    await until(() => lookup(0x12) === 'host', 'b after the hung watch');
    expect(calls).toEqual(['list', 'watch 5', 'watch 5']);
    expect(w.status().restarts).toBe(1);
    await w.close();
  });

  it('follows bookmarks and resumes from the newest version after a cut', async () => {
    const { api, calls } = scripted([
      { list: { resourceVersion: '5', continue: undefined, items: [] } },
      {
        watch: 'open',
        events: [
          [
            'BOOKMARK',
            { kind: 'BareMetalHost', apiVersion: 'metal3.io/v1alpha1', metadata: { resourceVersion: '42' } },
          ],
        ],
        done: Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }),
      },
    ]);
    const { w } = watcher(api);
    await w.start();
    await until(() => calls.length === 3, 'the re-watch');
    expect(calls).toEqual(['list', 'watch 5', 'watch 42']);
    expect(w.status().lastError).toBe('watch: ECONNRESET');
    await w.close();
  });

  it("reads every list page before replacing the index, and keeps the first page's version", async () => {
    const { api, calls } = scripted([
      { list: { resourceVersion: '7', continue: 'c1', items: [item('a', 0x11, '3')] } },
      { list: { resourceVersion: '7', continue: undefined, items: [item('b', 0x12, '4')] } },
    ]);
    const { w, lookup } = watcher(api);
    await w.start();
    await until(() => w.status().ready, 'ready');
    expect([lookup(0x11), lookup(0x12)]).toEqual(['host', 'host']);
    await until(() => calls.length === 3, 'watch');
    expect(calls).toEqual(['list', 'list', 'watch 7']);
    await w.close();
  });

  it('relists when applying a watch event fails, instead of losing the event', async () => {
    class FlakyIndex extends HostIndex {
      failures = 1;
      override upsert(...args: Parameters<HostIndex['upsert']>): ReturnType<HostIndex['upsert']> {
        if (this.failures-- > 0) throw new Error('boom');
        return super.upsert(...args);
      }
    }
    const { api, calls } = scripted([
      { list: { resourceVersion: '5', continue: undefined, items: [] } },
      { watch: 'open', events: [['ADDED', item('b', 0x12, '6')]] },
      { list: { resourceVersion: '6', continue: undefined, items: [item('b', 0x12, '6')] } },
    ]);
    const { w, lookup } = watcher(api, { index: new FlakyIndex() });
    await w.start();
    await until(() => lookup(0x12) === 'host', 'b after the relist');
    expect(calls.slice(0, 3)).toEqual(['list', 'watch 5', 'list']);
    expect(w.status().lastError).toBe('watch: InternalError boom');
    await w.close();
  });

  it('gives start() a bounded wait for the first list', async () => {
    const { api } = scripted([
      { list: new Error('ECONNREFUSED') },
      { list: 'hang' },
      { list: 'hang' },
      { list: 'hang' },
    ]);
    const { w } = watcher(api, {
      initialSyncTimeoutMs: 20,
      sleep: (ms, signal) =>
        new Promise((r) => {
          const t = setTimeout(r, ms);
          signal.addEventListener('abort', () => {
            clearTimeout(t);
            r();
          });
        }),
    });
    await w.start();
    expect(w.status().ready).toBe(false);
    await w.close();
  });
});

describe('loadKubeConfig', () => {
  it.each([
    [
      'outside a cluster without --kubeconfig',
      { env: {} },
      '--kube: not running in a cluster (KUBERNETES_SERVICE_HOST/PORT are not set): pass --kubeconfig',
    ],
    [
      'with a missing kubeconfig file',
      { kubeconfig: '/nonexistent/kubeconfig' },
      /^--kube: cannot load kubeconfig \/nonexistent\/kubeconfig: /,
    ],
  ])('fails clearly %s', (_n, o, message) => {
    expect(() => loadKubeConfig(o)).toThrow(
      expect.objectContaining({
        code: 'KUBE_ERR_CONFIG',
        message: typeof message === 'string' ? message : expect.stringMatching(message),
      }),
    );
  });
});
