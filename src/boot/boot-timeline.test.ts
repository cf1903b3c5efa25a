import { describe, expect, it } from 'vitest';
import { parseMac, type Mac } from '../net/mac.js';
import { BOOT_MILESTONES, BootTimeline, isBootMilestone, type BootMilestone } from './boot-timeline.js';

const A = parseMac('52:54:00:00:00:0a')!;
const B = parseMac('52:54:00:00:00:0b')!;
const C = parseMac('52:54:00:00:00:0c')!;

/** A timeline on a clock the test moves. */
function clocked(o: { maxHosts?: number; maxMilestones?: number } = {}) {
  let t = 1_000_000;
  const steps: [BootMilestone, BootMilestone, number][] = [];
  const changed: Mac[] = [];
  const reached: [BootMilestone, number][] = [];
  const timeline = new BootTimeline({
    now: () => t,
    ...o,
    onStep: (from, to, s) => steps.push([from, to, s]),
    onChange: (mac) => changed.push(mac),
    onReached: (m, s) => reached.push([m, s]),
  });
  return {
    timeline,
    steps,
    changed,
    reached,
    at: (ms: number) => {
      t = 1_000_000 + ms;
    },
  };
}

/** A UEFI PXE boot into the inspector ramdisk, each milestone at the given ms. */
const UEFI_BOOT: readonly [number, BootMilestone][] = [
  [0, 'dhcp-offer'],
  [40, 'dhcp-ack'],
  [90, 'tftp-start'],
  [600, 'tftp-end'],
  [1_900, 'ipxe-dhcp-offer'],
  [1_950, 'ipxe-dhcp-ack'],
  [2_400, 'boot-script'],
  [2_450, 'host-script'],
  [2_500, 'kernel'],
  [4_000, 'initramfs'],
  [30_000, 'os-dhcp-ack'],
  [31_000, 'ipa-lookup'],
  [32_000, 'ipa-heartbeat'],
];

