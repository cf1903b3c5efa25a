import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { HostIndex } from '../leases/host-index.js';
import { bmhToHost, type BareMetalHostObject } from '../leases/bmh.js';
import { LeasePool6 } from '../leases/pool.js';
import { staticToHost } from '../leases/static-hosts.js';
import { formatIpv6, parseIpv6, type Ipv6 } from '../net/ipv6.js';
import { macToBytes, parseMac } from '../net/mac.js';
import { decode6, encode6, type Dhcp6ClientMessage, type Dhcp6Message, type Dhcp6Option } from './codec.js';
import { decide6 } from './decide.js';
import type { Dhcp6Outcome } from './outcome.js';
import {
  MSG6,
  OPT6,
  STATUS6,
  clientArchOption,
  clientLinkLayerOption,
  duidLl,
  duidLlt,
  findOption,
  findOptions,
  iaAddrOption,
  iaNaOption,
  interfaceIdOption,
  option,
  oroOption,
  parseBootFileUrl,
  parseIaAddr,
  parseIaNa,
  parseStatus,
  parseVendorClass,
  rapidCommitOption,
  relayMessageOption,
  userClassOption,
  vendorClassOption,
} from './options.js';
import { dhcp6Policy, serverDuidOf } from './policy.js';

const ip6 = (s: string) => parseIpv6(s)!;
const SERVER = ip6('fd00:77::1');
const P = 'metal3.vcluster.com/';
const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../test/fixtures/dhcp6');

const bmh = (name: string, mac: string, annotations: Record<string, string>): BareMetalHostObject => ({
  apiVersion: 'metal3.io/v1alpha1',
  kind: 'BareMetalHost',
  metadata: { name, namespace: 'ns', annotations },
  spec: { bootMACAddress: mac },
});

function setup(opts: { range?: boolean; rapidCommit?: boolean } = {}) {
  let now = 1_000_000_000_000;
  const index = new HostIndex();
  const host = (o: BareMetalHostObject) => {
    const r = bmhToHost(o, { annotationPrefix: P, from: 'test' });
    if (r.kind !== 'host') throw new Error(r.reason);
    return r.host;
  };
  index.replaceAll('bmh', [
    host(
      bmh('node-1', '52:54:00:00:00:01', {
        [`${P}ipv6-address`]: 'fd00:77::21/64',
        [`${P}dns-servers`]: 'fd00:77::53',
      }),
    ),
    host(bmh('v4-only', '52:54:00:00:00:02', { [`${P}ip-address`]: '10.0.0.22/24' })),
    host(bmh('quiet', '52:54:00:00:00:03', { [`${P}ipv6-address`]: 'fd00:77::23/64', [`${P}netboot`]: 'false' })),
  ]);
  index.replaceAll('static', [
    staticToHost(
      { mac: parseMac('52:54:00:00:00:10')!, ip: undefined, ip6: ip6('fd00:77::31'), hostname: 's1' },
      'test',
      {
        prefix: 24,
        gateway: undefined,
        dns: [],
        ntp: [],
      },
    ),
  ]);
  const pool = new LeasePool6({
    ranges: opts.range ? [{ start: ip6('fd00:77::100'), end: ip6('fd00:77::101'), leaseSeconds: 600 }] : [],
    isClaimed: (a) => index.isClaimed6(a),
    serverIp: SERVER,
  });
  const policy = dhcp6Policy({
    serverIp: SERVER,
    serverPrefix: 64,
    tftpServer: SERVER,
    boot: {
      bootFiles: { 'uefi-x86_64': 'snponly.efi', 'uefi-arm64': 'snponly-arm64.efi' },
      httpAdvertiseUrl: 'http://[fd00:77::1]:8080',
    },
    leaseSeconds: 3600,
    dns: [ip6('fd00:77::54')],
    ntp: [ip6('fd00:77::123')],
    domainSearch: ['prov.example'],
    rapidCommit: opts.rapidCommit ?? true,
  });
  const state = { index, pool, now: () => now };
  return {
    policy,
    pool,
    advance: (ms: number) => {
      now += ms;
    },
    // Every message goes through the codec both ways, as on the wire.
    run: (m: Dhcp6Message, from?: Ipv6) => decide6(decode6(encode6(m)), from, policy, state),
  };
}

