/**
 * The boot storm's server side, in namespace `srv`: metalboot (taskset -c 0, with a preload that
 * reports its event-loop delay on SIGUSR2) and the stand-in for Ironic's httpd (taskset -c 1),
 * and what bench/boot-storm.ts reads around a storm: /metrics, /proc counters of the process,
 * the namespaces' TCP/UDP counters and the kernel's backlog drops.
 */
import type { ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Lab } from '../../lab/netns.js';
import type { UpstreamStats } from '../boot-storm-upstream.js';
import { REPO_ROOT } from './machine.js';
import type { MetalbootBuild } from './metalboot-build.js';
import { hostIp, hostMac, bmhManifest, STORM_NET } from './storm-net.js';

export const TFTP_FILE = 'snponly.efi';
export const TFTP_ROOT = '/usr/lib/ipxe';
/** Where the image proxy listens in its worker processes (--image-listen). */
export const IMAGE_PORT = 8082;

/** The lab as the server side needs it. */
export interface StormLab {
  readonly lab: Lab;
  readonly build: MetalbootBuild;
  readonly upstreamPort: number;
  readonly files: Record<string, { size: number; sha256: string }>;
  readonly tftp: { size: number; sha256: string };
  /** The event-loop delay preload (ELD_PRELOAD written to a file). */
  readonly preload: string;
  readonly logLevel: string;
  /** The image proxy in its worker processes (--image-listen), as recommended for boot storms. */
  readonly imageWorker: boolean;
  /** How many (--image-workers). */
  readonly imageWorkers: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Loaded into metalboot with --import: the event-loop delay of the storm window, on SIGUSR2. */
export const ELD_PRELOAD = `import { monitorEventLoopDelay } from 'node:perf_hooks';
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

export async function curlSrv(lab: Lab, url: string, timeoutMs = 3_000): Promise<string | undefined> {
  const r = await lab.exec('srv', 'curl', ['-s', '-f', '--max-time', String(timeoutMs / 1000), url], {
    timeoutMs: timeoutMs + 2_000,
  });
  return r.code === 0 ? r.stdout : undefined;
}

export async function upstreamStats(ctx: StormLab): Promise<UpstreamStats | undefined> {
  const text = await curlSrv(ctx.lab, `http://127.0.0.1:${ctx.upstreamPort}/__stats`);
  return text === undefined ? undefined : (JSON.parse(text) as UpstreamStats);
}

export function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

export async function stopChild(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (exited(child)) return;
  const gone = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await gone;
  clearTimeout(t);
}

/** The stand-in httpd in `srv` on CPU 1, serving a kernel and an initramfs of these sizes. */
export async function startUpstream(
  lab: Lab,
  kernelBytes: number,
  initramfsBytes: number,
): Promise<{ port: number; files: StormLab['files'] }> {
  const child = lab.spawn(
    'srv',
    'taskset',
    [
      '-c',
      '1',
      process.execPath,
      '--import',
      'tsx',
      path.join(REPO_ROOT, 'bench/boot-storm-upstream.ts'),
      '--kernel-bytes',
      String(kernelBytes),
      '--initramfs-bytes',
      String(initramfsBytes),
    ],
    { cwd: REPO_ROOT },
  );
  const out = await lab.waitForOutput(child, /^\{"port":\d+.*\}$/m, 30_000);
  const line = out.split('\n').find((l) => l.startsWith('{"port"'))!;
  const parsed = JSON.parse(line) as { port: number; files: StormLab['files'] };
  return parsed;
}

function metalbootArgs(ctx: StormLab, bmhFile: string, cacheDir: string | undefined): string[] {
  return [
    '--server-ip',
    `${STORM_NET.serverIp}/${STORM_NET.prefix}`,
    '--bmh-file',
    bmhFile,
    '--tftp-root',
    TFTP_ROOT,
    '--http-listen',
    `0.0.0.0:${STORM_NET.httpPort}`,
    '--ironic-http-url',
    `http://127.0.0.1:${ctx.upstreamPort}`,
    '--callback-listen',
    '',
    '--log-level',
    ctx.logLevel,
    ...(cacheDir === undefined ? [] : ['--image-cache-dir', cacheDir]),
    ...(ctx.imageWorker
      ? ['--image-listen', `0.0.0.0:${IMAGE_PORT}`, '--image-workers', String(ctx.imageWorkers)]
      : []),
  ];
}

export interface Metalboot {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly logFile: string;
}