describe('BootTimeline', () => {
  it('keeps the milestones in order, with durations that add up to last − first', () => {
    const c = clocked();
    for (const [ms, m] of UEFI_BOOT) {
      c.at(ms);
      c.timeline.record(A, m, m === 'host-script' ? { script: 'inspector' } : {});
    }
    c.at(40_000);
    const h = c.timeline.host(A)!;
    expect(h.milestones.map((e) => e.milestone)).toEqual(UEFI_BOOT.map(([, m]) => m));
    expect(h.milestones.map((e) => e.offsetMs)).toEqual(UEFI_BOOT.map(([ms]) => ms));
    const sum = h.milestones.reduce((s, e) => s + (e.msSincePrevious ?? 0), 0);
    expect(sum).toBe(h.spanMs);
    expect(h.spanMs).toBe(Date.parse(h.milestones.at(-1)!.at) - Date.parse(h.milestones[0]!.at));
    expect(h).toMatchObject({ state: 'agent', lastMilestone: 'ipa-heartbeat', boot: 1, idleSeconds: 8 });
    // One histogram observation per step, in seconds, measured.
    expect(c.steps.length).toBe(UEFI_BOOT.length - 1);
    expect(c.steps[1]).toEqual(['dhcp-ack', 'tftp-start', 0.05]);
  });

  it('merges repeats: the same milestone twice in a row, and heartbeats and callbacks in the agent run', () => {
    const c = clocked();
    const seq: [number, BootMilestone][] = [
      [0, 'tftp-start'],
      [10, 'tftp-start'],
      [20, 'tftp-end'],
      [30, 'ipa-heartbeat'],
      [40, 'callback'],
      [50, 'ipa-heartbeat'],
      [60, 'callback'],
      [70, 'ipa-heartbeat'],
    ];
    for (const [ms, m] of seq) {
      c.at(ms);
      c.timeline.record(A, m, { n: ms });
    }
    const h = c.timeline.host(A)!;
    expect(h.milestones.map((e) => [e.milestone, e.count, e.offsetMs, e.detail.n])).toEqual([
      ['tftp-start', 2, 0, 10],
      ['tftp-end', 1, 20, 20],
      ['ipa-heartbeat', 3, 30, 70],
      ['callback', 2, 40, 60],
    ]);
    expect(h.lastSeen).toBe(new Date(1_000_070).toISOString());
    expect(h.spanMs).toBe(40);
  });

  it('starts a new boot at firmware DHCP after a later step, and does not time across boots', () => {
    const c = clocked();
    const seq: [number, BootMilestone][] = [
      [0, 'ipxe-dhcp-ack'],
      [100, 'host-script'],
      [200, 'kernel'],
      [5_000, 'dhcp-offer'],
      [5_100, 'dhcp-ack'],
      [5_200, 'tftp-end'],
      [5_300, 'ipxe-dhcp-ack'],
      [5_400, 'boot-script'],
      [9_000, 'ipxe-dhcp-offer'],
    ];
    for (const [ms, m] of seq) {
      c.at(ms);
      c.timeline.record(A, m);
    }
    const h = c.timeline.host(A)!;
    expect(h.milestones.map((e) => e.boot)).toEqual([1, 1, 1, 2, 2, 2, 2, 2, 3]);
    expect(h.boot).toBe(3);
    expect(c.steps.map(([f, t]) => `${f}→${t}`)).not.toContain('kernel→dhcp-offer');
    expect(c.steps.map(([f, t]) => `${f}→${t}`)).not.toContain('boot-script→ipxe-dhcp-offer');
  });

  it('keeps at most maxMilestones entries per host, the newest', () => {
    const c = clocked({ maxMilestones: 4 });
    const seq = BOOT_MILESTONES.slice(0, 10);
    seq.forEach((m, i) => {
      c.at(i * 10);
      c.timeline.record(A, m);
    });
    const h = c.timeline.host(A)!;
    expect(h.milestones.map((e) => e.milestone)).toEqual(seq.slice(-4));
    expect(h.milestones[0]!.msSincePrevious).toBeNull();
    expect(h.spanMs).toBe(30);
  });

  it('keeps at most maxHosts hosts, evicting the one idle longest', () => {
    const c = clocked({ maxHosts: 2 });
    c.at(0);
    c.timeline.record(A, 'dhcp-offer');
    c.at(10);
    c.timeline.record(B, 'dhcp-offer');
    c.at(20);
    // A is active again: B is now the one idle longest.
    c.timeline.record(A, 'dhcp-ack');
    c.at(30);
    c.timeline.record(C, 'dhcp-offer');
    expect(c.timeline.size).toBe(2);
    expect(c.timeline.host(B)).toBeUndefined();
    expect(c.timeline.hosts().map((h) => h.mac)).toEqual([C, A]);
    expect(c.changed).toEqual([A, B, A, C]);
  });

  it('filters by state, last milestone and stuck time; a host sent to its disk is never stuck', () => {
    const c = clocked();
    c.at(0);
    c.timeline.record(A, 'ipxe-dhcp-ack');
    c.timeline.record(B, 'host-script', { script: 'localboot' });
    c.at(100_000);
    c.timeline.record(C, 'kernel', { bytes: 10 });
    c.at(130_000);
    const macs = (f: Parameters<BootTimeline['hosts']>[0]) => c.timeline.hosts(f).map((h) => h.mac);
    expect(macs({})).toEqual([C, B, A]);
    expect(macs({ state: 'ipxe' })).toEqual([A]);
    expect(macs({ state: 'local-boot' })).toEqual([B]);
    expect(macs({ milestone: 'kernel' })).toEqual([C]);
    expect(macs({ stuckForMs: 120_000 })).toEqual([A]);
    expect(macs({ stuckForMs: 20_000 })).toEqual([C, A]);
    expect(macs({ limit: 1 })).toEqual([C]);
    expect(macs({ state: 'agent' })).toEqual([]);
  });

  it('reports each milestone once per boot with the time since the boot began (the funnel), and counts hosts per state', () => {
    const c = clocked();
    for (const [ms, m] of UEFI_BOOT) {
      c.at(ms);
      c.timeline.record(A, m);
    }
    c.at(33_000);
    c.timeline.record(A, 'ipa-heartbeat');
    expect(c.reached.map(([m]) => m)).toEqual(UEFI_BOOT.map(([, m]) => m));
    expect(c.reached.at(-1)).toEqual(['ipa-heartbeat', 32]);
    // A reboot: the funnel starts again from the new boot's first DHCP answer.
    c.at(100_000);
    c.timeline.record(A, 'dhcp-offer');
    c.at(100_500);
    c.timeline.record(A, 'dhcp-ack');
    expect(c.reached.slice(-2)).toEqual([
      ['dhcp-offer', 0],
      ['dhcp-ack', 0.5],
    ]);
    c.timeline.record(B, 'dhcp-offer');
    c.at(160_500);
    const states = c.timeline.states();
    expect(states.get('firmware')).toEqual({ hosts: 2, oldestIdleSeconds: 60 });
    expect(states.get('agent')).toEqual({ hosts: 0, oldestIdleSeconds: 0 });
  });

  it('names the milestones of a closed union', () => {
    expect(isBootMilestone('kernel')).toBe(true);
    expect(isBootMilestone('toString')).toBe(false);
    expect(new Set(BOOT_MILESTONES).size).toBe(BOOT_MILESTONES.length);
  });
});
