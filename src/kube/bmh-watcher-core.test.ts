import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  DEFAULT_WATCH_TIMING,
  INITIAL_SUPERVISOR_STATE,
  backoffDelay,
  statusDetail,
  supervise,
  watchTimeoutSeconds,
  type AttemptOutcome,
  type SupervisorState,
  type WatchTiming,
} from './bmh-watcher-core.js';
import { describeError } from './api-errors.js';
import { BmhMirror, type KubeBareMetalHost } from './bmh-mirror.js';
import { HostIndex } from '../leases/host-index.js';
import { bmhToHost } from '../leases/bmh.js';
import { parseMac } from '../net/mac.js';

const P = 'metal3.vcluster.com/';
const timing: WatchTiming = {
  ...DEFAULT_WATCH_TIMING,
  backoffBaseMs: 100,
  backoffCapMs: 3_200,
  healthyAfterMs: 10_000,
  minWatchMs: 1_000,
};
const mid = (): number => 0.5;

describe('backoffDelay', () => {
  it.each([
    [1, 100],
    [2, 200],
    [3, 400],
    [6, 3_200],
    [7, 3_200],
    [1000, 3_200],
  ])('failure %i lies in [d/2, d] with d = %i', (failures, d) => {
    expect(backoffDelay(failures, timing, () => 0)).toBe(d / 2);
    expect(backoffDelay(failures, timing, () => 1)).toBe(d);
  });

  it('is 0 before any failure', () => {
    expect(backoffDelay(0, timing, () => 1)).toBe(0);
  });

  it('stays within the jitter bounds and never exceeds the cap, whatever random() returns', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10_000 }), fc.double({ min: -1, max: 2, noNaN: true }), (failures, r) => {
        const d = Math.min(timing.backoffCapMs, timing.backoffBaseMs * 2 ** Math.min(failures - 1, 30));
        const got = backoffDelay(failures, timing, () => r);
        return got >= Math.floor(d / 2) && got <= d && got <= timing.backoffCapMs;
      }),
    );
  });

  it('stretches the watch timeout by up to half', () => {
    expect(watchTimeoutSeconds({ watchTimeoutSeconds: 180 }, () => 0)).toBe(180);
    expect(watchTimeoutSeconds({ watchTimeoutSeconds: 180 }, () => 1)).toBe(270);
    expect(watchTimeoutSeconds({ watchTimeoutSeconds: 0 }, () => 0)).toBe(1);
  });
});

