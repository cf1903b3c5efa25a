/**
 * Boot-storm benchmark (issue 9, part 4): N simulated UEFI hosts power on within a 0–20 s
 * window and boot through one metalboot: DHCP as EDK2 PXE → TFTP of snponly.efi (EDK2 tsize
 * probe + ERROR 8, then blksize 1468 windowsize 4) → DHCP as iPXE → GET /boot.ipxe → GET
 * /boot/<mac>.ipxe → GET the IPA kernel and initramfs through the image proxy from a stand-in
 * for Ironic's httpd. Per N and image cache off/on: success, p50/p99 per phase, what the httpd
 * sent, metalboot's peak RSS, event-loop delay and CPU time.
 *
 *   sudo node --import tsx bench/boot-storm.ts [--hosts 100,250,500] [--quick]
 *     [--cache off,on] [--image-worker on|off] [--jitter-s 20] [--kernel-mib 15] [--initramfs-mib 60] [--hash-images]
 *     [--seed 1] [--worktree] [--no-profile] [--no-results] [--results] [--max-total-s N]
 *
 * Lab (bench/lib/storm-net.ts): namespace `srv` holds the bridge (10.60.0.1/16), metalboot
 * (`taskset -c 0`, `node dist/src/main.js` of the committed HEAD built into bench/out/build/,
 * or src/ through tsx with --worktree) and the stand-in httpd on 127.0.0.1 (`taskset -c 1`);
 * namespace `cli` holds every simulated host (one Node process, `taskset -c 1`), each with its
 * own leased address on the client interface. Nothing leaves the lab's namespaces.
 *
 * Measured on metalboot, from outside: CPU (utime+stime, /proc/<pid>/stat) and peak RSS (VmHWM)
 * over the storm; the event-loop delay histogram of the storm window from a 10-line preload
 * (perf_hooks.monitorEventLoopDelay, 10 ms resolution like prom-client's, reset after start-up
 * and read at the end through SIGUSR2), cross-checked by scraping /metrics
 * (`metalboot_nodejs_eventloop_lag_p99_seconds`, a per-scrape window) every second.
 *
 * Full: N = 100, 250, 500 × cache off/on, 15 MiB kernel + 60 MiB initramfs (< 15 min).
 * --quick: N = 100 × off/on, 4 MiB + 16 MiB, no profile, RESULTS.md untouched (< 4 min).
 * If a target is missed, the worst run is repeated under `node --cpu-prof` and the profile of
 * the storm window is summarised. Raw JSON, logs and profiles go to bench/out/boot-storm-<time>/.
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { ChildProcess } from 'node:child_process';
import { createLab, findExecutable, requireRoot, requireTools, type Lab } from '../lab/netns.js';
import { summariseProfile, type ProfileSummary } from './lib/cpuprofile.js';
import { cpuTimes, gitState, loadAvg1, machine, memoryMiB, REPO_ROOT, waitForQuiet } from './lib/machine.js';
import { metalbootBuild, type MetalbootBuild } from './lib/metalboot-build.js';
import { RESULTS_FILE, writeResultsSection } from './lib/results-md.js';
import { fmt } from './lib/stats.js';
import { bmhManifest, clientAddressBatch, hostIp, hostMac, seededRandom, STORM_ARTIFACTS, STORM_NET } from './lib/storm-net.js';
import type { HostPlan, StormSettings } from './lib/storm-host.js';
import { failureLines, phaseTable, serverTable, summariseRun, targetLines, verdicts, type EventLoopWindow, type RunRow, type ServerSample } from './lib/storm-report.js';
import type { ClientPlan, ClientResult } from './boot-storm-client.js';
import type { UpstreamStats } from './boot-storm-upstream.js';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    hosts: { type: 'string' },
    cache: { type: 'string', default: 'off,on' },
    'image-worker': { type: 'string', default: 'on' },
    'jitter-s': { type: 'string', default: '20' },
    'kernel-mib': { type: 'string' },
    'initramfs-mib': { type: 'string' },
    'hash-images': { type: 'boolean', default: false },
    seed: { type: 'string', default: '1' },
    'log-level': { type: 'string', default: 'info' },
    worktree: { type: 'boolean', default: false },
    'no-profile': { type: 'boolean', default: false },
    'cpu-prof': { type: 'boolean', default: false },
    'no-results': { type: 'boolean', default: false },
    results: { type: 'boolean', default: false },
    'max-total-s': { type: 'string' },
    'quiet-load': { type: 'string', default: '1.5' },
    'quiet-wait-s': { type: 'string' },
    out: { type: 'string', default: path.join(REPO_ROOT, 'bench', 'out') },
  },
});

const QUICK = args.quick;
/** The image proxy in its worker thread (--image-listen), as recommended for boot storms. */
const IMAGE_WORKER = args['image-worker'] === 'on';
const IMAGE_PORT = 8082;
const HOSTS = (args.hosts ?? (QUICK ? '100' : '100,250,500')).split(',').map(Number);
const CACHE = args.cache.split(',').map((c) => c.trim() === 'on');
const JITTER_S = Number(args['jitter-s']);
const KERNEL_BYTES = Math.round(Number(args['kernel-mib'] ?? (QUICK ? 4 : 15)) * 2 ** 20);
const INITRAMFS_BYTES = Math.round(Number(args['initramfs-mib'] ?? (QUICK ? 16 : 60)) * 2 ** 20);
const MAX_TOTAL_S = Number(args['max-total-s'] ?? (QUICK ? 230 : 890));
const QUIET_WAIT_S = Number(args['quiet-wait-s'] ?? (QUICK ? 20 : 90));
const PROFILE = !args['no-profile'] && !QUICK;
const WRITE_RESULTS = !args['no-results'] && (!QUICK || args.results);
/** Hosts still booting this long after their power-on window closes are given up on (less if the time budget is short). */
const TAIL_S = QUICK ? 60 : 100;
/** Kept back from --max-total-s for the report and the lab's removal. */
const RESERVE_S = 40;
const TFTP_FILE = 'snponly.efi';
const TFTP_ROOT = '/usr/lib/ipxe';

