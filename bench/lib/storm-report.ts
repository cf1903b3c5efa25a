/**
 * Turns one boot-storm run (the client's per-host results, the server's counters, the
 * stand-in httpd's counters) into a row, the markdown tables and the issue-9 target verdicts.
 * Pure.
 */
import { PHASES, type HostResult, type Phase } from './storm-host.js';
import type { ClientResult } from '../boot-storm-client.js';
import type { UpstreamStats } from '../boot-storm-upstream.js';
import { STORM_ARTIFACTS } from './storm-net.js';
import { profileText, type ProfileSummary } from './cpuprofile.js';
import { fmt, quantile } from './stats.js';

export interface Percentiles {
  readonly n: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

export interface ServerSample {
  /** ms since the storm started. */
  readonly atMs: number;
  /** `metalboot_nodejs_eventloop_lag_p99_seconds` of the window since the previous scrape, ms. */
  readonly eldP99Ms: number;
  readonly rssMiB: number;
}

/** The event-loop delay histogram of the whole storm (a preload in the metalboot process). */
export interface EventLoopWindow {
  readonly ms: number;
  readonly count: number;
  readonly p50: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
  readonly mean: number;
}

export interface ServerMeasure {
  readonly cpuUserS: number;
  readonly cpuSysS: number;
  /** Time metalboot's main thread was runnable but waiting for CPU 0 (other work on the machine). */
  readonly runDelayS: number;
  /** Peak resident set of the main process (DHCP, TFTP, scripts, the cache book). */
  readonly hwmMiB: number;
  /** Peak resident set of each image worker process, at the end of the storm. */
  readonly workerHwmMiB: readonly number[];
  /** CPU seconds (user + sys) of the image worker processes over the storm. */
  readonly workerCpuS: number;
  /** Resident set once started, before the storm. */
  readonly rssStartMiB: number;
  readonly rssEndMiB: number;
  readonly eld: EventLoopWindow | undefined;
  readonly samples: readonly ServerSample[];
  /** Non-zero counters of interest from the final /metrics. */
  readonly counters: Readonly<Record<string, number>>;
}

export interface ArtifactFetches {
  /** GETs without validators: full downloads from the upstream. */
  readonly full: number;
  readonly conditional: number;
  readonly notModified: number;
  /** Body bytes of complete 200/206 answers. */
  readonly bodyBytes: number;
}

export interface RunRow {
  readonly hosts: number;
  readonly cache: boolean;
  readonly profiled: boolean;
  readonly ok: number;
  readonly failed: number;
  readonly failures: Readonly<Record<string, number>>;
  readonly phases: Readonly<Record<Phase, Percentiles>>;
  /** DHCP + TFTP per host: the firmware stage. */
  readonly firmware: Percentiles;
  readonly total: Percentiles;
  readonly resends: Readonly<Record<Phase, number>>;
  /** Hosts that needed at least one resend in the phase. */
  readonly hostsResending: Readonly<Record<Phase, number>>;
  readonly wallS: number;
  readonly clientCpuS: number;
  readonly clientRunDelayS: number;
  readonly clientBytes: number;
  /** From the first power-on to the last host's last initramfs byte, s. */
  readonly imagesDoneS: number;
  /** Image bytes to the hosts per second, from the first image request to the last byte (10^6 bytes/s). */
  readonly imageMBps: number;
  readonly upstream: Readonly<Record<'kernel' | 'initramfs', ArtifactFetches>>;
  readonly upstreamWireBytes: number;
  readonly upstreamCpuS: number;
  readonly server: ServerMeasure;
  readonly dhcpMux: ClientResult['dhcp'];
  readonly load1Before: number;
  readonly load1After: number;
  readonly hitDeadline: boolean;
  /** The client's own event-loop delay p99 (DHCP/TFTP thread, HTTP worker), ms. */
  readonly clientEldP99: { readonly main: number; readonly http: number };
  /** Kernel counters over the storm, per namespace, and softnet backlog drops (whole machine). */
  readonly net: NetDelta;
}

export interface NetDelta {
  readonly srv: Readonly<Record<string, number>>;
  readonly cli: Readonly<Record<string, number>>;
  readonly softnetDrops: number;
}

function pct(values: readonly number[]): Percentiles {
  const v = values.filter((x) => Number.isFinite(x));
  return { n: v.length, p50: quantile(v, 0.5), p99: quantile(v, 0.99), max: v.length === 0 ? NaN : Math.max(...v) };
}

function fetches(s: UpstreamStats | undefined, s0: UpstreamStats | undefined, path: string): ArtifactFetches {
  const a = s?.paths[path];
  const b = s0?.paths[path];
  const d = (f: (p: NonNullable<typeof a>) => number): number =>
    a === undefined ? 0 : f(a) - (b === undefined ? 0 : f(b));
  const conditional = d((p) => p.conditional);
  return {
    full: d((p) => p.gets) - conditional,
    conditional,
    notModified: d((p) => p.status['304'] ?? 0),
    bodyBytes: d((p) => p.bodyBytes),
  };
}

export function summariseRun(o: {
  hosts: number;
  cache: boolean;
  profiled: boolean;
  client: ClientResult;
  net: NetDelta;
  upstreamBefore: UpstreamStats | undefined;
  upstreamAfter: UpstreamStats | undefined;
  server: ServerMeasure;
  load1Before: number;
  load1After: number;
}): RunRow {
  const hs: readonly HostResult[] = o.client.hosts;
  const ok = hs.filter((h) => h.ok);
  const failures: Record<string, number> = {};
  for (const h of hs.filter((x) => !x.ok)) {
    const key = `${h.failedPhase ?? '?'}: ${(h.error ?? '').replace(/\d+(\.\d+)?/g, 'N').slice(0, 120)}`;
    failures[key] = (failures[key] ?? 0) + 1;
  }
  const phases = Object.fromEntries(PHASES.map((p) => [p, pct(hs.map((h) => h.phases[p]?.ms ?? NaN))])) as Record<
    Phase,
    Percentiles
  >;
  const resends = Object.fromEntries(
    PHASES.map((p) => [p, hs.reduce((sum, h) => sum + (h.phases[p]?.resends ?? 0), 0)]),
  ) as Record<Phase, number>;
  const hostsResending = Object.fromEntries(
    PHASES.map((p) => [p, hs.filter((h) => (h.phases[p]?.resends ?? 0) > 0).length]),
  ) as Record<Phase, number>;
  const upstream = {
    kernel: fetches(o.upstreamAfter, o.upstreamBefore, STORM_ARTIFACTS.kernel),
    initramfs: fetches(o.upstreamAfter, o.upstreamBefore, STORM_ARTIFACTS.initramfs),
  };
  const totalWire = (s: UpstreamStats | undefined): number => s?.wireBytes ?? NaN;
  const cpu = (s: UpstreamStats | undefined): number => (s === undefined ? 0 : s.cpuUserS + s.cpuSysS);
  return {
    hosts: o.hosts,
    cache: o.cache,
    profiled: o.profiled,
    ok: ok.length,
    failed: hs.length - ok.length,
    failures,
    phases,
    firmware: pct(hs.map((h) => (h.phases.dhcp?.ms ?? NaN) + (h.phases.tftp?.ms ?? NaN))),
    total: pct(ok.map((h) => h.totalMs ?? NaN)),
    resends,
    hostsResending,
    wallS: o.client.wallMs / 1000,
    clientCpuS: o.client.cpuUserS + o.client.cpuSysS,
    clientRunDelayS: o.client.runDelayS,
    clientBytes: hs.reduce((sum, h) => sum + h.imageBytes, 0),
    ...imageWindow(hs),
    upstream,
    upstreamWireBytes: totalWire(o.upstreamAfter) - totalWire(o.upstreamBefore),
    upstreamCpuS: cpu(o.upstreamAfter) - cpu(o.upstreamBefore),
    server: o.server,
    dhcpMux: o.client.dhcp,
    load1Before: o.load1Before,
    load1After: o.load1After,
    hitDeadline: o.client.hitDeadline,
    clientEldP99: { main: o.client.clientEld.main.p99, http: o.client.clientEld.http.p99 },
    net: o.net,
  };
}

/** When the image phase began and ended over all hosts, and the bytes per second it moved. */
function imageWindow(hs: readonly HostResult[]): { imagesDoneS: number; imageMBps: number } {
  const first = Math.min(...hs.map((h) => h.startMs));
  const imgStart = Math.min(
    ...hs.map((h) => (h.phases.images === undefined ? Infinity : h.startMs + h.phases.images.startMs)),
  );
  const done = Math.max(...hs.map((h) => (h.totalMs === undefined ? -Infinity : h.startMs + h.totalMs)));
  const bytes = hs.reduce((sum, h) => sum + h.imageBytes, 0);
  if (!Number.isFinite(done) || !Number.isFinite(imgStart)) return { imagesDoneS: NaN, imageMBps: NaN };
  return { imagesDoneS: (done - first) / 1000, imageMBps: bytes / 1e6 / ((done - imgStart) / 1000) };
}

// ───────────────────────────── targets ─────────────────────────────

export const TARGETS = {
  successPct: 100,
  firmwareP99S: 5,
  rssMiB: 256,
  eldP99Ms: 20,
} as const;

export interface Verdict {
  readonly name: string;
  readonly value: string;
  readonly met: boolean;
}

export function verdicts(r: RunRow): Verdict[] {
  const v: Verdict[] = [];
  const success = (100 * r.ok) / r.hosts;
  v.push({ name: 'success 100%', value: `${fmt(success, success === 100 ? 0 : 1)}%`, met: r.failed === 0 });
  const dhcp = r.phases.dhcp.p99 / 1000;
  const tftp = r.phases.tftp.p99 / 1000;
  const fw = r.firmware.p99 / 1000;
  v.push({
    name: 'DHCP+TFTP p99 < 5 s',
    value: `DHCP ${fmt(dhcp, 2)} s, TFTP ${fmt(tftp, 2)} s, together ${fmt(fw, 2)} s`,
    met: fw < TARGETS.firmwareP99S,
  });
  v.push({ name: 'RSS < 256 MB', value: `${fmt(r.server.hwmMiB)} MiB`, met: r.server.hwmMiB < TARGETS.rssMiB });
  const eld = r.server.eld?.p99;
  v.push({
    name: 'event-loop delay p99 < 20 ms',
    value: eld === undefined ? 'not measured' : `${fmt(eld, 1)} ms`,
    met: eld !== undefined && eld < TARGETS.eldP99Ms,
  });
  if (r.cache) {
    const k = r.upstream.kernel.full;
    const i = r.upstream.initramfs.full;
    v.push({
      name: 'cache: one upstream download per artifact',
      value: `kernel ${k}, initramfs ${i}`,
      met: k === 1 && i === 1,
    });
  }
  return v;
}

// ───────────────────────────── tables ─────────────────────────────

const s2 = (ms: number): string => fmt(ms / 1000, 2);
const pp = (p: Percentiles): string => `${s2(p.p50)} / ${s2(p.p99)}`;
const mb = (bytes: number): string => fmt(bytes / 1e6, bytes >= 1e8 ? 0 : 1);

export function phaseTable(rows: readonly RunRow[]): string {
  const out = [
    '| hosts | image cache | booted | DHCP (firmware) | TFTP snponly.efi | DHCP (iPXE) | boot.ipxe + host script | kernel + initramfs | power-on → initramfs | storm (s) | last initramfs byte (s) | image MB/s at the server |',
    '|--:|---|--:|---|---|---|---|---|---|--:|--:|--:|',
  ];
  for (const r of rows) {
    out.push(
      `| ${r.hosts} | ${r.cache ? 'on' : 'off'}${r.profiled ? ' (cpu-prof)' : ''} | ${r.ok}/${r.hosts} | ${pp(r.phases.dhcp)} | ${pp(r.phases.tftp)} | ${pp(r.phases.ipxeDhcp)} | ${pp(r.phases.scripts)} | ${pp(r.phases.images)} | ${pp(r.total)} | ${fmt(r.wallS, 1)} | ${fmt(r.imagesDoneS, 1)} | ${fmt(r.imageMBps, 0)} |`,
    );
  }
  return out.join('\n');
}

export function serverTable(rows: readonly RunRow[]): string {
  const out = [
    '| hosts | image cache | upstream GETs kernel / initramfs (full + revalidations) | upstream MB | MB to hosts | metalboot main RSS before → peak (MiB) | image workers peak RSS (MiB) | event-loop delay p50 / p99 / max (ms) | worst 1-s window p99 (ms) | metalboot CPU s (main, image workers) | metalboot waiting for CPU (s) | client CPU s (waiting) | client loop p99 (ms): DHCP/TFTP, HTTP | httpd CPU s | resends: DHCP fw / TFTP / DHCP iPXE / HTTP | TCP retrans. srv / cli | UDP rcvbuf drops srv / cli | load1 before → after |',
    '|--:|---|---|--:|--:|--:|--:|---|--:|---|--:|---|---|--:|---|---|---|---|',
  ];
  for (const r of rows) {
    const f = (a: ArtifactFetches): string => `${a.full}${a.conditional > 0 ? ` + ${a.conditional}` : ''}`;
    const eld = r.server.eld;
    const worst = r.server.samples.length === 0 ? NaN : Math.max(...r.server.samples.map((s) => s.eldP99Ms));
    out.push(
      `| ${r.hosts} | ${r.cache ? 'on' : 'off'}${r.profiled ? ' (cpu-prof)' : ''} | ${f(r.upstream.kernel)} / ${f(r.upstream.initramfs)} | ${mb(r.upstreamWireBytes)} | ${mb(r.clientBytes)} | ${fmt(r.server.rssStartMiB)} → ${fmt(r.server.hwmMiB)} | ${r.server.workerHwmMiB.length === 0 ? '–' : r.server.workerHwmMiB.map((m) => fmt(m)).join(', ')} | ${eld === undefined ? '–' : `${fmt(eld.p50, 1)} / ${fmt(eld.p99, 1)} / ${fmt(eld.max, 0)}`} | ${fmt(worst, 1)} | ${fmt(r.server.cpuUserS + r.server.cpuSysS + r.server.workerCpuS, 1)} (main ${fmt(r.server.cpuUserS + r.server.cpuSysS, 1)}, workers ${fmt(r.server.workerCpuS, 1)}) | ${fmt(r.server.runDelayS, 1)} | ${fmt(r.clientCpuS, 1)} (${fmt(r.clientRunDelayS, 1)}) | ${fmt(r.clientEldP99.main, 0)}, ${fmt(r.clientEldP99.http, 0)} | ${fmt(r.upstreamCpuS, 1)} | ${r.resends.dhcp} / ${r.resends.tftp} / ${r.resends.ipxeDhcp} / ${r.resends.scripts + r.resends.images} | ${fmt(r.net.srv['Tcp.RetransSegs'])} / ${fmt(r.net.cli['Tcp.RetransSegs'])} | ${fmt(r.net.srv['Udp.RcvbufErrors'])} / ${fmt(r.net.cli['Udp.RcvbufErrors'])} | ${fmt(r.load1Before, 2)} → ${fmt(r.load1After, 2)} |`,
    );
  }
  return out.join('\n');
}

export function targetLines(rows: readonly RunRow[]): string[] {
  const lines: string[] = [];
  for (const r of rows.filter((x) => !x.profiled)) {
    const v = verdicts(r);
    lines.push(
      `- ${r.hosts} hosts, cache ${r.cache ? 'on' : 'off'}: ${v.map((x) => `${x.name}: ${x.value} **${x.met ? 'met' : 'missed'}**`).join('; ')}`,
    );
  }
  return lines;
}

export function failureLines(rows: readonly RunRow[]): string[] {
  const lines: string[] = [];
  for (const r of rows) {
    const entries = Object.entries(r.failures);
    if (entries.length === 0) continue;
    lines.push(
      `- ${r.hosts} hosts, cache ${r.cache ? 'on' : 'off'}: ${entries
        .sort((a, b) => b[1] - a[1])
        .map(([k, n]) => `${n}× ${k}`)
        .join('; ')}`,
    );
  }
  return lines;
}

/** A --cpu-prof repeat of a storm; `runName`: the run's directory under bench/out/, where the raw profile is. */
export function profileSection(
  p: { readonly file: string; readonly summary: ProfileSummary },
  row: RunRow,
  runName: string,
): string {
  const s = p.summary;
  const { top, incl } = profileText(s);
  return [
    `Profile of metalboot (\`node --cpu-prof\`, samples of the storm window only) during a repeat of ${row.hosts} hosts with the cache ${row.cache ? 'on' : 'off'} (${row.ok}/${row.hosts} booted): ${(s.busyMs / 1000).toFixed(1)} s busy of ${(s.totalMs / 1000).toFixed(1)} s sampled; metalboot used ${fmt(row.server.cpuUserS + row.server.cpuSysS, 1)} s of CPU (all threads) and its main thread waited ${fmt(row.server.runDelayS, 1)} s for CPU 0 (V8 samples by wall clock: time spent preempted is charged to the function it was in, typically a native call that woke another thread). Raw profile: \`bench/out/${runName}/${p.file}\`.`,
    '',
    '| function (self time) | where | ms | % of busy |',
    '|---|---|--:|--:|',
    top,
    '',
    `Inclusive share of busy time: ${incl}.`,
  ].join('\n');
}
