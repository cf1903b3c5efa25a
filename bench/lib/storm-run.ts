/**
 * One boot storm: a fresh metalboot, the hosts' plan (power-on times from a seeded random
 * draw), the client process in namespace `cli`, and around it the server's CPU, memory,
 * event-loop delay, /metrics once a second, the httpd's counters and the kernel's; the result
 * is a RunRow (bench/lib/storm-report.ts) and, under --cpu-prof, a profile of the storm window.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ClientPlan, ClientResult } from '../boot-storm-client.js';
import { summariseProfile, type ProfileSummary } from './cpuprofile.js';
import { cpuTimes, loadAvg1, memoryMiB, REPO_ROOT } from './machine.js';
import { fmt } from './stats.js';
import type { HostPlan, StormSettings } from './storm-host.js';
import { hostIp, hostMac, seededRandom, STORM_ARTIFACTS, STORM_NET } from './storm-net.js';
import { failureLines, summariseRun, type EventLoopWindow, type RunRow, type ServerSample } from './storm-report.js';
import {
  childPids,
  curlSrv,
  interestingCounters,
  metricValue,
  netCounters,
  netDelta,
  runDelayS,
  softnetDrops,
  startMetalboot,
  stopChild,
  TFTP_FILE,
  upstreamStats,
  type StormLab,
} from './storm-server.js';

/** What a run measures, from its arguments (bench/boot-storm.ts stormConfig()). */
export interface StormConfig {
  readonly quick: boolean;
  readonly hosts: readonly number[];
  /** Image cache off (false) and/or on (true), in this order. */
  readonly cache: readonly boolean[];
  /** Hosts power on uniformly within this many seconds. */
  readonly jitterS: number;
  readonly kernelBytes: number;
  readonly initramfsBytes: number;
  readonly hashImages: boolean;
  readonly seed: number;
  /** Hosts still booting this long after their power-on window closes are given up on (less if the time budget is short). */
  readonly tailS: number;
  /** Repeat the worst storm that missed a target under --cpu-prof. */
  readonly profile: boolean;
  /** Every storm under --cpu-prof. */
  readonly cpuProf: boolean;
}