/** An EUI-64 link-local address of `mac`, as EDK2, iPXE and Linux form it. */
function linkLocal(mac: string): Ipv6 {
  const b = macToBytes(parseMac(mac)!);
  const hex = (i: number) => b[i]!.toString(16).padStart(2, '0');
  return ip6(`fe80::${(((b[0]! ^ 2) << 8) | b[1]!).toString(16)}:${hex(2)}ff:fe${hex(3)}:${hex(4)}${hex(5)}`);
}

let xid = 0x10;
function msg(
  type: number,
  mac: string,
  options: Dhcp6Option[] = [],
  duid = duidLlt(macToBytes(parseMac(mac)!), 1),
): Dhcp6ClientMessage {
  return { kind: 'client', msgType: type, transactionId: xid++, options: [option(OPT6.CLIENTID, duid), ...options] };
}
const ia = (iaid = 1, addresses: string[] = []) =>
  iaNaOption(
    iaid,
    0,
    0,
    addresses.map((a) => iaAddrOption(ip6(a), 0, 0)),
  );
const serverId = (duid = serverDuidOf(SERVER)) => option(OPT6.SERVERID, duid);
const ORO = oroOption([OPT6.DNS_SERVERS, OPT6.DOMAIN_LIST, OPT6.NTP_SERVER, OPT6.BOOTFILE_URL]);
const UEFI_PXE = [clientArchOption([7]), vendorClassOption(343, ['PXEClient:Arch:00007:UNDI:003016'])];
const UEFI_HTTP = [clientArchOption([16]), vendorClassOption(343, ['HTTPClient:Arch:00016:UNDI:003016'])];
const IPXE = [userClassOption(['iPXE'])];

function reply(o: Dhcp6Outcome) {
  if (o.kind !== 'reply') throw new Error(`expected a reply, got ignore(${o.reason}: ${o.detail})`);
  return o;
}
function addressOf(o: Dhcp6Outcome, n = 0): { address: string; valid: number; preferred: number } | undefined {
  const ias = findOptions(reply(o).inner.options, OPT6.IA_NA).map(parseIaNa);
  const a = ias[n] === undefined ? undefined : findOption(ias[n]!.options, OPT6.IAADDR);
  if (a === undefined) return undefined;
  const p = parseIaAddr(a);
  return { address: formatIpv6(p.address), valid: p.valid, preferred: p.preferred };
}
function iaStatus(o: Dhcp6Outcome, n = 0): number | undefined {
  const ia0 = findOptions(reply(o).inner.options, OPT6.IA_NA).map(parseIaNa)[n];
  const s = ia0 === undefined ? undefined : findOption(ia0.options, OPT6.STATUS_CODE);
  return s === undefined ? undefined : parseStatus(s).code;
}
const bootUrl = (o: Dhcp6Outcome) => {
  const u = findOption(reply(o).inner.options, OPT6.BOOTFILE_URL);
  return u === undefined ? undefined : parseBootFileUrl(u);
};

