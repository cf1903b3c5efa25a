// The state replicas share through the Kubernetes API server fixture, in-process: range leases
// (one Lease per address), agent records (one ConfigMap per node) and the callback CA Secret.
// Each "replica" has its own KubeConfig, pool or store, as separate pods would.

import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';

import { X509Certificate } from 'node:crypto';
import { AgentConfigMaps } from '../../src/kube/agent-records.js';
import { CallbackSecret } from '../../src/kube/callback-secret.js';
import { KubeRangeLeases, kubeRangeLeaseApi, leaseNameOf } from '../../src/kube/range-leases.js';
import { parseIpv6 } from '../../src/net/ipv6.js';
import { LeasePool, LeasePool6, duidKey } from '../../src/leases/pool.js';
import { parseRange } from '../../src/leases/range.js';
import { parseMac } from '../../src/net/mac.js';
import { parseIpv4, type Ipv4 } from '../../src/net/ipv4.js';
import { AgentStore } from '../../src/proxy/agent-store.js';
import { agentIdOf } from '../../src/proxy/callback-url.js';
import { generateCa } from '../../src/proxy/certificates.js';
import type { SharedTlsMaterial } from '../../src/proxy/callback-tls.js';
import { type KubeApiServer, startKubeApiServer } from '../support/kube-apiserver.js';
import { kubeconfigFor } from '../support/kube-config.js';

const NS = 'metal3';
const logger = pino({ level: 'silent' });
let server: KubeApiServer | undefined;
const closers: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
  await server?.close();
  server = undefined;
});

function kubeConfig(s: KubeApiServer): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromString(kubeconfigFor(s));
  return kc;
}

