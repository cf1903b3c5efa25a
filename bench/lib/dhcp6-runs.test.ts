import { describe, expect, it } from 'vitest';
import { eui64LinkLocal } from './dhcp6-lab.js';
import { reservations6 } from './dhcp6-peers.js';
import { judgeLeases, parseLeases6 } from './dhcp6-runs.js';

/** The tail of a perfdhcp -6 -x l report. */
const LEASES = `***Statistics for: REQUEST-REPLY***
sent packets: 3
received packets: 3

***Leases for SOLICIT-ADVERTISE***
client_id,adrress,prefix
00:03:00:01:02:5a:00:00:00:00,fd00:6::5a:0,
00:03:00:01:02:5a:00:00:00:01,fd00:6::5a:1,
00:03:00:01:02:5a:00:00:00:02,fd00:6::5a:2,
`;

describe('reservations6', () => {
  it('gives reservation i the MAC base+i, its DUID-LL and fd00:6::5a:0 + i', () => {
    const r = reservations6(10_000);
    expect(r[0]).toEqual({ mac: '02:5a:00:00:00:00', duid: '00:03:00:01:02:5a:00:00:00:00', ip: 'fd00:6::5a:0' });
    expect(r[9_999]).toEqual({
      mac: '02:5a:00:00:27:0f',
      duid: '00:03:00:01:02:5a:00:00:27:0f',
      ip: 'fd00:6::5a:270f',
    });
    expect(new Set(r.map((x) => x.ip)).size).toBe(10_000);
  });
});

describe('eui64LinkLocal', () => {
  it.each([
    ['62:91:36:96:4d:1c', 'fe80::6091:36ff:fe96:4d1c'],
    ['02:00:00:00:00:01', 'fe80::0:ff:fe00:1'],
  ])('%s → %s (universal/local bit flipped, ff:fe in the middle)', (mac, ll) => {
    expect(eui64LinkLocal(mac)).toBe(ll);
  });
});

describe('parseLeases6', () => {
  it('reads the DUID and address of every lease line', () => {
    expect(parseLeases6(LEASES)).toEqual([
      { clientId: '00:03:00:01:02:5a:00:00:00:00', address: 'fd00:6::5a:0' },
      { clientId: '00:03:00:01:02:5a:00:00:00:01', address: 'fd00:6::5a:1' },
      { clientId: '00:03:00:01:02:5a:00:00:00:02', address: 'fd00:6::5a:2' },
    ]);
  });

  it('is empty without a lease list', () => {
    expect(parseLeases6('***Statistics for: REQUEST-REPLY***\n')).toEqual([]);
  });
});

describe('judgeLeases', () => {
  const lease = (n: number, address: string) => ({
    clientId: `00:03:00:01:02:5a:00:00:00:0${n}`,
    address,
  });

  it.each([
    ['repeat clients holding their reservations', 'repeat', [lease(0, 'fd00:6::5a:0'), lease(1, 'fd00:6::5a:1')], true],
    ['a repeat client with another address', 'repeat', [lease(0, 'fd00:6::5a:0'), lease(1, 'fd00:6::10:0')], false],
    ['new clients with distinct range addresses', 'new', [lease(0, 'fd00:6::10:0'), lease(1, 'fd00:6::10:1')], true],
    ['new clients sharing one address', 'new', [lease(0, 'fd00:6::10:0'), lease(1, 'fd00:6::10:0')], false],
    ['too few leases', 'new', [lease(0, 'fd00:6::10:0')], false],
  ] as const)('%s', (_name, kind, leases, ok) => {
    expect(judgeLeases(kind, leases, 2).ok).toBe(ok);
  });

  it('says what it saw', () => {
    expect(judgeLeases('repeat', [lease(0, 'fd00:6::5a:0'), lease(1, 'fd00:6::10:0')], 2).text).toBe(
      "2 DUIDs, 1/2 leases the DUID's reservation (e.g. 00:03:00:01:02:5a:00:00:00:01 got fd00:6::10:0)",
    );
  });
});
