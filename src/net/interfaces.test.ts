import type { NetworkInterfaceInfo } from 'node:os';
import { describe, expect, it } from 'vitest';
import { MetalbootError } from '../base/errors.js';
import {
  describeInterfaces,
  feedInterface,
  interfacesWith,
  needsDeviceFeed,
  type InterfaceTable,
} from './interfaces.js';

/** One address as os.networkInterfaces() reports it. */
function v4(cidr: string, internal = false): NetworkInterfaceInfo {
  const [address, prefix] = cidr.split('/') as [string, string];
  return { address, netmask: '', family: 'IPv4', mac: '02:00:00:00:00:01', internal, cidr: `${address}/${prefix}` };
}
function v6(address: string): NetworkInterfaceInfo {
  return {
    address,
    netmask: '',
    family: 'IPv6',
    mac: '02:00:00:00:00:01',
    internal: false,
    cidr: `${address}/64`,
    scopeid: 0,
  };
}

const HOST: InterfaceTable = {
  lo: [v4('127.0.0.1/8', true)],
  eth0: [v4('10.79.0.1/24'), v6('fd00::1')],
  eth1: [v4('10.80.0.1/24'), v4('10.80.1.1/24')],
  dummy0: [],
};

describe('needsDeviceFeed', () => {
  it.each([
    ['0.0.0.0', false],
    ['127.0.0.1', false],
    ['127.9.9.9', false],
    ['10.79.0.1', true],
    ['not an address', false],
  ])('%s → %s', (host, want) => {
    expect(needsDeviceFeed(host)).toBe(want);
  });
});

describe('feedInterface', () => {
  it.each([
    ['the interface with the address', '10.79.0.1', 'eth0'],
    ['a second address of an interface', '10.80.1.1', 'eth1'],
    ['none for the wildcard (it hears every interface)', '0.0.0.0', undefined],
    ['none for loopback (no booting host broadcasts there)', '127.0.0.1', undefined],
  ])('%s: %s → %s', (_name, host, want) => {
    expect(feedInterface(host, HOST)).toBe(want);
  });

  it('an address on no interface: NET_ERR_NO_INTERFACE naming the address and every interface seen', () => {
    let err: unknown;
    try {
      feedInterface('10.99.0.1', HOST);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MetalbootError);
    expect(err).toMatchObject({ code: 'NET_ERR_NO_INTERFACE' });
    expect((err as Error).message).toBe(
      'no network interface has 10.99.0.1, the DHCP listen address (interfaces: lo 127.0.0.1/8, ' +
        'eth0 10.79.0.1/24, eth1 10.80.0.1/24 10.80.1.1/24, dummy0 (no IPv4 address)); check --dhcp-listen / SERVER_IP',
    );
  });

  it('an address on two interfaces: refused, both named', () => {
    const table = { ...HOST, eth2: [v4('10.79.0.1/24')] };
    expect(() => feedInterface('10.79.0.1', table)).toThrow(
      '10.79.0.1, the DHCP listen address, is on eth0 and eth2: DHCP cannot be limited to one of them',
    );
  });

  it('an address also on lo (a VIP): the other interface, where booting hosts are', () => {
    const table = { ...HOST, lo: [v4('127.0.0.1/8', true), v4('10.79.0.1/32', true)] };
    expect(feedInterface('10.79.0.1', table)).toBe('eth0');
  });

  it('an address only on lo: lo (unicast through socat is harmless; nothing broadcasts there)', () => {
    const table = { ...HOST, lo: [v4('127.0.0.1/8', true), v4('192.0.2.10/32', true)] };
    expect(feedInterface('192.0.2.10', table)).toBe('lo');
  });
});

describe('interfacesWith and describeInterfaces', () => {
  it('finds IPv6 addresses in any spelling, and IPv4 ones by family', () => {
    expect(interfacesWith('fd00::1', HOST)).toEqual(['eth0']);
    expect(interfacesWith('FD00:0::0001', HOST)).toEqual(['eth0']);
    expect(interfacesWith('fd00::2', HOST)).toEqual([]);
    expect(interfacesWith('10.80.0.1', HOST)).toEqual(['eth1']);
  });

  it('no interfaces at all', () => {
    expect(describeInterfaces({})).toBe('none');
  });
});