/** metalboot in `srv` on CPU 0 for `n` hosts, ready (every host loaded, every socket bound); logs in `dir`. */
export async function startMetalboot(
  ctx: StormLab,
  dir: string,
  n: number,
  cache: boolean,
  cpuProf: boolean,
): Promise<Metalboot> {
  const bmhFile = path.join(dir, 'bmh.yaml');
  writeFileSync(bmhFile, bmhManifest(n));
  const cacheDir = cache ? path.join(dir, 'image-cache') : undefined;
  const logFile = path.join(dir, 'metalboot.log');
  const fd = openSync(logFile, 'w');
  const nodeFlags = [
    '--import',
    pathToFileURL(ctx.preload).href,
    ...(cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : []),
  ];
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
    if (exited(child))
      throw new Error(
        `metalboot exited during start-up (${child.exitCode ?? child.signalCode}):\n${readFileSync(logFile, 'utf8').slice(-3000)}`,
      );
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
  if (explain === undefined || !explain.includes(hostIp(n - 1)))
    throw new Error(`metalboot does not know host ${n - 1} (${hostMac(n - 1)}): ${explain?.slice(0, 500)}`);
  return { child, pid: child.pid!, logFile };
}

/** Receive Packet Steering: packets arriving on `dev` in `ns` are processed on the CPUs of `mask`. */
export async function steer(lab: Lab, ns: string, dev: string, mask: number): Promise<string> {
  const r = await lab.exec(ns, 'sh', ['-c', `echo ${mask.toString(16)} > /sys/class/net/${dev}/queues/rx-0/rps_cpus`]);
  return `${ns}/${dev} → CPU mask ${mask}${r.code === 0 ? '' : ` (failed: ${r.stderr.trim()})`}`;
}

/** The processes `pid` started (metalboot's image workers), from /proc. */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Seconds the process's main thread spent runnable but waiting for a CPU (/proc/<pid>/schedstat, field 2). */
export function runDelayS(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[1]) / 1e9;
  } catch {
    return NaN;
  }
}

/** Kernel counters of one namespace (/proc/net/snmp and netstat are per namespace). */
export async function netCounters(lab: Lab, ns: string): Promise<Record<string, number>> {
  const r = await lab.exec(ns, 'cat', ['/proc/net/snmp', '/proc/net/netstat']);
  const out: Record<string, number> = {};
  const lines = r.stdout.split('\n');
  for (let i = 0; i + 1 < lines.length; i++) {
    const head = lines[i]!.split(/\s+/);
    const vals = lines[i + 1]!.split(/\s+/);
    if (head[0] === undefined || head[0] !== vals[0] || !/^[A-Za-z]+:$/.test(head[0]) || !/^\d/.test(vals[1] ?? ''))
      continue;
    const group = head[0].slice(0, -1);
    for (let k = 1; k < head.length; k++) out[`${group}.${head[k]}`] = Number(vals[k]);
  }
  return out;
}

/** Packets the kernel dropped for want of backlog room, all CPUs (/proc/net/softnet_stat column 2). */
export function softnetDrops(): number {
  try {
    return readFileSync('/proc/net/softnet_stat', 'utf8')
      .trim()
      .split('\n')
      .reduce((sum, l) => sum + parseInt(l.split(/\s+/)[1] ?? '0', 16), 0);
  } catch {
    return NaN;
  }
}

const NET_KEYS = [
  'Tcp.RetransSegs',
  'TcpExt.TCPTimeouts',
  'TcpExt.TCPLossProbes',
  'TcpExt.TCPBacklogDrop',
  'TcpExt.ListenOverflows',
  'Udp.RcvbufErrors',
  'Udp.InErrors',
  'Udp.SndbufErrors',
] as const;

/** The table's keys always, and every other counter that moved (for the JSON). */
export function netDelta(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = Object.fromEntries(NET_KEYS.map((k) => [k, (b[k] ?? 0) - (a[k] ?? 0)]));
  for (const k of Object.keys(b))
    if (/^(Tcp|TcpExt|Udp)\./.test(k) && b[k] !== a[k] && !(k in out)) out[k] = (b[k] ?? 0) - (a[k] ?? 0);
  return out;
}

export function metricValue(text: string, name: string): number | undefined {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.eE+-]+)$`, 'm').exec(text);
  return m === null ? undefined : Number(m[1]);
}

/** Non-zero counters worth reading next to the table: drops, refusals, proxy results. */
export function interestingCounters(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m =
      /^((?:metalboot_)?(?:dhcp_dropped_total|dhcp_replies_total|tftp_[a-z_]+_total|image_proxy_[a-z_]+_total|image_cache_fills_total|boot_scripts_total|http_requests_total)(?:\{[^}]*\})?) ([0-9.eE+-]+)$/.exec(
        line,
      );
    if (m !== null && Number(m[2]) > 0) out[m[1]!] = Number(m[2]);
  }
  return out;
}
