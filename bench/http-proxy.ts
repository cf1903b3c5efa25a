/**
 * Image proxy benchmark: one 400 MiB artifact (random bytes, generated in bench/out/) fetched
 * over loopback by curl, from
 * - nginx serving the file itself (sendfile), the reference for "a web server with the file";
 * - metalboot's cache, entry already stored (hit);
 * - metalboot's cache, not stored yet (miss: one upstream download, streamed to every client while it fills);
 * - metalboot relaying from the origin without a cache (uncached relay);
 * - nginx proxy_pass to the origin, unbuffered to disk (the reference for an uncached proxy).
 * Each at 1 and 8 concurrent clients and each image worker count; median of 3 runs, aggregate
 * MB/s (10^6 bytes), and the server's own CPU time and peak RSS.
 *
 *   node --import tsx bench/http-proxy.ts [--size-mb 400] [--runs 3] [--concurrency 1,8] [--workers 1]
 *        [--sources sendfile,hit,miss,relay,proxy_pass] [--rev HEAD | --worktree] [--node-flags "…"]
 *        [--max-total-s 900] [--quiet-load 1.5] [--quiet-wait-s 300] [--no-results] [--keep]
 *
 * metalboot runs as deployed: its own process, built from a commit (bench/lib/metalboot-build.ts;
 * `--rev`, default HEAD, or src/ through tsx with --worktree), the image proxy in its image
 * worker (--image-listen 127.0.0.1:0, its port read from the log), DHCP, TFTP and the callback
 * listener off. With `--workers N` above 1 it is given `--image-workers N` (refused when the build
 * has no such flag) and nginx `worker_processes N`.
 *
 * Pinning (bench/lib/pinning.ts): each server under test (metalboot, or the nginx that serves
 * the file and proxies) runs on CPUs 0..N-1 for N workers, every process and thread of it; the
 * curl clients and the origin (a second nginx, the stand-in for Ironic's httpd, one worker) run
 * on the CPUs left, or share all of them when the server has them all. The server's CPU time
 * (utime + stime of its process tree) and peak RSS (summed over the tree, sampled every 50 ms)
 * are its own.
 *
 * Before measuring it waits (at most --quiet-wait-s) for the 1-minute load average to drop under
 * --quiet-load, and records the load either way. Writes the table to stdout and to the `## HTTP`
 * section of bench/RESULTS.md, then deletes the artifact, the caches and the nginx prefixes
 * (unless --keep). Run it under `flock` on a machine shared with other benchmarks.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import path from 'node:path';
import { dockerfileEnv } from './lib/dockerfile-env.js';
import { defineOptions, publishResults, QuietGate, runIfEntry, type Args, type Run } from './lib/harness.js';
import {
  commandOutput,
  debVersion,
  gitState,
  loadAvg1,
  machine,
  REPO_ROOT,
  treeCpuSeconds,
  treeRssMiB,
} from './lib/machine.js';
import { metalbootBuild, type MetalbootBuild } from './lib/metalboot-build.js';
import { pinning, type Pinning } from './lib/pinning.js';
import { median } from './lib/stats.js';

const SOURCES = ['sendfile', 'hit', 'miss', 'relay', 'proxy_pass'] as const;
type Source = (typeof SOURCES)[number];

export const options = defineOptions({
  'size-mb': { type: 'number', help: 'artifact size, MiB', default: '400' },
  runs: { type: 'number', help: 'runs per source and client count (the table shows the median)', default: '3' },
  concurrency: { type: 'numbers', help: 'concurrent curl clients', default: '1,8' },
  workers: {
    type: 'numbers',
    help: 'image worker processes (metalboot --image-workers, nginx worker_processes), one server CPU each',
    default: '1',
  },
  sources: { type: 'list', help: 'what to measure', default: SOURCES.join(','), choices: SOURCES },
  rev: { type: 'string', help: 'the commit of metalboot to measure (git archive + tsc)', default: 'HEAD' },
  worktree: { type: 'boolean', help: 'measure src/ as it is (through tsx) instead of a commit' },
  'node-flags': { type: 'string', help: 'node flags for metalboot, e.g. "--cpu-prof --cpu-prof-dir=DIR"' },
  'max-total-s': { type: 'number', help: 'stop before a run that would start after this many seconds', default: '900' },
  'quiet-load': { type: 'number', help: 'wait for the 1-minute load average to drop below this', default: '1.5' },
  'quiet-wait-s': { type: 'number', help: 'but at most this long', default: '300' },
  'no-results': { type: 'boolean', help: 'leave bench/RESULTS.md alone' },
  keep: { type: 'boolean', help: 'keep the artifact in bench/out/http-proxy/ for the next run' },
});

const BENCH_DIR = import.meta.dirname;
const OUT = path.join(BENCH_DIR, 'out', 'http-proxy');
const ARTIFACT = '/images/artifact.bin';

const log = (s: string): void => void process.stderr.write(`${s}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function makeArtifact(docroot: string, size: number): void {
  const file = path.join(docroot, ARTIFACT);
  mkdirSync(path.dirname(file), { recursive: true });
  if (existsSync(file) && statSync(file).size === size) return;
  const tmp = `${file}.tmp`;
  const fd = openSync(tmp, 'w');
  for (let off = 0; off < size; off += 8 * 1024 * 1024)
    writeSync(fd, randomBytes(Math.min(8 * 1024 * 1024, size - off)));
  closeSync(fd);
  renameSync(tmp, file);
}

/** A new name for the artifact (a hard link: same bytes, same page cache) that no cache holds yet. */
function freshName(docroot: string, tag: string): string {
  const name = `/images/miss-${tag}.bin`;
  const file = path.join(docroot, name);
  rmSync(file, { force: true });
  linkSync(path.join(docroot, ARTIFACT), file);
  return name;
}

