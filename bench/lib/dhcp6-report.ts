/**
 * The `## DHCPv6` section of bench/RESULTS.md: metalboot vs Kea per mode and client kind, the
 * highest clean rate with the spread of the runs at it, latency at a fixed rate, CPU, and the
 * ratios metalboot / Kea. Pure; the records are DHCPv4's (dhcp-report.ts), measured by the same
 * code (dhcp-runs.ts).
 */
import { NET6 } from './dhcp6-peers.js';
import {
  CLEAN_DROP_PCT,
  LADDER,
  latencyTable,
  REPEAT_CLIENTS,
  sweepDetail,
  type DhcpSettings,
  type Kind,
  type Latency,
  type Run,
  type Sweep,
} from './dhcp-report.js';
import type { Machine } from './machine.js';
import { perfdhcp6Args } from './perfdhcp.js';
import { fmt, median, medianBy } from './stats.js';

export const LEGS6 = ['Solicit→Advertise', 'Request→Reply'] as const;

/** `median (min–max)` of `values`, or just the value when they are all equal; – for none. */
export function spread(values: readonly number[], digits = 0): string {
  if (values.length === 0) return '–';
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const mid = fmt(median(values), digits);
  return fmt(lo, digits) === fmt(hi, digits) ? mid : `${mid} (${fmt(lo, digits)}–${fmt(hi, digits)})`;
}

/** a / b as `1.23×`; – when either is missing or b is 0. */
export function ratio(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return '–';
  return `${(a / b).toFixed(2)}×`;
}

/** The ratio of two sets of runs as `lo–hi×`: the smallest a over the largest b, and the other way. */
export function ratioRange(a: readonly number[], b: readonly number[]): string {
  if (a.length === 0 || b.length === 0 || Math.min(...b) <= 0) return '–';
  return `${(Math.min(...a) / Math.max(...b)).toFixed(2)}–${(Math.max(...a) / Math.min(...b)).toFixed(2)}×`;
}

const kindText = (k: Kind): string => (k === 'new' ? 'new (range)' : `${REPEAT_CLIENTS} repeat (reserved)`);

/** The lowest rate above the clean one that was run: where the sweep stopped. */
function nextUp(s: Sweep): Run[] {
  const above = s.runs.filter((r) => r.rate > (s.maxClean ?? 0));
  if (above.length === 0) return [];
  const rate = Math.min(...above.map((r) => r.rate));
  return above.filter((r) => r.rate === rate);
}

export function rates6Table(sweeps: readonly Sweep[]): string {
  const rows = [
    '| mode | clients | server | max clean rate (/s) | runs at it | drop % at it | Replies/s at it | next rate up: drop % | CPU s per 1k exchanges at it | load1 |',
    '|---|---|---|---:|---:|---|---|---|---:|---:|',
  ];
  for (const s of sweeps) {
    const up = nextUp(s);
    const mid = medianBy(s.cleanRuns, (r) => r.goodput);
    const loads = s.runs.map((r) => r.load1);
    const maxClean =
      s.maxClean === undefined ? `< ${fmt(LADDER[0])}` : `${s.clientLimited ? '≥ ' : ''}${fmt(s.maxClean)}`;
    rows.push(
      `| ${s.mode} | ${kindText(s.kind)} | ${s.server} | ${maxClean} | ${s.cleanRuns.length} | ${spread(
        s.cleanRuns.map((r) => r.dropPct),
        3,
      )} | ${spread(s.cleanRuns.map((r) => r.goodput))} | ${
        up.length === 0
          ? '–'
          : `${fmt(up[0]!.rate)}: ${spread(
              up.map((r) => r.dropPct),
              2,
            )}`
      } | ${mid === undefined ? '–' : `${fmt(mid.cpuPer1k, 3)} (${fmt((100 * mid.sysS) / mid.cpuS)}% sys)`} | ${fmt(Math.min(...loads), 2)}–${fmt(Math.max(...loads), 2)} |`,
    );
  }
  return rows.join('\n');
}

