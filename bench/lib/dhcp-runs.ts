/**
 * Measuring the DHCP servers in the lab: starting one with fresh state, a perfdhcp run against
 * it (with the server's CPU time and both namespaces' UDP buffer overflows), the warm-up, the
 * rate sweep, latency at 1,000/s, a CPU profile of metalboot, and the check that perfdhcp's
 * repeat clients are exactly the reservations. What is recorded and reported is in
 * bench/lib/dhcp-report.ts.
 *
 * The family lives in the Ctx: how perfdhcp is called (`perf`, `probe`), the mode latency is
 * measured in, and the peers. bench/dhcp.ts passes DHCPv4's (perf4 below), bench/dhcp6.ts DHCPv6's
 * (bench/lib/dhcp6-runs.ts).
 */
import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Lab } from '../../lab/netns.js';
import { summariseProfile, type ProfileGroup } from './cpuprofile.js';
import { NET, type Peer, type PeerName } from './dhcp-peers.js';
import {
  CLEAN_DROP_PCT,
  gcPauses,
  LADDER,
  NEAR_MISS_PCT,
  REPEAT_CLIENTS,
  START_RATE,
  WARMUP_RATE,
  WARMUP_S,
  type DhcpSettings,
  type Kind,
  type Latency,
  type Profile,
  type Run,
  type Sweep,
} from './dhcp-report.js';
import { startServer, type ServerProc } from './dhcp-server-proc.js';
import type { QuietGate } from './harness.js';
import { loadAvg1 } from './machine.js';
import { parsePerfdhcp, perfdhcpArgs, type AnyMode, type Mode } from './perfdhcp.js';
import { median, quantile } from './stats.js';

/** One perfdhcp invocation of a benchmark, before the family's arguments are filled in. */
export interface PerfRequest {
  readonly mode: AnyMode;
  readonly kind: Kind;
  readonly rate: number;
  readonly periodS: number;
  readonly timestamps?: boolean;
  readonly exitWaitUs?: number;
  /** A warm-up run: new clients may come from another MAC range than the measured ones. */
  readonly warmUp?: boolean;
}

/** perfdhcp's arguments for a request (without taskset). */
export type PerfArgs = (r: PerfRequest) => string[];

/** A run's lab, servers and bookkeeping, passed to every measurement. */
export interface Ctx {
  readonly lab: Lab;
  /** The client namespace's interface (perfdhcp -l in broadcast or direct mode). */
  readonly ifname: string;
  readonly peers: Partial<Record<PeerName, Peer>>;
  readonly perf: PerfArgs;
  /** The readiness probe's perfdhcp arguments (one answered exchange means ready). */
  readonly probe: readonly string[];
  /** The mode latency is measured in (broadcast for DHCPv4, direct for DHCPv6). */
  readonly latencyMode: AnyMode;
  readonly settings: DhcpSettings;
  /** bench/out/dhcp-<time>/: runs/, state/, profile/. */
  readonly runDir: string;
  readonly log: (s: string) => void;
  readonly quiet: QuietGate;
  /** Numbers the state directories and run files in order. */
  seq: number;
  /** Spawn → first answered probe, ms, per start. */
  readonly readyMs: Partial<Record<PeerName, number[]>>;
}

function udpCounters(text: string): { rcvbuf: number } {
  const lines = text.split('\n').filter((l) => l.startsWith('Udp:'));
  if (lines.length < 2) return { rcvbuf: 0 };
  const keys = lines[0]!.split(/\s+/);
  const vals = lines[1]!.split(/\s+/);
  return { rcvbuf: Number(vals[keys.indexOf('RcvbufErrors')] ?? 0) };
}

/** Udp6RcvbufErrors from /proc/net/snmp6 ("name value" lines); 0 when IPv6 is off. */
export function udp6RcvbufErrors(text: string): number {
  return Number(/^Udp6RcvbufErrors\s+(\d+)/m.exec(text)?.[1] ?? 0);
}

/** UDP receive-buffer overflows of both families in `ns`. */
async function rcvbuf(lab: Lab, ns: string): Promise<number> {
  const r = await lab.exec(ns, 'cat', ['/proc/net/snmp', '/proc/net/snmp6']);
  return udpCounters(r.stdout).rcvbuf + udp6RcvbufErrors(r.stdout);
}

