import { describe, expect, it } from 'vitest';
import { HostIndex } from './host-index.js';
import { bmhToHost, type BareMetalHostObject } from './bmh.js';
import { parseBmhManifests } from './bmh-manifests.js';
import { formatIpv4 } from '../net/ipv4.js';
import { formatIpv6 } from '../net/ipv6.js';

const P = 'metal3.vcluster.com/';
const obj = (
  name: string,
  mac: string,
  annotations: Record<string, string>,
  extra: Partial<BareMetalHostObject> = {},
): BareMetalHostObject => ({
  apiVersion: 'metal3.io/v1alpha1',
  kind: 'BareMetalHost',
  metadata: { name, namespace: 'ns', annotations },
  spec: { bootMACAddress: mac },
  ...extra,
});
const host = (o: BareMetalHostObject) => {
  const r = bmhToHost(o, { annotationPrefix: P, from: 'test' });
  if (r.kind !== 'host') throw new Error(r.reason);
  return r.host;
};

describe('bmhToHost', () => {
  it.each([
    [
      'defaults the gateway to the first host',
      { [`${P}ip-address`]: '10.1.2.50/23' },
      { ip: '10.1.2.50', prefix: 23, gateway: '10.1.2.1' },
    ],
    [
      'takes an explicit gateway, DNS and NTP',
      {
        [`${P}ip-address`]: '10.1.2.50/24',
        [`${P}gateway`]: '10.1.2.254',
        [`${P}dns-servers`]: '1.1.1.1, 8.8.8.8',
        [`${P}ntp-servers`]: '10.1.2.3',
      },
      { ip: '10.1.2.50', gateway: '10.1.2.254', dns: ['1.1.1.1', '8.8.8.8'], ntp: ['10.1.2.3'] },
    ],
  ])('%s', (_n, annotations, want) => {
    const l = host(obj('n', 'AA:BB:CC:DD:EE:FF', annotations)).lease!;
    const got = {
      ip: formatIpv4(l.ip),
      prefix: l.prefix,
      gateway: l.gateway === undefined ? undefined : formatIpv4(l.gateway),
      dns: l.dns.map(formatIpv4),
      ntp: l.ntp.map(formatIpv4),
    };
    expect(got).toMatchObject(want);
  });

  it.each([
    ['missing ip-address', {}, 'annotation metal3.vcluster.com/ip-address is missing'],
    [
      'ip-address without prefix',
      { [`${P}ip-address`]: '10.1.2.50' },
      'annotation metal3.vcluster.com/ip-address "10.1.2.50" is not an IPv4 CIDR (e.g. 10.0.0.5/24)',
    ],
    [
      'bad gateway',
      { [`${P}ip-address`]: '10.1.2.50/24', [`${P}gateway`]: 'x' },
      'annotation metal3.vcluster.com/gateway "x" is not an IPv4 address',
    ],
    [
      'bad DNS',
      { [`${P}ip-address`]: '10.1.2.50/24', [`${P}dns-servers`]: '1.1.1.1,nope' },
      'annotation metal3.vcluster.com/dns-servers: "nope" is not an IP address',
    ],
  ])('%s is a visible problem, not a lease', (_n, annotations, problem) => {
    const h = host(obj('n', 'aa:bb:cc:dd:ee:ff', annotations));
    expect(h.lease).toBeUndefined();
    expect(h.problem).toBe(problem);
  });

  it('reads IPv6 leases: ipv6-address beside ip-address (dual stack), or an IPv6 ip-address (IPv6 only)', () => {
    const dual = host(
      obj('n', 'aa:bb:cc:dd:ee:ff', {
        [`${P}ip-address`]: '10.1.2.50/24',
        [`${P}ipv6-address`]: 'fd00:1::50/64',
        [`${P}dns-servers`]: '10.1.2.3,fd00:1::3',
        [`${P}ntp-servers`]: 'fd00:1::4',
      }),
    );
    expect(formatIpv4(dual.lease!.ip)).toBe('10.1.2.50');
    expect(dual.lease!.dns.map(formatIpv4)).toEqual(['10.1.2.3']);
    expect(dual.lease!.ntp).toEqual([]);
    expect(formatIpv6(dual.lease6!.ip)).toBe('fd00:1::50');
    expect(dual.lease6!.prefix).toBe(64);
    expect(dual.lease6!.dns.map(formatIpv6)).toEqual(['fd00:1::3']);
    expect(dual.lease6!.ntp.map(formatIpv6)).toEqual(['fd00:1::4']);

    const only6 = host(obj('n', 'aa:bb:cc:dd:ee:ff', { [`${P}ip-address`]: 'fd00:1::51/64' }));
    expect(only6.lease).toBeUndefined();
    expect(only6.problem).toBe('annotation metal3.vcluster.com/ip-address is an IPv6 address: no IPv4 lease');
    expect(formatIpv6(only6.lease6!.ip)).toBe('fd00:1::51');

    const only4 = host(obj('n', 'aa:bb:cc:dd:ee:ff', { [`${P}ip-address`]: '10.1.2.50/24' }));
    expect(only4.lease6).toBeUndefined();
    expect(only4.problem6).toBe('annotation metal3.vcluster.com/ipv6-address is missing');

    const v6NoV4 = host(obj('n', 'aa:bb:cc:dd:ee:ff', { [`${P}ipv6-address`]: 'fd00:1::52/64' }));
    expect(v6NoV4.problem).toBe('annotation metal3.vcluster.com/ip-address is missing');
    expect(formatIpv6(v6NoV4.lease6!.ip)).toBe('fd00:1::52');

    const both6 = host(
      obj('n', 'aa:bb:cc:dd:ee:ff', { [`${P}ip-address`]: 'fd00:1::5/64', [`${P}ipv6-address`]: 'fd00:1::6/64' }),
    );
    expect(both6.lease6).toBeUndefined();
    expect(both6.problem).toMatch(/both hold an IPv6 address/);
    const bad6 = host(obj('n', 'aa:bb:cc:dd:ee:ff', { [`${P}ipv6-address`]: 'fd00:1::zz/64' }));
    expect(bad6.problem).toMatch(/is not an IPv6 CIDR/);
  });

  it('judges IPv6 address conflicts apart from IPv4 ones', () => {
    const idx = new HostIndex();
    const a = host(
      obj('a', 'aa:bb:cc:dd:ee:01', { [`${P}ip-address`]: '10.1.2.50/24', [`${P}ipv6-address`]: 'fd00::5/64' }),
    );
    const b = host(
      obj('b', 'aa:bb:cc:dd:ee:02', { [`${P}ip-address`]: '10.1.2.51/24', [`${P}ipv6-address`]: 'fd00::5/64' }),
    );
    const conflicts = idx.replaceAll('bmh', [a, b]);
    expect(conflicts.map((c) => [c.kind, c.key])).toEqual([['ip-conflict', 'fd00::5']]);
    expect(idx.lookup(a.macs[0]!).kind).toBe('host');
    expect(idx.lookup6(a.macs[0]!)).toMatchObject({ kind: 'conflict', reason: 'ip-conflict' });
    expect(idx.isClaimed6(a.lease6!.ip)).toBe(true);
  });

  it('matches inspected NIC MACs too and keeps the provisioning state', () => {
    const h = host(
      obj(
        'n',
        'aa:bb:cc:dd:ee:01',
        { [`${P}ip-address`]: '10.0.0.5/24' },
        {
          status: {
            provisioning: { state: 'provisioned' },
            hardware: { nics: [{ mac: 'aa:bb:cc:dd:ee:01' }, { mac: 'AA:BB:CC:DD:EE:02' }] },
          },
        },
      ),
    );
    expect(h.macs).toEqual(['aa:bb:cc:dd:ee:01', 'aa:bb:cc:dd:ee:02']);
    expect(h.provisioningState).toBe('provisioned');
  });

  it('skips objects without a usable boot MAC', () => {
    expect(bmhToHost(obj('n', 'nope', {}), { annotationPrefix: P, from: 't' })).toEqual({
      kind: 'skip',
      reason: 'spec.bootMACAddress "nope" is not a MAC address',
    });
  });
});

