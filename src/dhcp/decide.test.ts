import { describe, expect, it } from 'vitest';
import { decide, type DhcpOutcome } from './decide.js';
import { dhcpPolicy, type DhcpPolicy } from './policy.js';
import { request, BIOS_PXE, UEFI_PXE, UEFI_HTTP, IPXE } from '../../lab/dhcp-requests.js';
import {
  MESSAGE_TYPE as T,
  OPT,
  getIp,
  getMessageType,
  getString,
  getPxeVendorOptions,
  str,
  u16,
  subOptions,
} from './options.js';
import { HostIndex } from '../leases/host-index.js';
import { LeasePool } from '../leases/pool.js';
import { bmhToHost } from '../leases/bmh.js';
import { staticToHost } from '../leases/static-hosts.js';
import { parseIpv4, formatIpv4 } from '../net/ipv4.js';
import { parseMac } from '../net/mac.js';
import { DEFAULT_BOOT_FILES } from '../boot/boot-files.js';
import type { HostRecord } from '../leases/host.js';

const SERVER = '10.0.0.1';
const ip4 = (s: string) => parseIpv4(s)!;
const policy: DhcpPolicy = dhcpPolicy({
  serverIp: ip4(SERVER),
  serverPrefix: 24,
  ports: { relay: 67, client: 68 },
  reply: { serverId: ip4(SERVER), tftpServer: ip4(SERVER), domainName: undefined },
  boot: { bootFiles: DEFAULT_BOOT_FILES, httpAdvertiseUrl: 'http://10.0.0.1:8080' },
  leaseSeconds: 3600,
  rangeGateway: ip4('10.0.0.254'),
  rangeDns: [ip4('10.0.0.53')],
  rangeNtp: [],
});

function bmh(name: string, mac: string, annotations: Record<string, string>, state = 'inspecting'): HostRecord {
  const r = bmhToHost(
    {
      apiVersion: 'metal3.io/v1alpha1',
      kind: 'BareMetalHost',
      metadata: { name, namespace: 'ns', annotations },
      spec: { bootMACAddress: mac },
      status: { provisioning: { state } },
    },
    { annotationPrefix: 'metal3.vcluster.com/', from: 'test' },
  );
  if (r.kind !== 'host') throw new Error(r.reason);
  return r.host;
}

function setup(opts: { range?: boolean } = {}) {
  let now = 1_000_000;
  const index = new HostIndex();
  index.replaceAll('bmh', [
    bmh('node-1', '52:54:00:00:00:01', {
      'metal3.vcluster.com/ip-address': '10.0.0.21/24',
      'metal3.vcluster.com/dns-servers': '10.0.0.53',
    }),
    bmh('node-2', '52:54:00:00:00:02', {}),
    bmh('quiet', '52:54:00:00:00:03', {
      'metal3.vcluster.com/ip-address': '10.0.0.23/24',
      'metal3.vcluster.com/netboot': 'false',
    }),
  ]);
  index.replaceAll('static', [
    staticToHost({ mac: parseMac('52:54:00:00:00:10')!, ip: ip4('10.0.0.31'), hostname: 's1' }, 'test', {
      prefix: 24,
      gateway: undefined,
      dns: [],
      ntp: [],
    }),
  ]);
  const pool = new LeasePool({
    ranges: opts.range ? [{ start: ip4('10.0.0.100'), end: ip4('10.0.0.102'), leaseSeconds: 600 }] : [],
    isClaimed: (a) => index.isClaimed(a),
    serverIp: ip4(SERVER),
  });
  const state = { index, pool, now: () => now };
  return {
    index,
    pool,
    state,
    advance: (ms: number) => {
      now += ms;
    },
    run: (req: ReturnType<typeof request>) => decide(req, policy, state),
  };
}

function reply(o: DhcpOutcome) {
  if (o.kind !== 'reply') throw new Error(`expected a reply, got ignore(${o.reason}: ${o.detail})`);
  return o;
}
function reason(o: DhcpOutcome): string {
  return o.kind === 'ignore' ? o.reason : `reply ${getMessageType(o.reply.options)}`;
}
const opt = (o: DhcpOutcome, code: number) => getString(reply(o).reply.options, code);

