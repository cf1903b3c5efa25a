// Three LeaderElector replicas in-process against the Kubernetes API server fixture, each with
// its own KubeConfig: exactly one leads at a time; a release hands over at once; a replica that
// stops without releasing (a kill -9, as far as the others can tell) is replaced once its lease
// runs out.

import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { closeAll, startAll } from '../../src/base/service.js';
import { loadConfig } from '../../src/config/load.js';
import { kubeLeaseApi, LeaderElector } from '../../src/kube/leader-election.js';
import { buildProduct } from '../../src/wiring/product.js';
import { type KubeApiServer, startKubeApiServer } from '../support/kube-apiserver.js';
import { kubeconfigFor, writeKubeconfig } from '../support/kube-config.js';

const NS = 'metal3';
const LEASE = 'metalboot';
// client-go's 15/10/2 s scaled down; the record carries ceil(1.5) = 2 s.
const TIMING = { leaseDurationMs: 1_500, renewDeadlineMs: 1_000, retryPeriodMs: 200 };

let server: KubeApiServer | undefined;
const electors: LeaderElector[] = [];

afterEach(async () => {
  await Promise.all(electors.splice(0).map((e) => e.close()));
  await server?.close();
  server = undefined;
});

interface Replica {
  readonly elector: LeaderElector;
  readonly registry: Registry;
  readonly changes: boolean[];
}

function replica(s: KubeApiServer, id: string, releaseOnClose = true): Replica {
  const kc = new KubeConfig();
  kc.loadFromString(kubeconfigFor(s));
  const registry = new Registry();
  const changes: boolean[] = [];
  const elector = new LeaderElector({
    api: kubeLeaseApi(kc, NS, LEASE),
    identity: id,
    lease: `${NS}/${LEASE}`,
    timing: TIMING,
    logger: pino({ level: 'silent' }),
    registry,
    releaseOnClose,
    onChange: (leading) => changes.push(leading),
  });
  electors.push(elector);
  return { elector, registry, changes };
}

/** Polls every 20 ms until `f` returns a value, or fails after `ms`; checks `invariant` on every poll. */
async function until<T>(f: () => T | undefined, ms: number, invariant: () => void = () => {}): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    invariant();
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('LeaderElector against the API server fixture', () => {
  it('elects exactly one of three; closing the leader releases the lease and another leads at once', async () => {
    server = await startKubeApiServer();
    const s = server;
    const replicas = ['a', 'b', 'c'].map((id) => replica(s, `pod-${id}_x`));
    const atMostOne = (): void => {
      expect(replicas.filter((r) => r.elector.isLeader()).length).toBeLessThanOrEqual(1);
    };
    await Promise.all(replicas.map((r) => r.elector.start()));
    const first = await until(() => replicas.find((r) => r.elector.isLeader()), 5_000, atMostOne);
    // Sample for a few renew periods: still exactly one, the same one.
    const sampleUntil = Date.now() + 1_000;
    await until(
      () => (Date.now() > sampleUntil ? true : undefined),
      2_000,
      () => {
        atMostOne();
        expect(first.elector.isLeader()).toBe(true);
      },
    );
    const lease = s.lease(NS, LEASE);
    expect(lease?.spec).toMatchObject({ holderIdentity: first.elector.holder(), leaseDurationSeconds: 2 });
    expect(await first.registry.getSingleMetricAsString('metalboot_leader')).toMatch(/metalboot_leader 1/);
    expect(first.elector.readiness[0]?.check()).toEqual({ ok: true, detail: `leader of ${NS}/${LEASE}` });
    const follower = replicas.find((r) => r !== first);
    expect(follower?.elector.readiness[0]?.check().ok).toBe(true);

    const closedAt = Date.now();
    await first.elector.close();
    expect(first.changes).toEqual([true, false]);
    const rest = replicas.filter((r) => r !== first);
    const second = await until(() => rest.find((r) => r.elector.isLeader()), 3_000, atMostOne);
    // A release needs no lease expiry: the next acquire attempt (≤ 2.2 × retry period) takes it.
    expect(Date.now() - closedAt).toBeLessThan(1_500);
    expect(s.lease(NS, LEASE)?.spec).toMatchObject({
      holderIdentity: second.elector.holder(),
      leaseTransitions: 1, // created with 0; taken over once after the release
    });
  });

  it('a leader that stops without releasing is replaced after the lease duration', async () => {
    server = await startKubeApiServer();
    const s = server;
    const replicas = ['a', 'b', 'c'].map((id) => replica(s, `pod-${id}_y`, false));
    await Promise.all(replicas.map((r) => r.elector.start()));
    const first = await until(() => replicas.find((r) => r.elector.isLeader()), 5_000);
    const stoppedAt = Date.now();
    await first.elector.close(); // no release: the lease still names it
    expect(s.lease(NS, LEASE)?.spec?.['holderIdentity']).toBe(first.elector.holder());
    const rest = replicas.filter((r) => r !== first);
    const atMostOne = (): void => {
      expect(rest.filter((r) => r.elector.isLeader()).length).toBeLessThanOrEqual(1);
    };
    const second = await until(() => rest.find((r) => r.elector.isLeader()), 6_000, atMostOne);
    // Not before the 2 s in the record have run out by the followers' clocks.
    expect(Date.now() - stoppedAt).toBeGreaterThanOrEqual(1_500);
    expect(s.lease(NS, LEASE)?.spec?.['holderIdentity']).toBe(second.elector.holder());
  });
});

