/**
 * The simulated hosts of the boot storm: one process, run by bench/boot-storm.ts inside the
 * client namespace (pinned to a CPU with taskset). Reads a plan (JSON), powers each host on at
 * its start time, boots it (bench/lib/storm-host.ts) and writes every host's result as JSON.
 * Bounded: hosts still running at the deadline are recorded as unfinished and the process exits.
 *
 *   node --import tsx bench/boot-storm-client.ts PLAN.json RESULT.json
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { DhcpMux } from './lib/storm-dhcp.js';
import { HttpWorker, type EldSummary } from './lib/storm-http-worker.js';
import { bootHost, type HostPlan, type HostProgress, type HostResult, type StormSettings } from './lib/storm-host.js';
import { runIfEntry, type Run } from './lib/harness.js';

export interface ClientPlan {
  readonly hosts: readonly HostPlan[];
  readonly settings: StormSettings;
  /** Give up on unfinished hosts this long after the storm starts. */
  readonly deadlineMs: number;
}

export interface ClientResult {
  readonly hosts: readonly HostResult[];
  /** Wall time from the storm's start to the last host's end (or the deadline). */
  readonly wallMs: number;
  /** process.cpuUsage() of this client over the storm, seconds. */
  readonly cpuUserS: number;
  readonly cpuSysS: number;
  readonly dhcp: DhcpMux['stats'];
  /** CLOCK_MONOTONIC µs at the storm's start and end (for windowing a server CPU profile). */
  readonly monoStartUs: number;
  readonly monoEndUs: number;
  readonly hitDeadline: boolean;
  /** Time its threads waited for a CPU while runnable, seconds. */
  readonly runDelayS: number;
  /** Event-loop delay of the client's DHCP/TFTP thread and of its HTTP worker thread, ms (10 ms timer included). */
  readonly clientEld: { readonly main: EldSummary; readonly http: EldSummary };
}

/** Seconds this process's threads spent runnable but waiting for a CPU (schedstat field 2, all tasks). */
function runDelayS(): number {
  let ns = 0;
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      ns += Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[1]);
    } catch {
      // thread gone
    }
  }
  return ns / 1e9;
}

export async function main(_args: unknown, run: Run): Promise<void> {
  const [planFile, resultFile] = run.positionals as [string, string];
  const plan = JSON.parse(readFileSync(planFile, 'utf8')) as ClientPlan;
  const mux = await DhcpMux.open();
  const worker = new HttpWorker();
  const io = { mux, http: (ip: string) => worker.host(ip), now: (): number => performance.now() - t0 };
  const eld = monitorEventLoopDelay({ resolution: 10 });
  const cpu0 = process.cpuUsage();
  const wait0 = runDelayS();
  const t0 = performance.now();
  const monoStartUs = Number(process.hrtime.bigint() / 1000n);
  const now = io.now;
  eld.enable();
  const results = new Map<number, HostResult>();
  const progressOf = new Map<number, HostProgress>();
  let finished = 0;
  const progress = setInterval(() => {
    const ok = [...results.values()].filter((r) => r.ok).length;
    process.stderr.write(
      `  [${(now() / 1000).toFixed(0).padStart(3)} s] ${finished}/${plan.hosts.length} hosts done (${ok} ok)\n`,
    );
  }, 5_000);
  const all = Promise.all(
    plan.hosts.map(async (h) => {
      await new Promise((r) => setTimeout(r, h.startMs));
      const progress: HostProgress = { phase: undefined, phases: {} };
      progressOf.set(h.i, progress);
      const r = await bootHost(h, plan.settings, io, progress);
      results.set(h.i, r);
      finished++;
    }),
  );
  let timer: NodeJS.Timeout | undefined;
  const hitDeadline = await Promise.race([
    all.then(() => false),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), plan.deadlineMs))),
  ]);
  clearTimeout(timer);
  clearInterval(progress);
  const wallMs = now();
  const monoEndUs = Number(process.hrtime.bigint() / 1000n);
  const cpu = process.cpuUsage(cpu0);
  const waitS = runDelayS() - wait0;
  eld.disable();
  const clientEld = {
    main: { p50: eld.percentile(50) / 1e6, p99: eld.percentile(99) / 1e6, max: eld.max / 1e6 },
    http: await worker.eventLoopDelay(),
  };
  const hosts = plan.hosts.map((h): HostResult => {
    const done = results.get(h.i);
    if (done !== undefined) return done;
    // Cut off by the deadline: the phases it completed still count, the one it was in is the failure.
    const p = progressOf.get(h.i);
    return {
      i: h.i,
      mac: h.mac,
      ok: false,
      startMs: h.startMs,
      phases: { ...p?.phases },
      imageBytes: 0,
      ...(p?.phase === undefined ? {} : { failedPhase: p.phase }),
      error: 'unfinished at the client deadline',
    };
  });
  const out: ClientResult = {
    hosts,
    wallMs,
    cpuUserS: cpu.user / 1e6,
    cpuSysS: cpu.system / 1e6,
    dhcp: { ...mux.stats },
    monoStartUs,
    monoEndUs,
    hitDeadline,
    runDelayS: waitS,
    clientEld,
  };
  writeFileSync(resultFile, JSON.stringify(out));
  mux.close();
  await worker.terminate();
}

runIfEntry(import.meta.url, {
  name: 'boot-storm client',
  usage: 'node --import tsx bench/boot-storm-client.ts PLAN.json RESULT.json',
  about: 'The simulated hosts of bench/boot-storm.ts (run by it inside the client namespace).',
  options: {},
  positionals: ['PLAN.json', 'RESULT.json'],
  main,
});
