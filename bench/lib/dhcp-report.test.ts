import { describe, expect, it } from 'vitest';
import { gcPauses, overflows, targets, type Latency, type Run, type Sweep } from './dhcp-report.js';

describe('gcPauses', () => {
  it('counts the pauses of V8 --trace-gc lines and ignores everything else', () => {
    const lines = [
      '[12345:0x6a3c000]     1204 ms: Scavenge 20.1 (24.0) -> 4.2 (24.0) MB, 3.21 / 0.00 ms  (average mu = 1.000, current mu = 1.000) allocation failure;',
      '{"level":30,"msg":"ready"}',
      '[12345:0x6a3c000]     2210 ms: Mark-Compact 40.3 (52.0) -> 18.9 (44.0) MB, 12.50 / 0.10 ms  (+ 5.0 ms in 40 steps since start of marking) finalize incremental marking',
      '[12345:0x6a3c000]     2400 ms: Minor Mark-Compact 10.0 (12.0) -> 8.0 (12.0) MB, 0.29 / 0.00 ms  allocation failure;',
    ];
    const p = gcPauses(lines);
    expect(p.count).toBe(3);
    expect(p.totalMs).toBeCloseTo(16, 10);
    expect(p.maxMs).toBe(12.5);
  });

  it('is zero for a window without collections', () => {
    expect(gcPauses(['', 'nothing'])).toEqual({ count: 0, totalMs: 0, maxMs: 0 });
  });
});

describe('overflows', () => {
  it.each([
    ['none: nothing to say', 0, 0, ''],
    ['the server dropped', 1200, 0, ' [overflows: server 1,200, perfdhcp 0]'],
    ['the load generator dropped', 0, 47, ' [overflows: server 0, perfdhcp 47]'],
  ])('%s', (_name, srvRcvbufErrors, cliRcvbufErrors, text) => {
    expect(overflows({ srvRcvbufErrors, cliRcvbufErrors })).toBe(text);
  });
});

const run = (goodput: number): Run => ({ goodput }) as Run;

function sweep(server: Sweep['server'], maxClean: number | undefined, capacity: number, overload: number): Sweep {
  return {
    server,
    mode: 'broadcast',
    kind: 'repeat',
    runs: [],
    maxClean,
    clientLimited: false,
    cleanRuns: [run(capacity)],
    overloadRuns: [run(overload)],
    quietWaitS: 0,
  };
}

function latency(p99: number, lost: number): Latency {
  return {
    server: 'metalboot',
    kind: 'repeat',
    runs: [{ offerP99: p99, ackP99: p99 / 2, lost } as Latency['runs'][number]],
  };
}

describe('targets', () => {
  it('meets the targets with twice Kea, no collapse at 2× and p99 under 5 ms without drops', () => {
    const t = targets(
      [sweep('metalboot', 10_000, 10_000, 9_500), sweep('kea', 5_000, 5_000, 2_000)],
      [latency(1.2, 0)],
    );
    expect(t.missed).toBe(false);
    expect(t.lines).toEqual([
      '- broadcast, repeat clients: max clean rate 10,000/s vs Kea 5,000/s = 2.00× (target ≥ 2×): **met**',
      '- broadcast, repeat clients: goodput at 2× offered = 95% of capacity (target ≥ 90%): **met**',
      '- 1,000/s from 500 clients: p99 per leg 1.20 ms, 0 lost exchanges (target p99 < 5 ms, zero drops): **met**',
    ]);
  });

  it.each([
    [
      'less than twice Kea',
      [sweep('metalboot', 7_000, 7_000, 7_000), sweep('kea', 5_000, 5_000, 5_000)],
      [],
      /1\.40× \(target ≥ 2×\): \*\*missed\*\*/,
    ],
    [
      'a collapse under twice its rate',
      [sweep('metalboot', 10_000, 10_000, 5_000)],
      [],
      /50% of capacity \(target ≥ 90%\): \*\*missed\*\*/,
    ],
    ['one lost exchange at 1,000/s', [], [latency(1, 1)], /1 lost exchanges .*\*\*missed\*\*/],
    ['a p99 of 5 ms', [], [latency(5, 0)], /p99 per leg 5\.00 ms.*\*\*missed\*\*/],
  ])('misses with %s', (_what, sweeps, lats, line) => {
    const t = targets(sweeps as Sweep[], lats as Latency[]);
    expect(t.missed).toBe(true);
    expect(t.lines.join('\n')).toMatch(line);
  });

  it('says nothing about Kea when Kea was not run', () => {
    expect(targets([sweep('metalboot', 10_000, 10_000, 10_000)], []).lines.some((l) => l.includes('Kea'))).toBe(false);
  });
});