/** A process under test or beside it: stopped by SIGTERM (SIGQUIT for nginx), then SIGKILL. */
interface Proc {
  readonly child: ChildProcess;
  readonly pid: number;
  stop(): Promise<void>;
}

function spawnProc(
  cmd: string,
  args: readonly string[],
  logFile: string,
  stopSignal: NodeJS.Signals,
  env: Record<string, string> = {},
): Proc {
  const fd = openSync(logFile, 'w');
  const child = spawn(cmd, args, { stdio: ['ignore', fd, fd], env: { ...process.env, ...env } });
  closeSync(fd);
  return {
    child,
    pid: child.pid!,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill(stopSignal);
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    },
  };
}

async function untilHttp200(url: string, proc: Proc, logFile: string): Promise<void> {
  for (let i = 0; ; i++) {
    if (proc.child.exitCode !== null) throw new Error(`exited: ${readFileSync(logFile, 'utf8').slice(-2000)}`);
    const r = spawnSync('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-I', url], { encoding: 'utf8' });
    if (r.stdout === '200') return;
    if (i > 200) throw new Error(`${url} never answered 200: ${readFileSync(logFile, 'utf8').slice(-2000)}`);
    await sleep(50);
  }
}

const NGINX_COMMON = (prefix: string, workers: number): string => `
worker_processes ${workers};
daemon off;
pid ${prefix}/nginx.pid;
error_log ${prefix}/logs/error.log warn;
${process.geteuid?.() === 0 ? 'user root root;' : ''}
events { worker_connections 1024; }`;

const NGINX_HTTP_COMMON = (prefix: string): string => `
  access_log off;
  sendfile on;
  tcp_nopush on;
  default_type application/octet-stream;
  client_body_temp_path ${prefix}/tmp/body;
  proxy_temp_path ${prefix}/tmp/proxy;
  fastcgi_temp_path ${prefix}/tmp/fastcgi;
  uwsgi_temp_path ${prefix}/tmp/uwsgi;
  scgi_temp_path ${prefix}/tmp/scgi;`;

