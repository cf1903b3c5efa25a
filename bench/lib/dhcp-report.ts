/**
 * The DHCP benchmark's data and its report: what a run, a sweep, a latency measurement and a
 * profile record, the method's constants the report quotes, and the markdown of the `## DHCP`
 * section (tables, issue-9 targets, what the profiles say). Pure: bench/lib/dhcp-runs.ts
 * measures, bench/dhcp.ts wires the two.
 */
import type { PeerName } from './dhcp-peers.js';
import { NET } from './dhcp-peers.js';
import { profileText, type ProfileSummary } from './cpuprofile.js';
import type { Machine } from './machine.js';
import { perfdhcpArgs, type AnyMode } from './perfdhcp.js';
import { fmt, median, medianBy } from './stats.js';

// ───────────────────────────── the method ─────────────────────────────

/** Offered rates, exchanges/s. The sweep starts at 1,000 and walks up or down. */
export const LADDER = [100, 250, 500, 1000, 2000, 3000, 5000, 7000, 10000, 14000, 20000, 28000, 40000];
export const START_RATE = 1000;
export const CLEAN_DROP_PCT = 0.1;
/** A failed sweep step with fewer lost exchanges than this is run once more before the sweep stops. */
export const NEAR_MISS_PCT = 5;
export const REPEAT_CLIENTS = 500;
/** Warm-up before measuring a freshly started server: seconds, and at most this rate. */
export const WARMUP_S = 1;
export const WARMUP_RATE = 1000;

/** What one run of the benchmark measures, from its arguments (bench/dhcp.ts settings()). */
export interface DhcpSettings {
  readonly quick: boolean;
  readonly servers: readonly PeerName[];
  readonly modes: readonly AnyMode[];
  readonly kinds: readonly Kind[];
  /** Seconds per sweep run, per latency run, per profile. */
  readonly periodS: number;
  readonly latencyPeriodS: number;
  readonly profilePeriodS: number;
  /** Runs per measured rate (medians over them). */
  readonly runs: number;
  /** Also run each sweep's overload rate (twice the clean rate) `runs` times [default: true]. */
  readonly overload?: boolean;
  readonly threads: 'single' | 'multi';
  /** Node flags for every metalboot start. */
  readonly metalbootFlags: readonly string[];
  /** Wait at most this long for a quiet machine before one sweep, and this long in total. */
  readonly quietWaitS: number;
  readonly quietBudgetS: number;
}

// ───────────────────────────── what is recorded ─────────────────────────────

export type Kind = 'new' | 'repeat';

export interface Run {
  server: PeerName;
  mode: AnyMode;
  kind: Kind;
  rate: number;
  periodS: number;
  /** DISCOVERs perfdhcp actually sent, and what came back. */
  sent: number;
  offers: number;
  acks: number;
  /** Exchanges perfdhcp did not continue (OFFER after the end of the period): left out of the drop %. */
  notContinued: number;
  /** Exchanges started and not completed within the drop time. */
  lost: number;
  dropPct: number;
  /** ACKs per second of the period. */
  goodput: number;
  /** perfdhcp sent fewer than 97% of the offered DISCOVERs: the load generator was the limit. */
  clientLimited: boolean;
  cpuS: number;
  /** Of which in the kernel (stime). */
  sysS: number;
  cpuPer1k: number;
  offerAvgMs: number;
  ackAvgMs: number;
  /** UDP receive-buffer overflows in the server and client namespaces during the run. */
  srvRcvbufErrors: number;
  cliRcvbufErrors: number;
  load1: number;
  file: string;
  exitCode: number | null;
}

export interface Sweep {
  server: PeerName;
  mode: AnyMode;
  kind: Kind;
  runs: Run[];
  /** Highest offered rate whose median drop is < 0.1%; undefined when even the lowest drops. */
  maxClean: number | undefined;
  /** True when the load generator, not the server, ended the sweep. */
  clientLimited: boolean;
  cleanRuns: Run[];
  overloadRuns: Run[];
  quietWaitS: number;
}

export interface Latency {
  server: PeerName;
  kind: Kind;
  runs: {
    file: string;
    sent: number;
    acks: number;
    lost: number;
    dropPct: number;
    offerP50: number;
    offerP99: number;
    ackP50: number;
    ackP99: number;
    doraP50: number;
    doraP99: number;
    cpuPer1k: number;
    sysPct: number;
    load1: number;
    timestamps: number;
    /** Garbage-collection pauses of metalboot during the measured window (--trace-gc). */
    gc: GcPauses | undefined;
  }[];
}