describe('decide6: who is asking (MAC from option 79, EUI-64 link-local, DUID-LL/LLT)', () => {
  it('knows a host by its EUI-64 link-local source when its DUID holds no MAC (DUID-UUID, as EDK2 sends)', () => {
    const uuid = Uint8Array.of(0, 4, ...new Array(16).fill(7));
    const o = setup().run(
      msg(MSG6.SOLICIT, '52:54:00:00:00:01', [ia(), ...UEFI_PXE], uuid),
      linkLocal('52:54:00:00:00:01'),
    );
    expect(reply(o).facts).toMatchObject({ mac: '52:54:00:00:00:01', via: 'link-local-eui64', source: 'bmh' });
    expect(addressOf(o)?.address).toBe('fd00:77::21');
  });

  it('takes the MAC from a DUID-LLT when the source is not EUI-64', () => {
    const o = setup().run(msg(MSG6.SOLICIT, '52:54:00:00:00:01', [ia()]), ip6('fe80::1234:5678:9abc:def0'));
    expect(reply(o).facts.via).toBe('duid-llt');
  });

  it("prefers a relay's option 79 (the frame's source) over the DUID", () => {
    const inner = msg(MSG6.SOLICIT, '52:54:00:00:00:99', [ia()], duidLl(macToBytes(parseMac('52:54:00:00:00:99')!)));
    const relayed: Dhcp6Message = {
      kind: 'relay',
      msgType: MSG6.RELAY_FORW,
      hopCount: 0,
      linkAddress: ip6('fd00:77::fe'),
      peerAddress: ip6('fe80::1234:5678:9abc:def0'),
      options: [clientLinkLayerOption(1, macToBytes(parseMac('52:54:00:00:00:01')!)), relayMessageOption(inner)],
    };
    const o = setup().run(relayed, ip6('fd00:77::fe'));
    expect(reply(o).facts).toMatchObject({ mac: '52:54:00:00:00:01', via: 'link-layer-option' });
  });

  it('drops a client that gives no MAC anywhere, by name, unless a range serves it by its DUID', () => {
    const uuid = Uint8Array.of(0, 4, ...new Array(16).fill(7));
    const stranger = ip6('fe80::1234:5678:9abc:def0');
    const o = setup().run(msg(MSG6.SOLICIT, '52:54:00:00:00:01', [ia()], uuid), stranger);
    expect(o).toMatchObject({ kind: 'ignore', reason: 'no-mac' });
    expect(o.kind === 'ignore' && o.detail).toMatch(/DUID-UUID/);
    const s = setup({ range: true });
    const adv = s.run(msg(MSG6.SOLICIT, '52:54:00:00:00:01', [ia()], uuid), stranger);
    expect(reply(adv).facts).toMatchObject({ mac: undefined, source: 'range' });
    const rep = reply(s.run(msg(MSG6.REQUEST, '52:54:00:00:00:01', [ia(), serverId()], uuid), stranger));
    expect(rep.persist).toMatchObject({ t: 'bind', mac: `duid-${Buffer.from(uuid).toString('hex')}` });
    // The same DUID gets the same address back; another DUID another one.
    expect(addressOf(s.run(msg(MSG6.SOLICIT, '52:54:00:00:00:01', [ia()], uuid), stranger))?.address).toBe(
      addressOf(rep)?.address,
    );
    const other = Uint8Array.of(0, 4, ...new Array(16).fill(8));
    expect(addressOf(s.run(msg(MSG6.SOLICIT, '52:54:00:00:00:01', [ia()], other), stranger))?.address).not.toBe(
      addressOf(rep)?.address,
    );
  });

  it('gives one host one address whatever DUID and IAID it uses (firmware, iPXE, the OS)', () => {
    const s = setup({ range: true });
    const mac = '52:54:00:00:00:77';
    const ll = linkLocal(mac);
    const fw = s.run(msg(MSG6.SOLICIT, mac, [ia(1)], Uint8Array.of(0, 4, ...new Array(16).fill(1))), ll);
    const os = s.run(msg(MSG6.SOLICIT, mac, [ia(0x55)], duidLlt(macToBytes(parseMac(mac)!), 99)), ll);
    expect(addressOf(fw)?.address).toBe(addressOf(os)?.address);
  });
});