describe('decide: boot answers by client kind', () => {
  it.each([
    ['BIOS PXE', 'undionly.kpxe', 'tftp', BIOS_PXE],
    ['UEFI x64 PXE', 'snponly.efi', 'tftp', UEFI_PXE],
    [
      'UEFI arm64 PXE',
      'snponly-arm64.efi',
      'tftp',
      [
        [OPT.VENDOR_CLASS, str('PXEClient:Arch:00011:UNDI:003000')],
        [OPT.CLIENT_ARCH, u16(11)],
      ] as const,
    ],
    ['UEFI HTTP boot', 'http://10.0.0.1:8080/ipxe/snponly.efi', 'http-binary', UEFI_HTTP],
    ['iPXE', 'http://10.0.0.1:8080/boot.ipxe', 'ipxe-script', IPXE],
  ])('%s gets %s over %s', (_name, file, kind, options) => {
    const o = reply(setup().run(request({ type: T.DISCOVER, mac: '52:54:00:00:00:01', options })));
    expect(o.boot?.kind).toBe(kind);
    expect(o.reply.file).toBe(file);
    expect(opt(o, OPT.BOOTFILE)).toBe(file);
    expect(getMessageType(o.reply.options)).toBe(T.OFFER);
    expect(formatIpv4(o.reply.yiaddr)).toBe('10.0.0.21');
  });

  it('PXE answers carry option 43 discovery control 8, next-server, option 66, echo 97, and never PXEClient', () => {
    const o = reply(setup().run(request({ type: T.DISCOVER, mac: '52:54:00:00:00:01', options: UEFI_PXE })));
    expect(getPxeVendorOptions(o.reply.options)?.get(6)).toEqual(Uint8Array.of(8));
    expect(formatIpv4(o.reply.siaddr)).toBe(SERVER);
    expect(opt(o, OPT.TFTP_SERVER)).toBe(SERVER);
    expect(o.reply.options.get(OPT.CLIENT_UUID)).toEqual(UEFI_PXE.find(([c]) => c === OPT.CLIENT_UUID)![1]);
    expect(o.reply.options.has(OPT.VENDOR_CLASS)).toBe(false);
  });

  it('iPXE is told not to wait for ProxyDHCP (option 175.176 = 1)', () => {
    const o = reply(setup().run(request({ type: T.DISCOVER, mac: '52:54:00:00:00:01', options: IPXE })));
    expect(o.reply.options.get(OPT.IPXE_ENCAP)).toEqual(Uint8Array.of(176, 1, 1));
  });

  it('UEFI HTTP boot gets option 60 HTTPClient', () => {
    const o = reply(setup().run(request({ type: T.DISCOVER, mac: '52:54:00:00:00:01', options: UEFI_HTTP })));
    expect(opt(o, OPT.VENDOR_CLASS)).toBe('HTTPClient');
    expect(o.reply.options.has(OPT.VENDOR_SPECIFIC)).toBe(false);
  });

  it('a host that must not netboot gets a lease and no boot file', () => {
    const o = reply(setup().run(request({ type: T.DISCOVER, mac: '52:54:00:00:00:03', options: UEFI_PXE })));
    expect(formatIpv4(o.reply.yiaddr)).toBe('10.0.0.23');
    expect(o.boot).toEqual({ kind: 'none', reason: 'netboot-disabled' });
    expect(o.reply.file).toBe('');
    expect(o.reply.options.has(OPT.BOOTFILE)).toBe(false);
  });

  it('a plain client gets a lease with no boot options', () => {
    const o = reply(setup().run(request({ type: T.DISCOVER, mac: '52:54:00:00:00:01' })));
    expect(o.boot).toEqual({ kind: 'none', reason: 'plain-client' });
    expect([...o.reply.options.keys()].sort((a, b) => a - b)).toEqual([1, 3, 6, 12, 28, 51, 53, 54, 58, 59]); // no parameter request list: everything
  });

  it('values shared across replies follow the policy and the host: another policy or an updated host gets its own', () => {
    const s = setup();
    const pxe = (p: DhcpPolicy) =>
      reply(decide(request({ type: T.DISCOVER, mac: '52:54:00:00:00:01', options: UEFI_PXE }), p, s.state));
    const other: DhcpPolicy = dhcpPolicy({
      ...policy,
      leaseSeconds: 600,
      reply: { ...policy.reply, tftpServer: ip4('10.0.0.2') },
      boot: { bootFiles: { ...DEFAULT_BOOT_FILES, 'uefi-x86_64': 'other.efi' }, httpAdvertiseUrl: 'http://10.0.0.2' },
    });
    for (let round = 0; round < 2; round++) {
      const a = pxe(policy);
      expect([getIp(a.reply.options, OPT.LEASE_TIME), opt(a, OPT.TFTP_SERVER), opt(a, OPT.BOOTFILE)]).toEqual([
        3600,
        SERVER,
        'snponly.efi',
      ]);
      const b = pxe(other);
      expect([getIp(b.reply.options, OPT.LEASE_TIME), opt(b, OPT.TFTP_SERVER), opt(b, OPT.BOOTFILE)]).toEqual([
        600,
        '10.0.0.2',
        'other.efi',
      ]);
    }
    s.index.upsert(
      bmh('node-1', '52:54:00:00:00:01', {
        'metal3.vcluster.com/ip-address': '10.0.0.41/24',
        'metal3.vcluster.com/dns-servers': '10.0.0.54',
      }),
    );
    const c = pxe(policy);
    expect(formatIpv4(c.reply.yiaddr)).toBe('10.0.0.41');
    expect(getIp(c.reply.options, OPT.DNS)).toBe(ip4('10.0.0.54'));
  });

  it('an architecture without a binary gets a lease and no boot file', () => {
    const o = reply(
      setup().run(
        request({
          type: T.DISCOVER,
          mac: '52:54:00:00:00:01',
          options: [
            [OPT.VENDOR_CLASS, str('PXEClient:Arch:00027')],
            [OPT.CLIENT_ARCH, u16(27)],
          ],
        }),
      ),
    );
    expect(o.boot).toEqual({ kind: 'none', reason: 'no-binary-for-arch' });
  });
});