export interface GcPauses {
  count: number;
  totalMs: number;
  maxMs: number;
}

/** Pauses from V8 --trace-gc lines ("…: Scavenge 20.1 (24.0) -> 4.2 (24.0) MB, 3.21 / 0.00 ms …"). */
export function gcPauses(lines: readonly string[]): GcPauses {
  const pauses: number[] = [];
  for (const l of lines) {
    const m = /: (?:Scavenge|Mark-Compact|Mark-Sweep|Minor Mark-Compact)\b.*?MB, ([\d.]+) \/ [\d.]+ ms/.exec(l);
    if (m !== null) pauses.push(Number(m[1]));
  }
  return {
    count: pauses.length,
    totalMs: pauses.reduce((a, b) => a + b, 0),
    maxMs: pauses.length === 0 ? 0 : Math.max(...pauses),
  };
}

export interface Profile {
  file: string;
  summary: ProfileSummary;
  run: Run;
  /** Extra V8 flags of this profile (e.g. --no-turbo-inlining, so inlined callees keep their own name). */
  flags: string[];
}

// ───────────────────────────── tables ─────────────────────────────

function ratioCell(sweeps: Sweep[], s: Sweep): string {
  if (s.server !== 'metalboot') return '';
  const peers = sweeps.filter((p) => p.mode === s.mode && p.kind === s.kind && p.server !== 'metalboot');
  const best = Math.max(...peers.map((p) => p.maxClean ?? 0));
  if (peers.length === 0 || best === 0) return peers.length === 0 ? '' : 'peers < 100/s';
  return `${((s.maxClean ?? 0) / best).toFixed(2)}×${s.clientLimited ? ' (≥)' : ''}`;
}

export function sweepTable(sweeps: Sweep[]): string {
  const rows = [
    '| mode | clients | server | max clean rate (/s) | drop % at it | goodput at 2× (/s) | goodput at 2× / capacity | collapse? | CPU s per 1k exch. | ratio to best peer | load1 |',
    '|---|---|---|---:|---:|---:|---:|---|---:|---:|---:|',
  ];
  for (const s of sweeps) {
    const cap = s.cleanRuns.length > 0 ? median(s.cleanRuns.map((r) => r.goodput)) : NaN;
    const over = median(s.overloadRuns.map((r) => r.goodput));
    const overRate = s.overloadRuns[0]?.rate ?? NaN;
    const ratio = Number.isFinite(cap) ? over / cap : NaN;
    const mid = medianBy(s.cleanRuns, (r) => r.goodput);
    const loads = s.runs.map((r) => r.load1);
    const maxClean = s.maxClean === undefined ? `< ${LADDER[0]}` : `${s.clientLimited ? '≥ ' : ''}${fmt(s.maxClean)}`;
    rows.push(
      `| ${s.mode} | ${s.kind === 'new' ? 'new (range)' : `${REPEAT_CLIENTS} repeat (reserved)`} | ${s.server} | ${maxClean} | ${fmt(median(s.cleanRuns.map((r) => r.dropPct)), 3)} | ${fmt(over)} at ${fmt(overRate)} | ${Number.isFinite(ratio) ? `${(100 * ratio).toFixed(0)}%` : '–'} | ${Number.isFinite(ratio) ? (ratio >= 0.9 ? 'no' : 'yes') : '–'} | ${mid === undefined ? '–' : `${fmt(mid.cpuPer1k, 3)} (${fmt((100 * mid.sysS) / mid.cpuS)}% sys)`} | ${ratioCell(sweeps, s)} | ${fmt(Math.min(...loads), 2)}–${fmt(Math.max(...loads), 2)} |`,
    );
  }
  return rows.join('\n');
}