describe('decide6: the four-message exchange with a known host', () => {
  it('Solicit → Advertise (preference 255), Request → Reply, with DNS, domain list, NTP as asked', () => {
    const s = setup();
    const ll = linkLocal('52:54:00:00:00:01');
    const adv = reply(s.run(msg(MSG6.SOLICIT, '52:54:00:00:00:01', [ia(7), ORO, ...UEFI_PXE]), ll));
    expect(adv.inner.msgType).toBe(MSG6.ADVERTISE);
    expect(findOption(adv.inner.options, OPT6.PREFERENCE)).toEqual(Uint8Array.of(255));
    expect(findOption(adv.inner.options, OPT6.SERVERID)).toEqual(serverDuidOf(SERVER));
    const rep = reply(
      s.run(msg(MSG6.REQUEST, '52:54:00:00:00:01', [ia(7, ['fd00:77::21']), serverId(), ORO, ...UEFI_PXE]), ll),
    );
    expect(rep.inner.msgType).toBe(MSG6.REPLY);
    expect(addressOf(rep)).toEqual({ address: 'fd00:77::21', valid: 3600, preferred: 3600 });
    expect(parseIaNa(findOption(rep.inner.options, OPT6.IA_NA)!)).toMatchObject({ iaid: 7, t1: 1800, t2: 2880 });
    // The host's own DNS wins over the configured one.
    expect(findOption(rep.inner.options, OPT6.DNS_SERVERS)).toEqual(
      Uint8Array.from(Buffer.from('fd000077000000000000000000000053', 'hex')),
    );
    expect(findOption(rep.inner.options, OPT6.DOMAIN_LIST)).toBeDefined();
    expect(findOption(rep.inner.options, OPT6.NTP_SERVER)).toBeDefined();
    expect(rep.persist).toBeUndefined();
  });

  it('leaves DNS, domain list and NTP out when the client does not ask for them', () => {
    const o = reply(setup().run(msg(MSG6.SOLICIT, '52:54:00:00:00:01', [ia()]), linkLocal('52:54:00:00:00:01')));
    for (const code of [OPT6.DNS_SERVERS, OPT6.DOMAIN_LIST, OPT6.NTP_SERVER])
      expect(findOption(o.inner.options, code)).toBeUndefined();
  });

  it('answers a Solicit with Rapid Commit by a Reply that carries the option, unless the policy says no', () => {
    const m = msg(MSG6.SOLICIT, '52:54:00:00:00:01', [ia(), rapidCommitOption()]);
    const yes = reply(setup().run(m));
    expect(yes.inner.msgType).toBe(MSG6.REPLY);
    expect(findOption(yes.inner.options, OPT6.RAPID_COMMIT)).toEqual(new Uint8Array(0));
    const no = reply(setup({ rapidCommit: false }).run(m));
    expect(no.inner.msgType).toBe(MSG6.ADVERTISE);
  });

  it('gives the address to the first IA_NA only, and says so in the others, IA_TA and IA_PD', () => {
    const o = setup().run(
      msg(MSG6.SOLICIT, '52:54:00:00:00:01', [
        ia(1),
        ia(2),
        option(OPT6.IA_PD, new Uint8Array(12)),
        option(OPT6.IA_TA, new Uint8Array(4)),
      ]),
    );
    expect(addressOf(o, 0)?.address).toBe('fd00:77::21');
    expect(iaStatus(o, 1)).toBe(STATUS6.NoAddrsAvail);
    expect(findOption(reply(o).inner.options, OPT6.IA_PD)).toBeDefined();
    expect(findOption(reply(o).inner.options, OPT6.IA_TA)).toBeDefined();
  });

  it('returns an address the client asked for that is not its own with lifetimes 0', () => {
    const o = setup().run(msg(MSG6.RENEW, '52:54:00:00:00:01', [ia(1, ['fd00:77::99']), serverId()]));
    const ia0 = parseIaNa(findOption(reply(o).inner.options, OPT6.IA_NA)!);
    const addrs = findOptions(ia0.options, OPT6.IAADDR).map(parseIaAddr);
    expect(addrs.map((a) => [formatIpv6(a.address), a.valid])).toEqual([
      ['fd00:77::21', 3600],
      ['fd00:77::99', 0],
    ]);
  });

  it('stays silent for messages meant for another server, and for Solicits that name a server', () => {
    const s = setup();
    const other = serverId(Uint8Array.of(0, 3, 0, 1, 1, 2, 3, 4, 5, 6));
    for (const t of [MSG6.REQUEST, MSG6.RENEW, MSG6.RELEASE, MSG6.DECLINE])
      expect(s.run(msg(t, '52:54:00:00:00:01', [ia(), other]))).toMatchObject({
        kind: 'ignore',
        reason: 'other-server',
      });
    expect(s.run(msg(MSG6.SOLICIT, '52:54:00:00:00:01', [ia(), serverId()]))).toMatchObject({ reason: 'other-server' });
  });

  it('names why a host cannot be served: unknown, IPv4-only, and a static IPv6-only host is served', () => {
    const s = setup();
    expect(s.run(msg(MSG6.SOLICIT, '52:54:00:00:00:aa', [ia()]))).toMatchObject({ reason: 'unknown-host' });
    expect(s.run(msg(MSG6.SOLICIT, '52:54:00:00:00:02', [ia()]))).toMatchObject({
      reason: 'host-not-servable',
      detail: 'annotation metal3.vcluster.com/ipv6-address is missing',
    });
    expect(addressOf(s.run(msg(MSG6.SOLICIT, '52:54:00:00:00:10', [ia()])))?.address).toBe('fd00:77::31');
  });

  it('drops Relay-replies and server messages as not requests, and no client id as such', () => {
    const s = setup();
    const adv: Dhcp6Message = { kind: 'client', msgType: MSG6.ADVERTISE, transactionId: 1, options: [] };
    expect(s.run(adv)).toMatchObject({ kind: 'ignore', reason: 'not-a-request' });
    const noId: Dhcp6Message = { kind: 'client', msgType: MSG6.SOLICIT, transactionId: 1, options: [ia()] };
    expect(s.run(noId, linkLocal('52:54:00:00:00:01'))).toMatchObject({ kind: 'ignore', reason: 'no-client-id' });
  });
});