/** metalboot / Kea for every measure both have: rates and CPU per mode and kind, latency per kind. */
export function ratios6Table(sweeps: readonly Sweep[], lats: readonly Latency[], latencyMode: string): string {
  const rows = ['| measure | mode | clients | metalboot | Kea | metalboot / Kea |', '|---|---|---|---:|---:|---:|'];
  const pairs = new Map<string, { m?: Sweep; k?: Sweep }>();
  for (const s of sweeps) {
    const key = `${s.mode}|${s.kind}`;
    const p = pairs.get(key) ?? {};
    if (s.server === 'metalboot') p.m = s;
    if (s.server === 'kea') p.k = s;
    pairs.set(key, p);
  }
  for (const [key, { m, k }] of pairs) {
    if (m === undefined || k === undefined) continue;
    const [mode, kind] = key.split('|') as [string, Kind];
    const rate = (s: Sweep) => (s.maxClean === undefined ? `< ${fmt(LADDER[0])}` : fmt(s.maxClean));
    const good = (s: Sweep) => s.cleanRuns.map((r) => r.goodput);
    rows.push(
      `| max clean rate (/s); Replies/s over the runs at it | ${mode} | ${kindText(kind)} | ${rate(m)}; ${spread(good(m))} | ${rate(k)}; ${spread(good(k))} | ${ratio(m.maxClean, k.maxClean)}; ${ratioRange(good(m), good(k))} |`,
    );
    const cpu = (s: Sweep) => s.cleanRuns.map((r) => r.cpuPer1k);
    rows.push(
      `| CPU s per 1k exchanges at the max clean rate | ${mode} | ${kindText(kind)} | ${spread(cpu(m), 3)} | ${spread(cpu(k), 3)} | ${ratio(median(cpu(m)), median(cpu(k)))} |`,
    );
  }
  for (const kind of ['repeat', 'new'] as const) {
    const m = lats.find((l) => l.server === 'metalboot' && l.kind === kind);
    const k = lats.find((l) => l.server === 'kea' && l.kind === kind);
    if (m === undefined || k === undefined) continue;
    const measures: [string, (r: Latency['runs'][number]) => number, number][] = [
      [`${LEGS6[0]} p50 (ms) at 1,000/s`, (r) => r.offerP50, 2],
      [`${LEGS6[0]} p99 (ms) at 1,000/s`, (r) => r.offerP99, 2],
      [`${LEGS6[1]} p50 (ms) at 1,000/s`, (r) => r.ackP50, 2],
      [`${LEGS6[1]} p99 (ms) at 1,000/s`, (r) => r.ackP99, 2],
      ['CPU s per 1k exchanges at 1,000/s', (r) => r.cpuPer1k, 3],
    ];
    for (const [name, f, digits] of measures) {
      const a = m.runs.map(f);
      const b = k.runs.map(f);
      rows.push(
        `| ${name} | ${latencyMode} | ${kindText(kind)} | ${spread(a, digits)} | ${spread(b, digits)} | ${ratio(median(a), median(b))} |`,
      );
    }
  }
  return rows.join('\n');
}

/** Everything the `## DHCPv6` section says, gathered by bench/dhcp6.ts. */
export interface Dhcp6Report {
  readonly settings: DhcpSettings;
  readonly startedMs: number;
  readonly elapsedS: number;
  readonly runName: string;
  readonly machine: Machine;
  readonly leaseFilesystem: string;
  readonly loadThreshold: number;
  readonly quietSpentS: number;
  readonly versions: {
    readonly metalboot: string;
    readonly node: string;
    readonly kea: string;
    readonly perfdhcp: string;
  };
  readonly peers: Readonly<
    Record<'metalboot' | 'kea', { readonly configSummary: string; readonly durability: string }>
  >;
  /** One line per check run (checkClients6). */
  readonly clientChecks: readonly string[];
  readonly latencyMode: string;
  readonly sweeps: readonly Sweep[];
  readonly lats: readonly Latency[];
  readonly readyMs: Partial<Record<'metalboot' | 'kea', number[]>>;
  /** The command line, as run. */
  readonly command: string;
}

