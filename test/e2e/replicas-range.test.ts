/**
 * Two metalboot replicas share one dynamic range through the Kubernetes API (decision 0010),
 * under load from perfdhcp through a real relay (ISC dhcrelay) that forwards every request to
 * both, and one replica is killed (SIGKILL) mid-run. Judged from the wire and from the API:
 * - no address is ACKed to two MACs (every ACK captured at perfdhcp's interface);
 * - every ACKed lease is in the API afterwards, held by the MAC it was ACKed to (the killed
 *   replica's included): an ACK leaves only after its Lease is written.
 *
 *   br0 (10.70.0.0/24): kube 10.70.0.5 (the API server fixture, a process of its own)
 *                       r1 10.70.0.11, r2 10.70.0.12 (metalboot, --leader-election-id)
 *                       relay 10.70.0.1 (dhcrelay → both replicas)
 *                       load 10.70.0.50 (perfdhcp, relay-shaped: giaddr = its own address)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { writeFileSync } from 'node:fs';
import { createLab, requireRoot, requireTools, type Capture, type Lab } from '../../lab/netns.js';
import { decode } from '../../src/dhcp/codec.js';
import { getMessageType } from '../../src/dhcp/options.js';
import { formatIpv4 } from '../../src/net/ipv4.js';
import { REPO_ROOT, startMetalboot, type MetalbootProcess } from '../support/metalboot-process.js';

const KUBE_IP = '10.70.0.5';
const RELAY_IP = '10.70.0.1';
const LOAD_IP = '10.70.0.50';
const REPLICAS = { r1: '10.70.0.11', r2: '10.70.0.12' } as const;
const ACK = 5;
/** Bounded load: 120 clients at 30/s, about 4 s of DORA. */
const CLIENTS = 120;