describe('decide: lease options', () => {
  it('BareMetalHost leases carry mask, gateway (first host), DNS, hostname, T1/T2', () => {
    const o = reply(
      setup().run(
        request({
          type: T.DISCOVER,
          mac: '52:54:00:00:00:01',
          options: [[OPT.PARAM_REQUEST_LIST, Uint8Array.of(1, 3, 6, 12, 42)]],
        }),
      ),
    );
    const opts = o.reply.options;
    expect(formatIpv4(getIp(opts, OPT.SUBNET_MASK)!)).toBe('255.255.255.0');
    expect(formatIpv4(getIp(opts, OPT.ROUTER)!)).toBe('10.0.0.1');
    expect(formatIpv4(getIp(opts, OPT.DNS)!)).toBe('10.0.0.53');
    expect(getString(opts, OPT.HOSTNAME)).toBe('node-1');
    expect(opts.get(OPT.LEASE_TIME)).toEqual(Uint8Array.of(0, 0, 0x0e, 0x10));
    expect(opts.get(OPT.RENEWAL_TIME)).toEqual(Uint8Array.of(0, 0, 0x07, 0x08));
    expect(opts.get(OPT.REBINDING_TIME)).toEqual(Uint8Array.of(0, 0, 0x0c, 0x4e));
    expect(opts.has(OPT.BROADCAST)).toBe(false); // not requested
  });

  it('echoes client id (RFC 6842) and relay agent information (RFC 3046), relayed to giaddr:67', () => {
    const relay = subOptions([
      [1, str('swp1')],
      [2, str('leaf1')],
    ]);
    const o = reply(
      setup().run(
        request({
          type: T.DISCOVER,
          mac: '52:54:00:00:00:01',
          giaddr: '10.0.0.254',
          options: [
            [OPT.CLIENT_ID, Uint8Array.of(1, 0x52, 0x54, 0, 0, 0, 1)],
            [OPT.RELAY_AGENT_INFO, relay],
          ],
        }),
      ),
    );
    expect(o.reply.options.get(OPT.RELAY_AGENT_INFO)).toEqual(relay);
    expect(o.reply.options.get(OPT.CLIENT_ID)).toEqual(Uint8Array.of(1, 0x52, 0x54, 0, 0, 0, 1));
    expect(o.dest).toEqual({ address: ip4('10.0.0.254'), port: 67, broadcast: false });
    expect(formatIpv4(o.reply.giaddr)).toBe('10.0.0.254');
  });

  it.each([
    ['broadcast flag', { broadcast: true }, '255.255.255.255', 68],
    ['no flag, no ciaddr (no ARP from Node: broadcast)', {}, '255.255.255.255', 68],
  ])('sends to %s', (_n, extra, addr, port) => {
    const o = reply(setup().run(request({ type: T.DISCOVER, mac: '52:54:00:00:00:01', ...extra })));
    expect(formatIpv4(o.dest.address)).toBe(addr);
    expect(o.dest.port).toBe(port);
  });
});

