/**
 * Image proxy benchmark: one 400 MB artifact (random bytes, generated in bench/out/) fetched
 * over loopback by curl, from
 * - nginx serving the file itself (sendfile), the reference for "a web server with the file";
 * - metalboot's cache, entry already stored (hit);
 * - metalboot's cache, empty (miss: one upstream download, streamed to every client while it fills);
 * - metalboot relaying from nginx without a cache (uncached proxy);
 * - nginx proxy_pass to nginx, unbuffered to disk (the reference for an uncached proxy).
 * Each at 1 and 8 concurrent clients; median of 3 runs, aggregate MB/s (10^6 bytes).
 *
 *   node --import tsx bench/http-proxy.ts [--size-mb 400] [--runs 3] [--concurrency 1,8]
 *        [--max-total-s 600] [--quiet-load 1.5] [--quiet-wait-s 300] [--no-results] [--keep]
 *
 * Before measuring it waits (at most --quiet-wait-s) for the 1-minute load average to drop under
 * --quiet-load, and records the load either way: on a shared machine the figures are only as
 * good as the quiet they were taken in.
 *
 * nginx (Debian nginx-light) runs by hand with a temporary prefix and config on 127.0.0.1,
 * one worker, never the system service. metalboot runs in this process (one event loop, like
 * production). Writes the table to stdout and to the `## HTTP` section of bench/RESULTS.md, then
 * deletes the artifact, the cache and the nginx prefix (unless --keep).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { imageProxyPlugin } from '../src/images/plugin.js';
import { defineOptions, publishResults, QuietGate, runIfEntry, type Args, type Run } from './lib/harness.js';
import { commandOutput, debVersion, loadAvg1, machine } from './lib/machine.js';
import { median } from './lib/stats.js';

export const options = defineOptions({
  'size-mb': { type: 'number', help: 'artifact size, MiB', default: '400' },
  runs: { type: 'number', help: 'runs per source and client count (the table shows the median)', default: '3' },
  concurrency: { type: 'numbers', help: 'concurrent curl clients', default: '1,8' },
  'max-total-s': { type: 'number', help: 'stop before a run that would start after this many seconds', default: '600' },
  'quiet-load': { type: 'number', help: 'wait for the 1-minute load average to drop below this', default: '1.5' },
  'quiet-wait-s': { type: 'number', help: 'but at most this long', default: '300' },
  'no-results': { type: 'boolean', help: 'leave bench/RESULTS.md alone' },
  keep: { type: 'boolean', help: 'keep bench/out/http-proxy/ (the artifact is reused)' },
});

const BENCH_DIR = import.meta.dirname;
const OUT = path.join(BENCH_DIR, 'out', 'http-proxy');
const ARTIFACT = '/images/artifact.bin';

const log = (s: string): void => void process.stderr.write(`${s}\n`);

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

interface Nginx {
  readonly port: number;
  readonly proxyPort: number;
  stop(): Promise<void>;
}

async function startNginx(prefix: string, docroot: string): Promise<Nginx> {
  const port = await freePort();
  const proxyPort = await freePort();
  for (const d of ['tmp', 'logs']) mkdirSync(path.join(prefix, d), { recursive: true });
  const conf = `
worker_processes 1;
daemon off;
pid ${prefix}/nginx.pid;
error_log ${prefix}/logs/error.log warn;
${process.geteuid?.() === 0 ? 'user root root;' : ''}
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  default_type application/octet-stream;
  client_body_temp_path ${prefix}/tmp/body;
  proxy_temp_path ${prefix}/tmp/proxy;
  fastcgi_temp_path ${prefix}/tmp/fastcgi;
  uwsgi_temp_path ${prefix}/tmp/uwsgi;
  scgi_temp_path ${prefix}/tmp/scgi;
  server { listen 127.0.0.1:${port}; root ${docroot}; }
  upstream files { server 127.0.0.1:${port}; keepalive 16; }
  server {
    listen 127.0.0.1:${proxyPort};
    location / {
      proxy_pass http://files;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_max_temp_file_size 0;
    }
  }
}
`;
  writeFileSync(path.join(prefix, 'nginx.conf'), conf);
  const child: ChildProcess = spawn(
    'nginx',
    ['-p', prefix, '-c', path.join(prefix, 'nginx.conf'), '-e', path.join(prefix, 'logs', 'error.log')],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`nginx exited: ${stderr}`);
    const r = spawnSync(
      'curl',
      ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-I', `http://127.0.0.1:${port}${ARTIFACT}`],
      { encoding: 'utf8' },
    );
    if (r.stdout === '200') break;
    if (i > 100) throw new Error(`nginx did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    proxyPort,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGQUIT');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    },
  };
}

interface Proxy {
  readonly port: number;
  readonly app: FastifyInstance;
  readonly cacheDir: string | undefined;
}

async function startMetalboot(upstreamPort: number, cacheDir: string | undefined, size: number): Promise<Proxy> {
  const app = Fastify({ logger: false });
  await app.register(imageProxyPlugin, {
    upstream: `http://127.0.0.1:${upstreamPort}`,
    registry: new Registry(),
    ...(cacheDir === undefined ? {} : { cache: { dir: cacheDir, maxBytes: 4 * size, revalidateAfterMs: 3_600_000 } }),
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  return { port: (app.server.address() as AddressInfo).port, app, cacheDir };
}

/** Peak resident set of this process (the metalboot server) while `fn` runs, in MiB. */
async function withRss<T>(fn: () => Promise<T>): Promise<{ value: T; rssMiB: number }> {
  let peak = process.memoryUsage.rss();
  const t = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 50);
  try {
    const value = await fn();
    return { value, rssMiB: Math.max(peak, process.memoryUsage.rss()) / 2 ** 20 };
  } finally {
    clearInterval(t);
  }
}