const started = Date.now();
const stamp = new Date(started).toISOString().replace(/[:.]/g, '-');
const runDir = path.join(args.out, `boot-storm-${stamp}`);
const log = (s: string): void => console.error(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${s}`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const hardStop = setTimeout(() => {
  console.error(`boot-storm: exceeded --max-total-s ${MAX_TOTAL_S}; stopping (the lab's exit handler removes the namespaces)`);
  process.exit(2);
}, MAX_TOTAL_S * 1000);
hardStop.unref();

/** Loaded into metalboot with --import: the event-loop delay of the storm window, on SIGUSR2. */
const ELD_PRELOAD = `import { monitorEventLoopDelay } from 'node:perf_hooks';
import { writeFileSync } from 'node:fs';
const h = monitorEventLoopDelay({ resolution: 10 });
h.enable();
let since = Date.now();
process.on('SIGUSR2', () => {
  const ms = (ns) => ns / 1e6;
  writeFileSync(process.env.STORM_ELD_FILE, JSON.stringify({ ms: Date.now() - since, count: h.count, p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), p999: ms(h.percentile(99.9)), max: ms(h.max), mean: ms(h.mean) }));
  h.reset();
  since = Date.now();
});
`;

// ───────────────────────────── lab pieces ─────────────────────────────

interface Ctx {
  readonly lab: Lab;
  readonly build: MetalbootBuild;
  readonly upstreamPort: number;
  readonly files: Record<string, { size: number; sha256: string }>;
  readonly tftp: { size: number; sha256: string };
  readonly preload: string;
}

async function curlSrv(lab: Lab, url: string, timeoutMs = 3_000): Promise<string | undefined> {
  const r = await lab.exec('srv', 'curl', ['-s', '-f', '--max-time', String(timeoutMs / 1000), url], { timeoutMs: timeoutMs + 2_000 });
  return r.code === 0 ? r.stdout : undefined;
}

