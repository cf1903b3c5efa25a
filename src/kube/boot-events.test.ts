import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import type { CoreV1Event } from '@kubernetes/client-node';
import { BmhEventRecorder, coreEventBody, type BootEvents, type EventSink, type JsonPatchOp } from './boot-events.js';
import { dhcpMilestone, imageMilestone, reportDhcpOutcome } from './boot-milestones.js';
import { bmhToHost } from '../leases/bmh.js';
import type { HostRecord } from '../leases/host.js';
import { HostIndex } from '../leases/host-index.js';
import { LeasePool } from '../leases/pool.js';
import { decide } from '../dhcp/decide.js';
import { dhcpPolicy, type DhcpPolicy } from '../dhcp/policy.js';
import { MESSAGE_TYPE as T } from '../dhcp/options.js';
import { IPXE, UEFI_PXE, request } from '../../lab/dhcp-requests.js';
import { DEFAULT_BOOT_FILES } from '../boot/boot-files.js';
import { parseIpv4 } from '../net/ipv4.js';

const P = 'metal3.vcluster.com/';
function bmh(name: string, mac: string, annotations: Record<string, string>, from = 'kubernetes'): HostRecord {
  const r = bmhToHost(
    {
      apiVersion: 'metal3.io/v1alpha1',
      kind: 'BareMetalHost',
      metadata: { name, namespace: 'metal3', annotations },
      spec: { bootMACAddress: mac },
    },
    { annotationPrefix: P, from },
  );
  if (r.kind !== 'host') throw new Error(r.reason);
  return r.host;
}
const h1 = bmh('h1', '52:54:00:00:00:01', { [`${P}ip-address`]: '10.0.0.21/24' });

type Call =
  | { op: 'create'; namespace: string; body: CoreV1Event }
  | { op: 'patch'; namespace: string; name: string; ops: readonly JsonPatchOp[] };

/** An in-memory Event API: creates, patches (404 when absent), and scripted failures. */
function fakeSink() {
  const calls: Call[] = [];
  const stored = new Map<string, CoreV1Event>();
  const failures: unknown[] = [];
  let gate: Promise<void> | undefined;
  const sink: EventSink = {
    async create(namespace, body) {
      calls.push({ op: 'create', namespace, body });
      await gate;
      const f = failures.shift();
      if (f !== undefined) throw f;
      stored.set(body.metadata.name!, structuredClone(body));
    },
    async patch(namespace, name, ops) {
      calls.push({ op: 'patch', namespace, name, ops });
      await gate;
      const f = failures.shift();
      if (f !== undefined) throw f;
      const e = stored.get(name);
      if (e === undefined) throw Object.assign(new Error('not found'), { code: 404 });
      for (const o of ops) (e as unknown as Record<string, unknown>)[o.path.slice(1)] = o.value;
    },
  };
  return {
    sink,
    calls,
    stored,
    failures,
    hold() {
      let open!: () => void;
      gate = new Promise((r) => (open = r));
      return () => {
        gate = undefined;
        open();
      };
    },
  };
}

function recorder(sink: EventSink, over: Partial<ConstructorParameters<typeof BmhEventRecorder>[0]> = {}) {
  let now = Date.UTC(2030, 0, 2, 3, 4, 5);
  const registry = new Registry();
  const r = new BmhEventRecorder({
    sink,
    resolve: (h) =>
      h.origin.from === 'kubernetes'
        ? { namespace: 'metal3', name: h.origin.name.split('/')[1]!, uid: 'uid-1' }
        : undefined,
    logger: pino({ level: 'silent' }),
    registry,
    source: { component: 'metalboot', instance: 'metalboot-0', host: 'node-a' },
    now: () => now,
    ...over,
  });
  const metric = async (name: string) => (await registry.getSingleMetric(name)!.get()).values;
  return { r, registry, metric, advance: (ms: number) => (now += ms) };
}

describe('coreEventBody', () => {
  it('is a core/v1 Event about the BareMetalHost', () => {
    const body = coreEventBody(
      {
        name: 'h1.abc',
        namespace: 'metal3',
        ref: { namespace: 'metal3', name: 'h1', uid: 'u-1' },
        reason: 'BootFileServed',
        message: 'served snponly.efi over TFTP',
        type: 'Normal',
        count: 2,
        firstTimestamp: 0,
        lastTimestamp: 1000,
      },
      { component: 'metalboot', instance: 'metalboot-0', host: undefined },
    );
    expect(body).toEqual({
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: 'h1.abc', namespace: 'metal3' },
      involvedObject: {
        apiVersion: 'metal3.io/v1alpha1',
        kind: 'BareMetalHost',
        name: 'h1',
        namespace: 'metal3',
        uid: 'u-1',
      },
      reason: 'BootFileServed',
      message: 'served snponly.efi over TFTP',
      type: 'Normal',
      count: 2,
      firstTimestamp: new Date(0),
      lastTimestamp: new Date(1000),
      source: { component: 'metalboot' },
      reportingComponent: 'metalboot',
      reportingInstance: 'metalboot-0',
    });
  });
});