/** Keeps the output and logs of a run, drops its lease database (they add up to gigabytes). */
function pruneState(dir: string): void {
  for (const f of readdirSync(dir)) {
    if (/lease|\.csv/.test(f) && statSync(path.join(dir, f)).isFile()) {
      writeFileSync(path.join(dir, `${f}.size`), `${statSync(path.join(dir, f)).size} bytes\n`);
      rmSync(path.join(dir, f));
    }
  }
}

function clientsOf(kind: Kind): { macBase: string; clients: number } {
  return kind === 'new'
    ? { macBase: NET.newMacBase, clients: NET.newClients }
    : { macBase: NET.reservedMacBase, clients: REPEAT_CLIENTS };
}

/** DHCPv4's perfdhcp arguments: the lab's addresses, new or repeat clients (clientsOf). */
export function perf4(ifname: string, threads: 'single' | 'multi'): PerfArgs {
  return (r) =>
    perfdhcpArgs({
      mode: r.mode as Mode,
      rate: r.rate,
      periodS: r.periodS,
      exitWaitUs: r.exitWaitUs,
      timestamps: r.timestamps,
      ...clientsOf(r.kind),
      ifname,
      localIp: NET.clientIp,
      serverIp: NET.serverIp,
      threads,
    });
}

/** DHCPv4's readiness probe: one reserved MAC, relay mode. */
export const PROBE4: readonly string[] = perfdhcpArgs({
  mode: 'relay',
  rate: 10,
  periodS: 1,
  macBase: NET.reservedMacBase,
  clients: 1,
  ifname: '',
  localIp: NET.clientIp,
  serverIp: NET.serverIp,
  exitWaitUs: 300_000,
  dropTimeS: 0.5,
});

/** Starts `server` with fresh state; a start that does not answer in time is retried once. */
export async function start(ctx: Ctx, server: PeerName, nodeFlags?: string[]): Promise<ServerProc> {
  for (let attempt = 1; ; attempt++) {
    const dir = path.join(ctx.runDir, 'state', `${String(++ctx.seq).padStart(4, '0')}-${server}`);
    try {
      // Node.js loads every module of the product before it answers: give it longer.
      const flags = server === 'metalboot' ? [...ctx.settings.metalbootFlags, ...(nodeFlags ?? [])] : nodeFlags;
      const peer = ctx.peers[server];
      if (peer === undefined) throw new Error(`${server} is not a peer of this benchmark`);
      const proc = await startServer(ctx.lab, peer, dir, {
        cpu: 0,
        clientNs: 'cli',
        probe: ctx.probe,
        nodeFlags: flags,
        readyTimeoutMs: server === 'metalboot' ? 120_000 : 30_000,
      });
      ctx.readyMs[server] ??= [];
      ctx.readyMs[server].push(proc.readyMs);
      return proc;
    } catch (err) {
      if (attempt >= 2) throw err;
      ctx.log(`  ${server} start-up failed, retrying once: ${String((err as Error).message).split('\n')[0]}`);
    }
  }
}

export async function stop(proc: ServerProc): Promise<void> {
  await proc.stop();
  pruneState(proc.stateDir);
}

