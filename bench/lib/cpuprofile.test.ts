import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { summariseProfile, type ProfileGroup } from './cpuprofile.js';

/**
 * root ─┬─ (idle)
 *       ├─ decide (src/dhcp/decide.ts:10) ── lookup (src/leases/host-index.ts:20)
 *       ├─ (garbage collector)
 *       └─ anonymous (node_modules/prom-client/lib/counter.js:5)
 *
 * Samples at t = 100, 1100, 3100, 6100, 10100, 11100 µs; a sample's self time is the delta to
 * the next one (the last one repeats its own): decide 1 ms, lookup 5 ms, idle 4 ms, GC 1 ms,
 * the anonymous function 1 ms. Busy: 8 ms of 12.
 */
const PROFILE = {
  startTime: 0,
  endTime: 12_000,
  nodes: [
    { id: 1, callFrame: { functionName: '(root)', url: '', lineNumber: -1, columnNumber: -1 }, children: [2, 3, 5, 6] },
    { id: 2, callFrame: { functionName: '(idle)', url: '', lineNumber: -1, columnNumber: -1 } },
    {
      id: 3,
      callFrame: { functionName: 'decide', url: 'file:///repo/src/dhcp/decide.ts', lineNumber: 9, columnNumber: 0 },
      children: [4],
    },
    {
      id: 4,
      callFrame: {
        functionName: 'lookup',
        url: 'file:///repo/src/leases/host-index.ts',
        lineNumber: 19,
        columnNumber: 2,
      },
    },
    { id: 5, callFrame: { functionName: '(garbage collector)', url: '', lineNumber: -1, columnNumber: -1 } },
    {
      id: 6,
      callFrame: {
        functionName: '',
        url: 'file:///repo/node_modules/prom-client/lib/counter.js',
        lineNumber: 4,
        columnNumber: 0,
      },
    },
  ],
  samples: [3, 4, 4, 2, 5, 6],
  timeDeltas: [100, 1000, 2000, 3000, 4000, 1000],
};

let dir: string;
let file: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'bench-cpuprofile-'));
  file = path.join(dir, 'x.cpuprofile');
  writeFileSync(file, JSON.stringify(PROFILE));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('summariseProfile', () => {
  it('adds up self time per function, busy time without (idle), and names where each is', () => {
    const s = summariseProfile(file);
    expect(s.totalMs).toBe(12);
    expect(s.busyMs).toBe(8);
    expect(s.top.map((e) => [e.name, e.where, e.selfMs])).toEqual([
      ['lookup', 'src/leases/host-index.ts:20', 5],
      ['decide', 'src/dhcp/decide.ts:10', 1],
      ['(garbage collector)', '', 1],
      ['(anonymous)', 'node_modules/prom-client/lib/counter.js:5', 1],
    ]);
    expect(s.top[0]!.selfPct).toBeCloseTo((100 * 5) / 8, 10);
  });

  it('keeps the first `top` functions', () => {
    expect(summariseProfile(file, { top: 1 }).top.map((e) => e.name)).toEqual(['lookup']);
  });

  it('counts inclusive time of a function with its callees', () => {
    const s = summariseProfile(file, { inclusive: ['decide', 'lookup', 'encode'] });
    expect(s.inclusive.map((e) => [e.name, e.ms])).toEqual([
      ['decide', 6],
      ['lookup', 5],
      ['encode', 0],
    ]);
    expect(s.inclusive[0]!.pct).toBeCloseTo((100 * 6) / 8, 10);
  });

  it('groups self time by the first matching group, the rest as other', () => {
    const groups: ProfileGroup[] = [
      { name: 'leases', match: (_fn, where) => where.startsWith('src/leases/') },
      { name: 'src', match: (_fn, where) => where.startsWith('src/') },
    ];
    expect(summariseProfile(file, { groups }).groups.map((g) => [g.name, g.ms])).toEqual([
      ['leases', 5],
      ['other', 2],
      ['src', 1],
    ]);
  });

  it('keeps only samples inside the window', () => {
    const s = summariseProfile(file, { windowUs: [1000, 7000] });
    expect(s.totalMs).toBe(9);
    expect(s.busyMs).toBe(5);
    expect(s.top.map((e) => [e.name, e.selfMs])).toEqual([['lookup', 5]]);
  });
});