interface Nginx extends Proc {
  readonly port: number;
  /** proxy_pass to the origin (the server under test only). */
  readonly proxyPort: number | undefined;
}

/**
 * nginx with a temporary prefix, never the system service: the origin (file only, one worker) or
 * the server under test (the file with sendfile, and proxy_pass to `origin`, `workers` workers).
 */
async function startNginx(o: {
  prefix: string;
  docroot: string;
  cpus: string;
  workers: number;
  origin: number | undefined;
}): Promise<Nginx> {
  const port = await freePort();
  const proxyPort = o.origin === undefined ? undefined : await freePort();
  for (const d of ['tmp', 'logs']) mkdirSync(path.join(o.prefix, d), { recursive: true });
  const proxy =
    o.origin === undefined
      ? ''
      : `
  upstream origin { server 127.0.0.1:${o.origin}; keepalive 16; }
  server {
    listen 127.0.0.1:${proxyPort};
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_max_temp_file_size 0;
    }
  }`;
  const conf = `${NGINX_COMMON(o.prefix, o.workers)}
http {${NGINX_HTTP_COMMON(o.prefix)}
  server { listen 127.0.0.1:${port}; root ${o.docroot}; }${proxy}
}
`;
  const confFile = path.join(o.prefix, 'nginx.conf');
  writeFileSync(confFile, conf);
  const logFile = path.join(o.prefix, 'logs', 'stderr.log');
  const proc = spawnProc(
    'taskset',
    ['-c', o.cpus, 'nginx', '-p', o.prefix, '-c', confFile, '-e', path.join(o.prefix, 'logs', 'error.log')],
    logFile,
    'SIGQUIT',
  );
  try {
    await untilHttp200(`http://127.0.0.1:${port}${ARTIFACT}`, proc, logFile);
  } catch (err) {
    await proc.stop();
    throw err;
  }
  return { ...proc, port, proxyPort };
}

interface Metalboot extends Proc {
  readonly port: number;
  readonly cacheDir: string | undefined;
}

/** Whether this build knows --image-workers (landing separately). */
function knowsImageWorkers(build: MetalbootBuild): boolean {
  const r = spawnSync(build.node, [...build.nodeArgs, build.entry, '--help'], {
    encoding: 'utf8',
    cwd: REPO_ROOT,
    timeout: 60_000,
  });
  return r.stdout.includes('--image-workers');
}

/**
 * metalboot on `cpus` with only its image worker doing anything, relaying from `origin`, with a
 * cache in `cacheDir` when given; resolves once the image worker listens.
 */
async function startMetalboot(o: {
  build: MetalbootBuild;
  nodeFlags: readonly string[];
  cpus: string;
  workers: number;
  workersFlag: boolean;
  origin: number;
  cacheDir: string | undefined;
  cacheMaxBytes: number;
  logFile: string;
  env: Record<string, string>;
}): Promise<Metalboot> {
  const args = [
    ...o.build.nodeArgs,
    ...o.nodeFlags,
    o.build.entry,
    '--server-ip',
    '127.0.0.1',
    '--dhcp=false',
    '--router-advertisements=false',
    '--tftp-listen',
    '',
    '--callback-listen',
    '',
    '--http-listen',
    '127.0.0.1:0',
    '--image-listen',
    '127.0.0.1:0',
    '--ironic-http-url',
    `http://127.0.0.1:${o.origin}`,
    ...(o.cacheDir === undefined
      ? []
      : ['--image-cache-dir', o.cacheDir, '--image-cache-max-bytes', String(o.cacheMaxBytes)]),
    ...(o.workersFlag ? ['--image-workers', String(o.workers)] : []),
    '--log-level',
    'info',
  ];
  const proc = spawnProc('taskset', ['-c', o.cpus, o.build.node, ...args], o.logFile, 'SIGTERM', o.env);
  try {
    for (let i = 0; ; i++) {
      if (proc.child.exitCode !== null)
        throw new Error(`metalboot exited: ${readFileSync(o.logFile, 'utf8').slice(-3000)}`);
      const text = readFileSync(o.logFile, 'utf8');
      const m = /"listen":"127\.0\.0\.1:(\d+)",(?:"workers":\d+,)?"msg":"image workers? listening"/.exec(text);
      if (m !== null && text.includes('"msg":"ready"')) return { ...proc, port: Number(m[1]), cacheDir: o.cacheDir };
      if (i > 600) throw new Error(`metalboot not ready in 60 s: ${text.slice(-3000)}`);
      await sleep(100);
    }
  } catch (err) {
    await proc.stop();
    throw err;
  }
}

