/**
 * Boot timelines: per host (by MAC), the milestones metalboot saw it pass — DHCP answers, TFTP
 * transfers, scripts, images through the proxy, IPA talking to Ironic — in order, with the time
 * between each and the one before. Kept for /debug/boots, the /ui page and a histogram of the
 * measured milestone-to-milestone times. Pure: the clock is passed in; nothing here does I/O.
 *
 * Protocol-neutral: every wing reports `record(mac, milestone, detail)` with a milestone of the
 * closed union below (DHCPv6 adds its own names to it). The one place that turns a protocol's
 * report into a milestone is kube/boot-milestones.ts, which feeds the BareMetalHost Events too.
 *
 * Bounded twice (memory is the price of a boot storm, so both bounds are constants):
 * - {@link MAX_MILESTONES_PER_HOST} entries per host, a ring: the oldest go first. Repeats do not
 *   take new entries: the same milestone twice in a row, and heartbeats and callbacks (which IPA
 *   and Ironic repeat for as long as the agent runs) anywhere in the trailing run of such
 *   repeating milestones, update one entry's count and last time.
 * - {@link MAX_HOSTS} hosts: one more evicts the host idle longest.
 *
 * A boot begins at a firmware DHCP answer after anything later than firmware DHCP, or at an
 * iPXE DHCP answer after anything later than iPXE's chain (a reboot); entries carry their boot's
 * number, and durations are only measured within one boot.
 */
import type { Mac } from '../net/mac.js';

/**
 * A full boot chain is about 15 distinct milestones (firmware DHCP, TFTP, iPXE DHCP, two
 * scripts, kernel, initramfs, the ramdisk's DHCP, lookup, heartbeats, inspection, callbacks):
 * 48 keeps the last two or three boots of a host and the drops between them.
 */
export const MAX_MILESTONES_PER_HOST = 48;

/**
 * DHCP answers only the hosts it knows (BareMetalHosts, static hosts, a range), so this is about
 * the site's size; 2048 hosts of 48 entries of ~200 bytes each stay under ~20 MB however much
 * they repeat, and a site larger than that loses only the hosts idle longest.
 */
export const MAX_HOSTS = 2048;

/** Every milestone, in the order a boot passes them. */
export const BOOT_MILESTONES = [
  // Firmware's DHCP (PXE or UEFI HTTP boot), then its boot file.
  'dhcp-offer',
  'dhcp-ack',
  'tftp-start',
  'tftp-end',
  'http-binary',
  // iPXE's own DHCP, then its scripts: /boot.ipxe (the NIC loop), the host's script.
  'ipxe-dhcp-offer',
  'ipxe-dhcp-ack',
  'boot-script',
  'host-script',
  // Through the image proxy.
  'kernel',
  'initramfs',
  'image',
  // The ramdisk (IPA): its OS's DHCP, then the Ironic API through the proxy, and Ironic's calls back.
  'os-dhcp-offer',
  'os-dhcp-ack',
  'ipa-lookup',
  'ipa-heartbeat',
  'inspection',
  'callback',
  // Failures along the way.
  'dhcp-refused',
  'dhcp-dropped',
  'tftp-failed',
  'image-failed',
] as const;

export type BootMilestone = (typeof BOOT_MILESTONES)[number];

/** Where a host is, from its last milestone. */
export const BOOT_STATES = ['firmware', 'ipxe', 'images', 'agent', 'local-boot', 'error'] as const;
export type BootState = (typeof BOOT_STATES)[number];

/** What a report says beyond its name: short strings and numbers (bytes, ms, status, file). */
export type MilestoneDetail = Readonly<Record<string, string | number | boolean>>;

interface Kind {
  readonly state: BootState;
  /** Order along the chain, for telling a reboot (see the file comment); none for failures. */
  readonly step: number | undefined;
  /** Repeated for as long as the agent runs: merged into one entry (see the file comment). */
  readonly repeats?: boolean;
}

const KINDS: Readonly<Record<BootMilestone, Kind>> = {
  'dhcp-offer': { state: 'firmware', step: 0 },
  'dhcp-ack': { state: 'firmware', step: 0 },
  'tftp-start': { state: 'firmware', step: 1 },
  'tftp-end': { state: 'firmware', step: 1 },
  'http-binary': { state: 'firmware', step: 1 },
  'ipxe-dhcp-offer': { state: 'ipxe', step: 2 },
  'ipxe-dhcp-ack': { state: 'ipxe', step: 2 },
  'boot-script': { state: 'ipxe', step: 3 },
  'host-script': { state: 'ipxe', step: 3 },
  kernel: { state: 'images', step: 4 },
  initramfs: { state: 'images', step: 4 },
  image: { state: 'images', step: 4 },
  'os-dhcp-offer': { state: 'agent', step: 5 },
  'os-dhcp-ack': { state: 'agent', step: 5 },
  'ipa-lookup': { state: 'agent', step: 5, repeats: true },
  'ipa-heartbeat': { state: 'agent', step: 5, repeats: true },
  inspection: { state: 'agent', step: 5 },
  callback: { state: 'agent', step: 5, repeats: true },
  'dhcp-refused': { state: 'error', step: undefined },
  'dhcp-dropped': { state: 'error', step: undefined },
  'tftp-failed': { state: 'error', step: undefined },
  'image-failed': { state: 'error', step: undefined },
};