describe('decide6: boot file URLs (option 59) by client kind', () => {
  it.each([
    ['UEFI PXE over IPv6', UEFI_PXE, 'tftp://[fd00:77::1]/snponly.efi', 'tftp'],
    ['UEFI HTTP boot over IPv6', UEFI_HTTP, 'http://[fd00:77::1]:8080/ipxe/snponly.efi', 'http-binary'],
    ['iPXE', IPXE, 'http://[fd00:77::1]:8080/boot.ipxe', 'ipxe-script'],
    ['an OS', [], undefined, undefined],
  ])('%s gets its boot file URL', (_n, options, url, kind) => {
    const o = reply(setup().run(msg(MSG6.SOLICIT, '52:54:00:00:00:01', [ia(), ...options])));
    expect(bootUrl(o)).toBe(url);
    if (kind !== undefined) expect(o.boot?.kind).toBe(kind);
  });

  it('names itself HTTPClient to UEFI HTTP boot (EDK2 wants it), and gives arm64 its own binary', () => {
    const o = reply(setup().run(msg(MSG6.SOLICIT, '52:54:00:00:00:01', [ia(), ...UEFI_HTTP])));
    expect(parseVendorClass(findOption(o.inner.options, OPT6.VENDOR_CLASS)!).items).toEqual(['HTTPClient']);
    const arm = reply(setup().run(msg(MSG6.SOLICIT, '52:54:00:00:00:01', [ia(), clientArchOption([11])])));
    expect(bootUrl(arm)).toBe('tftp://[fd00:77::1]/snponly-arm64.efi');
  });

  it('gives no boot file to a host that must not netboot', () => {
    const o = reply(setup().run(msg(MSG6.SOLICIT, '52:54:00:00:00:03', [ia(), ...UEFI_PXE])));
    expect(bootUrl(o)).toBeUndefined();
    expect(o.boot).toEqual({ kind: 'none', reason: 'netboot-disabled' });
  });
});

