import { describe, expect, it } from 'vitest';
import { hasCapability, preflightMessage, raPreflight, type RaPreflightProblem } from './preflight.js';

// /proc/self/status of a process with every capability in its bounding set, and one without NET_RAW (bit 13).
const STATUS_ALL = 'Name:\tnode\nCapInh:\t0000000000000000\nCapEff:\t0000000000000000\nCapBnd:\t000001ffffffffff\n';
const STATUS_NO_NET_RAW = STATUS_ALL.replace('000001ffffffffff', '000001ffffffdfff');

function reader(files: Record<string, string>) {
  return (p: string) => files[p];
}

describe('hasCapability', () => {
  it.each([
    [STATUS_ALL, 'CapBnd', 13, true],
    [STATUS_NO_NET_RAW, 'CapBnd', 13, false],
    [STATUS_NO_NET_RAW, 'CapBnd', 12, true],
    [STATUS_ALL, 'CapEff', 13, false],
    ['Name:\tx\n', 'CapBnd', 13, undefined],
  ])('%#: %s bit %i', (status, field, bit, expected) => {
    expect(hasCapability(status, field, bit)).toBe(expected);
  });
});

describe('raPreflight', () => {
  const ok = {
    '/proc/sys/net/ipv6/conf/all/disable_ipv6': '0\n',
    '/proc/sys/net/ipv6/conf/eth1/disable_ipv6': '0\n',
    '/proc/self/status': STATUS_ALL,
  };

  it.each<[string, Record<string, string>, string, RaPreflightProblem['kind'] | undefined]>([
    ['all set', ok, 'eth1', undefined],
    [
      'IPv6 disabled on the interface',
      { ...ok, '/proc/sys/net/ipv6/conf/eth1/disable_ipv6': '1\n' },
      'eth1',
      'ipv6-disabled',
    ],
    ['no such interface', ok, 'eth7', 'no-interface'],
    ['no IPv6 in the kernel', { '/proc/self/status': STATUS_ALL }, 'eth1', 'no-ipv6'],
    ['NET_RAW outside the bounding set', { ...ok, '/proc/self/status': STATUS_NO_NET_RAW }, 'eth1', 'no-net-raw'],
    ['an interface name radvd would misread', ok, 'prefix', 'interface-name'],
  ])('%s', (_what, files, iface, kind) => {
    expect(raPreflight(iface, reader(files))?.kind).toBe(kind);
  });

  it('says how to fix a disabled interface', () => {
    expect(preflightMessage({ kind: 'ipv6-disabled' }, 'net1')).toContain(
      'sysctl -w net.ipv6.conf.net1.disable_ipv6=0',
    );
    expect(preflightMessage({ kind: 'no-net-raw' }, 'net1')).toContain("add NET_RAW to the container's capabilities");
  });
});