describe('decide: REQUEST states (RFC 2131 §4.3.2)', () => {
  const mac = '52:54:00:00:00:01';
  it.each([
    ['SELECTING for our offer', { serverId: SERVER, requested: '10.0.0.21' }, 'reply 5'],
    ['SELECTING another server', { serverId: '10.0.0.9', requested: '10.0.0.21' }, 'other-server'],
    ['SELECTING a wrong address', { serverId: SERVER, requested: '10.0.0.99' }, 'reply 6'],
    ['INIT-REBOOT right address', { requested: '10.0.0.21' }, 'reply 5'],
    ['INIT-REBOOT wrong address (we own the host)', { requested: '10.0.0.77' }, 'reply 6'],
    ['RENEWING', { ciaddr: '10.0.0.21' }, 'reply 5'],
    ['REBINDING', { ciaddr: '10.0.0.21', broadcast: true }, 'reply 5'],
    ['RENEWING a wrong address', { ciaddr: '10.0.0.50' }, 'reply 6'],
    ['no address at all', {}, 'no-record'],
  ])('%s → %j gives %s', (_n, spec, expected) => {
    expect(reason(setup().run(request({ type: T.REQUEST, mac, ...spec })))).toBe(expected);
  });

  it('a RENEWING ACK goes unicast to ciaddr; a NAK is broadcast', () => {
    const s = setup();
    expect(reply(s.run(request({ type: T.REQUEST, mac, ciaddr: '10.0.0.21' }))).dest).toEqual({
      address: ip4('10.0.0.21'),
      port: 68,
      broadcast: false,
    });
    const nak = reply(s.run(request({ type: T.REQUEST, mac, ciaddr: '10.0.0.50' })));
    expect(formatIpv4(nak.dest.address)).toBe('255.255.255.255');
    expect(nak.reply.yiaddr).toBe(0);
  });

  it('stays silent for a host it does not own', () => {
    expect(reason(setup().run(request({ type: T.REQUEST, mac: '52:54:00:99:99:99', requested: '10.0.0.21' })))).toBe(
      'unknown-host',
    );
    expect(reason(setup().run(request({ type: T.DISCOVER, mac: '52:54:00:99:99:99' })))).toBe('unknown-host');
  });

  it('a BareMetalHost without ip-address is not served, and says why', () => {
    const o = setup().run(request({ type: T.DISCOVER, mac: '52:54:00:00:00:02' }));
    expect(o.kind === 'ignore' && [o.reason, o.detail]).toEqual([
      'host-not-servable',
      'annotation metal3.vcluster.com/ip-address is missing',
    ]);
  });
});