async function upstreamStats(ctx: Ctx): Promise<UpstreamStats | undefined> {
  const text = await curlSrv(ctx.lab, `http://127.0.0.1:${ctx.upstreamPort}/__stats`);
  return text === undefined ? undefined : (JSON.parse(text) as UpstreamStats);
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

async function stopChild(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (exited(child)) return;
  const gone = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await gone;
  clearTimeout(t);
}

async function startUpstream(lab: Lab): Promise<{ port: number; files: Ctx['files'] }> {
  const child = lab.spawn('srv', 'taskset', ['-c', '1', process.execPath, '--import', 'tsx', path.join(REPO_ROOT, 'bench/boot-storm-upstream.ts'),
    '--kernel-bytes', String(KERNEL_BYTES), '--initramfs-bytes', String(INITRAMFS_BYTES)], { cwd: REPO_ROOT });
  const out = await lab.waitForOutput(child, /^\{"port":\d+.*\}$/m, 30_000);
  const line = out.split('\n').find((l) => l.startsWith('{"port"'))!;
  const parsed = JSON.parse(line) as { port: number; files: Ctx['files'] };
  return parsed;
}

function metalbootArgs(ctx: Ctx, bmhFile: string, cacheDir: string | undefined): string[] {
  return [
    '--server-ip', `${STORM_NET.serverIp}/${STORM_NET.prefix}`,
    '--bmh-file', bmhFile,
    '--tftp-root', TFTP_ROOT,
    '--http-listen', `0.0.0.0:${STORM_NET.httpPort}`,
    '--ironic-http-url', `http://127.0.0.1:${ctx.upstreamPort}`,
    '--callback-listen', '',
    '--log-level', args['log-level'],
    ...(cacheDir === undefined ? [] : ['--image-cache-dir', cacheDir]),
    ...(IMAGE_WORKER ? ['--image-listen', `0.0.0.0:${IMAGE_PORT}`] : []),
  ];
}

interface Metalboot {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly logFile: string;
}

async function startMetalboot(ctx: Ctx, dir: string, n: number, cache: boolean, cpuProf: boolean): Promise<Metalboot> {
  const bmhFile = path.join(dir, 'bmh.yaml');
  writeFileSync(bmhFile, bmhManifest(n));
  const cacheDir = cache ? path.join(dir, 'image-cache') : undefined;
  const logFile = path.join(dir, 'metalboot.log');
  const fd = openSync(logFile, 'w');
  const nodeFlags = ['--import', pathToFileURL(ctx.preload).href, ...(cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : [])];
  const argv = [...ctx.build.nodeArgs, ...nodeFlags, ctx.build.entry, ...metalbootArgs(ctx, bmhFile, cacheDir)];
  writeFileSync(path.join(dir, 'metalboot.cmd'), `taskset -c 0 ${ctx.build.node} ${argv.join(' ')}\n`);
  const child = ctx.lab.spawn('srv', 'taskset', ['-c', '0', ctx.build.node, ...argv], {
    stdio: ['ignore', fd, fd],
    env: { STORM_ELD_FILE: path.join(dir, 'eld.json') },
    cwd: dir,
  });
  closeSync(fd);
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited(child)) throw new Error(`metalboot exited during start-up (${child.exitCode ?? child.signalCode}):\n${readFileSync(logFile, 'utf8').slice(-3000)}`);
    if (/"msg":"ready"/.test(readFileSync(logFile, 'utf8'))) break;
    if (Date.now() > deadline) {
      await stopChild(child);
      throw new Error(`metalboot not ready within 60 s:\n${readFileSync(logFile, 'utf8').slice(-3000)}`);
    }
    await sleep(100);
  }
  // Every BareMetalHost loaded and every socket bound.
  for (let i = 0; ; i++) {
    if ((await curlSrv(ctx.lab, `http://127.0.0.1:${STORM_NET.httpPort}/readyz`)) !== undefined) break;
    if (i > 100) throw new Error('metalboot /readyz never answered 200');
    await sleep(100);
  }
  const explain = await curlSrv(ctx.lab, `http://127.0.0.1:${STORM_NET.httpPort}/debug/explain?mac=${hostMac(n - 1)}`);
  if (explain === undefined || !explain.includes(hostIp(n - 1))) throw new Error(`metalboot does not know host ${n - 1} (${hostMac(n - 1)}): ${explain?.slice(0, 500)}`);
  return { child, pid: child.pid!, logFile };
}

/** Receive Packet Steering: packets arriving on `dev` in `ns` are processed on the CPUs of `mask`. */
async function steer(lab: Lab, ns: string, dev: string, mask: number): Promise<string> {
  const r = await lab.exec(ns, 'sh', ['-c', `echo ${mask.toString(16)} > /sys/class/net/${dev}/queues/rx-0/rps_cpus`]);
  return `${ns}/${dev} → CPU mask ${mask}${r.code === 0 ? '' : ` (failed: ${r.stderr.trim()})`}`;
}

/** Seconds the process's main thread spent runnable but waiting for a CPU (/proc/<pid>/schedstat, field 2). */
function runDelayS(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[1]) / 1e9;
  } catch {
    return NaN;
  }
}

/** Kernel counters of one namespace (/proc/net/snmp and netstat are per namespace). */
async function netCounters(lab: Lab, ns: string): Promise<Record<string, number>> {
  const r = await lab.exec(ns, 'cat', ['/proc/net/snmp', '/proc/net/netstat']);
  const out: Record<string, number> = {};
  const lines = r.stdout.split('\n');
  for (let i = 0; i + 1 < lines.length; i++) {
    const head = lines[i]!.split(/\s+/);
    const vals = lines[i + 1]!.split(/\s+/);
    if (head[0] === undefined || head[0] !== vals[0] || !/^[A-Za-z]+:$/.test(head[0]) || !/^\d/.test(vals[1] ?? '')) continue;
    const group = head[0].slice(0, -1);
    for (let k = 1; k < head.length; k++) out[`${group}.${head[k]}`] = Number(vals[k]);
  }
  return out;
}

