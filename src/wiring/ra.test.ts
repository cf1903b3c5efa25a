import type { NetworkInterfaceInfo } from 'node:os';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config/load.js';
import { parseIpv4Cidr } from '../net/ipv4.js';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { raContent, raInterface, raWing } from './ra.js';
import { ANSWER_ONLY } from '../ra/radvd-config.js';

function config(...argv: string[]) {
  const r = loadConfig({ argv, env: {}, readFile: () => '', localAddresses: () => [parseIpv4Cidr('10.0.0.1/24')!] });
  if (r.kind !== 'config') throw new Error(JSON.stringify(r));
  return r.config;
}

const v4 = (address: string, internal = false): NetworkInterfaceInfo => ({
  address,
  netmask: '255.255.255.0',
  family: 'IPv4',
  mac: '00:00:00:00:00:00',
  internal,
  cidr: `${address}/24`,
});

describe('raInterface', () => {
  const table = { lo: [v4('127.0.0.1', true)], eth0: [v4('192.0.2.5')], net1: [v4('10.0.0.1')] };

  it.each([
    ['the interface that holds the server IP', ['--server-ip', '10.0.0.1/24'], table, { interface: 'net1' }],
    [
      'the one chosen, whatever holds the server IP',
      ['--router-advertisements-interface', 'eth0'],
      table,
      { interface: 'eth0' },
    ],
    ['none on loopback', ['--server-ip', '127.0.0.1/8'], table, { loopback: true }],
    ['none when no interface holds it', ['--server-ip', '10.9.0.1/24'], table, { loopback: false }],
    [
      'none when two hold it',
      ['--server-ip', '10.0.0.1/24'],
      { ...table, net2: [v4('10.0.0.1')] },
      { none: expect.stringContaining('is on net1 and net2'), loopback: false },
    ],
  ])('%s', (_what, argv, t, expected) => {
    expect(raInterface(config(...argv), t)).toMatchObject(expected);
  });
});

describe('raWing', () => {
  const table = { eth0: [v4('10.0.0.1')] };
  const wiring = () => ({ logger: pino({ level: 'silent' }), registry: new Registry(), now: Date.now });

  it.each([
    ['on by default where metalboot serves DHCP', [], true, undefined],
    ['off when switched off', ['--router-advertisements=false'], false, 'off: routerAdvertisements.enabled is false'],
    // Replicas that only proxy, TFTP/HTTP behind another DHCP server: not a provisioning network of ours.
    ['off without DHCP', ['--config', 'c.yaml'], false, 'off: dhcp.enabled is false'],
  ])('%s', (_what, argv, built, detail) => {
    const r = loadConfig({
      argv: ['--server-ip', '10.0.0.1/24', ...argv],
      env: {},
      readFile: () => 'dhcp: { enabled: false }\n',
      localAddresses: () => [],
    });
    if (r.kind !== 'config') throw new Error(JSON.stringify(r));
    const w = raWing(r.config, wiring(), table);
    expect(w.service !== undefined).toBe(built);
    if (detail !== undefined) expect(w.readiness[0]!.check()).toEqual({ ok: true, detail });
  });
});

describe('raContent with DHCPv6', () => {
  it('answers only (no flags, no prefix) on an IPv4 network', () => {
    expect(raContent(config('--server-ip', '10.0.0.1/24'))).toEqual(ANSWER_ONLY);
  });

  it('sets M and O and the server prefix on-link without SLAAC, never as a default router', () => {
    const c = config('--server-ip', '10.0.0.1/24', '--dhcp6-server-ip', 'fd00:77::1/64', '--dhcp6-lease-time', '900');
    expect(raContent(c)).toEqual({
      routerLifetimeSeconds: 0,
      managed: true,
      other: true,
      prefixes: [
        {
          prefix: 'fd00:77::/64',
          onLink: true,
          autonomous: false,
          validLifetimeSeconds: 900,
          preferredLifetimeSeconds: 900,
        },
      ],
    });
  });

  it('advertises on the interface that holds the IPv6 server address', () => {
    const v6 = (address: string): NetworkInterfaceInfo => ({
      address,
      netmask: 'ffff:ffff:ffff:ffff::',
      family: 'IPv6',
      mac: '00:00:00:00:00:00',
      internal: false,
      cidr: `${address}/64`,
      scopeid: 0,
    });
    const c = config('--server-ip', '10.0.0.1/24', '--dhcp6-server-ip', 'fd00:77::1/64');
    expect(raInterface(c, { eth0: [v4('10.0.0.1')], net6: [v6('fd00:77:0::1')] })).toEqual({ interface: 'net6' });
  });
});