/** `c` curl downloads at once on `cpus`; wall seconds for all of them. Fails on a short or failed transfer. */
async function download(url: string, c: number, size: number, cpus: string): Promise<number> {
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: c }, () => {
      return new Promise<void>((resolve, reject) => {
        const child = spawn(
          'taskset',
          [
            '-c',
            cpus,
            'curl',
            '-s',
            '-S',
            '--fail',
            '-o',
            '/dev/null',
            '--max-time',
            '120',
            '-w',
            '%{size_download}',
            url,
          ],
          { stdio: ['ignore', 'pipe', 'pipe'] },
        );
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.on('close', (code) => {
          if (code !== 0) reject(new Error(`curl ${url} exited ${code}`));
          else if (Number(out) !== size) reject(new Error(`curl ${url}: ${out} bytes, expected ${size}`));
          else resolve();
        });
      });
    }),
  );
  return Number(process.hrtime.bigint() - started) / 1e9;
}

/** The X-Cache header of a HEAD request (metalboot says how it would answer). */
function xCache(url: string): string | undefined {
  const r = spawnSync('curl', ['-s', '-I', url], { encoding: 'utf8' });
  return /^x-cache: *(\S+)/im.exec(r.stdout)?.[1];
}

interface Measured {
  readonly seconds: number;
  readonly cpuS: number;
  readonly rssMiB: number;
}

/** Runs `fn` while sampling the server's tree: its CPU seconds over the run and its peak RSS. */
async function measure(serverPid: number, fn: () => Promise<number>): Promise<Measured> {
  let peak = treeRssMiB(serverPid);
  const t = setInterval(() => (peak = Math.max(peak, treeRssMiB(serverPid))), 50);
  const cpu0 = treeCpuSeconds(serverPid);
  try {
    const seconds = await fn();
    return { seconds, cpuS: treeCpuSeconds(serverPid) - cpu0, rssMiB: Math.max(peak, treeRssMiB(serverPid)) };
  } finally {
    clearInterval(t);
  }
}

async function waitForSettledCache(dir: string): Promise<void> {
  const tmp = path.join(dir, 'metalboot-image-cache', 'tmp');
  const running = (): number => (existsSync(tmp) ? readdirSync(tmp).length : 0);
  for (let i = 0; i < 600 && running() > 0; i++) await sleep(50);
}

interface Row {
  readonly source: Source;
  readonly name: string;
  readonly workers: number;
  readonly c: number;
  readonly runs: readonly Measured[];
}

const mbps = (c: number, s: number, size: number): number => (c * size) / 1e6 / s;

const NAMES: Record<Source, (c: number) => string> = {
  sendfile: () => 'nginx, static file (sendfile)',
  hit: () => 'metalboot, cache hit',
  miss: (c) => `metalboot, cache miss (one upstream fetch${c > 1 ? `, ${c - 1} coalesced` : ''})`,
  relay: () => 'metalboot, uncached relay from the origin',
  proxy_pass: () => 'nginx proxy_pass to the origin (no disk buffering)',
};

/** The nginx row each metalboot row is compared with. */
const REFERENCE: Partial<Record<Source, Source>> = { hit: 'sendfile', miss: 'sendfile', relay: 'proxy_pass' };