/** Packets the kernel dropped for want of backlog room, all CPUs (/proc/net/softnet_stat column 2). */
function softnetDrops(): number {
  try {
    return readFileSync('/proc/net/softnet_stat', 'utf8').trim().split('\n').reduce((sum, l) => sum + parseInt(l.split(/\s+/)[1] ?? '0', 16), 0);
  } catch {
    return NaN;
  }
}

const NET_KEYS = ['Tcp.RetransSegs', 'TcpExt.TCPTimeouts', 'TcpExt.TCPLossProbes', 'TcpExt.TCPBacklogDrop', 'TcpExt.ListenOverflows', 'Udp.RcvbufErrors', 'Udp.InErrors', 'Udp.SndbufErrors'] as const;

/** The table's keys always, and every other counter that moved (for the JSON). */
function netDelta(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = Object.fromEntries(NET_KEYS.map((k) => [k, (b[k] ?? 0) - (a[k] ?? 0)]));
  for (const k of Object.keys(b)) if (/^(Tcp|TcpExt|Udp)\./.test(k) && b[k] !== a[k] && !(k in out)) out[k] = (b[k] ?? 0) - (a[k] ?? 0);
  return out;
}

function metricValue(text: string, name: string): number | undefined {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.eE+-]+)$`, 'm').exec(text);
  return m === null ? undefined : Number(m[1]);
}

/** Non-zero counters worth reading next to the table: drops, refusals, proxy results. */
function interestingCounters(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^((?:metalboot_)?(?:dhcp_dropped_total|dhcp_replies_total|tftp_[a-z_]+_total|image_proxy_[a-z_]+_total|image_cache_fills_total|boot_scripts_total|http_requests_total)(?:\{[^}]*\})?) ([0-9.eE+-]+)$/.exec(line);
    if (m !== null && Number(m[2]) > 0) out[m[1]!] = Number(m[2]);
  }
  return out;
}

// ───────────────────────────── one storm ─────────────────────────────

function plan(n: number, seed: number): HostPlan[] {
  const rand = seededRandom(seed * 1_000_003 + n);
  return Array.from({ length: n }, (_, i) => ({ i, mac: hostMac(i), ip: hostIp(i), startMs: Math.round(rand() * JITTER_S * 1000) }));
}

function settings(ctx: Ctx): StormSettings {
  const f = (p: string) => ctx.files[p]!;
  return {
    serverIp: STORM_NET.serverIp,
    tftpFile: TFTP_FILE,
    tftp: ctx.tftp,
    kernel: f(STORM_ARTIFACTS.kernel),
    initramfs: f(STORM_ARTIFACTS.initramfs),
    hashImages: args['hash-images'],
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

interface StormOutput {
  readonly row: RunRow;
  readonly client: ClientResult;
  readonly dir: string;
  readonly profile?: { file: string; summary: ProfileSummary };
}

const elapsedS = (): number => (Date.now() - started) / 1000;

async function storm(ctx: Ctx, n: number, cache: boolean, cpuProf: boolean, tailS: number): Promise<StormOutput> {
  const tag = `n${n}-cache-${cache ? 'on' : 'off'}${cpuProf ? '-cpu-prof' : ''}`;
  const dir = path.join(runDir, tag);
  mkdirSync(dir, { recursive: true });
  log(`${tag}: starting metalboot`);
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
    const mem0 = memoryMiB(mb.pid);
    const wait0 = runDelayS(mb.pid);
    const net0 = { srv: await netCounters(ctx.lab, 'srv'), cli: await netCounters(ctx.lab, 'cli'), softnet: softnetDrops() };
    const load1Before = loadAvg1();
    const planFile = path.join(dir, 'plan.json');
    const resultFile = path.join(dir, 'client.json');
    const deadlineMs = (JITTER_S + tailS) * 1000;
    const clientPlan: ClientPlan = { hosts: plan(n, Number(args.seed)), settings: settings(ctx), deadlineMs };
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
              try { writeFileSync(path.join(dir, `proc-${f}-at-peak-rss.txt`), readFileSync(`/proc/${mb.pid}/${f}`)); } catch { /* gone */ }
            }
          }
          samples.push({ atMs: t - t0, eldP99Ms: p99 * 1000, rssMiB: mem.rss });
        }
        await sleep(Math.max(0, 1_000 - (Date.now() - t)));
      }
    })();
    log(`${tag}: ${n} hosts power on within ${JITTER_S} s (load ${load1Before.toFixed(2)})`);
    const r = await ctx.lab.exec('cli', 'taskset', ['-c', '1', process.execPath, '--import', 'tsx', path.join(REPO_ROOT, 'bench/boot-storm-client.ts'), planFile, resultFile], {
      timeoutMs: deadlineMs + 20_000,
      cwd: REPO_ROOT,
    });
    sampling = false;
    await sampler;
    writeFileSync(path.join(dir, 'client.log'), `${r.stdout}\n--- stderr\n${r.stderr}`);
    if (r.code !== 0 || !existsSync(resultFile)) throw new Error(`client exited ${r.code}${r.timedOut ? ' (timed out)' : ''}:\n${r.stderr.slice(-3000)}`);
    const client = JSON.parse(readFileSync(resultFile, 'utf8')) as ClientResult;

    process.kill(mb.pid, 'SIGUSR2');
    for (let i = 0; i < 100 && statSync(eldFile).mtimeMs === eldStart; i++) await sleep(20);
    const eld = statSync(eldFile).mtimeMs === eldStart ? undefined : (JSON.parse(readFileSync(eldFile, 'utf8')) as EventLoopWindow);
    const cpu1 = cpuTimes(mb.pid);
    const wait1 = runDelayS(mb.pid);
    const mem = memoryMiB(mb.pid);
    const up1 = await upstreamStats(ctx);
    const metrics = (await curlSrv(ctx.lab, `http://127.0.0.1:${STORM_NET.httpPort}/metrics`)) ?? '';
    writeFileSync(path.join(dir, 'metrics.txt'), metrics);
    const load1After = loadAvg1();
    const net = { srv: netDelta(net0.srv, await netCounters(ctx.lab, 'srv')), cli: netDelta(net0.cli, await netCounters(ctx.lab, 'cli')), softnetDrops: softnetDrops() - net0.softnet };
    await stopChild(mb.child);
    stopped = true;

    const row = summariseRun({
      hosts: n, cache, profiled: cpuProf, client, net, upstreamBefore: up0, upstreamAfter: up1, load1Before, load1After,
      server: {
        cpuUserS: (cpu1?.user ?? NaN) - (cpu0?.user ?? NaN),
        cpuSysS: (cpu1?.sys ?? NaN) - (cpu0?.sys ?? NaN),
        runDelayS: wait1 - wait0,
        hwmMiB: mem?.hwm ?? NaN,
        rssStartMiB: mem0?.rss ?? NaN,
        rssEndMiB: mem?.rss ?? NaN,
        eld,
        samples,
        counters: interestingCounters(metrics),
      },
    });
    writeFileSync(path.join(dir, 'row.json'), JSON.stringify(row, null, 2));
    log(`${tag}: ${row.ok}/${n} booted in ${row.wallS.toFixed(1)} s; firmware DHCP+TFTP p99 ${fmt(row.firmware.p99 / 1000, 2)} s; RSS ${fmt(row.server.hwmMiB)} MiB; ELD p99 ${fmt(eld?.p99, 1)} ms; CPU ${fmt(row.server.cpuUserS + row.server.cpuSysS, 1)} s; upstream ${fmt(row.upstreamWireBytes / 1e6)} MB`);
    for (const l of failureLines([row])) log(`  failures ${l.slice(2)}`);
    let profile: StormOutput['profile'];
    if (cpuProf) {
      const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
      if (file !== undefined) {
        profile = {
          file: path.relative(runDir, path.join(dir, file)),
          summary: summariseProfile(path.join(dir, file), {
            top: 20,
            windowUs: [client.monoStartUs, client.monoEndUs],
            // Socket writes to hosts, upstream reads (undici), cache file reads, TFTP, DHCP, metrics.
            inclusive: ['writeGeneric', 'writevGeneric', 'onStreamRead', 'execute', 'onBody', 'read', '#pump', 'onTransferMessage', 'onListenerMessage', '#onMessage', 'setValue', 'inc', 'handleRequest'],
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

// ───────────────────────────── report ─────────────────────────────

function profileSection(p: NonNullable<StormOutput['profile']>, row: RunRow): string {
  const s = p.summary;
  const top = s.top.map((e) => `| ${e.name} | ${e.where || '(native)'} | ${e.selfMs.toFixed(0)} | ${e.selfPct.toFixed(1)}% |`).join('\n');
  const incl = s.inclusive.filter((e) => e.ms > 0).sort((a, b) => b.ms - a.ms).map((e) => `${e.name} ${e.pct.toFixed(1)}%`).join(', ');
  return [
    `Profile of metalboot (\`node --cpu-prof\`, samples of the storm window only) during a repeat of ${row.hosts} hosts with the cache ${row.cache ? 'on' : 'off'} (${row.ok}/${row.hosts} booted): ${(s.busyMs / 1000).toFixed(1)} s busy of ${(s.totalMs / 1000).toFixed(1)} s sampled; metalboot used ${fmt(row.server.cpuUserS + row.server.cpuSysS, 1)} s of CPU (all threads) and its main thread waited ${fmt(row.server.runDelayS, 1)} s for CPU 0 (V8 samples by wall clock: time spent preempted is charged to the function it was in, typically a native call that woke another thread). Raw profile: \`bench/out/boot-storm-${stamp}/${p.file}\`.`,
    '',
    '| function (self time) | where | ms | % of busy |',
    '|---|---|--:|--:|',
    top,
    '',
    `Inclusive share of busy time: ${incl}.`,
  ].join('\n');
}

/**
 * The hand-written `### Reading it` notes of the current `## Boot storm` section, kept across
 * runs (they say which run they were written for).
 */
function keptNotes(): string | undefined {
  if (!existsSync(RESULTS_FILE)) return undefined;
  const lines = readFileSync(RESULTS_FILE, 'utf8').split('\n');
  const start = lines.findIndex((l) => l.trimEnd() === '## Boot storm');
  if (start < 0) return undefined;
  const end = lines.findIndex((l, i) => i > start && l.startsWith('## '));
  const section = lines.slice(start + 1, end < 0 ? lines.length : end);
  const from = section.findIndex((l) => l.trimEnd() === '### Reading it');
  if (from < 0) return undefined;
  const to = section.findIndex((l, i) => i > from && l.startsWith('### '));
  return section.slice(from, to < 0 ? section.length : to).join('\n').trim();
}

// ───────────────────────────── main ─────────────────────────────

async function main(): Promise<void> {
  requireRoot();
  requireTools('ip');
  for (const bin of ['taskset', 'curl']) if (findExecutable(bin) === undefined) throw new Error(`${bin} is missing`);
  const m = machine();
  if (m.nproc < 2) throw new Error('needs at least 2 CPUs (metalboot on CPU 0, hosts and httpd on CPU 1)');
  if (!existsSync(path.join(TFTP_ROOT, TFTP_FILE))) throw new Error(`${TFTP_ROOT}/${TFTP_FILE} is missing (Debian package ipxe)`);
  if (Math.max(...HOSTS) > 2_000) throw new Error('at most 2,000 hosts (one address each on the client interface)');
  mkdirSync(runDir, { recursive: true });
  const git = gitState();
  log(`metalboot ${git.sha.slice(0, 12)}${git.srcDirty.length > 0 && !args.worktree ? ` (src/ has uncommitted changes in ${git.srcDirty.length} files; measuring the commit)` : ''}; output in ${path.relative(REPO_ROOT, runDir)}`);
  const build = metalbootBuild({ worktree: args.worktree, sha: git.sha, outDir: args.out });
  const preload = path.join(runDir, 'eld-preload.mjs');
  writeFileSync(preload, ELD_PRELOAD);
  const tftpBytes = readFileSync(path.join(TFTP_ROOT, TFTP_FILE));
  const { createHash } = await import('node:crypto');
  const tftp = { size: tftpBytes.length, sha256: createHash('sha256').update(tftpBytes).digest('hex') };

  const quiet = await waitForQuiet(Number(args['quiet-load']), QUIET_WAIT_S, log);
  log(`load ${quiet.load1.toFixed(2)} after waiting ${quiet.waitedS} s${quiet.quiet ? '' : ' (not quiet; measuring anyway)'}`);

  const lab = await createLab({ switchNamespace: 'srv', bridgeIp: `${STORM_NET.serverIp}/${STORM_NET.prefix}` });
  const outputs: StormOutput[] = [];
  const skipped: string[] = [];
  let steering: string[] = [];
  const profiled: StormOutput[] = [];
  try {
    await lab.addNamespace('cli');
    const link = await lab.connect('cli', { ip: `${STORM_NET.clientIp}/${STORM_NET.prefix}` });
    const batch = path.join(runDir, 'client-addresses.batch');
    writeFileSync(batch, clientAddressBatch(Math.max(...HOSTS), link.ifname));
    await lab.exec('cli', 'ip', ['-batch', batch], { check: true, timeoutMs: 60_000 });
    // A route for the limited broadcast: DHCP leaves on the lab interface.
    await lab.exec('cli', 'ip', ['route', 'add', '255.255.255.255/32', 'dev', link.ifname], { check: true });
    // Receive processing on the receiver's CPU, as if each side had its own NIC: what the hosts
    // receive is processed on CPU 1, what metalboot receives (from the hosts and from the
    // httpd on loopback) on CPU 0. Without this a veth delivers in the sender's softirq.
    steering = [await steer(lab, 'cli', link.ifname, 2), await steer(lab, 'srv', link.peer, 1), await steer(lab, 'srv', 'lo', 1)];
    const up = await startUpstream(lab);
    const ctx: Ctx = { lab, build, upstreamPort: up.port, files: up.files, tftp, preload };
    log(`stand-in httpd on 127.0.0.1:${up.port}: kernel ${fmt(KERNEL_BYTES / 2 ** 20, 1)} MiB, initramfs ${fmt(INITRAMFS_BYTES / 2 ** 20, 1)} MiB`);
    for (const n of HOSTS) {
      for (const cache of CACHE) {
        const left = MAX_TOTAL_S - RESERVE_S - elapsedS();
        const tail = Math.min(TAIL_S, left - JITTER_S - 25);
        if (tail < 20) {
          log(`n${n}-cache-${cache ? 'on' : 'off'}: skipped, ${left.toFixed(0)} s left of --max-total-s ${MAX_TOTAL_S}`);
          skipped.push(`${n} hosts, cache ${cache ? 'on' : 'off'}`);
          continue;
        }
        outputs.push(await storm(ctx, n, cache, args['cpu-prof'], tail));
      }
    }
    const missed = outputs.filter((o) => verdicts(o.row).some((v) => !v.met));
    // Per cache mode (the relay and the cache are different code paths): the largest storm
    // that missed a target and still fits the time left, repeated under --cpu-prof.
    for (const cache of PROFILE && !args['cpu-prof'] ? CACHE : []) {
      const left = MAX_TOTAL_S - RESERVE_S - elapsedS();
      const worst = missed.filter((o) => o.row.cache === cache).sort((a, b) => b.row.hosts - a.row.hosts).find((o) => o.row.wallS * 1.3 + 15 < left);
      if (worst === undefined) {
        if (missed.some((o) => o.row.cache === cache)) log(`cache ${cache ? 'on' : 'off'}: a target was missed, but ${left.toFixed(0)} s are left: no profile`);
        continue;
      }
      log(`a target was missed: repeating ${worst.row.hosts} hosts, cache ${cache ? 'on' : 'off'} under --cpu-prof`);
      profiled.push(await storm(ctx, worst.row.hosts, cache, true, Math.min(TAIL_S, left - JITTER_S - 25)));
    }
  } finally {
    await lab.close();
  }

  const rows = outputs.map((o) => o.row);
  const allRows = [...rows, ...profiled.map((p) => p.row)];
  const totalS = Math.round(elapsedS());
  const cmd = `sudo node --import tsx bench/boot-storm.ts${QUICK ? ' --quick' : ''}${args.hosts !== undefined ? ` --hosts ${args.hosts}` : ''}`;
  const loads = rows.flatMap((r) => [r.load1Before, r.load1After]);
  const versions = `metalboot ${git.sha.slice(0, 12)} (${build.label}); Node.js ${process.version}; prom-client ${JSON.parse(readFileSync(path.join(REPO_ROOT, 'node_modules/prom-client/package.json'), 'utf8')).version}; iPXE snponly.efi from ${TFTP_ROOT} (${fmt(tftp.size)} bytes)`;
  const body = [
    `Measured ${new Date(started).toISOString().slice(0, 16).replace('T', ' ')} UTC by \`${cmd}\` (${Math.round(totalS / 60)} min). Raw JSON, logs and metrics: \`bench/out/boot-storm-${stamp}/\`.`,
    '',
    `**Machine**: ${m.nproc} CPUs (${m.cpuModel}), ${m.memGiB} GiB, Linux ${m.kernel}. **Versions**: ${versions}. Load (1-min average) around the runs: ${fmt(Math.min(...loads), 2)}–${fmt(Math.max(...loads), 2)}${Math.max(...loads) >= Number(args['quiet-load']) ? ` — **not a quiet machine**: other work was running (the script waited ${quiet.waitedS} s for the load to drop below ${args['quiet-load']}, then measured anyway), so CPU 0 was not metalboot's alone` : ''}.`,
    '',
    `**Set-up**: network namespace \`srv\` holds the bridge (${STORM_NET.serverIp}/${STORM_NET.prefix}), metalboot pinned to CPU 0 (\`taskset -c 0 node dist/src/main.js --server-ip ${STORM_NET.serverIp}/${STORM_NET.prefix} --bmh-file bmh.yaml --tftp-root ${TFTP_ROOT} --ironic-http-url http://127.0.0.1:PORT --callback-listen ""${IMAGE_WORKER ? ` --image-listen 0.0.0.0:${IMAGE_PORT}` : ''} [--image-cache-dir DIR]\`, log level ${args['log-level']}, a fresh process and an empty cache per run) and a stand-in for Ironic's httpd on 127.0.0.1 (Node, files in memory, Apache-style ETag/Last-Modified, pinned to CPU 1) serving \`${STORM_ARTIFACTS.kernel}\` (${fmt(KERNEL_BYTES)} bytes = ${fmt(KERNEL_BYTES / 2 ** 20, 0)} MiB) and \`${STORM_ARTIFACTS.initramfs}\` (${fmt(INITRAMFS_BYTES)} bytes = ${fmt(INITRAMFS_BYTES / 2 ** 20, 0)} MiB). Receive processing is steered (RPS) to the receiver's CPU: ${steering.join('; ')}. Namespace \`cli\`, on a veth into the bridge, holds the simulated hosts: one Node process pinned to CPU 1, every host with its own address on the interface. N BareMetalHosts (MACs 52:54:00:00:xx:xx, \`metal3.vcluster.com/ip-address\` in 10.60.0.0/16, state \`inspecting\`, so each gets the inspector script).`,
    '',
    `**Each host** powers on at a uniformly random time in 0–${JITTER_S} s (seeded) and then: DHCP DORA as EDK2 x64 UEFI PXE (options 60/93/94/97/57/55 of OVMF, its own xid; replies are broadcast and read from one 0.0.0.0:68 socket by xid and chaddr; DISCOVER/REQUEST resent after 4, 8, 16, 32 s) → TFTP of ${TFTP_FILE} from its leased address like EDK2 (tsize probe answered with ERROR 8, then blksize 1468 windowsize 4; resend after 4 s silence, 6 times) → DHCP DORA as iPXE (options 77 "iPXE", 93, 175; resent after 1, 2, 4, 8 s) → GET /boot.ipxe → GET /boot/<mac-hyphen>.ipxe → GET the kernel and initramfs URLs of that script through the image proxy on one keep-alive connection (HTTP runs in a worker thread of the client process with a minimal HTTP/1.1 client, so bulk downloads do not hold up other hosts' DHCP and TFTP in the client; bodies streamed and counted, size checked against Content-Length and the file${args['hash-images'] ? ', sha256 checked' : '; sha256 not checked unless --hash-images'}; a failed GET is retried after 5 s, twice, like the script's \`|| goto retry\`). No think time between phases: real firmware and iPXE take a second or more to start, so this storm is denser than a real one. Phase times are from the first packet or request to the last byte; p50 / p99 over the hosts that completed the phase, seconds.`,
    '',
    '### Boot phases (p50 / p99, seconds)',
    '',
    phaseTable(allRows),
    '',
    '### Server, upstream and resends',
    '',
    'Upstream GETs and MB are counted at the stand-in httpd (wire bytes, headers included); "full" GETs carry no validator, revalidations are conditional GETs (answered 304). Event-loop delay: metalboot\'s own `perf_hooks` histogram over the storm window (10 ms resolution, as prom-client samples it); the worst 1-s window is the highest `metalboot_nodejs_eventloop_lag_p99_seconds` read from /metrics, scraped every second. Peak RSS is VmHWM (start-up included). CPU is utime + stime over the storm. The client and the httpd share CPU 1.',
    '',
    serverTable(allRows),
    '',
    '### Targets (issue 9)',
    '',
    ...targetLines(rows),
    '',
    ...(failureLines(allRows).length > 0 ? ['### Failures', '', ...failureLines(allRows), ''] : []),
    ...(skipped.length > 0 ? [`Not run (time budget of ${MAX_TOTAL_S} s): ${skipped.join('; ')}.`, ''] : []),
    ...(profiled.some((p) => p.profile !== undefined) ? ['### CPU profiles', '', ...profiled.flatMap((p) => (p.profile === undefined ? [] : [profileSection(p.profile, p.row), '']))] : []),
  ].join('\n');

  writeFileSync(path.join(runDir, 'results.json'), JSON.stringify({ args, machine: m, versions, kernelBytes: KERNEL_BYTES, initramfsBytes: INITRAMFS_BYTES, rows: allRows, profiles: profiled.map((p) => p.profile) }, null, 2));
  writeFileSync(path.join(runDir, 'summary.md'), `## Boot storm\n\n${body}\n`);
  console.log(`\n${phaseTable(allRows)}\n\n${serverTable(allRows)}\n\n${targetLines(rows).join('\n')}\n`);
  for (const p of profiled) if (p.profile !== undefined) console.log(profileSection(p.profile, p.row));
  if (WRITE_RESULTS) {
    const notes = keptNotes();
    writeResultsSection('Boot storm', notes === undefined ? body : `${body}\n${notes}\n`);
    log('bench/RESULTS.md: ## Boot storm updated');
  } else {
    log(`bench/RESULTS.md left alone (${QUICK ? 'quick run; pass --results to write it' : '--no-results'}); summary in ${path.relative(REPO_ROOT, path.join(runDir, 'summary.md'))}`);
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