/** Milestones that begin a boot, with the step they begin it after (firmware: after any later step). */
const BOOT_START_AFTER: Partial<Record<BootMilestone, number>> = {
  'dhcp-offer': 0,
  'dhcp-ack': 0,
  'ipxe-dhcp-offer': 2,
  'ipxe-dhcp-ack': 2,
};

export function isBootMilestone(s: string): s is BootMilestone {
  return Object.hasOwn(KINDS, s);
}

export function isBootState(s: string): s is BootState {
  return (BOOT_STATES as readonly string[]).includes(s);
}

interface Entry {
  readonly milestone: BootMilestone;
  readonly at: number;
  readonly boot: number;
  lastAt: number;
  count: number;
  detail: MilestoneDetail;
}

interface Host {
  readonly mac: Mac;
  name: string | undefined;
  readonly entries: Entry[];
  boot: number;
  /** When the current boot's first milestone was seen (its firmware's first DHCP answer, as near power-on as metalboot sees). */
  bootStart: number;
  /** Step of the last milestone that has one. */
  step: number | undefined;
  lastSeen: number;
}

/** One milestone of a host, as /debug/boots shows it. */
export interface MilestoneView {
  readonly milestone: BootMilestone;
  /** The stage it belongs to (a failure: `error`). */
  readonly state: BootState;
  readonly at: string;
  /** Milliseconds since the host's first entry (for drawing). */
  readonly offsetMs: number;
  /** Milliseconds since the entry before it; null for the first. Summed: the host's spanMs. */
  readonly msSincePrevious: number | null;
  readonly boot: number;
  /** Times it was seen in a row (see the file comment), and the last of them. */
  readonly count: number;
  readonly lastAt: string;
  readonly detail: MilestoneDetail;
}

export interface HostTimelineView {
  readonly mac: Mac;
  /** The host's name (a BareMetalHost's namespace/name) once a report named it. */
  readonly name: string | null;
  readonly state: BootState;
  readonly lastMilestone: BootMilestone;
  /** The current boot's number (1 for the first seen). */
  readonly boot: number;
  readonly firstAt: string;
  /** The last time anything was seen of the host (repeats included). */
  readonly lastSeen: string;
  readonly idleSeconds: number;
  /** From the first entry to the last entry's first time: the sum of msSincePrevious. */
  readonly spanMs: number;
  readonly milestones: readonly MilestoneView[];
}

export interface BootFilter {
  readonly state?: BootState;
  /** The host's last milestone. */
  readonly milestone?: BootMilestone;
  /** Idle at least this long, and not finished (a host sent to its local disk is done, not stuck). */
  readonly stuckForMs?: number;
  /** At most this many hosts (the most recent). */
  readonly limit?: number;
}

export interface BootTimelineOptions {
  readonly now: () => number;
  readonly maxHosts?: number;
  readonly maxMilestones?: number;
  /** A new entry within one boot, with the measured time since the entry before it. */
  readonly onStep?: (from: BootMilestone, to: BootMilestone, seconds: number) => void;
  /** A host's timeline changed (for live views). */
  readonly onChange?: (mac: Mac) => void;
  /** A milestone reached for the first time in a boot, with the seconds since the boot's first one. */
  readonly onReached?: (milestone: BootMilestone, secondsSinceBootStart: number) => void;
}

/** Hosts in one state, and how long the one idle longest has been idle (for gauges). */
export interface StateCount {
  readonly hosts: number;
  readonly oldestIdleSeconds: number;
}

export class BootTimeline {
  /** By last activity, oldest first: eviction takes the first. */
  readonly #hosts = new Map<Mac, Host>();
  readonly #now: () => number;
  readonly #maxHosts: number;
  readonly #maxMilestones: number;
  readonly #onStep: BootTimelineOptions['onStep'];
  readonly #onChange: BootTimelineOptions['onChange'];
  readonly #onReached: BootTimelineOptions['onReached'];

  constructor(o: BootTimelineOptions) {
    this.#now = o.now;
    this.#maxHosts = o.maxHosts ?? MAX_HOSTS;
    this.#maxMilestones = o.maxMilestones ?? MAX_MILESTONES_PER_HOST;
    this.#onStep = o.onStep;
    this.#onChange = o.onChange;
    this.#onReached = o.onReached;
  }

  /** Every state with its hosts and the longest idle among them: what the boot gauges read. */
  states(): Map<BootState, StateCount> {
    const now = this.#now();
    const out = new Map<BootState, StateCount>(BOOT_STATES.map((s) => [s, { hosts: 0, oldestIdleSeconds: 0 }]));
    for (const h of this.#hosts.values()) {
      const state = stateOf(h.entries.at(-1)!);
      const c = out.get(state)!;
      out.set(state, {
        hosts: c.hosts + 1,
        oldestIdleSeconds: Math.max(c.oldestIdleSeconds, Math.max(0, (now - h.lastSeen) / 1000)),
      });
    }
    return out;
  }