/** A run's lab, servers and bookkeeping, passed to every storm. */
export interface Ctx extends StormLab {
  readonly config: StormConfig;
  /** bench/out/boot-storm-<time>/. */
  readonly runDir: string;
  readonly log: (s: string) => void;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function plan(n: number, seed: number, jitterS: number): HostPlan[] {
  const rand = seededRandom(seed * 1_000_003 + n);
  return Array.from({ length: n }, (_, i) => ({
    i,
    mac: hostMac(i),
    ip: hostIp(i),
    startMs: Math.round(rand() * jitterS * 1000),
  }));
}

function settings(ctx: Ctx): StormSettings {
  const f = (p: string) => ctx.files[p]!;
  return {
    serverIp: STORM_NET.serverIp,
    tftpFile: TFTP_FILE,
    tftp: ctx.tftp,
    kernel: f(STORM_ARTIFACTS.kernel),
    initramfs: f(STORM_ARTIFACTS.initramfs),
    hashImages: ctx.config.hashImages,
    firmwareDhcpScheduleMs: [4_000, 8_000, 16_000, 32_000],
    ipxeDhcpScheduleMs: [1_000, 2_000, 4_000, 8_000],
    tftpTimeoutMs: 4_000,
    tftpRetries: 6,
    tftpDeadlineMs: 60_000,
    httpIdleTimeoutMs: 60_000,
    httpRetries: 2,
    httpRetryDelayMs: 5_000,
  };
}

export interface StormOutput {
  readonly row: RunRow;
  readonly client: ClientResult;
  readonly dir: string;
  readonly profile?: { file: string; summary: ProfileSummary };
}

/** One storm of `n` hosts against a fresh metalboot, cache on or off; hosts still booting `tailS` after the power-on window are given up on. */
export async function storm(
  ctx: Ctx,
  n: number,
  cache: boolean,
  cpuProf: boolean,
  tailS: number,
): Promise<StormOutput> {
  const tag = `n${n}-cache-${cache ? 'on' : 'off'}${cpuProf ? '-cpu-prof' : ''}`;
  const dir = path.join(ctx.runDir, tag);
  mkdirSync(dir, { recursive: true });
  ctx.log(`${tag}: starting metalboot`);
  const mb = await startMetalboot(ctx, dir, n, cache, cpuProf);
  let stopped = false;
  try {
    const eldFile = path.join(dir, 'eld.json');
    process.kill(mb.pid, 'SIGUSR2'); // start the event-loop window after start-up
    for (let i = 0; i < 50 && !existsSync(eldFile); i++) await sleep(20);
    const eldStart = existsSync(eldFile) ? statSync(eldFile).mtimeMs : 0;
    // One scrape now, so the first window of prom-client's event-loop histogram starts here, not at start-up.
    await curlSrv(ctx.lab, `http://127.0.0.1:${STORM_NET.httpPort}/metrics`);
    const up0 = await upstreamStats(ctx);
    const cpu0 = cpuTimes(mb.pid);
    const workerCpu = (): number =>
      childPids(mb.pid).reduce((sum, p) => {
        const t = cpuTimes(p);
        return sum + (t === undefined ? 0 : t.user + t.sys);
      }, 0);
    const workerCpu0 = workerCpu();
    const mem0 = memoryMiB(mb.pid);
    const wait0 = runDelayS(mb.pid);
    const net0 = {
      srv: await netCounters(ctx.lab, 'srv'),
      cli: await netCounters(ctx.lab, 'cli'),
      softnet: softnetDrops(),
    };
    const load1Before = loadAvg1();
    const planFile = path.join(dir, 'plan.json');
    const resultFile = path.join(dir, 'client.json');
    const deadlineMs = (ctx.config.jitterS + tailS) * 1000;
    const clientPlan: ClientPlan = {
      hosts: plan(n, ctx.config.seed, ctx.config.jitterS),
      settings: settings(ctx),
      deadlineMs,
    };
    writeFileSync(planFile, JSON.stringify(clientPlan));

    // /metrics once a second: the product's own view of event-loop delay, and RSS from /proc.
    const samples: ServerSample[] = [];
    let sampling = true;
    const t0 = Date.now();
    const sampler = (async () => {
      while (sampling) {
        const t = Date.now();
        const text = await curlSrv(ctx.lab, `http://127.0.0.1:${STORM_NET.httpPort}/metrics`, 2_000);
        const p99 = text === undefined ? undefined : metricValue(text, 'metalboot_nodejs_eventloop_lag_p99_seconds');
        const mem = memoryMiB(mb.pid);
        if (p99 !== undefined && mem !== undefined) {
          // The product's own view at the highest RSS: heaps and external memory per thread.
          if (text !== undefined && samples.every((x) => x.rssMiB < mem.rss)) {
            writeFileSync(path.join(dir, 'metrics-at-peak-rss.txt'), text);
            for (const f of ['status', 'smaps_rollup']) {
              try {
                writeFileSync(path.join(dir, `proc-${f}-at-peak-rss.txt`), readFileSync(`/proc/${mb.pid}/${f}`));
              } catch {
                /* gone */
              }
            }
          }
          samples.push({ atMs: t - t0, eldP99Ms: p99 * 1000, rssMiB: mem.rss });
        }
        await sleep(Math.max(0, 1_000 - (Date.now() - t)));
      }
    })();
    ctx.log(`${tag}: ${n} hosts power on within ${ctx.config.jitterS} s (load ${load1Before.toFixed(2)})`);
    const r = await ctx.lab.exec(
      'cli',
      'taskset',
      [
        '-c',
        '1',
        process.execPath,
        '--import',
        'tsx',
        path.join(REPO_ROOT, 'bench/boot-storm-client.ts'),
        planFile,
        resultFile,
      ],
      {
        timeoutMs: deadlineMs + 20_000,
        cwd: REPO_ROOT,
      },
    );
    sampling = false;
    await sampler;
    writeFileSync(path.join(dir, 'client.log'), `${r.stdout}\n--- stderr\n${r.stderr}`);
    if (r.code !== 0 || !existsSync(resultFile))
      throw new Error(`client exited ${r.code}${r.timedOut ? ' (timed out)' : ''}:\n${r.stderr.slice(-3000)}`);
    const client = JSON.parse(readFileSync(resultFile, 'utf8')) as ClientResult;

    process.kill(mb.pid, 'SIGUSR2');
    for (let i = 0; i < 100 && statSync(eldFile).mtimeMs === eldStart; i++) await sleep(20);
    const eld =
      statSync(eldFile).mtimeMs === eldStart
        ? undefined
        : (JSON.parse(readFileSync(eldFile, 'utf8')) as EventLoopWindow);
    const cpu1 = cpuTimes(mb.pid);
    const workerCpu1 = workerCpu();
    const workerHwm = childPids(mb.pid).map((p) => memoryMiB(p)?.hwm ?? NaN);
    const wait1 = runDelayS(mb.pid);
    const mem = memoryMiB(mb.pid);
    const up1 = await upstreamStats(ctx);
    const metrics = (await curlSrv(ctx.lab, `http://127.0.0.1:${STORM_NET.httpPort}/metrics`)) ?? '';
    writeFileSync(path.join(dir, 'metrics.txt'), metrics);
    const load1After = loadAvg1();
    const net = {
      srv: netDelta(net0.srv, await netCounters(ctx.lab, 'srv')),
      cli: netDelta(net0.cli, await netCounters(ctx.lab, 'cli')),
      softnetDrops: softnetDrops() - net0.softnet,
    };
    await stopChild(mb.child);
    stopped = true;

    const row = summariseRun({
      hosts: n,
      cache,
      profiled: cpuProf,
      client,
      net,
      upstreamBefore: up0,
      upstreamAfter: up1,
      load1Before,
      load1After,
      server: {
        cpuUserS: (cpu1?.user ?? NaN) - (cpu0?.user ?? NaN),
        cpuSysS: (cpu1?.sys ?? NaN) - (cpu0?.sys ?? NaN),
        runDelayS: wait1 - wait0,
        hwmMiB: mem?.hwm ?? NaN,
        workerHwmMiB: workerHwm,
        workerCpuS: workerCpu1 - workerCpu0,
        rssStartMiB: mem0?.rss ?? NaN,
        rssEndMiB: mem?.rss ?? NaN,
        eld,
        samples,
        counters: interestingCounters(metrics),
      },
    });
    writeFileSync(path.join(dir, 'row.json'), JSON.stringify(row, null, 2));
    ctx.log(
      `${tag}: ${row.ok}/${n} booted in ${row.wallS.toFixed(1)} s; firmware DHCP+TFTP p99 ${fmt(row.firmware.p99 / 1000, 2)} s; RSS ${fmt(row.server.hwmMiB)} MiB; ELD p99 ${fmt(eld?.p99, 1)} ms; CPU ${fmt(row.server.cpuUserS + row.server.cpuSysS, 1)} s; upstream ${fmt(row.upstreamWireBytes / 1e6)} MB`,
    );
    for (const l of failureLines([row])) ctx.log(`  failures ${l.slice(2)}`);
    let profile: StormOutput['profile'];
    if (cpuProf) {
      const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
      if (file !== undefined) {
        profile = {
          file: path.relative(ctx.runDir, path.join(dir, file)),
          summary: summariseProfile(path.join(dir, file), {
            top: 20,
            windowUs: [client.monoStartUs, client.monoEndUs],
            // Socket writes to hosts, upstream reads (undici), cache file reads, TFTP, DHCP, metrics.
            inclusive: [
              'writeGeneric',
              'writevGeneric',
              'onStreamRead',
              'execute',
              'onBody',
              'read',
              '#pump',
              'onTransferMessage',
              'onListenerMessage',
              '#onMessage',
              'setValue',
              'inc',
              'handleRequest',
            ],
          }),
        };
      }
    }
    return { row, client, dir, ...(profile === undefined ? {} : { profile }) };
  } finally {
    if (!stopped) await stopChild(mb.child);
    rmSync(path.join(dir, 'image-cache'), { recursive: true, force: true });
  }
}
