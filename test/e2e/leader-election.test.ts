// The acceptance test of leader election: three metalboot processes (src/main.ts, real
// process boundaries, the default 15/10/2 s timing) against the Kubernetes API server fixture.
// Exactly one leads at a time; after kill -9 of the leader another leads within 30 s. No
// network namespaces are needed: DHCP is off, TFTP and the callback listener are off, HTTP
// binds a free loopback port.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

import { type KubeApiServer, startKubeApiServer } from '../support/kube-apiserver.js';
import { writeKubeconfig } from '../support/kube-config.js';
import { type ReplicaProcess, ReplicaProcesses, writeReplicaConfig } from '../support/replica-processes.js';
import { until } from '../support/until.js';

const NS = 'metal3';
const LEASE = 'metalboot';

let server: KubeApiServer | undefined;
let dir: string | undefined;
const processes = new ReplicaProcesses();

afterEach(async () => {
  await processes.killAll();
  await server?.close();
  server = undefined;
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

describe('leader election between metalboot processes', () => {
  it('one leader of three; kill -9 of the leader → a new leader within 30 s', async () => {
    server = await startKubeApiServer();
    const s = server;
    dir = await mkdtemp(path.join(tmpdir(), 'metalboot-leader-e2e-'));
    const config = await writeReplicaConfig(dir, [
      'proxy: { callbackListen: "" }',
      `sources: { kube: { kubeconfig: ${JSON.stringify(await writeKubeconfig(s, { dir }))} } }`,
      `leaderElection: { id: ${LEASE}, namespace: ${NS} }`,
    ]);
    const replicas = [0, 1, 2].map(() => processes.start(['--config', config]));
    const holder = (): string | undefined => {
      const h = s.lease(NS, LEASE)?.spec?.['holderIdentity'];
      return typeof h === 'string' && h !== '' ? h : undefined;
    };
    const first = await until(holder, 60_000, 'a first leader').catch((err: Error) => {
      throw new Error(`${err.message}\n${replicas.map((r) => r.output().slice(-1500)).join('\n---\n')}`);
    });
    const ids = await until(
      () => {
        const all = replicas.map((r) => r.identity());
        return all.every((id) => id !== undefined) ? (all as string[]) : undefined;
      },
      60_000,
      'every replica electing',
    );
    expect(new Set(ids).size).toBe(3);
    // The Lease names one holder at any time by construction; what can go wrong is two processes
    // each believing they lead. Each logs "became leader" once per term: one so far.
    const becameLeader = (r: ReplicaProcess) =>
      r
        .output()
        .split('\n')
        .filter((l) => l.includes('"became leader"')).length;
    const leaders = () => replicas.filter((r) => becameLeader(r) > 0);
    await until(() => (leaders().length === 1 ? true : undefined), 10_000, 'the leader logging it');
    const leader = replicas[ids.indexOf(first)]!;
    expect(leaders()).toEqual([leader]);

    const killedAt = Date.now();
    await leader.kill();
    const next = await until(
      () => {
        const h = holder();
        return h !== undefined && h !== first ? h : undefined;
      },
      30_000,
      'a new leader',
    );
    expect(Date.now() - killedAt).toBeLessThan(30_000);
    expect(ids.filter((id) => id !== first)).toContain(next);
    const survivors = replicas.filter((r) => r !== leader);
    await until(
      () => (survivors.filter((r) => becameLeader(r) > 0).length === 1 ? true : undefined),
      5_000,
      'exactly one survivor leading',
    );
  });
});