describe('supervise', () => {
  const at = (failures: number, rv?: string): SupervisorState => ({ resourceVersion: rv, failures });
  const run = (state: SupervisorState, o: AttemptOutcome) => supervise(state, o, timing, mid);

  it.each<[string, SupervisorState, AttemptOutcome, { next: unknown; failures: number; restart: string | undefined }]>([
    [
      'a list is followed by a watch from its version at once',
      at(0),
      { kind: 'listed', resourceVersion: '10' },
      { next: { kind: 'watch', resourceVersion: '10', delayMs: 0 }, failures: 0, restart: undefined },
    ],
    [
      'a list keeps the failure streak (a healthy watch resets it)',
      at(3),
      { kind: 'listed', resourceVersion: '10' },
      { next: { kind: 'watch', resourceVersion: '10', delayMs: 0 }, failures: 3, restart: undefined },
    ],
    [
      'a failed list is retried after backoff',
      at(0),
      { kind: 'list-failed', error: new Error('x') },
      { next: { kind: 'list', delayMs: 75 }, failures: 1, restart: 'list-failed' },
    ],
    [
      'a failed list backs off further each time',
      at(2),
      { kind: 'list-failed', error: new Error('x') },
      { next: { kind: 'list', delayMs: 300 }, failures: 3, restart: 'list-failed' },
    ],
    [
      'a clean end (timeoutSeconds) re-watches from the last version at once',
      at(0, '10'),
      { kind: 'watch-ended', resourceVersion: '17', events: 0, openMs: 30_000 },
      { next: { kind: 'watch', resourceVersion: '17', delayMs: 0 }, failures: 0, restart: undefined },
    ],
    [
      'a clean end with events soon after opening is fine',
      at(0, '10'),
      { kind: 'watch-ended', resourceVersion: '17', events: 2, openMs: 5 },
      { next: { kind: 'watch', resourceVersion: '17', delayMs: 0 }, failures: 0, restart: undefined },
    ],
    [
      'a clean end at once without events is a very short watch: backoff',
      at(0, '10'),
      { kind: 'watch-ended', resourceVersion: '10', events: 0, openMs: 5 },
      { next: { kind: 'watch', resourceVersion: '10', delayMs: 75 }, failures: 1, restart: 'short-watch' },
    ],
    [
      'a cut stream re-watches from the last version after backoff',
      at(0, '10'),
      {
        kind: 'watch-failed',
        reason: 'connection-lost',
        error: new Error('x'),
        resourceVersion: '12',
        events: 1,
        openMs: 50,
      },
      { next: { kind: 'watch', resourceVersion: '12', delayMs: 75 }, failures: 1, restart: 'connection-lost' },
    ],
    [
      'a cut after a healthy period starts the streak over',
      at(5, '10'),
      {
        kind: 'watch-failed',
        reason: 'connection-lost',
        error: new Error('x'),
        resourceVersion: '12',
        events: 1,
        openMs: 10_000,
      },
      { next: { kind: 'watch', resourceVersion: '12', delayMs: 75 }, failures: 1, restart: 'connection-lost' },
    ],
    [
      'a 500 on the watch request backs off and keeps the version',
      at(1, '10'),
      {
        kind: 'watch-failed',
        reason: 'watch-failed',
        error: { statusCode: 500 },
        resourceVersion: '10',
        events: 0,
        openMs: 0,
      },
      { next: { kind: 'watch', resourceVersion: '10', delayMs: 150 }, failures: 2, restart: 'watch-failed' },
    ],
    [
      'a stalled stream is abandoned and re-watched',
      at(0, '10'),
      {
        kind: 'watch-failed',
        reason: 'stalled',
        error: new Error('x'),
        resourceVersion: '10',
        events: 0,
        openMs: 5_000,
      },
      { next: { kind: 'watch', resourceVersion: '10', delayMs: 75 }, failures: 1, restart: 'stalled' },
    ],
    [
      '410 after progress relists at once',
      at(0, '10'),
      { kind: 'watch-expired', events: 3, openMs: 2_000 },
      { next: { kind: 'list', delayMs: 0 }, failures: 0, restart: 'expired' },
    ],
    [
      '410 on reconnect (no progress) relists at once the first time',
      at(0, '10'),
      { kind: 'watch-expired', events: 0, openMs: 0 },
      { next: { kind: 'list', delayMs: 0 }, failures: 1, restart: 'expired' },
    ],
    [
      '410 again without progress backs off',
      at(1, '10'),
      { kind: 'watch-expired', events: 0, openMs: 0 },
      { next: { kind: 'list', delayMs: 150 }, failures: 2, restart: 'expired' },
    ],
    [
      'an ERROR event relists after backoff',
      at(0, '10'),
      {
        kind: 'watch-error-event',
        status: { code: 500, reason: 'InternalError', message: 'x' },
        events: 0,
        openMs: 10,
      },
      { next: { kind: 'list', delayMs: 75 }, failures: 1, restart: 'error-event' },
    ],
  ])('%s', (_name, state, outcome, want) => {
    const got = run(state, outcome);
    expect(got.next).toEqual(want.next);
    expect(got.state.failures).toBe(want.failures);
    expect(got.restart).toBe(want.restart);
  });

  it('never gives up: a long outage keeps retrying at the cap', () => {
    let s = INITIAL_SUPERVISOR_STATE;
    for (let i = 0; i < 50; i++) {
      const r = run(s, { kind: 'list-failed', error: new Error('ECONNREFUSED') });
      expect(r.next.kind).toBe('list');
      expect(r.next.delayMs).toBeLessThanOrEqual(timing.backoffCapMs);
      s = r.state;
    }
    expect(run(s, { kind: 'list-failed', error: new Error('x') }).next.delayMs).toBe(2_400);
  });
});

describe('describeError', () => {
  it.each([
    ['ApiException', { code: 500, body: '{}' }, 'HTTP 500'],
    ['Watch status', Object.assign(new Error('Internal Server Error'), { statusCode: 503 }), 'HTTP 503'],
    ['socket error', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }), 'ECONNRESET'],
    ['plain error', new Error('boom'), 'boom'],
    ['non-error', 'text', 'text'],
  ])('%s', (_n, err, want) => {
    expect(describeError(err)).toBe(want);
  });
});

const bmh = (
  name: string,
  mac: string,
  annotations: Record<string, string> = { [`${P}ip-address`]: '10.0.0.5/24' },
  extra: Partial<KubeBareMetalHost> = {},
): KubeBareMetalHost => ({
  apiVersion: 'metal3.io/v1alpha1',
  kind: 'BareMetalHost',
  metadata: { name, namespace: 'm3', annotations, uid: `uid-${name}`, resourceVersion: '1' },
  spec: { bootMACAddress: mac },
  ...extra,
});
const mac = (s: string) => parseMac(s)!;