function macOf(chaddr: Uint8Array): string {
  return [...chaddr.subarray(0, 6)].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

describe('two replicas, one range, a relay and a kill -9', () => {
  let lab: Lab;
  let kube: ChildProcess;
  let kubeconfig: string;
  let kubeUrl: string;
  const replicas: Partial<Record<keyof typeof REPLICAS, MetalbootProcess>> = {};
  let capture: Capture;

  beforeAll(async () => {
    requireRoot();
    requireTools('ip', 'tcpdump', 'perfdhcp', 'dhcrelay');
    lab = await createLab();
    for (const ns of ['kube', 'r1', 'r2', 'relay', 'load']) await lab.addNamespace(ns);
    await lab.connect('kube', { ip: `${KUBE_IP}/24` });
    await lab.connect('r1', { ip: `${REPLICAS.r1}/24` });
    await lab.connect('r2', { ip: `${REPLICAS.r2}/24` });
    await lab.connect('relay', { ip: `${RELAY_IP}/24` });
    await lab.connect('load', { ip: `${LOAD_IP}/24` });

    writeFileSync(path.join(lab.dir, 'hosts.json'), '[]');
    kube = lab.spawnNode('kube', path.join(REPO_ROOT, 'test/support/kube-apiserver-main.ts'), [
      path.join(lab.dir, 'hosts.json'),
      lab.dir,
      KUBE_IP,
    ]);
    const out = await lab.waitForOutput(kube, /"kubeconfig"/, 30_000);
    const started = JSON.parse(out.split('\n').find((l) => l.includes('"kubeconfig"'))!) as {
      kubeconfig: string;
      url: string;
    };
    kubeconfig = started.kubeconfig;
    kubeUrl = started.url;

    for (const [name, ip] of Object.entries(REPLICAS) as [keyof typeof REPLICAS, string][]) {
      replicas[name] = await startMetalboot(lab, name, [
        `--server-ip=${ip}/24`,
        '--dhcp-range=10.70.0.100,10.70.0.250,1h',
        '--tftp-listen=',
        '--http-listen=127.0.0.1:0',
        `--kubeconfig=${kubeconfig}`,
        '--leader-election-id=mb',
        '--leader-election-namespace=metal3',
        '--log-level=info',
      ]);
    }
    // Both replicas answer range clients once they have listed the (empty) range.
    for (const r of Object.values(replicas))
      await r!.waitForLog((l) => l.msg === 'range leases loaded from the Kubernetes API', 30_000);

    // dhcrelay in the foreground, forwarding every request it hears on eth0 to both replicas.
    // -c 2: its packet socket also hears its own forwards on the same interface; perfdhcp's
    // requests arrive with hops 1, so a forward (hops 2) is not forwarded again.
    const relay = lab.spawn('relay', 'dhcrelay', ['-4', '-d', '-c', '2', '-i', 'eth0', REPLICAS.r1, REPLICAS.r2]);
    await lab.waitForOutput(relay, /Sending on|Listening on/, 15_000);
    capture = await lab.capture('load', 'eth0', 'udp port 67');
  }, 120_000);

  afterAll(async () => {
    await lab?.close();
  });

  it('never ACKs one address to two MACs, and loses no ACKed lease when a replica dies', async () => {
    const acks = (): { ip: string; mac: string; from: string }[] =>
      capture.peek().flatMap((p) => {
        if (p.payload === undefined || p.dstIp !== LOAD_IP) return [];
        try {
          const m = decode(p.payload);
          if (getMessageType(m.options) !== ACK) return [];
          return [{ ip: formatIpv4(m.yiaddr), mac: macOf(m.chaddr), from: p.srcIp ?? '' }];
        } catch {
          return [];
        }
      });
    // perfdhcp sends to the relay (unicast, giaddr = its address); -R: distinct simulated MACs.
    const load = lab.spawn('load', 'perfdhcp', [
      '-4',
      '-l',
      LOAD_IP,
      '-r',
      '30',
      '-R',
      String(CLIENTS),
      '-n',
      String(CLIENTS),
      '-W',
      '3000000',
      RELAY_IP,
    ]);
    // Kill r1 once both replicas have ACKed some leases (mid-run, not before the load).
    await capture.waitFor(() => {
      const by = new Set(acks().map((a) => a.from));
      return by.has(REPLICAS.r1) && by.has(REPLICAS.r2) && acks().length >= 20;
    }, 60_000);
    await replicas.r1!.stop('SIGKILL');
    const killedAt = acks().length;
    await new Promise<void>((resolve) => {
      if (load.exitCode !== null) return resolve();
      load.once('exit', () => resolve());
    });
    const all = acks();
    expect(all.length).toBeGreaterThan(killedAt);
    // r2 kept answering after r1 died.
    expect(all.slice(killedAt).some((a) => a.from === REPLICAS.r2)).toBe(true);

    // 1. No address ACKed to two MACs.
    const holder = new Map<string, string>();
    for (const a of all) {
      const h = holder.get(a.ip);
      expect(h === undefined || h === a.mac, `${a.ip} ACKed to ${h} and to ${a.mac}`).toBe(true);
      holder.set(a.ip, a.mac);
    }
    // 2. Every ACKed lease is in the API, held by its MAC.
    const listed = await lab.exec('kube', 'curl', [
      '-sf',
      `${kubeUrl}/apis/coordination.k8s.io/v1/namespaces/metal3/leases?labelSelector=metalboot.io%2Fdhcp-range%3Dmb-dhcp`,
    ]);
    const items = (
      JSON.parse(listed.stdout) as {
        items: { metadata: { annotations?: Record<string, string> }; spec: { holderIdentity?: string } }[];
      }
    ).items;
    const stored = new Map(items.map((l) => [l.metadata.annotations?.['metalboot.io/address'], l.spec.holderIdentity]));
    for (const [ip, mac] of holder) expect(stored.get(ip), `the Lease of ${ip}`).toBe(mac);
    expect(holder.size).toBeGreaterThan(20);
  }, 180_000);
});