describe('decide6: the IPv6 range', () => {
  const mac = '52:54:00:00:00:77';
  it('advertises in memory, binds on Request with a journal record, renews, releases', () => {
    const s = setup({ range: true });
    const adv = s.run(msg(MSG6.SOLICIT, mac, [ia()]));
    expect(addressOf(adv)).toEqual({ address: 'fd00:77::100', valid: 600, preferred: 600 });
    expect(reply(adv).persist).toBeUndefined();
    const rep = reply(s.run(msg(MSG6.REQUEST, mac, [ia(1, ['fd00:77::100']), serverId()])));
    expect(rep.persist).toEqual({ t: 'bind', ip: 'fd00:77::100', mac, exp: 1_000_000_000_000 + 600_000 });
    s.advance(300_000);
    const renew = reply(s.run(msg(MSG6.RENEW, mac, [ia(1, ['fd00:77::100']), serverId()])));
    expect(renew.persist).toMatchObject({ t: 'bind', exp: 1_000_000_000_000 + 900_000 });
    expect(renew.commit?.heldUntil).toBe(1_000_000_000_000 + 600_000);
    const rebind = reply(s.run(msg(MSG6.REBIND, mac, [ia(1, ['fd00:77::100'])])));
    expect(addressOf(rebind)?.address).toBe('fd00:77::100');
    const rel = reply(s.run(msg(MSG6.RELEASE, mac, [ia(1, ['fd00:77::100']), serverId()])));
    expect(rel.persist).toEqual({ t: 'free', ip: 'fd00:77::100' });
    expect(parseStatus(findOption(rel.inner.options, OPT6.STATUS_CODE)!).code).toBe(STATUS6.Success);
  });

  it('answers a Renew without a binding NoBinding, and stays silent on such a Rebind', () => {
    const s = setup({ range: true });
    expect(iaStatus(s.run(msg(MSG6.RENEW, mac, [ia(1, ['fd00:77::100']), serverId()])))).toBe(STATUS6.NoBinding);
    expect(s.run(msg(MSG6.REBIND, mac, [ia(1, ['fd00:77::100'])]))).toMatchObject({ reason: 'no-record' });
  });

  it('quarantines a declined address and runs out with NoAddrsAvail', () => {
    const s = setup({ range: true });
    const d = reply(s.run(msg(MSG6.DECLINE, mac, [ia(1, ['fd00:77::100']), serverId()])));
    expect(d.persist).toMatchObject({ t: 'decline', ip: 'fd00:77::100' });
    reply(s.run(msg(MSG6.REQUEST, '52:54:00:00:00:78', [ia(), serverId()])));
    expect(s.run(msg(MSG6.SOLICIT, '52:54:00:00:00:79', [ia()]))).toMatchObject({ reason: 'pool-exhausted' });
    expect(iaStatus(s.run(msg(MSG6.REQUEST, '52:54:00:00:00:79', [ia(), serverId()])))).toBe(STATUS6.NoAddrsAvail);
  });

  it('confirms addresses on the link and refuses others with NotOnLink', () => {
    const s = setup({ range: true });
    const ok = reply(s.run(msg(MSG6.CONFIRM, mac, [ia(1, ['fd00:77::101'])])));
    expect(parseStatus(findOption(ok.inner.options, OPT6.STATUS_CODE)!).code).toBe(STATUS6.Success);
    const off = reply(s.run(msg(MSG6.CONFIRM, mac, [ia(1, ['fd00:99::5'])])));
    expect(parseStatus(findOption(off.inner.options, OPT6.STATUS_CODE)!).code).toBe(STATUS6.NotOnLink);
  });

  it('answers an Information-request with configuration and no address', () => {
    const o = reply(setup({ range: true }).run(msg(MSG6.INFORMATION_REQUEST, mac, [ORO])));
    expect(findOption(o.inner.options, OPT6.IA_NA)).toBeUndefined();
    expect(findOption(o.inner.options, OPT6.DNS_SERVERS)).toBeDefined();
    expect(o.address).toBeUndefined();
  });

  it('serves relayed range clients only when the relay link is on the server subnet', () => {
    const s = setup({ range: true });
    const relay = (link: string): Dhcp6Message => ({
      kind: 'relay',
      msgType: MSG6.RELAY_FORW,
      hopCount: 0,
      linkAddress: ip6(link),
      peerAddress: linkLocal(mac),
      options: [relayMessageOption(msg(MSG6.SOLICIT, mac, [ia()]))],
    });
    expect(s.run(relay('fd00:77::fe'), ip6('fd00:77::fe')).kind).toBe('reply');
    expect(s.run(relay('fd00:99::fe'), ip6('fd00:99::fe'))).toMatchObject({ reason: 'unknown-host' });
  });
});

describe('decide6: relays', () => {
  it('wraps the Reply in a Relay-reply per relay, echoing hop count, addresses and Interface-Id', () => {
    const inner = msg(MSG6.SOLICIT, '52:54:00:00:00:01', [ia(), ...UEFI_PXE]);
    const first: Dhcp6Message = {
      kind: 'relay',
      msgType: MSG6.RELAY_FORW,
      hopCount: 0,
      linkAddress: ip6('fd00:78::1'),
      peerAddress: linkLocal('52:54:00:00:00:01'),
      options: [interfaceIdOption(Uint8Array.of(1, 0, 0, 0)), relayMessageOption(inner)],
    };
    const second: Dhcp6Message = {
      kind: 'relay',
      msgType: MSG6.RELAY_FORW,
      hopCount: 1,
      linkAddress: ip6('fd00:79::1'),
      peerAddress: ip6('fd00:78::2'),
      options: [relayMessageOption(first)],
    };
    const o = reply(setup().run(second, ip6('fd00:79::2')));
    expect(o.facts.relays).toBe(2);
    const outer = o.reply;
    if (outer.kind !== 'relay') throw new Error('not a relay reply');
    expect(outer).toMatchObject({ msgType: MSG6.RELAY_REPL, hopCount: 1, linkAddress: ip6('fd00:79::1') });
    const mid = decode6(findOption(outer.options, OPT6.RELAY_MSG)!);
    if (mid.kind !== 'relay') throw new Error('not nested');
    expect(findOption(mid.options, OPT6.INTERFACE_ID)).toEqual(Uint8Array.of(1, 0, 0, 0));
    expect(mid.peerAddress).toBe(linkLocal('52:54:00:00:00:01'));
    const adv = decode6(findOption(mid.options, OPT6.RELAY_MSG)!);
    expect(adv).toMatchObject({ kind: 'client', msgType: MSG6.ADVERTISE, transactionId: inner.transactionId });
  });
});