/** How to read the table; printed under it. */
const NOTES = [
  'Reading it:',
  '- Every server under test runs as its own process tree pinned to the first N CPUs (N = workers); the curl clients and the origin (a second nginx standing in for Ironic\'s httpd, one worker) run on the other CPUs, or share all of them when N is every CPU. "server CPU s" is utime + stime of the server\'s processes over the run (median run), so MB per server CPU-second is the bytes each CPU-second of the server bought; peak RSS is summed over its processes.',
  "- nginx sends the file with sendfile(2): the socket takes page-cache pages, no copy in the server. metalboot has no sendfile (Node does not expose it): each byte is read from the page cache into a buffer and written from it into the socket, two copies on the server's CPU, beside the TCP work both servers do.",
  '- A miss streams to its clients while the download is written to disk (each client reads the growing file); with 8 clients the origin sees one download instead of 8.',
];

function table(rows: readonly Row[], size: number): string[] {
  const medianOf = (r: Row): Measured => {
    const sorted = [...r.runs].sort((a, b) => a.seconds - b.seconds);
    return sorted[Math.floor((sorted.length - 1) / 2)]!;
  };
  const rate = (r: Row): number => mbps(r.c, median(r.runs.map((x) => x.seconds)), size);
  return [
    '| source | workers | clients | MB/s (min–max) | × nginx | server CPU s | MB per server CPU-s | server peak RSS MiB |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => {
      const s = r.runs.map((x) => x.seconds);
      const ref = REFERENCE[r.source];
      const refRow = rows.find((x) => x.source === ref && x.workers === r.workers && x.c === r.c);
      const m = medianOf(r);
      return `| ${r.name} | ${r.workers} | ${r.c} | ${rate(r).toFixed(0)} (${mbps(r.c, Math.max(...s), size).toFixed(0)}–${mbps(r.c, Math.min(...s), size).toFixed(0)}) | ${refRow === undefined ? '–' : (rate(r) / rate(refRow)).toFixed(2)} | ${m.cpuS.toFixed(2)} | ${((r.c * size) / 1e6 / m.cpuS).toFixed(0)} | ${Math.max(...r.runs.map((x) => x.rssMiB)).toFixed(0)} |`;
    }),
  ];
}

