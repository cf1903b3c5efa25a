import { describe, expect, it } from 'vitest';
import { dhcp6Section, ratio, ratioRange, ratios6Table, rates6Table, spread } from './dhcp6-report.js';
import type { Latency, Run, Sweep } from './dhcp-report.js';

const run = (rate: number, dropPct: number, goodput: number, cpuPer1k = 0.2): Run =>
  ({ rate, dropPct, goodput, cpuPer1k, cpuS: 1, sysS: 0.25, load1: 0.5, clientLimited: false }) as Run;

function sweep(server: Sweep['server'], maxClean: number, goodputs: number[], cpu: number): Sweep {
  const cleanRuns = goodputs.map((g) => run(maxClean, 0, g, cpu));
  return {
    server,
    mode: 'direct',
    kind: 'repeat',
    runs: [run(1000, 0, 1000, cpu), ...cleanRuns, run(2 * maxClean, 3.5, maxClean)],
    maxClean,
    clientLimited: false,
    cleanRuns,
    overloadRuns: [],
    quietWaitS: 0,
  };
}

function lat(server: Latency['server'], p50: number, p99: number): Latency {
  return {
    server,
    kind: 'repeat',
    runs: [p50, p50 * 2].map((x) => ({
      offerP50: x,
      offerP99: p99,
      ackP50: x,
      ackP99: p99,
      cpuPer1k: 0.1,
    })) as Latency['runs'],
  };
}

describe('spread', () => {
  it.each([
    [[3, 1, 2], 0, '2 (1–3)'],
    [[0.1234, 0.1234], 2, '0.12'],
    [[1_500, 2_500], 0, '2,000 (1,500–2,500)'],
    [[], 0, '–'],
  ])('%j with %i digits → %s', (values, digits, text) => {
    expect(spread(values, digits)).toBe(text);
  });
});

describe('ratio and ratioRange', () => {
  it('divides, or says – when it cannot', () => {
    expect(ratio(3000, 2000)).toBe('1.50×');
    expect(ratio(3000, 0)).toBe('–');
    expect(ratio(undefined, 2000)).toBe('–');
  });

  it('bounds the ratio of two sets of runs by their extremes', () => {
    expect(ratioRange([900, 1000], [1800, 2000])).toBe('0.45–0.56×');
    expect(ratioRange([], [1])).toBe('–');
  });
});

describe('rates6Table', () => {
  it('gives the max clean rate, the spread of its runs and where the sweep stopped', () => {
    const rows = rates6Table([sweep('metalboot', 3000, [2990, 3000, 2995], 0.2)]).split('\n');
    expect(rows).toHaveLength(3);
    expect(rows[2]).toBe(
      '| direct | 500 repeat (reserved) | metalboot | 3,000 | 3 | 0.000 | 2,995 (2,990–3,000) | 6,000: 3.50 | 0.200 (25% sys) | 0.50–0.50 |',
    );
  });
});

describe('ratios6Table', () => {
  it('puts metalboot over Kea for rates, CPU and latency', () => {
    const t = ratios6Table(
      [sweep('metalboot', 3000, [3000], 0.2), sweep('kea', 2000, [1900, 2000], 0.1)],
      [lat('metalboot', 0.2, 2), lat('kea', 0.1, 1)],
      'direct',
    ).split('\n');
    expect(t[2]).toBe(
      '| max clean rate (/s); Replies/s over the runs at it | direct | 500 repeat (reserved) | 3,000; 3,000 | 2,000; 1,950 (1,900–2,000) | 1.50×; 1.50–1.58× |',
    );
    expect(t[3]).toBe(
      '| CPU s per 1k exchanges at the max clean rate | direct | 500 repeat (reserved) | 0.200 | 0.100 | 2.00× |',
    );
    expect(t[4]).toBe(
      '| Solicit→Advertise p50 (ms) at 1,000/s | direct | 500 repeat (reserved) | 0.30 (0.20–0.40) | 0.15 (0.10–0.20) | 2.00× |',
    );
    expect(t).toHaveLength(2 + 2 + 5);
  });

  it('leaves out a mode that only one server ran', () => {
    expect(ratios6Table([sweep('metalboot', 3000, [3000], 0.2)], [], 'direct').split('\n')).toHaveLength(2);
  });
});

describe('dhcp6Section', () => {
  it('writes the set-up, the client checks and the three tables', () => {
    const body = dhcp6Section({
      settings: {
        quick: false,
        servers: ['metalboot', 'kea'],
        modes: ['direct'],
        kinds: ['repeat'],
        periodS: 2,
        latencyPeriodS: 3,
        profilePeriodS: 0,
        runs: 3,
        threads: 'multi',
        metalbootFlags: [],
        quietWaitS: 30,
        quietBudgetS: 60,
      },
      startedMs: Date.UTC(2026, 0, 2, 3, 4),
      elapsedS: 600,
      runName: 'dhcp6-x',
      machine: { nproc: 2, cpuModel: 'cpu', kernel: '6.1', memGiB: 8 },
      leaseFilesystem: 'ext4 /dev/vda',
      loadThreshold: 1,
      quietSpentS: 0,
      versions: { metalboot: 'abc', node: 'v20', kea: 'kea-dhcp6 2.2.0', perfdhcp: 'perfdhcp 2.2.0' },
      peers: { metalboot: { configSummary: 'm', durability: 'md' }, kea: { configSummary: 'k', durability: 'kd' } },
      clientChecks: [
        "metalboot, direct, new clients sent from the kernel's EUI-64 link-local address fe80::1 alone: 1 address",
      ],
      latencyMode: 'direct',
      sweeps: [sweep('metalboot', 3000, [3000], 0.2), sweep('kea', 2000, [2000], 0.1)],
      lats: [lat('metalboot', 0.2, 2), lat('kea', 0.1, 1)],
      readyMs: { metalboot: [3000], kea: [500] },
      command: 'sudo node --import tsx bench/dhcp6.ts',
    });
    expect(body).toContain('Measured 2026-01-02 03:04 UTC by `sudo node --import tsx bench/dhcp6.ts` (10 min)');
    expect(body).toContain('for all of them (first line below)');
    expect(body).toContain('-b duid=00030001026e00000000 -b mac=02:6e:00:00:00:00 -R 16777216 -l eth0');
    for (const h of ['### Rates', '### Latency at 1,000/s (direct)', '### metalboot / Kea', '### Every run'])
      expect(body).toContain(h);
    expect(body).not.toContain('not a quiet machine');
  });
});