describe('decide6: golden packets from real clients', () => {
  const golden = (name: string) =>
    decode6(Buffer.from(JSON.parse(readFileSync(path.join(FIXTURES, `${name}.json`), 'utf8')).hex, 'hex'));

  it("answers dhclient -6's Solicit from the range, and knows the client inside dhcrelay's Relay-forward", () => {
    const s = setup({ range: true });
    const sol = golden('dhclient-solicit');
    const o = reply(s.run(sol, ip6('fe80::ff:fe77:6001')));
    expect(o.facts.mac).toBe('02:00:00:77:60:01');
    expect(o.facts.source).toBe('range');
    expect(addressOf(o)?.address).toMatch(/^fd00:77::10[01]$/);
    const relayed = golden('dhcrelay-interface-id-relay-forw-solicit');
    // The relay's link (fd00:78::1 in the capture) is not the range's subnet: the range does not serve it.
    expect(s.run(relayed, ip6('fd00:77::3'))).toMatchObject({
      kind: 'ignore',
      reason: 'unknown-host',
      detail: "relay link fd00:78::1 is outside the range's subnet",
      facts: { mac: '02:00:00:77:60:0b', via: 'link-local-eui64', relays: 1 },
    });
  });
});

describe('decide6: DHCPv6 from real firmware (test/fixtures/dhcp6/firmware, docs/research/ipv6-firmware-boot.md)', () => {
  // Every capture is of the VM with MAC 52:54:00:66:00:01, sending from its EUI-64 link-local address.
  const MAC = '52:54:00:66:00:01';
  const firmware = (name: string) => {
    const hex = (JSON.parse(readFileSync(path.join(FIXTURES, 'firmware', `${name}.json`), 'utf8')) as { hex: string })
      .hex;
    return Buffer.from(hex, 'hex');
  };

  it.each([
    ['ovmf-pxe6-solicit', 'pxe', 'tftp://[fd00:77::1]/snponly.efi'],
    ['ovmf-http6-solicit', 'uefi-http', 'http://[fd00:77::1]:8080/ipxe/snponly.efi'],
    ['ipxe6-solicit', 'ipxe', 'http://[fd00:77::1]:8080/boot.ipxe'],
    ['ipxe6-bios-solicit', 'ipxe', 'http://[fd00:77::1]:8080/boot.ipxe'],
    ['ovmf-ip6config-solicit', 'plain', undefined],
  ])('%s: re-encodes byte for byte, is known by its link-local address, and gets %s', (name, kind, url) => {
    const bytes = firmware(name);
    expect(encode6(decode6(bytes))).toEqual(bytes);
    const s = setup();
    const o = reply(
      decide6(decode6(bytes), linkLocal(MAC), s.policy, {
        index: (() => {
          const idx = new HostIndex();
          const r = bmhToHost(bmh('fw', MAC, { [`${P}ip-address`]: 'fd00:77::66/64' }), {
            annotationPrefix: P,
            from: 'test',
          });
          if (r.kind === 'host') idx.replaceAll('bmh', [r.host]);
          return idx;
        })(),
        pool: s.pool,
        now: () => 0,
      }),
    );
    expect(o.facts).toMatchObject({ mac: MAC, via: 'link-local-eui64', client: { kind } });
    expect(addressOf(o)?.address).toBe('fd00:77::66');
    expect(bootUrl(o)).toBe(url);
  });
});