export async function measure(
  ctx: Ctx,
  proc: ServerProc,
  mode: AnyMode,
  kind: Kind,
  rate: number,
  periodS: number,
  opts: { timestamps?: boolean; tag?: string } = {},
): Promise<{ run: Run; out: string; windowUs: [number, number] }> {
  const perf = ctx.perf({ mode, kind, rate, periodS, timestamps: opts.timestamps });
  const load1 = loadAvg1();
  const [srv0, cli0] = [await rcvbuf(ctx.lab, 'srv'), await rcvbuf(ctx.lab, 'cli')];
  const cpu0 = proc.cpu() ?? { user: NaN, sys: NaN };
  const t0Us = Number(process.hrtime.bigint() / 1000n);
  const r = await ctx.lab.exec('cli', 'taskset', ['-c', '1', 'perfdhcp', ...perf], {
    timeoutMs: (periodS + 30) * 1000,
  });
  const t1Us = Number(process.hrtime.bigint() / 1000n);
  const cpu1 = proc.cpu() ?? { user: NaN, sys: NaN };
  const [srv1, cli1] = [await rcvbuf(ctx.lab, 'srv'), await rcvbuf(ctx.lab, 'cli')];
  const name = `${String(++ctx.seq).padStart(4, '0')}-${proc.peer.name}-${mode}-${kind}-${rate}${opts.tag ? `-${opts.tag}` : ''}.txt`;
  const file = path.join(ctx.runDir, 'runs', name);
  writeFileSync(
    file,
    `$ taskset -c 1 perfdhcp ${perf.join(' ')}\n# exit ${r.code}${r.timedOut ? ' (timed out)' : ''}, load1 ${load1}\n${r.stdout}\n--- stderr\n${r.stderr}`,
  );
  const rep = parsePerfdhcp(r.stdout);
  const sent = rep.discover?.sent ?? 0;
  const acks = rep.request?.received ?? 0;
  // OFFERs that arrived after the period ended get no REQUEST from perfdhcp: not the server's loss.
  const notContinued = Math.max(0, (rep.discover?.received ?? 0) - (rep.request?.sent ?? 0));
  const attempted = sent - notContinued;
  const sysS = cpu1.sys - cpu0.sys;
  const cpuS = cpu1.user - cpu0.user + sysS;
  const run: Run = {
    server: proc.peer.name,
    mode,
    kind,
    rate,
    periodS,
    sent,
    offers: rep.discover?.received ?? 0,
    acks,
    notContinued,
    lost: Math.max(0, attempted - acks),
    dropPct: attempted <= 0 ? 100 : (100 * (attempted - acks)) / attempted,
    goodput: acks / periodS,
    clientLimited: sent < 0.97 * rate * periodS,
    cpuS,
    sysS,
    cpuPer1k: acks === 0 ? NaN : cpuS / (acks / 1000),
    offerAvgMs: rep.discover?.avgMs ?? NaN,
    ackAvgMs: rep.request?.avgMs ?? NaN,
    srvRcvbufErrors: srv1 - srv0,
    cliRcvbufErrors: cli1 - cli0,
    load1,
    file: path.relative(ctx.runDir, file),
    exitCode: r.code,
  };
  ctx.log(
    `  ${proc.peer.name} ${mode} ${kind} ${rate}/s: sent ${sent}, acks ${acks}, drop ${run.dropPct.toFixed(3)}%, goodput ${run.goodput.toFixed(0)}/s, cpu ${cpuS.toFixed(2)} s${run.clientLimited ? ' (perfdhcp could not offer this rate)' : ''}${run.srvRcvbufErrors > 0 ? `, server rcvbuf overflows ${run.srvRcvbufErrors}` : ''}${run.cliRcvbufErrors > 0 ? `, perfdhcp rcvbuf overflows ${run.cliRcvbufErrors}` : ''}`,
  );
  return { run, out: r.stdout, windowUs: [t0Us, t1Us] };
}

/**
 * Brings a freshly started server to steady state before it is measured: JIT-compiled packet
 * path, start-up garbage collected. `rate` exchanges/s of `kind` for WARMUP_S, then a pause so
 * a server that fell behind drains its queue. The same for every server.
 */
export async function warmUp(ctx: Ctx, _proc: ServerProc, mode: AnyMode, kind: Kind, rate: number): Promise<void> {
  const perf = ctx.perf({ mode, kind, rate, periodS: WARMUP_S, exitWaitUs: 200_000, warmUp: true });
  await ctx.lab.exec('cli', 'taskset', ['-c', '1', 'perfdhcp', ...perf], { timeoutMs: (WARMUP_S + 20) * 1000 });
  await new Promise((r) => setTimeout(r, 1000));
}