describe('BmhEventRecorder', () => {
  it('creates, then patches the count of a repeat', async () => {
    const f = fakeSink();
    const { r, advance } = recorder(f.sink);
    r.bootFileServed(h1, 'snponly.efi', 'tftp');
    await r.flush();
    advance(2_000);
    r.bootFileServed(h1, 'snponly.efi', 'tftp');
    await r.flush();
    expect(f.calls.map((c) => c.op)).toEqual(['create', 'patch']);
    const [stored] = [...f.stored.values()];
    expect(stored).toMatchObject({
      reason: 'BootFileServed',
      message: 'served snponly.efi over TFTP',
      type: 'Normal',
      count: 2,
      lastTimestamp: '2030-01-02T03:04:07Z',
      source: { component: 'metalboot', host: 'node-a' },
    });
  });

  it('ignores hosts that are not BareMetalHosts in the cluster', async () => {
    const f = fakeSink();
    const { r } = recorder(f.sink);
    r.leaseOffered(bmh('file', '52:54:00:00:00:09', {}, '/etc/bmh.yaml'), '10.0.0.9/24');
    await r.flush();
    expect(f.calls).toEqual([]);
  });

  it('folds repeats into the queued write while the API server is slow', async () => {
    const f = fakeSink();
    const { r } = recorder(f.sink);
    const release = f.hold();
    r.scriptServed(h1, 'inspector');
    for (let i = 0; i < 5; i++) r.scriptServed(h1, 'inspector');
    release();
    await r.flush();
    expect(f.calls.map((c) => c.op)).toEqual(['create', 'patch']);
    expect([...f.stored.values()][0]).toMatchObject({ count: 6 });
  });

  it('drops, and counts, what does not fit the queue; the packet path never waits', async () => {
    const f = fakeSink();
    const { r, metric } = recorder(f.sink, { maxQueue: 2, limits: { global: { burst: 1000, perSecond: 1000 } } });
    const release = f.hold();
    for (let i = 0; i < 5; i++)
      r.dropped(bmh(`h${i}`, `52:54:00:00:01:0${i}`, {}), 'host-not-servable', 'annotation missing');
    release();
    await r.flush();
    // One in flight, two queued, two dropped.
    expect(f.calls).toHaveLength(3);
    expect(await metric('metalboot_kube_events_suppressed_total')).toContainEqual(
      expect.objectContaining({ labels: { why: 'queue-full' }, value: 2 }),
    );
  });

  it('recreates an Event that is gone (expired) instead of patching it', async () => {
    const f = fakeSink();
    const { r } = recorder(f.sink);
    r.leaseOffered(h1, '10.0.0.21/24');
    await r.flush();
    f.stored.clear();
    r.leaseOffered(h1, '10.0.0.21/24');
    await r.flush();
    expect(f.calls.map((c) => c.op)).toEqual(['create', 'patch', 'create']);
    expect([...f.stored.values()][0]).toMatchObject({ count: 2 });
  });

  it('survives API failures and keeps going', async () => {
    const f = fakeSink();
    const { r, metric } = recorder(f.sink, { requestTimeoutMs: 50 });
    f.failures.push(Object.assign(new Error('forbidden'), { code: 403 }));
    r.leaseOffered(h1, '10.0.0.21/24');
    r.leaseAcknowledged(h1, '10.0.0.21/24');
    await r.flush();
    expect(f.stored.size).toBe(1);
    expect(await metric('metalboot_kube_events_failed_total')).toContainEqual(
      expect.objectContaining({ labels: { op: 'create' }, value: 1 }),
    );
    // A call that never answers is abandoned.
    f.hold();
    r.bootFileServed(h1, 'snponly.efi', 'tftp');
    await r.flush();
    expect(await metric('metalboot_kube_events_failed_total')).toContainEqual(
      expect.objectContaining({ labels: { op: 'create' }, value: 2 }),
    );
  });

  it('never throws into the caller, even when resolving the host fails', () => {
    const f = fakeSink();
    const { r } = recorder(f.sink, {
      resolve: () => {
        throw new Error('bug');
      },
    });
    expect(() => r.dropped(h1, 'ip-conflict')).not.toThrow();
  });
});