  get size(): number {
    return this.#hosts.size;
  }

  /** Records that `mac` reached `milestone` now; `name` names the host when the report knows it. */
  record(mac: Mac, milestone: BootMilestone, detail: MilestoneDetail = {}, name?: string): void {
    const at = this.#now();
    let h = this.#hosts.get(mac);
    if (h === undefined) {
      h = { mac, name: undefined, entries: [], boot: 0, bootStart: at, step: undefined, lastSeen: at };
    } else {
      this.#hosts.delete(mac);
    }
    this.#hosts.set(mac, h);
    if (name !== undefined) h.name = name;
    h.lastSeen = Math.max(h.lastSeen, at);
    const kind = KINDS[milestone];
    const startAfter = BOOT_START_AFTER[milestone];
    const startsBoot = h.boot === 0 || (startAfter !== undefined && h.step !== undefined && h.step > startAfter);
    if (kind.step !== undefined) h.step = kind.step;
    const repeat = startsBoot ? undefined : repeatOf(h, milestone);
    if (repeat !== undefined) {
      repeat.count++;
      repeat.lastAt = at;
      repeat.detail = detail;
    } else {
      if (startsBoot) {
        h.boot++;
        h.bootStart = at;
      }
      const firstInBoot = !h.entries.some((e) => e.boot === h.boot && e.milestone === milestone);
      const prev = h.entries.at(-1);
      h.entries.push({ milestone, at, boot: h.boot, lastAt: at, count: 1, detail });
      if (h.entries.length > this.#maxMilestones) h.entries.shift();
      if (prev !== undefined && prev.boot === h.boot && at >= prev.at)
        this.#onStep?.(prev.milestone, milestone, (at - prev.at) / 1000);
      if (firstInBoot && at >= h.bootStart) this.#onReached?.(milestone, (at - h.bootStart) / 1000);
    }
    while (this.#hosts.size > this.#maxHosts) {
      const oldest = this.#hosts.keys().next().value as Mac;
      this.#hosts.delete(oldest);
    }
    this.#onChange?.(mac);
  }

  host(mac: Mac): HostTimelineView | undefined {
    const h = this.#hosts.get(mac);
    return h === undefined ? undefined : view(h, this.#now());
  }

  /** The hosts the filter lets through, most recently active first. */
  hosts(filter: BootFilter = {}): HostTimelineView[] {
    const now = this.#now();
    const out: HostTimelineView[] = [];
    const limit = filter.limit ?? Number.POSITIVE_INFINITY;
    const all = [...this.#hosts.values()];
    for (let i = all.length - 1; i >= 0 && out.length < limit; i--) {
      const h = all[i]!;
      const last = h.entries.at(-1)!;
      const state = stateOf(last);
      if (filter.state !== undefined && state !== filter.state) continue;
      if (filter.milestone !== undefined && last.milestone !== filter.milestone) continue;
      if (filter.stuckForMs !== undefined && (state === 'local-boot' || now - h.lastSeen < filter.stuckForMs)) continue;
      out.push(view(h, now));
    }
    return out;
  }
}

/** The entry a repeat of `milestone` merges into, if any (see the file comment). */
function repeatOf(h: Host, milestone: BootMilestone): Entry | undefined {
  const last = h.entries.at(-1);
  if (last === undefined) return undefined;
  if (last.milestone === milestone) return last;
  if (KINDS[milestone].repeats !== true) return undefined;
  for (let i = h.entries.length - 1; i >= 0; i--) {
    const e = h.entries[i]!;
    if (e.boot !== h.boot || KINDS[e.milestone].repeats !== true) return undefined;
    if (e.milestone === milestone) return e;
  }
  return undefined;
}

function stateOf(last: Entry): BootState {
  if (last.milestone === 'host-script' && last.detail.script === 'localboot') return 'local-boot';
  return KINDS[last.milestone].state;
}

function view(h: Host, now: number): HostTimelineView {
  const first = h.entries[0]!;
  const last = h.entries.at(-1)!;
  return {
    mac: h.mac,
    name: h.name ?? null,
    state: stateOf(last),
    lastMilestone: last.milestone,
    boot: h.boot,
    firstAt: new Date(first.at).toISOString(),
    lastSeen: new Date(h.lastSeen).toISOString(),
    idleSeconds: Math.max(0, (now - h.lastSeen) / 1000),
    spanMs: last.at - first.at,
    milestones: h.entries.map((e, i) => ({
      milestone: e.milestone,
      state: stateOf(e),
      at: new Date(e.at).toISOString(),
      offsetMs: e.at - first.at,
      msSincePrevious: i === 0 ? null : e.at - h.entries[i - 1]!.at,
      boot: e.boot,
      count: e.count,
      lastAt: new Date(e.lastAt).toISOString(),
      detail: e.detail,
    })),
  };
}