describe('decide: behind a Service (advertised server identity)', () => {
  it('answers with the advertised identity and accepts requests that select it', () => {
    const s = setup();
    const svc = dhcpPolicy({
      ...policy,
      reply: { ...policy.reply, serverId: ip4('10.0.9.9'), tftpServer: ip4('10.0.9.9') },
    });
    const offer = reply(
      decide(request({ type: T.DISCOVER, mac: '52:54:00:00:00:01', options: UEFI_PXE }), svc, s.state),
    );
    expect(formatIpv4(getIp(offer.reply.options, OPT.SERVER_ID)!)).toBe('10.0.9.9');
    expect(formatIpv4(offer.reply.siaddr)).toBe('10.0.9.9');
    expect(
      reason(
        decide(
          request({ type: T.REQUEST, mac: '52:54:00:00:00:01', serverId: '10.0.9.9', requested: '10.0.0.21' }),
          svc,
          s.state,
        ),
      ),
    ).toBe('reply 5');
    expect(
      reason(
        decide(
          request({ type: T.REQUEST, mac: '52:54:00:00:00:01', serverId: SERVER, requested: '10.0.0.21' }),
          svc,
          s.state,
        ),
      ),
    ).toBe('other-server');
  });
});

describe('decide: conflicts are never answered', () => {
  it('one MAC on two BareMetalHosts', () => {
    const s = setup();
    s.index.upsert(bmh('dup', '52:54:00:00:00:01', { 'metal3.vcluster.com/ip-address': '10.0.0.40/24' }));
    expect(reason(s.run(request({ type: T.DISCOVER, mac: '52:54:00:00:00:01' })))).toBe('duplicate-mac');
  });

  it('one IP on two MACs', () => {
    const s = setup();
    s.index.upsert(bmh('other', '52:54:00:00:00:44', { 'metal3.vcluster.com/ip-address': '10.0.0.21/24' }));
    expect(reason(s.run(request({ type: T.DISCOVER, mac: '52:54:00:00:00:01' })))).toBe('ip-conflict');
    expect(reason(s.run(request({ type: T.DISCOVER, mac: '52:54:00:00:00:44' })))).toBe('ip-conflict');
  });

  it('one MAC in two sources: the BareMetalHost wins', () => {
    const s = setup();
    s.index.upsert(
      staticToHost({ mac: parseMac('52:54:00:00:00:01')!, ip: ip4('10.0.0.60'), hostname: undefined }, 'test', {
        prefix: 24,
        gateway: undefined,
        dns: [],
        ntp: [],
      }),
    );
    const o = reply(s.run(request({ type: T.DISCOVER, mac: '52:54:00:00:00:01' })));
    expect(formatIpv4(o.reply.yiaddr)).toBe('10.0.0.21');
    expect(o.facts.source).toBe('bmh');
  });
});