describe('reportDhcpOutcome', () => {
  const ip4 = (s: string) => parseIpv4(s)!;
  const policy: DhcpPolicy = dhcpPolicy({
    serverIp: ip4('10.0.0.1'),
    serverPrefix: 24,
    ports: { relay: 67, client: 68 },
    reply: { serverId: ip4('10.0.0.1'), tftpServer: ip4('10.0.0.1'), domainName: undefined },
    boot: { bootFiles: DEFAULT_BOOT_FILES, httpAdvertiseUrl: 'http://10.0.0.1:8080' },
    leaseSeconds: 3600,
    rangeGateway: undefined,
    rangeDns: [],
    rangeNtp: [],
  });
  const index = new HostIndex();
  index.replaceAll('bmh', [h1, bmh('h2', '52:54:00:00:00:02', {})]);
  const state = {
    index,
    pool: new LeasePool({ ranges: [], isClaimed: () => false, serverIp: ip4('10.0.0.1') }),
    now: () => 0,
  };

  function calls(req: ReturnType<typeof request>): string[] {
    const out: string[] = [];
    const events: BootEvents = {
      leaseOffered: (h, ip, d) => out.push(`offered ${h.id} ${ip} ${d}`),
      leaseAcknowledged: (h, ip, d) => out.push(`acked ${h.id} ${ip} ${d}`),
      leaseRefused: (h, why) => out.push(`refused ${h.id} ${why}`),
      bootFileServed: () => out.push('file'),
      scriptServed: () => out.push('script'),
      dropped: (h, reason, detail, via) => out.push(`dropped ${h.id} ${via} ${reason} ${detail}`),
    };
    reportDhcpOutcome(decide(req, policy, state), events);
    return out;
  }

  it.each([
    [
      'an OFFER to UEFI PXE firmware',
      request({ type: T.DISCOVER, mac: '52:54:00:00:00:01', options: UEFI_PXE }),
      ['offered metal3/h1 10.0.0.21/24 to 52:54:00:00:00:01 (PXE firmware, arch 7); boot file snponly.efi over TFTP'],
    ],
    [
      'an ACK to iPXE',
      request({
        type: T.REQUEST,
        mac: '52:54:00:00:00:01',
        serverId: '10.0.0.1',
        requested: '10.0.0.21',
        options: IPXE,
      }),
      ['acked metal3/h1 10.0.0.21/24 to 52:54:00:00:00:01 (iPXE); iPXE script http://10.0.0.1:8080/boot.ipxe'],
    ],
    [
      'a NAK',
      request({ type: T.REQUEST, mac: '52:54:00:00:00:01', requested: '10.0.0.99' }),
      ["refused metal3/h1 address 10.0.0.99 is not this host's (10.0.0.21)"],
    ],
    [
      'a host without ip-address',
      request({ type: T.DISCOVER, mac: '52:54:00:00:00:02', options: UEFI_PXE }),
      ['dropped metal3/h2 dhcp host-not-servable annotation metal3.vcluster.com/ip-address is missing'],
    ],
    ['an unknown MAC', request({ type: T.DISCOVER, mac: '52:54:00:00:00:77' }), []],
    ['a RELEASE', request({ type: T.RELEASE, mac: '52:54:00:00:00:01', ciaddr: '10.0.0.21' }), []],
  ])('%s', (_n, req, want) => {
    expect(calls(req)).toEqual(want);
  });

  // The timeline's milestone comes from the same classification as the Event above.
  it.each([
    [
      'an OFFER to UEFI PXE firmware',
      request({ type: T.DISCOVER, mac: '52:54:00:00:00:01', options: UEFI_PXE }),
      'dhcp-offer',
    ],
    [
      'an ACK to iPXE',
      request({
        type: T.REQUEST,
        mac: '52:54:00:00:00:01',
        serverId: '10.0.0.1',
        requested: '10.0.0.21',
        options: IPXE,
      }),
      'ipxe-dhcp-ack',
    ],
    ['an OS DHCP client', request({ type: T.DISCOVER, mac: '52:54:00:00:00:01' }), 'os-dhcp-offer'],
    ['a NAK', request({ type: T.REQUEST, mac: '52:54:00:00:00:01', requested: '10.0.0.99' }), 'dhcp-refused'],
    ['a host without ip-address', request({ type: T.DISCOVER, mac: '52:54:00:00:00:02' }), 'dhcp-dropped'],
    ['an unknown MAC', request({ type: T.DISCOVER, mac: '52:54:00:00:00:77' }), undefined],
  ])('milestone of %s', (_n, req, want) => {
    expect(dhcpMilestone(decide(req, policy, state))?.milestone).toBe(want);
  });
});

describe('imageMilestone', () => {
  const paths = { kernel: 'images/ironic-python-agent.kernel', initramfs: 'images/ironic-python-agent.initramfs' };
  it.each([
    ['/images/ironic-python-agent.kernel', 'kernel'],
    ['/images/ironic-python-agent.initramfs', 'initramfs'],
    ['/0f3a0b9e-7c55-4b62-9b8b-1f7c7f1b0a11/deploy_kernel', 'kernel'],
    ['/0f3a0b9e-7c55-4b62-9b8b-1f7c7f1b0a11/deploy_ramdisk', 'initramfs'],
    ['/agent_images/0f3a0b9e', 'image'],
    ['/images/other-ironic-python-agent.kernel', 'image'],
  ])('%s is %s', (path, want) => {
    expect(imageMilestone(path, paths)).toBe(want);
  });
});