export async function main(args: Args<typeof options>, h: Run): Promise<void> {
  const size = args['size-mb'] * 1024 * 1024;
  const mc = machine();
  const sources = args.sources as readonly Source[];
  const nodeFlags = (args['node-flags'] ?? '').split(/\s+/).filter((f) => f !== '');
  const pins = new Map<number, Pinning>(args.workers.map((n) => [n, pinning(mc.nproc, n)]));
  const sha = spawnSync('git', ['rev-parse', args.rev], { cwd: REPO_ROOT, encoding: 'utf8' }).stdout.trim();
  if (!/^[0-9a-f]{40}$/.test(sha)) throw new Error(`--rev ${args.rev}: not a commit`);
  const git = gitState();
  const build = metalbootBuild({ worktree: args.worktree, sha, outDir: path.join(BENCH_DIR, 'out') });
  log(`metalboot: ${build.label}`);
  const workersFlag = knowsImageWorkers(build);
  const deployedEnv = dockerfileEnv(
    args.worktree
      ? readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8')
      : spawnSync('git', ['show', `${sha}:Dockerfile`], { cwd: REPO_ROOT, encoding: 'utf8' }).stdout,
  );
  log(`metalboot's environment from the Dockerfile: ${JSON.stringify(deployedEnv)}`);
  if (!workersFlag && args.workers.some((n) => n !== 1))
    throw new Error('this metalboot has no --image-workers flag: measure with --workers 1');

  mkdirSync(OUT, { recursive: true });
  const docroot = path.join(OUT, 'docroot');
  const scratch = mkdtempSync(path.join(OUT, 'run-'));
  const procs: Proc[] = [];
  h.onExit(() => {
    for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  });
  const rows: Row[] = [];
  let loadBefore = Number.NaN;
  try {
    log(`generating ${size / 2 ** 20} MiB in ${docroot}`);
    makeArtifact(docroot, size);
    const anyPin = pins.get(args.workers[0]!)!;
    const origin = await startNginx({
      prefix: path.join(scratch, 'nginx-origin'),
      docroot,
      cpus: anyPin.clients,
      workers: 1,
      origin: undefined,
    });
    procs.push(origin);
    const quiet = await new QuietGate({ threshold: args['quiet-load'], perWaitS: args['quiet-wait-s'], log }).wait();
    loadBefore = quiet.load1;

    for (const workers of args.workers) {
      const pin = pins.get(workers)!;
      log(`workers ${workers}: server on CPUs ${pin.server}, clients and origin on ${pin.clients}`);
      const stopAfter: Proc[] = [];
      try {
        const nginx = await startNginx({
          prefix: path.join(scratch, `nginx-${workers}`),
          docroot,
          cpus: pin.server,
          workers,
          origin: origin.port,
        });
        stopAfter.push(nginx);
        const mb = (cache: boolean) =>
          startMetalboot({
            build,
            nodeFlags,
            cpus: pin.server,
            workers,
            workersFlag,
            origin: origin.port,
            cacheDir: cache ? path.join(scratch, `cache-${workers}`) : undefined,
            // The hit entry and the misses of one client count (the least recently used go first).
            cacheMaxBytes: (2 + args.runs) * (size + 64 * 1024),
            logFile: path.join(scratch, `metalboot-${workers}-${cache ? 'cache' : 'relay'}.log`),
            env: deployedEnv,
          });
        const wantsCache = sources.includes('hit') || sources.includes('miss');
        const cached = wantsCache ? await mb(true) : undefined;
        if (cached !== undefined) stopAfter.push(cached);
        const relay = sources.includes('relay') ? await mb(false) : undefined;
        if (relay !== undefined) stopAfter.push(relay);

        // Warm up: the page cache, the cache entry, and each server's code paths.
        await download(`http://127.0.0.1:${origin.port}${ARTIFACT}`, 1, size, pin.clients);
        await download(`http://127.0.0.1:${nginx.port}${ARTIFACT}`, 1, size, pin.clients);
        if (cached !== undefined) {
          await download(`http://127.0.0.1:${cached.port}${ARTIFACT}`, 1, size, pin.clients);
          await waitForSettledCache(cached.cacheDir!);
          await download(`http://127.0.0.1:${cached.port}${ARTIFACT}`, 1, size, pin.clients);
        }
        if (relay !== undefined) await download(`http://127.0.0.1:${relay.port}${ARTIFACT}`, 1, size, pin.clients);

        for (const c of args.concurrency) {
          for (const source of sources) {
            const runs: Measured[] = [];
            for (let run = 0; run < args.runs; run++) {
              h.limit.check();
              let url: string;
              let server: Proc;
              switch (source) {
                case 'sendfile':
                  url = `http://127.0.0.1:${nginx.port}${ARTIFACT}`;
                  server = nginx;
                  break;
                case 'proxy_pass':
                  url = `http://127.0.0.1:${nginx.proxyPort}${ARTIFACT}`;
                  server = nginx;
                  break;
                case 'hit':
                  url = `http://127.0.0.1:${cached!.port}${ARTIFACT}`;
                  server = cached!;
                  if (xCache(url) !== 'hit') throw new Error(`${url} is not a cache hit (x-cache ${xCache(url)})`);
                  break;
                case 'miss':
                  url = `http://127.0.0.1:${cached!.port}${freshName(docroot, `${workers}-${c}-${run}`)}`;
                  server = cached!;
                  break;
                case 'relay':
                  url = `http://127.0.0.1:${relay!.port}${ARTIFACT}`;
                  server = relay!;
                  break;
              }
              const r = await measure(server.pid, () => download(url, c, size, pin.clients));
              if (source === 'miss') {
                // Stored and on disk before the next run, so that its writeback does not run beside it.
                await waitForSettledCache(cached!.cacheDir!);
                spawnSync('sync');
              }
              runs.push(r);
              log(
                `${source} workers=${workers} c=${c} run ${run + 1}: ${r.seconds.toFixed(2)} s, ${mbps(c, r.seconds, size).toFixed(0)} MB/s, server CPU ${r.cpuS.toFixed(2)} s`,
              );
            }
            rows.push({ source, name: NAMES[source](c), workers, c, runs });
          }
        }
      } finally {
        for (const p of stopAfter.reverse()) await p.stop();
      }
    }
  } finally {
    for (const p of procs.reverse()) await p.stop();
    rmSync(scratch, { recursive: true, force: true });
    if (args.keep) {
      for (const f of readdirSync(path.join(docroot, 'images')))
        if (f.startsWith('miss-')) rmSync(path.join(docroot, 'images', f), { force: true });
    } else rmSync(OUT, { recursive: true, force: true });
  }

  const ordered = args.workers.flatMap((w) =>
    args.concurrency.flatMap((c) => rows.filter((r) => r.workers === w && r.c === c)),
  );
  const what = args.worktree
    ? `${git.sha.slice(0, 12)} + working tree`
    : `${sha.slice(0, 12)}${args.rev === 'HEAD' ? '' : ` (--rev ${args.rev})`}`;
  const lines = [
    `${size / 2 ** 20} MiB artifact over loopback, curl to /dev/null, median of ${args.runs} runs (min–max in brackets); MB/s is the aggregate of all clients (10^6 bytes/s). "× nginx": the cache rows over nginx sendfile, the relay over nginx proxy_pass.`,
    '',
    ...table(ordered, size),
    '',
    ...NOTES,
    '',
    `Pinning: ${[...pins].map(([n, p]) => `${n} worker${n === 1 ? '' : 's'}: server on CPU ${p.server}, clients and origin on CPU ${p.clients}`).join('; ')} (taskset -c).`,
    `Machine: ${mc.nproc} × ${mc.cpuModel}, ${mc.memGiB} GiB, Linux ${mc.kernel}; load average ${loadBefore.toFixed(2)} at start, ${loadAvg1().toFixed(2)} at the end (other work shares this machine).`,
    `Environment of metalboot, as the Dockerfile sets it: ${Object.entries(deployedEnv)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}.`,
    `Versions: metalboot ${what} (${build.label}), Node ${process.version}, nginx ${debVersion('nginx-light') ?? commandOutput('nginx', ['-v']) ?? 'unknown'} (nginx-light), ${(commandOutput('curl', ['--version']) ?? 'curl unknown').split(' ').slice(0, 2).join(' ')}, fastify ${readVersion('fastify')}, undici ${readVersion('undici')}.`,
    `Command: \`node --import tsx bench/http-proxy.ts --size-mb ${args['size-mb']} --runs ${args.runs} --concurrency ${args.concurrency.join(',')} --workers ${args.workers.join(',')}\``,
  ];
  const body = lines.join('\n');
  process.stdout.write(`${body}\n`);
  publishResults({ heading: 'HTTP', body, write: !args['no-results'], log });
}

function readVersion(pkg: string): string {
  try {
    return (
      JSON.parse(readFileSync(path.join(REPO_ROOT, 'node_modules', pkg, 'package.json'), 'utf8')) as {
        version: string;
      }
    ).version;
  } catch {
    return 'unknown';
  }
}

runIfEntry(import.meta.url, {
  name: 'http-proxy bench',
  usage:
    'node --import tsx bench/http-proxy.ts [--size-mb 400] [--runs 3] [--concurrency 1,8] [--workers 1] [--rev HEAD | --worktree] [--no-results] [--keep]',
  about:
    "One artifact over loopback by curl from nginx (sendfile), metalboot's image cache (hit, miss) and relay, and nginx proxy_pass, each server in its own pinned processes. Replaces ## HTTP in bench/RESULTS.md.",
  options,
  timeLimit: { seconds: (a) => a['max-total-s'], stop: 'check' },
  main,
});