/** The body of `## DHCPv6` (without the heading). */
export function dhcp6Section(r: Dhcp6Report): string {
  const st = r.settings;
  const example = (mode: 'direct' | 'relay', base: string, clients: number, rate: number, extra: object = {}) =>
    `\`perfdhcp ${perfdhcp6Args({ mode, rate, periodS: st.periodS, macBase: base, clients, ifname: 'eth0', localIp: NET6.clientIp, serverIp: NET6.serverIp, threads: st.threads, ...extra }).join(' ')}\``;
  const loads = [
    ...r.sweeps.flatMap((s) => s.runs.map((x) => x.load1)),
    ...r.lats.flatMap((l) => l.runs.map((x) => x.load1)),
  ];
  const busy = loads.length > 0 && Math.max(...loads) >= r.loadThreshold;
  return [
    `Measured ${new Date(r.startedMs).toISOString().slice(0, 16).replace('T', ' ')} UTC by \`${r.command}\` (${Math.round(r.elapsedS / 60)} min${st.quick ? '; quick mode' : ''}). Raw output: \`bench/out/${r.runName}/\`.`,
    '',
    `**Machine**: ${r.machine.nproc} CPUs (${r.machine.cpuModel}), ${r.machine.memGiB} GiB, Linux ${r.machine.kernel}; lease files on ${r.leaseFilesystem}. Load (1-min average) at the start of the measured runs: ${loads.length === 0 ? '–' : `${fmt(Math.min(...loads), 2)}–${fmt(Math.max(...loads), 2)}`}${busy ? ` — **not a quiet machine** (other work was running; the script waited ${r.quietSpentS} s in all for a quiet one, then measured anyway): treat absolute figures as lower bounds; both servers saw the same conditions in turn, so the ratios say more than the rates` : ''}.`,
    '',
    `**Versions**: metalboot ${r.versions.metalboot}; Node.js ${r.versions.node}; ${r.versions.kea}; ${r.versions.perfdhcp}.`,
    '',
    `**Set-up**: two network namespaces, the server's holding a bridge (br0: ${NET6.serverCidr}, link-local ${NET6.serverLinkLocal}) and the client's a veth into it (${NET6.clientCidr}, ${NET6.clientLinkLocal}); addresses set by hand without DAD. Server pinned to CPU 0 (\`taskset -c 0\`), perfdhcp to CPU 1. Both servers have the same 10,000 reservations (reservation i: MAC 02:5a:00:00:00:00 + i, DUID-LL of that MAC, address fd00:6::5a:0 + i), the range ${NET6.rangeStart} – ${NET6.rangeEnd}, DNS ${NET6.dns}, lifetimes ${NET6.leaseSeconds} s, per-packet logging off.`,
    '',
    `- metalboot: ${r.peers.metalboot.configSummary}. Durability: ${r.peers.metalboot.durability}.`,
    `- Kea: ${r.peers.kea.configSummary}. Durability: ${r.peers.kea.durability}.`,
    '',
    `**Load**: perfdhcp 2.2 \`-6\`, four messages per exchange (Solicit, Advertise, Request, Reply; no Rapid Commit). Direct: ${example('direct', NET6.newMacBase, NET6.newClients, 2000)} (Solicits to ff02::1:2 out of eth0; perfdhcp sends from the interface's first IPv6 address, here the global ${NET6.clientIp}). Relay: ${example('relay', NET6.reservedMacBase, REPEAT_CLIENTS, 2000)} (Relay-forward with link- and peer-address ${NET6.clientIp}, unicast to the server's port 547). New clients: \`-b mac=${NET6.newMacBase} -R ${NET6.newClients}\`, each exchange the next MAC of the range (perfdhcp 2.2's MAC generator counts up from the base; warm-ups use 02:6f:… so the measured run's clients are all new); new-client runs restart the server with an empty lease database. Repeat clients: the first ${REPEAT_CLIENTS} reservations in turn.`,
    '',
    `**Which MAC metalboot sees**: perfdhcp puts the client's MAC only into its DUID (the DUID template's last six bytes; \`-b duid=00030001<MAC>\` makes it a DUID-LL that is the same in every run) and sends no option 79. metalboot takes a client's MAC from option 79, else from an EUI-64 link-local source (or relay peer-address), else from a DUID-LL/LLT. With the kernel's EUI-64 link-local as perfdhcp's only address, every simulated client arrives from that one address, so metalboot sees one MAC (the client namespace's NIC) for all of them${r.clientChecks.some((l) => l.includes('EUI-64')) ? ' (first line below)' : ''}; hence the hand-set addresses, with which the MAC comes from the DUID-LL. Checked before measuring (perfdhcp \`-x l\`):`,
    '',
    ...r.clientChecks.map((c) => `- ${c}`),
    '',
    `**Method**: as the DHCP benchmark's (\`## DHCP\`): a run offers a rate for ${st.periodS} s, a request unanswered after 1 s is lost, drop % = exchanges started (Solicit sent) that did not end in a Reply (Advertises that came after the period and got no Request are left out). The sweep walks the ladder ${LADDER.map((x) => fmt(x)).join(', ')}/s up (or down) from 1,000/s${st.quick ? '' : ', bisects the edge once'}, then runs the highest clean rate (median drop < ${CLEAN_DROP_PCT}%) until it has ${st.runs} run${st.runs === 1 ? '' : 's'}, stepping down when the median is not clean. Every freshly started server is first warmed up (1 s at up to 1,000/s, then a 1 s pause). CPU = the server's utime+stime from /proc over the run per 1,000 completed exchanges. "Spread" cells are the median (min–max) over the runs at that rate; the ratio range under the max clean rate divides the Replies/s of the runs (smallest by largest, and largest by smallest).`,
    '',
    '### Rates',
    '',
    rates6Table(r.sweeps),
    '',
    ...(r.sweeps.some((s) => s.maxClean !== undefined && s.cleanRuns.length < st.runs)
      ? [
          `A row with fewer than ${st.runs} runs at its max clean rate: the sweep stepped down three times without a clean median and stopped; the rate below stands on the runs the ladder gave it, unconfirmed.`,
          '',
        ]
      : []),
    `### Latency at 1,000/s (${r.latencyMode})`,
    '',
    `${Math.max(st.runs, 1)} run${st.runs === 1 ? '' : 's'} of ${st.latencyPeriodS} s per row on a freshly started server, percentiles from perfdhcp's per-exchange timestamps (\`-x t\`), medians over runs; metalboot with \`--trace-gc\` (GC pauses inside the window).`,
    '',
    latencyTable([...r.lats], LEGS6),
    '',
    '### metalboot / Kea',
    '',
    ratios6Table(r.sweeps, r.lats, r.latencyMode),
    '',
    '### Start-up',
    '',
    `Spawn to the first answered probe (one relayed exchange for reservation 0), median (max): ${(
      ['metalboot', 'kea'] as const
    )
      .filter((s) => (r.readyMs[s] ?? []).length > 0)
      .map(
        (s) =>
          `${s} ${fmt(median(r.readyMs[s]!) / 1000, 1)} s (${fmt(Math.max(...r.readyMs[s]!) / 1000, 1)} s, ${r.readyMs[s]!.length} starts)`,
      )
      .join('; ')}.`,
    '',
    '### Every run',
    '',
    '† perfdhcp could not offer the rate.',
    '',
    sweepDetail([...r.sweeps]),
  ].join('\n');
}