/** One measurement with its own server for new clients (empty lease state), or on `shared`. */
async function runAt(
  ctx: Ctx,
  server: PeerName,
  mode: AnyMode,
  kind: Kind,
  rate: number,
  shared: ServerProc | undefined,
): Promise<Run> {
  const proc = shared ?? (await start(ctx, server));
  try {
    if (shared === undefined) await warmUp(ctx, proc, mode, kind, Math.min(rate, WARMUP_RATE));
    return (await measure(ctx, proc, mode, kind, rate, ctx.settings.periodS)).run;
  } finally {
    if (shared === undefined) await stop(proc);
    await new Promise((r) => setTimeout(r, 300));
  }
}

const clean = (r: Run): boolean => r.dropPct < CLEAN_DROP_PCT && !r.clientLimited;

function niceMid(a: number, b: number): number {
  const mid = (a + b) / 2;
  const step = mid >= 5000 ? 1000 : mid >= 1000 ? 250 : 50;
  return Math.round(mid / step) * step;
}

export async function sweep(ctx: Ctx, server: PeerName, mode: AnyMode, kind: Kind): Promise<Sweep> {
  const quietWaitS = (await ctx.quiet.wait(`${server} ${mode} ${kind}`)).waitedS;
  ctx.log(`sweep ${server} ${mode} ${kind} (load ${loadAvg1().toFixed(2)})`);
  const shared = kind === 'repeat' ? await start(ctx, server) : undefined;
  if (shared !== undefined) await warmUp(ctx, shared, mode, kind, WARMUP_RATE);
  const runs: Run[] = [];
  const at = async (rate: number): Promise<Run> => {
    const r = await runAt(ctx, server, mode, kind, rate, shared);
    runs.push(r);
    return r;
  };
  try {
    let best: number | undefined;
    let fail: number | undefined;
    let clientLimited = false;
    let i = LADDER.indexOf(START_RATE);
    const first = await at(LADDER[i]!);
    if (clean(first)) {
      best = LADDER[i];
      while (++i < LADDER.length) {
        let r = await at(LADDER[i]!);
        // A near miss may be another tenant's burst: one more run decides.
        if (!clean(r) && !r.clientLimited && r.dropPct < NEAR_MISS_PCT) r = await at(LADDER[i]!);
        if (clean(r)) best = LADDER[i];
        else {
          fail = LADDER[i];
          clientLimited = r.clientLimited && r.dropPct < CLEAN_DROP_PCT;
          break;
        }
      }
    } else {
      fail = LADDER[i];
      clientLimited = first.clientLimited && first.dropPct < CLEAN_DROP_PCT;
      while (--i >= 0 && !clientLimited) {
        const r = await at(LADDER[i]!);
        if (clean(r)) {
          best = LADDER[i];
          break;
        }
        fail = LADDER[i];
      }
    }
    // One bisection step between the last clean and the first failing rate.
    if (!ctx.settings.quick && best !== undefined && fail !== undefined && !clientLimited) {
      const mid = niceMid(best, fail);
      if (mid > best && mid < fail) {
        if (clean(await at(mid))) best = mid;
        else fail = mid;
      }
    }
    // Confirm: the median of `runs` runs must be clean, else step down (at most twice).
    let cleanRuns: Run[] = [];
    for (let attempt = 0; best !== undefined && attempt < 3; attempt++) {
      const rate: number = best;
      while (runs.filter((r) => r.rate === rate).length < ctx.settings.runs) await at(rate);
      cleanRuns = runs.filter((r) => r.rate === rate);
      if (median(cleanRuns.map((r) => r.dropPct)) < CLEAN_DROP_PCT) break;
      ctx.log(`  ${rate}/s is not clean over ${ctx.settings.runs} runs: stepping down`);
      fail = rate;
      const lower: number[] = LADDER.filter((x) => x < rate);
      best = lower.length > 0 ? lower[lower.length - 1] : undefined;
      cleanRuns = [];
    }
    // Out of step-downs: the rate below the last one tried keeps the runs the ladder gave it.
    if (best !== undefined && cleanRuns.length === 0) {
      const rate: number = best;
      cleanRuns = runs.filter((r) => r.rate === rate);
      ctx.log(
        `  ${rate}/s stands on ${cleanRuns.length} run(s) from the ladder, not confirmed over ${ctx.settings.runs}`,
      );
    }
    // Overload: twice the clean rate (or twice the lowest rate when nothing was clean).
    const overload = 2 * (best ?? LADDER[0]!);
    if (ctx.settings.overload !== false)
      while (runs.filter((r) => r.rate === overload).length < ctx.settings.runs) await at(overload);
    const overloadRuns = runs.filter((r) => r.rate === overload);
    return { server, mode, kind, runs, maxClean: best, clientLimited, cleanRuns, overloadRuns, quietWaitS };
  } finally {
    if (shared !== undefined) await stop(shared);
  }
}