/** `legs`: the names of the exchange's two legs (DHCPv6: Solicit→Advertise, Request→Reply). */
export function latencyTable(
  lats: Latency[],
  legs: readonly [string, string] = ['DISCOVER→OFFER', 'REQUEST→ACK'],
): string {
  const rows = [
    `| clients | server | drop % | ${legs[0]} p50 / p99 (ms) | ${legs[1]} p50 / p99 (ms) | CPU s per 1k exch. | GC pauses in the window: count, total, longest (ms) | load1 |`,
    '|---|---|---:|---|---|---:|---|---:|',
  ];
  for (const l of lats) {
    const m = (f: (r: Latency['runs'][number]) => number) => median(l.runs.map(f));
    rows.push(
      `| ${l.kind === 'new' ? 'new (range)' : `${REPEAT_CLIENTS} repeat (reserved)`} | ${l.server} | ${fmt(
        m((r) => r.dropPct),
        3,
      )} | ${fmt(
        m((r) => r.offerP50),
        2,
      )} / ${fmt(
        m((r) => r.offerP99),
        2,
      )} | ${fmt(
        m((r) => r.ackP50),
        2,
      )} / ${fmt(
        m((r) => r.ackP99),
        2,
      )} | ${fmt(
        m((r) => r.cpuPer1k),
        3,
      )} (${fmt(m((r) => r.sysPct))}% sys) | ${
        l.runs[0]?.gc === undefined
          ? '–'
          : `${fmt(m((r) => r.gc!.count))}, ${fmt(
              m((r) => r.gc!.totalMs),
              1,
            )}, ${fmt(
              m((r) => r.gc!.maxMs),
              1,
            )}`
      } | ${fmt(Math.max(...l.runs.map((r) => r.load1)), 2)} |`,
    );
  }
  return rows.join('\n');
}

/**
 * A run's UDP receive-buffer overflows (UdpRcvbufErrors in each namespace), when there were any:
 * the server's socket (its own drops) and perfdhcp's (the load generator's).
 */
export function overflows(r: Pick<Run, 'srvRcvbufErrors' | 'cliRcvbufErrors'>): string {
  if (r.srvRcvbufErrors <= 0 && r.cliRcvbufErrors <= 0) return '';
  return ` [overflows: server ${fmt(r.srvRcvbufErrors)}, perfdhcp ${fmt(r.cliRcvbufErrors)}]`;
}

export function sweepDetail(sweeps: Sweep[]): string {
  const rows = [
    '| mode | clients | server | offered (/s): drop % (goodput /s) per run, in order |',
    '|---|---|---|---|',
  ];
  for (const s of sweeps) {
    rows.push(
      `| ${s.mode} | ${s.kind} | ${s.server} | ${s.runs.map((r) => `${fmt(r.rate)}: ${r.dropPct.toFixed(2)}% (${fmt(r.goodput)})${r.clientLimited ? '†' : ''}${overflows(r)}`).join(', ')} |`,
    );
  }
  return rows.join('\n');
}

export interface Targets {
  lines: string[];
  missed: boolean;
}

export function targets(sweeps: Sweep[], lats: Latency[]): Targets {
  const lines: string[] = [];
  let missed = false;
  for (const s of sweeps.filter((x) => x.server === 'metalboot')) {
    const kea = sweeps.find((k) => k.server === 'kea' && k.mode === s.mode && k.kind === s.kind);
    if (kea !== undefined && kea.maxClean !== undefined) {
      const ratio = (s.maxClean ?? 0) / kea.maxClean;
      const ok = ratio >= 2;
      missed ||= !ok;
      lines.push(
        `- ${s.mode}, ${s.kind} clients: max clean rate ${fmt(s.maxClean)}/s vs Kea ${fmt(kea.maxClean)}/s = ${ratio.toFixed(2)}× (target ≥ 2×): **${ok ? 'met' : 'missed'}**`,
      );
    }
    const cap = median(s.cleanRuns.map((r) => r.goodput));
    const over = median(s.overloadRuns.map((r) => r.goodput));
    if (Number.isFinite(cap) && cap > 0) {
      const ok = over / cap >= 0.9;
      missed ||= !ok;
      lines.push(
        `- ${s.mode}, ${s.kind} clients: goodput at 2× offered = ${((100 * over) / cap).toFixed(0)}% of capacity (target ≥ 90%): **${ok ? 'met' : 'missed'}**`,
      );
    }
  }
  for (const l of lats.filter((x) => x.server === 'metalboot' && x.kind === 'repeat')) {
    const p99 = median(l.runs.map((r) => Math.max(r.offerP99, r.ackP99)));
    const drops = median(l.runs.map((r) => r.lost));
    const ok = p99 < 5 && drops === 0;
    missed ||= !ok;
    lines.push(
      `- 1,000/s from ${REPEAT_CLIENTS} clients: p99 per leg ${fmt(p99, 2)} ms, ${fmt(drops)} lost exchanges (target p99 < 5 ms, zero drops): **${ok ? 'met' : 'missed'}**`,
    );
  }
  return { lines, missed };
}

