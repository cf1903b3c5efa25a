// Three LeaderElector replicas in-process against the Kubernetes API server fixture, each with
// its own KubeConfig: exactly one leads at a time; a release hands over at once; a replica that
// stops without releasing (a kill -9, as far as the others can tell) is replaced once its lease
// runs out.

import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';

import { kubeLeaseApi, LeaderElector } from '../../src/kube/leader-election.js';
import { type KubeApiServer, startKubeApiServer } from '../support/kube-apiserver.js';
import { kubeconfigFor } from '../support/kube-config.js';

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