describe('parseBmhManifests', () => {
  it('reads BareMetalHosts among Secrets and reports broken YAML with a code', () => {
    const text = `apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n---\napiVersion: metal3.io/v1alpha1\nkind: BareMetalHost\nmetadata:\n  name: a\n  annotations: {"${P}ip-address": 10.0.0.5/24}\nspec: {bootMACAddress: "aa:bb:cc:dd:ee:ff"}\n`;
    expect(parseBmhManifests(text, 'f', P).hosts.map((h) => h.id)).toEqual(['default/a']);
    expect(() => parseBmhManifests('a: [\n', 'f', P)).toThrow(expect.objectContaining({ code: 'SOURCE_ERR_MANIFEST' }));
  });
});

describe('HostIndex', () => {
  it('reports conflicts with both owners and resolves them when one goes away', () => {
    const idx = new HostIndex();
    const a = host(obj('a', 'aa:bb:cc:dd:ee:01', { [`${P}ip-address`]: '10.0.0.5/24' }));
    const b = host(obj('b', 'aa:bb:cc:dd:ee:02', { [`${P}ip-address`]: '10.0.0.5/24' }));
    expect(idx.replaceAll('bmh', [a])).toEqual([]);
    expect(idx.upsert(b)).toEqual([
      { kind: 'ip-conflict', key: '10.0.0.5', owners: ['bmh:ns/a (test)', 'bmh:ns/b (test)'] },
    ]);
    expect(idx.lookup(a.macs[0]!).kind).toBe('conflict');
    idx.delete('bmh', b.id);
    expect(idx.lookup(a.macs[0]!).kind).toBe('host');
    expect(idx.isClaimed(a.lease!.ip)).toBe(true);
  });
});