describe('decide: dynamic range', () => {
  const mac = '52:54:00:00:aa:01';
  it('offers, commits durably, renews, releases', () => {
    const s = setup({ range: true });
    const offer = reply(s.run(request({ type: T.DISCOVER, mac })));
    const addr = formatIpv4(offer.reply.yiaddr);
    expect(addr).toBe('10.0.0.100');
    expect(offer.persist).toBeUndefined();
    expect(formatIpv4(getIp(offer.reply.options, OPT.ROUTER)!)).toBe('10.0.0.254');
    const ack = reply(s.run(request({ type: T.REQUEST, mac, serverId: SERVER, requested: addr })));
    expect(getMessageType(ack.reply.options)).toBe(T.ACK);
    expect(ack.persist).toMatchObject({ t: 'bind', ip: addr, mac });
    expect(reason(s.run(request({ type: T.REQUEST, mac, ciaddr: addr })))).toBe('reply 5');
    const rel = s.run(request({ type: T.RELEASE, mac, ciaddr: addr, serverId: SERVER }));
    expect(rel.kind === 'ignore' && rel.persist).toEqual({ t: 'free', ip: addr });
  });

  it('skips addresses claimed by other sources and quarantines declined ones', () => {
    const s = setup({ range: true });
    s.index.upsert(bmh('in-range', '52:54:00:00:00:50', { 'metal3.vcluster.com/ip-address': '10.0.0.100/24' }));
    const first = reply(s.run(request({ type: T.DISCOVER, mac })));
    expect(formatIpv4(first.reply.yiaddr)).toBe('10.0.0.101');
    const dec = s.run(request({ type: T.DECLINE, mac, serverId: SERVER, requested: '10.0.0.101' }));
    expect(dec.kind === 'ignore' && dec.persist).toMatchObject({ t: 'decline', ip: '10.0.0.101' });
    expect(formatIpv4(reply(s.run(request({ type: T.DISCOVER, mac }))).reply.yiaddr)).toBe('10.0.0.102');
    expect(reason(s.run(request({ type: T.DISCOVER, mac: '52:54:00:00:aa:02' })))).toBe('pool-exhausted');
  });

  it('never gives one address to two hosts', () => {
    const s = setup({ range: true });
    const a = reply(s.run(request({ type: T.DISCOVER, mac: '52:54:00:00:aa:01' })));
    const b = reply(s.run(request({ type: T.DISCOVER, mac: '52:54:00:00:aa:02' })));
    expect(a.reply.yiaddr).not.toBe(b.reply.yiaddr);
    reply(
      s.run(
        request({ type: T.REQUEST, mac: '52:54:00:00:aa:01', serverId: SERVER, requested: formatIpv4(a.reply.yiaddr) }),
      ),
    );
    // B asks for A's bound address: NAK.
    expect(
      reason(
        s.run(
          request({
            type: T.REQUEST,
            mac: '52:54:00:00:aa:02',
            serverId: SERVER,
            requested: formatIpv4(a.reply.yiaddr),
          }),
        ),
      ),
    ).toBe('reply 6');
  });

  it('reclaims expired leases', () => {
    const s = setup({ range: true });
    for (const m of ['52:54:00:00:aa:01', '52:54:00:00:aa:02', '52:54:00:00:aa:03']) {
      const o = reply(s.run(request({ type: T.DISCOVER, mac: m })));
      reply(s.run(request({ type: T.REQUEST, mac: m, serverId: SERVER, requested: formatIpv4(o.reply.yiaddr) })));
    }
    expect(reason(s.run(request({ type: T.DISCOVER, mac: '52:54:00:00:aa:04' })))).toBe('pool-exhausted');
    s.advance(601_000);
    expect(reason(s.run(request({ type: T.DISCOVER, mac: '52:54:00:00:aa:04' })))).toBe('reply 2');
  });

  it('does not serve unknown MACs from the range while a source is still loading', () => {
    const s = setup({ range: true });
    let ready = false;
    const o = decide(request({ type: T.DISCOVER, mac: '52:54:00:00:aa:09' }), policy, {
      ...s.state,
      sourcesReady: () => ready,
    });
    expect(o.kind === 'ignore' && o.reason).toBe('sources-loading');
    ready = true;
    expect(
      reason(
        decide(request({ type: T.DISCOVER, mac: '52:54:00:00:aa:09' }), policy, {
          ...s.state,
          sourcesReady: () => ready,
        }),
      ),
    ).toBe('reply 2');
  });

  it('INIT-REBOOT for a client without a record stays silent', () => {
    expect(reason(setup({ range: true }).run(request({ type: T.REQUEST, mac, requested: '10.0.0.100' })))).toBe(
      'no-record',
    );
  });

  it('a BareMetalHost without ip-address falls back to the range', () => {
    const o = reply(setup({ range: true }).run(request({ type: T.DISCOVER, mac: '52:54:00:00:00:02' })));
    expect(formatIpv4(o.reply.yiaddr)).toBe('10.0.0.100');
    expect(o.facts.source).toBe('range');
  });
});

it('ignores BOOTREPLY, non-Ethernet and message-type-less packets with named reasons', () => {
  const s = setup();
  const base = request({ type: T.DISCOVER, mac: '52:54:00:00:00:01' });
  expect(reason(s.run({ ...base, op: 2 }))).toBe('not-a-request');
  expect(reason(s.run({ ...base, htype: 6 }))).toBe('not-ethernet');
  const noType = { ...base, options: new Map() };
  expect(reason(s.run(noType))).toBe('no-message-type');
  expect(reason(s.run(request({ type: 13, mac: '52:54:00:00:00:01' })))).toBe('unsupported-message-type');
});
