import { describe, expect, it } from 'vitest';
import { duidLl, parsePerfdhcp, perfdhcp6Args, perfdhcpArgs, type PerfdhcpRun } from './perfdhcp.js';

const RUN: PerfdhcpRun = {
  mode: 'broadcast',
  rate: 1000,
  periodS: 3,
  macBase: '02:5a:00:00:00:00',
  clients: 500,
  ifname: 'veth1',
  localIp: '10.16.0.2',
  serverIp: '10.16.0.1',
};

describe('perfdhcpArgs', () => {
  it('offers a rate for a period from a MAC range, on an interface in broadcast mode', () => {
    expect(perfdhcpArgs(RUN)).toEqual([
      '-4',
      '-g',
      'multi',
      '-r',
      '1000',
      '-p',
      '3',
      '-d',
      '1',
      '-W',
      '1000000',
      '-b',
      'mac=02:5a:00:00:00:00',
      '-R',
      '500',
      '-l',
      'veth1',
    ]);
  });

  it('sends to the server from the local address in relay mode', () => {
    expect(perfdhcpArgs({ ...RUN, mode: 'relay' }).slice(-3)).toEqual(['-l', '10.16.0.2', '10.16.0.1']);
  });

  it('takes a count instead of a period, and the other knobs', () => {
    const args = perfdhcpArgs({
      ...RUN,
      count: 300,
      threads: 'single',
      timestamps: true,
      dropTimeS: 2,
      exitWaitUs: 200_000,
    });
    expect(args).toEqual([
      '-4',
      '-g',
      'single',
      '-r',
      '1000',
      '-n',
      '300',
      '-d',
      '2',
      '-W',
      '200000',
      '-b',
      'mac=02:5a:00:00:00:00',
      '-R',
      '500',
      '-x',
      't',
      '-l',
      'veth1',
    ]);
  });
});

/** An abridged perfdhcp report with per-exchange timestamps (-x t), in the layout parsePerfdhcp reads. */
const REPORT = `Running: perfdhcp -4 -g multi -r 1000 -p 3 -x t -l veth1
***Rate statistics***
Rate: 998.123 4-way exchanges/second, expected rate: 1000

***Statistics for: DISCOVER-OFFER***
sent packets: 3000
received packets: 2997
drops: 3
drops ratio: 0.1 %
orphans: 1
rejected leases: 0

min delay: 0.101 ms
avg delay: 0.254 ms
max delay: 4.5 ms
std deviation: 0.1 ms
collected packets: 0

***Timestamps for packets: DISCOVER-OFFER***
sent / received: 1700000000.000100 / 1700000000.000350
sent / received: 1700000000.001100 / 1700000000.002100

***Statistics for: REQUEST-ACK***
sent packets: 2990
received packets: 2990
drops: 0
drops ratio: 0 %
orphans: 0
rejected leases: 2

min delay: 0.2 ms
avg delay: 0.3 ms
max delay: 1 ms
std deviation: 0.05 ms
collected packets: 0

***Timestamps for packets: REQUEST-ACK***
sent / received: 1700000000.000400 / 1700000000.000900
`;

describe('parsePerfdhcp', () => {
  it("reads perfdhcp's rate and both exchanges' counters and delays", () => {
    const r = parsePerfdhcp(REPORT);
    expect(r.rate).toBe(998.123);
    expect(r.discover).toEqual({
      sent: 3000,
      received: 2997,
      drops: 3,
      orphans: 1,
      rejectedLeases: 0,
      minMs: 0.101,
      avgMs: 0.254,
      maxMs: 4.5,
    });
    expect(r.request).toEqual({
      sent: 2990,
      received: 2990,
      drops: 0,
      orphans: 0,
      rejectedLeases: 2,
      minMs: 0.2,
      avgMs: 0.3,
      maxMs: 1,
    });
  });

  it('turns per-exchange timestamps into delays in ms, per leg', () => {
    const r = parsePerfdhcp(REPORT);
    expect(r.offerDelaysMs.map((d) => Number(d.toFixed(3)))).toEqual([0.25, 1]);
    expect(r.ackDelaysMs.map((d) => Number(d.toFixed(3)))).toEqual([0.5]);
  });

  it('leaves out what a failed run did not print', () => {
    expect(parsePerfdhcp('Error running perfdhcp: No such device\n')).toEqual({
      rate: undefined,
      discover: undefined,
      request: undefined,
      offerDelaysMs: [],
      ackDelaysMs: [],
    });
  });

  it('gives NaN for a counter missing from a block', () => {
    const r = parsePerfdhcp('***Statistics for: DISCOVER-OFFER***\nsent packets: 10\n');
    expect(r.discover?.sent).toBe(10);
    expect(r.discover?.received).toBeNaN();
  });
});

describe('perfdhcp6Args', () => {
  const RUN6 = { ...RUN, mode: 'direct' as const, localIp: 'fd00:6::2', serverIp: 'fd00:6::1' };

  it('makes each client a DUID-LL of base+i and sends to ff02::1:2 out of the interface in direct mode', () => {
    expect(perfdhcp6Args(RUN6)).toEqual([
      '-6',
      '-g',
      'multi',
      '-r',
      '1000',
      '-p',
      '3',
      '-d',
      '1',
      '-W',
      '1000000',
      '-b',
      'duid=00030001025a00000000',
      '-b',
      'mac=02:5a:00:00:00:00',
      '-R',
      '500',
      '-l',
      'veth1',
    ]);
  });

  it('relays (-A1) from the local address to the server in relay mode', () => {
    expect(perfdhcp6Args({ ...RUN6, mode: 'relay', timestamps: true }).slice(-7)).toEqual([
      '-x',
      't',
      '-A',
      '1',
      '-l',
      'fd00:6::2',
      'fd00:6::1',
    ]);
  });

  it('writes a DUID-LL as hex digits', () => {
    expect(duidLl('02:6E:00:00:01:ff')).toBe('00030001026e000001ff');
  });
});

describe('parsePerfdhcp -6', () => {
  it('reads the Solicit-Advertise and Request-Reply legs into the same fields', () => {
    const v6 = REPORT.replaceAll('DISCOVER-OFFER', 'SOLICIT-ADVERTISE').replaceAll('REQUEST-ACK', 'REQUEST-REPLY');
    const r = parsePerfdhcp(v6);
    expect(r.discover?.sent).toBe(3000);
    expect(r.request?.received).toBe(2990);
    expect(r.offerDelaysMs).toHaveLength(2);
    expect(r.ackDelaysMs[0]).toBeCloseTo(0.5, 3);
  });
});
