import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { classifyRadvdLine, type RadvdLine, RadvdLogReader } from './radvd-log.js';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../test/fixtures/radvd');
const transcript = (name: string) =>
  readFileSync(path.join(FIXTURES, name), 'utf8')
    .split('\n')
    .filter((l) => l !== '');

function readAll(lines: readonly string[]): RadvdLine[] {
  const r = new RadvdLogReader();
  return [...lines.flatMap((l) => r.read(l)), ...r.end()];
}

describe('classifyRadvdLine', () => {
  it.each<[string, RadvdLine]>([
    [
      'sending RA to ff02::1 on eth1 (fe80::1), 2 options (using 24/1210 bytes)',
      { kind: 'sent', to: 'ff02::1', iface: 'eth1', multicast: true },
    ],
    [
      'sending RA to fe80::5054:ff:fe12:3401 on eth1 (fe80::1), 2 options (using 24/1210 bytes)',
      { kind: 'sent', to: 'fe80::5054:ff:fe12:3401', iface: 'eth1', multicast: false },
    ],
    ['sendmsg: Network is unreachable', { kind: 'send-failed', to: undefined, error: 'Network is unreachable' }],
    ['eth1 received RS from: fe80::2', { kind: 'solicitation', iface: 'eth1', from: 'fe80::2' }],
    ['eth1 processed an RS', { kind: 'solicitation-answered', iface: 'eth1' }],
    ['eth1 received RA from: fe80::1 (myself)', { kind: 'own-advertisement', iface: 'eth1' }],
    ['eth1 received RA from: fe80::2', { kind: 'foreign-advertisement', iface: 'eth1', from: 'fe80::2' }],
    [
      "our AdvOtherConfigFlag on eth1 doesn't agree with fe80::2",
      { kind: 'disagreement', field: 'AdvOtherConfigFlag', iface: 'eth1', from: 'fe80::2' },
    ],
    ['eth1 is ready', { kind: 'interface-ready', iface: 'eth1' }],
    ['not sending RA for eth1, interface is not ready', { kind: 'interface-not-ready', iface: 'eth1' }],
    ['radvd PID is 4242', { kind: 'pid', pid: 4242 }],
    ['version 2.19 started', { kind: 'started', version: '2.19' }],
    [
      'polling for 4 second(s), next iface is eth1',
      { kind: 'chatter', text: 'polling for 4 second(s), next iface is eth1' },
    ],
    [
      'IPv6 forwarding seems to be disabled, but continuing anyway',
      { kind: 'chatter', text: 'IPv6 forwarding seems to be disabled, but continuing anyway' },
    ],
    [
      'prov1 received icmpv6 RS/RA packet on an unknown interface with index 2',
      { kind: 'chatter', text: 'prov1 received icmpv6 RS/RA packet on an unknown interface with index 2' },
    ],
    ['exiting, 1 sigterm(s) received', { kind: 'other', text: 'exiting, 1 sigterm(s) received' }],
  ])('%s', (line, expected) => {
    expect(classifyRadvdLine(line)).toEqual(expected);
  });
});

describe('RadvdLogReader', () => {
  it('a send followed by "sendmsg:" failed; one followed by anything else, or the end, went out', () => {
    const r = new RadvdLogReader();
    expect(r.read('sending RA to ff02::1 on eth1 (fe80::1), 2 options (using 24/1210 bytes)')).toEqual([]);
    expect(r.read('sendmsg: Network is down')).toEqual([
      { kind: 'send-failed', to: 'ff02::1', error: 'Network is down' },
    ]);
    r.read('sending RA to fe80::2 on eth1 (fe80::1), 2 options (using 24/1210 bytes)');
    expect(r.read('eth1 processed an RS')).toEqual([
      { kind: 'sent', to: 'fe80::2', iface: 'eth1', multicast: false },
      { kind: 'solicitation-answered', iface: 'eth1' },
    ]);
    r.read('sending RA to ff02::1 on eth1 (fe80::1), 2 options (using 24/1210 bytes)');
    expect(r.read('sending RA to ff02::1 on eth1 (fe80::1), 2 options (using 24/1210 bytes)')).toHaveLength(1);
    expect(r.end()).toEqual([{ kind: 'sent', to: 'ff02::1', iface: 'eth1', multicast: true }]);
    expect(r.end()).toEqual([]);
  });

  it("radvd 2.19's own run: what it sent, the solicitation it answered, the router that disagreed", () => {
    const lines = readAll(transcript('radvd-2.19-run.log'));
    const of = (kind: RadvdLine['kind']) => lines.filter((l) => l.kind === kind);
    expect(of('started')).toEqual([{ kind: 'started', version: '2.19' }]);
    expect(of('pid')).toHaveLength(1);
    expect(of('interface-ready').length).toBeGreaterThanOrEqual(1);
    // The first advertisement, the answer to the solicitation, and the final one at SIGTERM.
    expect(of('sent').map((l) => (l as { multicast: boolean }).multicast)).toEqual([true, false, true]);
    expect(of('send-failed')).toEqual([]);
    expect(of('solicitation')).toEqual([{ kind: 'solicitation', iface: 'rcxa', from: 'fe80::e037:72ff:fea1:399e' }]);
    expect(of('solicitation-answered')).toHaveLength(1);
    expect(of('own-advertisement').length).toBeGreaterThanOrEqual(1);
    expect(of('foreign-advertisement').length).toBeGreaterThanOrEqual(1);
    expect(of('disagreement')[0]).toEqual({
      kind: 'disagreement',
      field: 'AdvManagedFlag',
      iface: 'rcxa',
      from: 'fe80::e037:72ff:fea1:399e',
    });
    // Every other line is known: nothing an operator needs is lost among the chatter.
    expect(of('other').map((l) => (l as { text: string }).text)).toEqual(['exiting, 1 sigterm(s) received']);
  });

  it('radvd 2.19 without CAP_NET_RAW says so before it exits', () => {
    const lines = readAll(transcript('radvd-2.19-no-net-raw.log'));
    expect(lines.filter((l) => l.kind === 'no-raw-socket')).toHaveLength(2);
    expect(lines.some((l) => l.kind === 'pid')).toBe(false);
  });
});