export async function latency(ctx: Ctx, server: PeerName, kind: Kind): Promise<Latency> {
  await ctx.quiet.wait(`latency ${server} ${kind}`);
  ctx.log(`latency ${server} ${kind} at 1000/s`);
  const out: Latency = { server, kind, runs: [] };
  for (let i = 0; i < Math.max(ctx.settings.runs, 1); i++) {
    // metalboot runs with --trace-gc (one stdout line per collection; its log level keeps stdout
    // otherwise quiet), so the pauses inside the measured window can be counted.
    const proc = await start(ctx, server, server === 'metalboot' ? ['--trace-gc'] : undefined);
    try {
      await warmUp(ctx, proc, ctx.latencyMode, kind, 1000);
      const linesBefore = ctx.lab.output(proc.child).stdout.split('\n').length;
      const { run, out: text } = await measure(ctx, proc, ctx.latencyMode, kind, 1000, ctx.settings.latencyPeriodS, {
        timestamps: true,
        tag: 'latency',
      });
      const gc =
        server === 'metalboot'
          ? gcPauses(
              ctx.lab
                .output(proc.child)
                .stdout.split('\n')
                .slice(linesBefore - 1),
            )
          : undefined;
      const rep = parsePerfdhcp(text);
      const o = rep.offerDelaysMs;
      const a = rep.ackDelaysMs;
      // perfdhcp lists the two legs separately and in completion order, not paired: the DORA
      // percentiles below add the legs' percentiles, an upper bound for the same quantile of the sum.
      out.runs.push({
        file: run.file,
        sent: run.sent,
        acks: run.acks,
        lost: run.lost,
        dropPct: run.dropPct,
        offerP50: quantile(o, 0.5),
        offerP99: quantile(o, 0.99),
        ackP50: quantile(a, 0.5),
        ackP99: quantile(a, 0.99),
        doraP50: quantile(o, 0.5) + quantile(a, 0.5),
        doraP99: quantile(o, 0.99) + quantile(a, 0.99),
        cpuPer1k: run.cpuPer1k,
        sysPct: (100 * run.sysS) / run.cpuS,
        load1: run.load1,
        timestamps: o.length + a.length,
        gc,
      });
    } finally {
      await stop(proc);
    }
  }
  return out;
}

/** Where metalboot's time goes, by self time: the first group whose test matches a function. */
const PROFILE_GROUPS: ProfileGroup[] = [
  {
    name: 'range lease store (LeaseStore, LeasePool, journal, fdatasync)',
    match: (fn, w) =>
      /src\/leases\/(lease-store|pool|lease-journal)/.test(w) ||
      ['fdatasync', 'writeString', 'write', 'fsync'].includes(fn) ||
      /^node:fs|promises:/.test(w),
  },
  {
    name: 'DHCP codec (decode, encode, option helpers)',
    match: (_fn, w) => /src\/dhcp\/(codec|options|decode-error)/.test(w) || /src\/net\//.test(w),
  },
  {
    // DHCP's onOutcome: each reply's milestone on the host's boot timeline, its ACK time, the Events.
    name: 'boot timelines (onOutcome: milestones, timeline, ACK times)',
    match: (_fn, w) => /src\/(kube\/boot-milestones|boot\/boot-timeline|boot\/boot-timings|wiring\/timeline)/.test(w),
  },
  {
    name: 'decision (decide, host lookup, reply building, boot answer)',
    match: (_fn, w) => /src\/dhcp\/(decide|reply|classify|destination)|src\/leases\/host-index|src\/boot\//.test(w),
  },
  {
    name: 'socket I/O (node:dgram send/receive)',
    match: (fn, w) => /dgram/.test(w) || ['doSend', 'onMessage'].includes(fn),
  },
  {
    name: 'server shell (dhcp-server.ts, promises, ticks)',
    match: (_fn, w) => /src\/dhcp\/dhcp-server|task_queues|node:events/.test(w),
  },
  { name: 'metrics (prom-client)', match: (_fn, w) => /prom-client/.test(w) },
  { name: 'garbage collector', match: (fn) => fn === '(garbage collector)' },
  { name: 'native / event loop ((program))', match: (fn) => fn === '(program)' },
  { name: 'Buffer internals', match: (fn, w) => /^buffer:|node:buffer/.test(w) || fn === 'FastBuffer' },
];

