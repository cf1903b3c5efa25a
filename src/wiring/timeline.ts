/**
 * The boot timelines wing: every host's milestones (boot/boot-timeline.ts), the histogram of the
 * measured times between them, the live stream /ui reads, and the one reporter every wing's
 * hook calls (kube/boot-milestones.ts), which also feeds the BareMetalHost Events.
 * The other wings only pass its methods to their hooks: DHCP's onOutcome, TFTP's
 * onStart/onEnd, the boot routes' onServed, the image proxy's onServed (in its worker or not),
 * the API proxy's onAgentCall and the callback listener's onForwarded.
 */
import { Gauge, Histogram } from 'prom-client';
import type { Config } from '../config/load.js';
import { BootTimeline } from '../boot/boot-timeline.js';
import type { BootTimings } from '../boot/boot-timings.js';
import { BootStream } from '../http/boot-stream.js';
import type { TimelineRoutesOptions } from '../http/timeline-routes.js';
import { NO_BOOT_EVENTS, type BootEvents } from '../kube/boot-events.js';
import { BootMilestones } from '../kube/boot-milestones.js';
import type { HostIndex } from '../leases/host-index.js';
import type { Wiring } from './deps.js';

export interface TimelineWing {
  /** What every wing reports to. */
  readonly milestones: BootMilestones;
  /** For the HTTP app's /debug/boots and /ui routes. */
  readonly routes: Omit<TimelineRoutesOptions, 'uiDir'>;
}

export interface TimelineWingInput {
  readonly index: HostIndex;
  readonly timings: BootTimings;
  /** The BareMetalHost Events, with sources.kube. */
  readonly events: BootEvents | undefined;
  /** The MACs Ironic confirmed for a node (the proxies' agent store, built after this wing). */
  readonly macsOfNode: (node: string) => readonly string[] | undefined;
}

export function timelineWing(config: Config, w: Wiring, i: TimelineWingInput): TimelineWing {
  const histogram = new Histogram({
    name: 'metalboot_boot_milestone_seconds',
    help: "Seconds measured between one boot milestone of a host and its next (labels: the two milestones, of the timeline's closed list)",
    labelNames: ['from', 'to'],
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600],
    registers: [w.registry],
  });
  // The boot funnel: how many boots reached each milestone, and how long after the boot's first
  // DHCP answer (as near power-on as metalboot sees); milestone="ipa-heartbeat" is power-on to IPA.
  const progress = new Histogram({
    name: 'metalboot_boot_progress_seconds',
    help: "Seconds from a boot's first milestone (its firmware's first DHCP answer) to each milestone it reached; the count per milestone is the boot funnel",
    labelNames: ['milestone'],
    buckets: [1, 2, 5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1200],
    registers: [w.registry],
  });
  let stream: BootStream | undefined;
  const timeline = new BootTimeline({
    now: w.now,
    onStep: (from, to, seconds) => histogram.observe({ from, to }, seconds),
    onChange: (mac) => stream?.changed(mac),
    onReached: (milestone, seconds) => progress.observe({ milestone }, seconds),
  });
  new Gauge({
    name: 'metalboot_boot_hosts',
    help: 'Hosts in the boot timelines by the state of their last milestone (firmware, ipxe, images, agent, local-boot, error)',
    labelNames: ['state'],
    registers: [w.registry],
    collect() {
      for (const [state, c] of timeline.states()) this.set({ state }, c.hosts);
    },
  });
  new Gauge({
    name: 'metalboot_boot_oldest_idle_seconds',
    help: 'Seconds since anything was seen of the host idle longest in each state: a host stuck between two milestones',
    labelNames: ['state'],
    registers: [w.registry],
    collect() {
      for (const [state, c] of timeline.states()) this.set({ state }, c.oldestIdleSeconds);
    },
  });
  stream = new BootStream({ timeline, now: w.now });
  const live = stream;
  const milestones = new BootMilestones({
    events: i.events ?? NO_BOOT_EVENTS,
    index: i.index,
    timings: i.timings,
    timeline,
    imagePaths: { kernel: config.inspector.kernelPath, initramfs: config.inspector.initramfsPath },
    macsOfNode: i.macsOfNode,
    now: w.now,
    onActivity: (kind, bytes) => live.activity(kind, bytes),
  });
  return { milestones, routes: { timeline, stream: live } };
}