describe('BmhMirror', () => {
  it('replaces only the cluster partition: manifest-file hosts stay', () => {
    const index = new HostIndex();
    const fromFile = bmhToHost(bmh('file', '52:54:00:00:00:09', { [`${P}ip-address`]: '10.0.0.9/24' }), {
      annotationPrefix: P,
      from: '/etc/bmh.yaml',
    });
    if (fromFile.kind !== 'host') throw new Error('fixture');
    index.replaceAll('bmh', [fromFile.host]);
    const m = new BmhMirror(index, { annotationPrefix: P });
    const r = m.replace([
      bmh('a', '52:54:00:00:00:01'),
      bmh('b', '52:54:00:00:00:02', { [`${P}ip-address`]: '10.0.0.6/24' }),
    ]);
    expect(r).toMatchObject({ hosts: 2, added: 2, removed: 0, skipped: [], conflicts: [] });
    expect(m.replace([bmh('b', '52:54:00:00:00:02', { [`${P}ip-address`]: '10.0.0.6/24' })])).toMatchObject({
      hosts: 1,
      added: 0,
      removed: 1,
    });
    expect(index.lookup(mac('52:54:00:00:00:01')).kind).toBe('unknown');
    expect(index.lookup(mac('52:54:00:00:00:09')).kind).toBe('host');
    expect(index.size('bmh')).toBe(2);
  });

  it('applies adds, changes and deletes so the next lookup sees them', () => {
    const index = new HostIndex();
    const m = new BmhMirror(index, { annotationPrefix: P });
    m.replace([]);
    expect(m.apply('ADDED', bmh('a', '52:54:00:00:00:01'))).toMatchObject({ kind: 'upsert', added: true });
    const moved = m.apply(
      'MODIFIED',
      bmh(
        'a',
        '52:54:00:00:00:01',
        { [`${P}ip-address`]: '10.0.0.50/24' },
        { status: { provisioning: { state: 'provisioning' } } },
      ),
    );
    expect(moved).toMatchObject({ kind: 'upsert', added: false, problemChanged: false });
    const found = index.lookup(mac('52:54:00:00:00:01'));
    expect(found.kind === 'host' && found.host.provisioningState).toBe('provisioning');
    expect(found.kind === 'host' && found.host.lease?.ip).toBe(index.hosts('bmh')[0]!.lease!.ip);
    expect(m.apply('MODIFIED', bmh('a', '52:54:00:00:00:01', {}))).toMatchObject({
      kind: 'upsert',
      problemChanged: true,
    });
    expect(m.apply('DELETED', bmh('a', '52:54:00:00:00:01'))).toEqual({ kind: 'delete', id: 'm3/a', existed: true });
    expect(index.lookup(mac('52:54:00:00:00:01')).kind).toBe('unknown');
    expect(m.apply('DELETED', bmh('a', '52:54:00:00:00:01'))).toEqual({ kind: 'delete', id: 'm3/a', existed: false });
  });

  it('matches inspected NIC MACs, and drops a host whose boot MAC goes away', () => {
    const index = new HostIndex();
    const m = new BmhMirror(index, { annotationPrefix: P });
    m.apply(
      'ADDED',
      bmh('a', '52:54:00:00:00:01', undefined, { status: { hardware: { nics: [{ mac: '52:54:00:00:01:01' }] } } }),
    );
    expect(index.lookup(mac('52:54:00:00:01:01')).kind).toBe('host');
    expect(m.apply('MODIFIED', { ...bmh('a', ''), spec: {} })).toEqual({
      kind: 'skip',
      id: 'm3/a',
      reason: 'spec.bootMACAddress is missing',
      removed: true,
    });
    expect(index.lookup(mac('52:54:00:00:00:01')).kind).toBe('unknown');
    expect(m.size).toBe(0);
  });

  it('knows the object of its own hosts only (for Events)', () => {
    const index = new HostIndex();
    const m = new BmhMirror(index, { annotationPrefix: P });
    m.apply('ADDED', bmh('a', '52:54:00:00:00:01'));
    const found = index.lookup(mac('52:54:00:00:00:01'));
    if (found.kind !== 'host') throw new Error('not found');
    expect(m.refFor(found.host)).toEqual({ namespace: 'm3', name: 'a', uid: 'uid-a' });
    expect(m.refFor({ ...found.host, origin: { ...found.host.origin, from: '/etc/bmh.yaml' } })).toBeUndefined();
  });
});

describe('statusDetail', () => {
  const base = {
    ready: true,
    connected: true,
    hosts: 3,
    namespace: 'metal3',
    lastSyncAt: 0,
    disconnectedSince: undefined,
    lastError: undefined,
  };
  it.each([
    [
      'waiting',
      { ...base, ready: false, connected: false, lastError: 'list: ECONNREFUSED' },
      'waiting for the first list of baremetalhosts in namespace metal3 (last error: list: ECONNREFUSED)',
    ],
    ['watching', base, 'watching baremetalhosts in namespace metal3: 3 hosts'],
    [
      'all namespaces, one host',
      { ...base, namespace: undefined, hosts: 1 },
      'watching baremetalhosts in all namespaces: 1 host',
    ],
    [
      'away',
      { ...base, connected: false, disconnectedSince: Date.UTC(2030, 0, 2, 3, 4, 5), lastError: 'watch: ECONNRESET' },
      'not connected to the API server since 2030-01-02T03:04:05.000Z; serving 3 hosts from the last known state (last error: watch: ECONNRESET)',
    ],
  ])('%s', (_n, snapshot, want) => {
    expect(statusDetail(snapshot)).toBe(want);
  });
});