export async function profile(
  ctx: Ctx,
  mode: AnyMode,
  kind: Kind,
  rate: number,
  flags: string[] = [],
): Promise<Profile | undefined> {
  const dir = path.join(ctx.runDir, 'profile');
  mkdirSync(dir, { recursive: true });
  const before = new Set(readdirSync(dir));
  ctx.log(
    `profiling metalboot (${mode}, ${kind}, ${rate}/s${flags.length > 0 ? `, ${flags.join(' ')}` : ''}) with --cpu-prof`,
  );
  const proc = await start(ctx, 'metalboot', ['--cpu-prof', `--cpu-prof-dir=${dir}`, ...flags]);
  let run: Run;
  let windowUs: [number, number];
  try {
    await warmUp(ctx, proc, mode, kind, WARMUP_RATE);
    ({ run, windowUs } = await measure(ctx, proc, mode, kind, rate, ctx.settings.profilePeriodS, {
      tag: `cpu-prof${flags.join('')}`,
    }));
  } finally {
    await stop(proc);
  }
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile') && !before.has(f));
  if (file === undefined) return undefined;
  const summary = summariseProfile(path.join(dir, file), {
    top: 20,
    windowUs,
    groups: PROFILE_GROUPS,
    inclusive: [
      'decode',
      'decide',
      'encode',
      'lookup',
      'persist',
      'append',
      'stats',
      '#onMessage',
      '#send',
      'buildLeaseReply',
      'onOutcome',
    ],
  });
  return { file: path.join('profile', file), summary, run, flags };
}

/**
 * Proves the client scheme against the reservation list: 300 exchanges with
 * `-b mac=<reserved base> -R 10000` must all be answered from reservations (metalboot's range
 * journal stays empty and every ACK carries a 10.17.x address).
 */
export async function checkReservationMacs(ctx: Ctx): Promise<string> {
  const proc = await start(ctx, 'metalboot');
  try {
    const perf = perfdhcpArgs({
      mode: 'relay',
      rate: 300,
      count: 300,
      macBase: NET.reservedMacBase,
      clients: NET.reservations,
      ifname: ctx.ifname,
      localIp: NET.clientIp,
      serverIp: NET.serverIp,
      threads: ctx.settings.threads,
    });
    perf.push('-x', 'l');
    const r = await ctx.lab.exec('cli', 'perfdhcp', perf, { timeoutMs: 30_000 });
    writeFileSync(
      path.join(ctx.runDir, 'runs', 'check-reservation-macs.txt'),
      `$ perfdhcp ${perf.join(' ')}\n${r.stdout}\n${r.stderr}`,
    );
    const rep = parsePerfdhcp(r.stdout);
    const journal = path.join(proc.stateDir, 'leases.journal');
    const journalBytes = statSync(journal).size;
    const acks = rep.request?.received ?? 0;
    if (acks < 290 || journalBytes > 0) {
      throw new Error(
        `perfdhcp -b mac=${NET.reservedMacBase} -R ${NET.reservations} did not stay within the reservations: ${acks} ACKs, range journal ${journalBytes} bytes`,
      );
    }
    return `${acks}/300 exchanges with \`-b mac=${NET.reservedMacBase} -R ${NET.reservations}\` were answered from the reservations (metalboot's range journal stayed empty)`;
  } finally {
    await stop(proc);
  }
}