async function until(f: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!f()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const ip = (t: string): Ipv4 => parseIpv4(t)!;
function range(text: string) {
  const r = parseRange(text, 3600);
  if (!r.ok) throw new Error(r.error);
  return r.range;
}
const MAC_A = parseMac('52:54:00:aa:00:01')!;
const MAC_B = parseMac('52:54:00:aa:00:02')!;

interface RangeReplica {
  readonly pool: LeasePool;
  readonly leases: KubeRangeLeases;
}

async function rangeReplica(s: KubeApiServer): Promise<RangeReplica> {
  const kc = kubeConfig(s);
  const pool = new LeasePool({
    ranges: [range('10.9.0.10,10.9.0.12,3600')],
    isClaimed: () => false,
    serverIp: ip('10.9.0.1'),
  });
  const leases = new KubeRangeLeases({
    api: kubeRangeLeaseApi(kc, NS, 'mb-dhcp'),
    kubeConfig: kc,
    namespace: NS,
    prefix: 'mb-dhcp',
    pool,
    now: Date.now,
    logger,
  });
  await leases.start();
  closers.push(() => leases.close());
  return { pool, leases };
}

/** commit + persist, as the DHCP server does for a REQUEST (revert when not durable). */
async function ack(r: RangeReplica, mac: typeof MAC_A, addr: string): Promise<'acked' | string> {
  const c = r.pool.commit(mac, ip(addr), Date.now());
  if (!c.ok) return c.reason;
  try {
    await r.leases.persist(c.record);
    return 'acked';
  } catch (err) {
    r.pool.revert(c.undo);
    return (err as { code?: string }).code ?? String(err);
  }
}

describe('range leases shared by replicas', () => {
  it('one address, two hosts, two replicas: exactly one ACK; the other replica learns the holder', async () => {
    server = await startKubeApiServer();
    const a = await rangeReplica(server);
    const b = await rangeReplica(server);
    expect(a.leases.synced && b.leases.synced).toBe(true);
    // Both offer 10.9.0.10 (neither knows of the other's offer), then both clients request it.
    expect(a.pool.offer(MAC_A, undefined, Date.now())?.ip).toBe(ip('10.9.0.10'));
    expect(b.pool.offer(MAC_B, undefined, Date.now())?.ip).toBe(ip('10.9.0.10'));
    const results = await Promise.all([ack(a, MAC_A, '10.9.0.10'), ack(b, MAC_B, '10.9.0.10')]);
    expect(results.filter((x) => x === 'acked')).toHaveLength(1);
    expect(results.filter((x) => x === 'LEASE_ERR_CONFLICT')).toHaveLength(1);
    const winner = results[0] === 'acked' ? MAC_A : MAC_B;
    const stored = server.lease(NS, leaseNameOf('mb-dhcp', '10.9.0.10'));
    expect(stored?.spec?.holderIdentity).toBe(winner);
    // Both pools hold the winner now; the loser's client is refused on its retry.
    await until(
      () => a.pool.leaseOf(winner, Date.now()) !== undefined && b.pool.leaseOf(winner, Date.now()) !== undefined,
      5_000,
      'both pools to hold the winner',
    );
    const loser = winner === MAC_A ? MAC_B : MAC_A;
    expect(await ack(winner === MAC_A ? b : a, loser, '10.9.0.10')).toBe('address-taken');
  });

  it('a lease written by one replica is renewed by another, released, and loaded by a new one', async () => {
    server = await startKubeApiServer();
    const a = await rangeReplica(server);
    const b = await rangeReplica(server);
    expect(await ack(a, MAC_A, '10.9.0.11')).toBe('acked');
    await until(() => b.pool.leaseOf(MAC_A, Date.now()) !== undefined, 5_000, 'b to see the lease');
    // The renewal lands on b (a relay's packets after a conntrack expiry).
    expect(await ack(b, MAC_A, '10.9.0.11')).toBe('acked');
    // A replica started now (a restart) has it before it answers.
    const c = await rangeReplica(server);
    expect(c.pool.leaseOf(MAC_A, Date.now())?.ip).toBe(ip('10.9.0.11'));
    // Other clients are offered other addresses everywhere.
    expect(c.pool.offer(MAC_B, undefined, Date.now())?.ip).not.toBe(ip('10.9.0.11'));
    const rec = b.pool.release(MAC_A, ip('10.9.0.11'));
    await b.leases.persist(rec!);
    expect(server.lease(NS, leaseNameOf('mb-dhcp', '10.9.0.11'))).toBeUndefined();
    await until(() => c.pool.leaseOf(MAC_A, Date.now()) === undefined, 5_000, 'c to see the release');
  });

  it('refuses the ACK when the API server is down, and keeps nothing it did not store', async () => {
    server = await startKubeApiServer();
    const a = await rangeReplica(server);
    server.failNext(5, 500);
    const r = await ack(a, MAC_A, '10.9.0.12');
    expect(r).not.toBe('acked');
    expect(a.pool.leaseOf(MAC_A, Date.now())).toBeUndefined();
    expect(server.lease(NS, leaseNameOf('mb-dhcp', '10.9.0.12'))).toBeUndefined();
  });
});

describe('IPv6 range leases shared by replicas', () => {
  it('an IPv6 binding (and a DUID-keyed one) written by one replica is loaded by another, under its own Lease name', async () => {
    server = await startKubeApiServer();
    const replica6 = async () => {
      const kc = kubeConfig(server!);
      const pool = new LeasePool6({
        ranges: [{ start: parseIpv6('fd00:9::10')!, end: parseIpv6('fd00:9::12')!, leaseSeconds: 3600 }],
        isClaimed: () => false,
        serverIp: parseIpv6('fd00:9::1')!,
      });
      const leases = new KubeRangeLeases({
        api: kubeRangeLeaseApi(kc, NS, 'mb-dhcp6'),
        kubeConfig: kc,
        namespace: NS,
        prefix: 'mb-dhcp6',
        pool,
        now: Date.now,
        logger,
      });
      await leases.start();
      closers.push(() => leases.close());
      return { pool, leases };
    };
    const a = await replica6();
    const b = await replica6();
    const duid = duidKey(Uint8Array.of(0, 4, 1, 2, 3));
    for (const [key, addr] of [
      [MAC_A, 'fd00:9::10'],
      [duid, 'fd00:9::11'],
    ] as const) {
      const c = a.pool.commit(key, parseIpv6(addr)!, Date.now());
      if (!c.ok) throw new Error(c.reason);
      await a.leases.persist(c.record);
    }
    expect(server.lease(NS, 'mb-dhcp6-fd000009000000000000000000000010')?.spec?.holderIdentity).toBe(MAC_A);
    await until(() => b.pool.leaseOf(duid, Date.now()) !== undefined, 5_000, 'b to see the DUID-keyed binding');
    expect(b.pool.leaseOf(MAC_A, Date.now())?.ip).toBe(parseIpv6('fd00:9::10'));
    expect(b.pool.offer(MAC_B, undefined, Date.now())?.ip).toBe(parseIpv6('fd00:9::12'));
  });
});

describe('agent records shared by replicas', () => {
  it('a heartbeat recorded through replica A is found by a callback through replica B', async () => {
    server = await startKubeApiServer();
    const store = (): AgentStore => {
      const s = new AgentStore({
        stateDir: undefined,
        backend: new AgentConfigMaps({ kubeConfig: kubeConfig(server!), namespace: NS, prefix: 'mb-agent', logger }),
        logger,
        registry: new Registry(),
      });
      closers.push(() => s.close());
      return s;
    };
    const a = store();
    const b = store();
    await a.start();
    await b.start();
    const ca = await generateCa(new Date());
    const hb = a.beginHeartbeat('node-1');
    await hb.commit({ url: 'https://192.0.2.10:9999', caPem: ca.certPem });
    const id = agentIdOf('https://192.0.2.10:9999', ca.certPem);
    expect(b.get('node-1')).toBeUndefined();
    const found = await b.resolve('node-1', id);
    expect(found?.agentUrl).toBe('https://192.0.2.10:9999');
    expect(found?.agentCaPem).toBe(ca.certPem);
    // The agent restarted elsewhere; B records it; A's next miss reads B's record.
    await b.beginHeartbeat('node-1').commit({ url: 'https://192.0.2.11:9999', caPem: ca.certPem });
    const moved = agentIdOf('https://192.0.2.11:9999', ca.certPem);
    expect((await a.resolve('node-1', moved))?.agentUrl).toBe('https://192.0.2.11:9999');
    // A new replica loads every record at start.
    const c = store();
    await c.start();
    expect(c.get('node-1')?.agentUrl).toBe('https://192.0.2.11:9999');
    // A follows B's write into memory, so when the agent returns to its first address a
    // heartbeat through A is written again (memory equal to it would skip the write) and C,
    // which never saw A's heartbeat, forwards to the right agent.
    await until(() => a.get('node-1')?.agentUrl === 'https://192.0.2.11:9999', 5_000, 'A to follow B');
    await a.beginHeartbeat('node-1').commit({ url: 'https://192.0.2.10:9999', caPem: ca.certPem });
    await until(() => c.get('node-1')?.agentUrl === 'https://192.0.2.10:9999', 5_000, 'C to follow A');
    expect((await c.resolve('node-1', id))?.agentUrl).toBe('https://192.0.2.10:9999');
  });
});

describe('the callback CA Secret', () => {
  it('the leader creates it, every replica gets the same CA, and a rotation reaches the followers', async () => {
    server = await startKubeApiServer();
    let leader = 0;
    const listeners: ((i: number) => void)[] = [];
    let clock = Date.now();
    const replica = (i: number): CallbackSecret => {
      const s = new CallbackSecret({
        kubeConfig: kubeConfig(server!),
        namespace: NS,
        name: 'mb-callback-tls',
        hosts: ['192.0.2.20'],
        isLeader: () => leader === i,
        onLeadership: (fn) => listeners.push((l) => fn(l === i)),
        logger,
        now: () => clock,
        waitMs: 10_000,
      });
      closers.push(() => s.close());
      return s;
    };
    const r = [replica(1), replica(2), replica(3)];
    for (const s of r) await s.start();
    const firsts = Promise.all(r.map((s) => s.current()));
    leader = 1;
    for (const l of listeners) l(1);
    const got = await firsts;
    expect(new Set(got.map((m) => m.ca.certPem)).size).toBe(1);
    expect(new Set(got.map((m) => m.server?.certPem)).size).toBe(1);
    expect(new X509Certificate(got[0]!.server!.certPem).checkIP('192.0.2.20')).toBe('192.0.2.20');
    expect(server.secret(NS, 'mb-callback-tls')?.type).toBe('kubernetes.io/tls');

    // 600 days on, replica 2 leads: it renews the serving certificate, keeping the CA.
    const seen: SharedTlsMaterial[] = [];
    r[2]!.subscribe((m) => seen.push(m));
    clock += 600 * 86_400_000;
    leader = 2;
    for (const l of listeners) l(2);
    await until(() => seen.length > 0, 10_000, 'replica 3 to see the rotation');
    expect(seen[0]!.ca.certPem).toBe(got[0]!.ca.certPem);
    expect(seen[0]!.server?.certPem).not.toBe(got[0]!.server?.certPem);
  });
});

describe('the callback CA Secret, put right by the leader', () => {
  const replica = (s: KubeApiServer, leading: boolean): CallbackSecret => {
    const cs = new CallbackSecret({
      kubeConfig: kubeConfig(s),
      namespace: NS,
      name: 'mb-callback-tls',
      hosts: ['192.0.2.20'],
      isLeader: () => leading,
      onLeadership: () => {},
      logger,
      waitMs: 10_000,
    });
    closers.push(() => cs.close());
    return cs;
  };
  const caOf = (s: KubeApiServer): string | undefined => {
    const d = s.secret(NS, 'mb-callback-tls')?.data?.['ca.crt'];
    return d === undefined ? undefined : Buffer.from(d, 'base64').toString('utf8');
  };

  it.each([
    ['deleted', (s: KubeApiServer) => void s.deleteSecret(NS, 'mb-callback-tls')],
    [
      'overwritten with no usable CA',
      (s: KubeApiServer) =>
        void s.putSecret({
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: 'mb-callback-tls', namespace: NS },
          type: 'kubernetes.io/tls',
          data: { 'tls.crt': '', 'tls.key': '', 'ca.crt': Buffer.from('junk').toString('base64') },
        }),
    ],
  ])('when %s, writes it again with the CA Ironic already pins', async (_what, spoil) => {
    server = await startKubeApiServer();
    const s = server;
    const leader = replica(s, true);
    await leader.start();
    const first = await leader.current();
    spoil(s);
    await until(() => caOf(s) === first.ca.certPem, 10_000, 'the Secret written again with the same CA');
    // A replica started now finds it.
    const late = replica(s, false);
    await late.start();
    expect((await late.current()).ca.certPem).toBe(first.ca.certPem);
  });
});