/** `c` curl downloads at once; wall seconds for all of them. Fails on a short or failed transfer. */
async function download(url: string, c: number, size: number): Promise<number> {
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: c }, () => {
      return new Promise<void>((resolve, reject) => {
        const child = spawn(
          'curl',
          ['-s', '-S', '--fail', '-o', '/dev/null', '--max-time', '120', '-w', '%{size_download}', url],
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

interface Row {
  readonly name: string;
  readonly c: number;
  readonly seconds: number[];
  readonly rssMiB: number | undefined;
}

const mbps = (c: number, s: number, size: number): number => (c * size) / 1e6 / s;

async function waitForSettledCache(dir: string): Promise<void> {
  const running = (): number => (existsSync(path.join(dir, 'tmp')) ? readdirSync(path.join(dir, 'tmp')).length : 0);
  for (let i = 0; i < 600 && running() > 0; i++) await new Promise((r) => setTimeout(r, 50));
}

/** How to read the table; printed under it. */
const NOTES = [
  'Reading it:',
  "- nginx sends the file with sendfile(2), straight from the page cache. metalboot reads the cache file into buffers and writes them to the socket (Node's HTTP server has no sendfile), so a hit costs two copies and an event-loop turn per buffer, on one core. The read size follows the load: 32 MiB shared by the open streams, 64 KiB to 1 MiB each (src/images/), so one or eight clients read 1 MiB at a time (256 KiB before, 626 MB/s for one client) while a 500-host storm reads 64 KiB per stream. Eight clients get less in all than one: the clients, the event loop and the libuv threads that run the reads share the two CPUs.",
  '- A miss streams to its clients while the download is written to disk (each client reads the growing file), so one client is slower than a plain relay; with 8 clients the upstream sees one download instead of 8.',
  '- Peak RSS barely moves from 1 to 8 clients and stays far below the 400 MiB artifact: no path holds a whole artifact in memory.',
];

export async function main(args: Args<typeof options>, h: Run): Promise<void> {
  const size = args['size-mb'] * 1024 * 1024;
  mkdirSync(OUT, { recursive: true });
  const docroot = path.join(OUT, 'docroot');
  const prefix = mkdtempSync(path.join(OUT, 'nginx-'));
  const scratch = mkdtempSync(path.join(OUT, 'cache-'));
  let nginx: Nginx | undefined;
  const proxies: Proxy[] = [];
  const rows: Row[] = [];
  let loadBefore = Number.NaN;
  try {
    log(`generating ${size / 2 ** 20} MiB in ${docroot}`);
    makeArtifact(docroot, size);
    nginx = await startNginx(prefix, docroot);
    const quiet = await new QuietGate({ threshold: args['quiet-load'], perWaitS: args['quiet-wait-s'], log }).wait();
    loadBefore = quiet.load1;
    const relay = await startMetalboot(nginx.port, undefined, size);
    const cached = await startMetalboot(nginx.port, path.join(scratch, 'warm'), size);
    proxies.push(relay, cached);
    // warm the cache and the page cache
    await download(`http://127.0.0.1:${cached.port}${ARTIFACT}`, 1, size);
    await waitForSettledCache(cached.cacheDir!);
    await download(`http://127.0.0.1:${nginx.port}${ARTIFACT}`, 1, size);

    for (const c of args.concurrency) {
      const cases: { name: string; url: () => Promise<{ url: string; done?: () => Promise<void> }>; ours: boolean }[] =
        [
          {
            name: 'nginx, static file (sendfile)',
            ours: false,
            url: async () => ({ url: `http://127.0.0.1:${nginx!.port}${ARTIFACT}` }),
          },
          {
            name: 'metalboot, cache hit',
            ours: true,
            url: async () => ({ url: `http://127.0.0.1:${cached.port}${ARTIFACT}` }),
          },
          {
            name: `metalboot, cache miss (one upstream fetch${c > 1 ? `, ${c - 1} coalesced` : ''})`,
            ours: true,
            url: async () => {
              const dir = mkdtempSync(path.join(scratch, 'miss-'));
              const p = await startMetalboot(nginx!.port, dir, size);
              return {
                url: `http://127.0.0.1:${p.port}${ARTIFACT}`,
                done: async () => {
                  await waitForSettledCache(dir);
                  await p.app.close();
                  rmSync(dir, { recursive: true, force: true });
                },
              };
            },
          },
          {
            name: 'metalboot, uncached relay from nginx',
            ours: true,
            url: async () => ({ url: `http://127.0.0.1:${relay.port}${ARTIFACT}` }),
          },
          {
            name: 'nginx proxy_pass to nginx (no disk buffering)',
            ours: false,
            url: async () => ({ url: `http://127.0.0.1:${nginx!.proxyPort}${ARTIFACT}` }),
          },
        ];
      for (const k of cases) {
        const seconds: number[] = [];
        let rss = 0;
        for (let run = 0; run < args.runs; run++) {
          h.limit.check();
          const { url, done } = await k.url();
          const r = await withRss(() => download(url, c, size));
          await done?.();
          seconds.push(r.value);
          rss = Math.max(rss, r.rssMiB);
          log(`${k.name} c=${c} run ${run + 1}: ${r.value.toFixed(2)} s, ${mbps(c, r.value, size).toFixed(0)} MB/s`);
        }
        rows.push({ name: k.name, c, seconds, rssMiB: k.ours ? rss : undefined });
      }
    }
  } finally {
    for (const p of proxies) await p.app.close().catch(() => {});
    await nginx?.stop();
    rmSync(prefix, { recursive: true, force: true });
    rmSync(scratch, { recursive: true, force: true });
    if (!args.keep) rmSync(OUT, { recursive: true, force: true });
  }

  const mc = machine();
  const lines = [
    `${size / 2 ** 20} MiB artifact over loopback, curl to /dev/null, median of ${args.runs} runs (min–max in brackets); MB/s is the aggregate of all clients (10^6 bytes/s). Peak RSS is the whole metalboot process during the runs.`,
    '',
    '| source | clients | MB/s | seconds | peak RSS MiB |',
    '|---|---:|---:|---:|---:|',
    ...rows.map((r) => {
      const s = median(r.seconds);
      const lo = Math.min(...r.seconds);
      const hi = Math.max(...r.seconds);
      return `| ${r.name} | ${r.c} | ${mbps(r.c, s, size).toFixed(0)} (${mbps(r.c, hi, size).toFixed(0)}–${mbps(r.c, lo, size).toFixed(0)}) | ${s.toFixed(2)} | ${r.rssMiB === undefined ? '–' : r.rssMiB.toFixed(0)} |`;
    }),
    '',
    ...NOTES,
    '',
    `Machine: ${mc.nproc} × ${mc.cpuModel}, ${mc.memGiB} GiB, Linux ${mc.kernel}; load average ${loadBefore.toFixed(2)} at start, ${loadAvg1().toFixed(2)} at the end (other work shares this machine).`,
    `Versions: Node ${process.version}, nginx ${debVersion('nginx-light') ?? commandOutput('nginx', ['-v']) ?? 'unknown'} (nginx-light, 1 worker), ${(commandOutput('curl', ['--version']) ?? 'curl unknown').split(' ').slice(0, 2).join(' ')}, fastify ${readVersion('fastify')}, undici ${readVersion('undici')}.`,
    `Command: \`node --import tsx bench/http-proxy.ts --size-mb ${args['size-mb']} --runs ${args.runs} --concurrency ${args.concurrency.join(',')}\``,
  ];
  const table = lines.join('\n');
  process.stdout.write(`${table}\n`);
  publishResults({ heading: 'HTTP', body: table, write: !args['no-results'], log });
}

function readVersion(pkg: string): string {
  try {
    return (
      JSON.parse(readFileSync(path.join(BENCH_DIR, '..', 'node_modules', pkg, 'package.json'), 'utf8')) as {
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
    'node --import tsx bench/http-proxy.ts [--size-mb 400] [--runs 3] [--concurrency 1,8] [--max-total-s 600] [--no-results] [--keep]',
  about:
    "One artifact over loopback by curl from nginx (sendfile), metalboot's image cache (hit, miss) and relay, and nginx proxy_pass. Replaces ## HTTP in bench/RESULTS.md.",
  options,
  timeLimit: { seconds: (a) => a['max-total-s'], stop: 'check' },
  main,
});