/** `runName`: the run's directory under bench/out/, where the raw profile is. */
export function profileSection(p: Profile, runName: string): string {
  const s = p.summary;
  const { top, incl } = profileText(s);
  const groups = s.groups.map((g) => `${g.name} ${g.pct.toFixed(0)}%`).join(', ');
  return [
    `**${p.run.kind === 'new' ? 'New clients (range leases)' : `${REPEAT_CLIENTS} repeat clients (reservations)`}${p.flags.length > 0 ? `, V8 \`${p.flags.join(' ')}\` (callees keep their own names)` : ''}**: \`node --cpu-prof\` samples taken while perfdhcp ran (${p.run.mode}, offered ${fmt(p.run.rate)}/s for ${p.run.periodS} s: ${fmt(p.run.goodput)} ACKs/s, drop ${p.run.dropPct.toFixed(2)}%); ${(s.busyMs / 1000).toFixed(2)} s of JavaScript-thread time busy out of ${(s.totalMs / 1000).toFixed(2)} s. Raw profile: \`bench/out/${runName}/${p.file}\`.`,
    '',
    `By area (self time): ${groups}.`,
    '',
    '| function (self time) | where | ms | % of busy |',
    '|---|---|---:|---:|',
    top,
    '',
    `Inclusive (function and its callees): ${incl}.`,
  ].join('\n');
}