describe('HostIndex partitions', () => {
  const a = host(obj('a', 'aa:bb:cc:dd:ee:01', { [`${P}ip-address`]: '10.0.0.5/24' }));
  const b = host(obj('b', 'aa:bb:cc:dd:ee:02', { [`${P}ip-address`]: '10.0.0.6/24' }));
  const c = host(obj('c', 'aa:bb:cc:dd:ee:03', { [`${P}ip-address`]: '10.0.0.7/24' }));

  it('replaces only its own partition: a file reload keeps the cluster hosts and the reverse', () => {
    const idx = new HostIndex();
    idx.replaceAll('bmh', [a]);
    idx.replaceAll('bmh', [b, c], 'kubernetes');
    expect(idx.size('bmh')).toBe(3);
    expect(idx.size('bmh', 'kubernetes')).toBe(2);
    idx.replaceAll('bmh', []);
    expect(idx.lookup(a.macs[0]!).kind).toBe('unknown');
    expect(idx.lookup(b.macs[0]!).kind).toBe('host');
    idx.replaceAll('bmh', [c], 'kubernetes');
    expect(idx.lookup(b.macs[0]!).kind).toBe('unknown');
    expect(idx.hosts('bmh').map((h) => h.id)).toEqual(['ns/c']);
  });

  it('deletes by partition, and treats one MAC in two partitions of a kind as a duplicate', () => {
    const idx = new HostIndex();
    idx.upsert(a, 'kubernetes');
    expect(idx.delete('bmh', a.id)).toBe(false);
    expect(idx.replaceAll('bmh', [a])).toEqual([
      { kind: 'duplicate-mac', key: 'aa:bb:cc:dd:ee:01', owners: ['bmh:ns/a (test)', 'bmh:ns/a (test)'] },
    ]);
    expect(idx.lookup(a.macs[0]!)).toMatchObject({ kind: 'conflict', reason: 'duplicate-mac' });
    expect(idx.delete('bmh', a.id, 'kubernetes')).toBe(true);
    expect(idx.lookup(a.macs[0]!).kind).toBe('host');
  });
});