describe('renew deadline', () => {
  it('a leader that cannot reach the API server steps down after the renew deadline; one leads again after', async () => {
    server = await startKubeApiServer();
    const s = server;
    const replicas = ['a', 'b'].map((id) => replica(s, `pod-${id}_z`));
    await Promise.all(replicas.map((r) => r.elector.start()));
    const first = await until(() => replicas.find((r) => r.elector.isLeader()), 5_000);
    await s.pauseAvailability('503');
    const pausedAt = Date.now();
    await until(() => (first.elector.isLeader() ? undefined : true), 3_000);
    // Not before the renew deadline (1 s) since the last successful renewal (≤ 1 retry period ago).
    expect(Date.now() - pausedAt).toBeGreaterThanOrEqual(TIMING.renewDeadlineMs - TIMING.retryPeriodMs);
    expect(first.changes).toEqual([true, false]);
    expect(replicas.some((r) => r.elector.isLeader())).toBe(false);
    await s.resume();
    await until(
      () => replicas.find((r) => r.elector.isLeader()),
      5_000,
      () => {
        expect(replicas.filter((r) => r.elector.isLeader()).length).toBeLessThanOrEqual(1);
      },
    );
  });
});

describe('in the product (--leader-election-id)', () => {
  it('elects through the Lease in the configured namespace, keeps /readyz independent, releases on close', async () => {
    server = await startKubeApiServer();
    const s = server;
    const dir = await mkdtemp(join(tmpdir(), 'metalboot-leader-'));
    try {
      const loaded = loadConfig({
        argv: [
          ...['--leader-election-id', LEASE, '--leader-election-namespace', NS],
          ...['--kubeconfig', await writeKubeconfig(s, { dir }), '--server-ip', '127.0.0.1/8'],
          ...['--dhcp-listen', '127.0.0.1:0', '--tftp-listen', '', '--tftp-root', dir],
          ...['--http-listen', '127.0.0.1:0', '--callback-listen', '', '--log-level', 'silent'],
        ],
        env: {},
        readFile: () => {
          throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
        },
        localAddresses: () => [],
      });
      if (loaded.kind !== 'config') throw new Error(JSON.stringify(loaded));
      const product = buildProduct(loaded.config, {
        logger: pino({ level: 'silent' }),
        registry: new Registry(),
        hostname: 'metalboot-0',
      });
      const leader = product.leader;
      if (leader === undefined) throw new Error('no elector');
      await startAll(product.services);
      try {
        await until(() => (leader.isLeader() ? true : undefined), 5_000);
        expect(leader.holder()).toMatch(/^metalboot-0_[0-9a-f]{8}$/);
        expect(s.lease(NS, LEASE)?.spec).toMatchObject({ holderIdentity: leader.holder(), leaseDurationSeconds: 15 });
        expect(product.readiness.find((c) => c.name === 'leader-election')?.check()).toEqual({
          ok: true,
          detail: `leader of ${NS}/${LEASE}`,
        });
      } finally {
        await closeAll(product.services);
      }
      expect(s.lease(NS, LEASE)?.spec?.['holderIdentity']).toBeUndefined();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