/** What the profiles say, in words; each claim is printed only when the figures show it. */
export function findings(profs: Profile[]): string[] {
  const out: string[] = [];
  const group = (p: Profile | undefined, prefix: string) =>
    p?.summary.groups.find((g) => g.name.startsWith(prefix))?.pct ?? 0;
  const incl = (p: Profile | undefined, name: string) => p?.summary.inclusive.find((e) => e.name === name)?.pct ?? 0;
  const topOf = (p: Profile, n: number) =>
    p.summary.top
      .slice(0, n)
      .map((e) => `${e.name} ${e.selfPct.toFixed(0)}%`)
      .join(', ');
  const areas = (p: Profile) =>
    p.summary.groups
      .filter((g) => g.pct >= 1)
      .map((g) => `${g.name} ${g.pct.toFixed(0)}%`)
      .join(', ');
  const newDefault = profs.find((p) => p.run.kind === 'new' && p.flags.length === 0);
  const newNoInline = profs.find((p) => p.run.kind === 'new' && p.flags.length > 0);
  const repeat = profs.find((p) => p.run.kind === 'repeat');
  if (newDefault !== undefined) {
    const store = group(newDefault, 'range lease store');
    const stats = incl(newNoInline, 'stats');
    if (stats >= 10) {
      out.push(
        `- **New clients: the range lease store is the bottleneck** (${store.toFixed(0)}% of busy time; with inlining off, \`LeasePool.stats()\` and its callees are ${stats.toFixed(0)}%). \`stats()\` walks every slot of the pool, so calling it per journal append makes each ACK cost O(leases held) and a storm slower as it goes (these runs start from an empty pool).`,
      );
    } else {
      out.push(
        `- **New clients**: the range lease store (journal writes, fdatasync, pool) is ${store.toFixed(0)}% of busy time${newNoInline !== undefined ? ` (\`LeasePool.stats()\` ${stats.toFixed(1)}% with inlining off)` : ''}. By area: ${areas(newDefault)}. Top functions: ${topOf(newDefault, 6)}.`,
      );
    }
  }
  if (repeat !== undefined) {
    out.push(`- **Reserved hosts (no journal)**: by area: ${areas(repeat)}. Top functions: ${topOf(repeat, 6)}.`);
  }
  return out;
}

// ───────────────────────────── the section ─────────────────────────────

/** Everything the `## DHCP` section says, gathered by bench/dhcp.ts. */
export interface DhcpReport {
  readonly settings: DhcpSettings;
  readonly startedMs: number;
  readonly elapsedS: number;
  /** The run's directory under bench/out/ (dhcp-<time>). */
  readonly runName: string;
  readonly machine: Machine;
  /** Filesystem of the servers' lease files (filesystemOf). */
  readonly leaseFilesystem: string;
  readonly loadThreshold: number;
  readonly quietSpentS: number;
  readonly versions: {
    readonly metalboot: string;
    readonly node: string;
    readonly kea: string;
    readonly dnsmasq: string;
    readonly perfdhcp: string;
  };
  readonly peers: Readonly<Record<PeerName, { readonly configSummary: string; readonly durability: string }>>;
  /** What checkReservationMacs found. */
  readonly macCheck: string;
  readonly sweeps: Sweep[];
  readonly lats: Latency[];
  readonly profs: Profile[];
  readonly readyMs: Partial<Record<PeerName, number[]>>;
}

/** The body of `## DHCP` (without the heading). */
export function dhcpSection(r: DhcpReport): string {
  const st = r.settings;
  const t = targets(r.sweeps, r.lats);
  const cmd = `sudo node --import tsx bench/dhcp.ts${st.quick ? ' --quick' : ''}`;
  const sample = perfdhcpArgs({
    mode: 'relay',
    rate: 5000,
    periodS: st.periodS,
    macBase: NET.newMacBase,
    clients: NET.newClients,
    ifname: 'eth0',
    localIp: NET.clientIp,
    serverIp: NET.serverIp,
    threads: st.threads,
  });
  const sampleB = perfdhcpArgs({
    mode: 'broadcast',
    rate: 1000,
    periodS: st.latencyPeriodS,
    macBase: NET.reservedMacBase,
    clients: REPEAT_CLIENTS,
    ifname: 'eth0',
    localIp: NET.clientIp,
    serverIp: NET.serverIp,
    threads: st.threads,
    timestamps: true,
  });
  const loads = [
    ...r.sweeps.flatMap((s) => s.runs.map((x) => x.load1)),
    ...r.lats.flatMap((l) => l.runs.map((x) => x.load1)),
  ];
  return [
    `Measured ${new Date(r.startedMs).toISOString().slice(0, 16).replace('T', ' ')} UTC by \`${cmd}\` (${Math.round(r.elapsedS / 60)} min${st.quick ? '; quick mode: single runs, broadcast only' : ''}). Raw output: \`bench/out/${r.runName}/\`.`,
    '',
    `**Machine**: ${r.machine.nproc} CPUs (${r.machine.cpuModel}), ${r.machine.memGiB} GiB, Linux ${r.machine.kernel}; lease files on ${r.leaseFilesystem}. Load (1-min average) at the start of the measured runs: ${fmt(Math.min(...loads), 2)}–${fmt(Math.max(...loads), 2)}${Math.max(...loads) >= r.loadThreshold ? ` — **not a quiet machine** (other work was running; the script waited up to ${st.quietWaitS} s per sweep, ${r.quietSpentS} s in all, then measured anyway): treat absolute figures as lower bounds; the three servers saw the same conditions in turn` : ''}.`,
    '',
    `**Versions**: metalboot ${r.versions.metalboot}; Node.js ${r.versions.node}; ${r.versions.kea}; ${r.versions.dnsmasq}; ${r.versions.perfdhcp}.`,
    '',
    "**Set-up**: two network namespaces, the server's holding a bridge (10.16.0.1/12) and the client's a veth into it (10.16.0.2/12). Server pinned to CPU 0 (`taskset -c 0`), perfdhcp to CPU 1. Each server has the same 10,000 reservations (MAC → IP, 10.17.0.10 …), the range 10.20.0.1 – 10.27.255.254, router 10.16.0.1, DNS 10.16.0.53, lease time 3,600 s, and per-packet logging off.",
    '',
    `- metalboot: ${r.peers.metalboot.configSummary}. Durability: ${r.peers.metalboot.durability}.`,
    `- Kea: ${r.peers.kea.configSummary}. Durability: ${r.peers.kea.durability}.`,
    `- dnsmasq: ${r.peers.dnsmasq.configSummary}. Durability: ${r.peers.dnsmasq.durability}.`,
    '',
    `**Load**: perfdhcp ${st.threads === 'multi' ? '`-g multi`' : "`-g single` (one thread: with `-g multi` on its one CPU, perfdhcp's receiving thread waits for the sending one and its own socket overflows, which counted as the server's loss)"}, e.g. \`perfdhcp ${sample.join(' ')}\` (relay: unicast to the server) and \`perfdhcp ${sampleB.join(' ')}\` (broadcast, latency). perfdhcp 2.2 makes every request relay-shaped (source port 67, giaddr = 10.16.0.2, hops 1), so in both modes the replies are unicast to 10.16.0.2:67; "broadcast" means the requests go to 255.255.255.255. New clients: \`-b mac=${NET.newMacBase} -R ${NET.newClients}\` (MACs counting up from the base in every run, each gets a range lease; new-client runs restart the server with an empty lease database). Repeat clients: \`-b mac=${NET.reservedMacBase} -R ${REPEAT_CLIENTS}\`: perfdhcp 2.2 adds a counter that wraps at R to the low bytes of the base MAC, so these are exactly the first ${REPEAT_CLIENTS} reservations (checked: ${r.macCheck}).`,
    '',
    `**Method**: a run offers a rate for ${st.periodS} s (\`-p\`), a request unanswered after 1 s is lost (\`-d 1\`), perfdhcp waits 1 s for stragglers (\`-W\`). Drop % = exchanges started (DISCOVER sent) that did not end in an ACK within 1 s per leg; exchanges perfdhcp itself did not continue because their OFFER came after the period ended are left out. The sweep starts at 1,000/s and walks the ladder ${LADDER.map((x) => fmt(x)).join(', ')}/s up (or down), ${st.quick ? '' : 'bisects the edge once, '}then runs the best clean rate (median drop < 0.1%) and twice that rate until each has ${st.runs} run${st.runs > 1 ? 's' : ''}; figures are medians. A step that loses fewer than ${NEAR_MISS_PCT}% is run once more before the sweep stops there (another tenant's burst should not end a sweep). Every freshly started server is warmed up first with ${WARMUP_S} s of the same traffic at up to ${fmt(WARMUP_RATE)}/s and a 1 s pause (JIT-compiled packet path, start-up garbage collected), so cold start is not measured. Goodput = ACKs per second. CPU = the server's utime+stime (/proc/<pid>/stat) over the run per 1,000 completed exchanges, at the max clean rate, with the kernel's (stime) share; it includes the server's socket syscalls, not the softirq work of the veth. "≥" marks a rate where perfdhcp itself could not offer more (sent < 97% of the offered rate).`,
    '',
    '### Rates',
    '',
    sweepTable(r.sweeps),
    '',
    '### Latency at 1,000/s (broadcast)',
    '',
    `${Math.max(st.runs, 1)} run${st.runs > 1 ? 's' : ''} of ${st.latencyPeriodS} s per row, percentiles from perfdhcp's per-exchange timestamps (\`-x t\`), medians over runs. Repeat clients are answered from reservations; new clients each get a range lease (for metalboot that includes the fdatasync before the ACK). metalboot runs these with \`--trace-gc\`; the GC column is the median over runs of the V8 pauses inside the measured ${st.latencyPeriodS} s (every pause stops the event loop, and every request queued behind it waits).`,
    '',
    latencyTable(r.lats),
    '',
    '### Targets',
    '',
    ...(t.lines.length > 0 ? t.lines : ['- not evaluated (metalboot or Kea not in this run)']),
    '',
    ...(r.profs.length > 0
      ? [
          '### What limits metalboot',
          '',
          ...findings(r.profs),
          '',
          ...r.profs.flatMap((p) => [profileSection(p, r.runName), '']),
        ]
      : []),
    '### Start-up',
    '',
    `Time from spawning the server to its first completed exchange (readiness probe, 10 exchanges/s), median (max) over every start in this run: ${st.servers.map((sv) => `${sv} ${fmt(median(r.readyMs[sv] ?? []) / 1000, 1)} s (${fmt(Math.max(...(r.readyMs[sv] ?? [NaN])) / 1000, 1)} s, ${(r.readyMs[sv] ?? []).length} starts)`).join('; ')}. metalboot loads 10,000 hosts from its hosts file; Kea parses 10,000 reservations from JSON; dnsmasq reads its hosts file.`,
    '',
    '### Every run',
    '',
    "† perfdhcp could not offer the rate. [overflows: …]: datagrams the kernel dropped because a socket's receive buffer was full during the run (UdpRcvbufErrors), in the server's namespace (the server's drops) and in perfdhcp's (the load generator's).",
    '',
    sweepDetail(r.sweeps),
  ].join('\n');
}
