/**
 * TFTP boot-storm benchmark: C concurrent downloads of ipxe.efi from metalboot and from
 * tftpd-hpa (in.tftpd run by hand on loopback, never the system service), for clients that
 * behave like iPXE (tsize, blksize 1432, no window) and like EDK2 (tsize probe, ERROR 8, then
 * blksize 1468 with and without windowsize 4). Reports completion time of the whole storm,
 * aggregate throughput, per-download latency percentiles, failures and server CPU time.
 *
 *   node --import tsx bench/tftp.ts [--concurrency 1,50,200,500] [--ack-delay-ms 0,1]
 *        [--profiles ipxe,edk2-nowindow,edk2-window4] [--runs 3] [--file ipxe.efi]
 *        [--scenario-timeout-s 120] [--max-total-s 1800] [--no-tftpd-hpa] [--cpu-prof DIR]
 *
 * `--ack-delay-ms` takes a list: the whole matrix is run once per delay. Each client waits that
 * long before each of its ACKs (its own timer: clients never wait for each other), standing for
 * the round trip of a real network and the firmware's own turnaround. With `--runs N` every
 * scenario runs N times, servers taking turns, and the table shows the run with the median storm
 * time (the JSON keeps all runs). `--cpu-prof DIR` runs metalboot under node --cpu-prof.
 *
 * Writes bench/out/tftp-<time>.md and .json. Needs root for in.tftpd --secure (chroot); without
 * root or without in.tftpd the tftpd-hpa rows are skipped.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createServer } from 'node:net';
import { edk2Get, tftpGet, type GetResult } from '../lab/tftp-client.js';
import { medianBy } from './lib/stats.js';

const { values: args } = parseArgs({
  options: {
    concurrency: { type: 'string', default: '1,50,200,500' },
    'ack-delay-ms': { type: 'string', default: '0' },
    profiles: { type: 'string', default: 'ipxe,edk2-nowindow,edk2-window4' },
    runs: { type: 'string', default: '1' },
    'cpu-prof': { type: 'string' },
    file: { type: 'string', default: 'ipxe.efi' },
    'scenario-timeout-s': { type: 'string', default: '120' },
    'no-tftpd-hpa': { type: 'boolean', default: false },
    'max-total-s': { type: 'string', default: '1800' },
    out: { type: 'string', default: path.join(import.meta.dirname, 'out') },
  },
});

const CONCURRENCY = args.concurrency.split(',').map(Number);
const ACK_DELAYS_MS = args['ack-delay-ms'].split(',').map(Number);
const RUNS = Number(args.runs);
const SCENARIO_TIMEOUT_MS = Number(args['scenario-timeout-s']) * 1000;
const FILE = args.file;

type Profile = 'ipxe' | 'edk2-window4' | 'edk2-nowindow';
const ALL_PROFILES: { name: Profile; label: string }[] = [
  { name: 'ipxe', label: 'iPXE: tsize, blksize 1432, no window' },
  { name: 'edk2-nowindow', label: 'EDK2: tsize probe + ERROR 8, blksize 1468, no window' },
  { name: 'edk2-window4', label: 'EDK2: tsize probe + ERROR 8, blksize 1468, windowsize 4' },
];
const PROFILES = args.profiles.split(',').map((name) => {
  const p = ALL_PROFILES.find((x) => x.name === name);
  if (p === undefined) throw new Error(`unknown profile ${name}`);
  return p;
});

interface Row {
  server: string;
  profile: Profile;
  ackDelayMs: number;
  concurrency: number;
  /** 1-minute load average just before the scenario. */
  load1: number;
  ok: number;
  failed: number;
  /** Client retransmissions after silence, summed over the storm (0: nothing was lost). */
  clientTimeouts: number;
  wallS: number;
  mbPerS: number;
  p50Ms: number;
  p95Ms: number;
  maxMs: number;
  clientCpuS: number;
  /** Machine busy time less the client's: the server, the kernel's UDP work, and noise. */
  serverCpuS: number | undefined;
  note?: string;
}

// ---- servers --------------------------------------------------------------------------------

interface ServerHandle {
  readonly name: string;
  readonly port: number;
  stop(): Promise<void>;
}

const children = new Set<ChildProcess>();
function cleanupChildren(): void {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
}
process.on('exit', cleanupChildren);
process.on('SIGINT', () => process.exit(130));
setTimeout(() => {
  console.error(`benchmark exceeded --max-total-s ${args['max-total-s']}`);
  process.exit(2); // the exit handler kills the servers
}, Number(args['max-total-s']) * 1000).unref();
process.on('SIGTERM', () => process.exit(143));

async function freePort(): Promise<number> {
  // A free TCP port number is free enough for UDP on loopback in practice; verified by bind.
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

function stopChild(child: ChildProcess, name: string): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const t = setTimeout(() => {
      console.error(`${name} did not stop, killing`);
      child.kill('SIGKILL');
    }, 10_000);
    child.once('exit', () => {
      clearTimeout(t);
      children.delete(child);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

async function startMetalboot(root: string): Promise<ServerHandle> {
  const prof = args['cpu-prof'] === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', path.resolve(args['cpu-prof'])];
  const child = spawn(process.execPath, [...prof, '--import', 'tsx', path.join(import.meta.dirname, 'tftp-server-main.ts'), '--root', root], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.add(child);
  const port = await new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('metalboot did not start within 30 s')), 30_000);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /READY (\d+)/.exec(out);
      if (m) {
        clearTimeout(t);
        resolve(Number(m[1]));
      }
    });
    child.once('exit', (code) => reject(new Error(`metalboot exited with ${code}`)));
  });
  return { name: 'metalboot', port, stop: () => stopChild(child, 'metalboot') };
}

async function startTftpdHpa(root: string): Promise<ServerHandle | string> {
  if (args['no-tftpd-hpa']) return 'disabled by --no-tftpd-hpa';
  if (!existsSync('/usr/sbin/in.tftpd')) return 'in.tftpd not installed (Debian package tftpd-hpa)';
  if (process.getuid?.() !== 0) return 'in.tftpd --secure needs root';
  const port = await freePort();
  // -L: foreground, -s: chroot to root, -u root: keep the user (no 'nobody' lookup surprises),
  // -B 1468: the same blksize cap as metalboot.
  const child = spawn('/usr/sbin/in.tftpd', ['-L', '-4', '-a', `127.0.0.1:${port}`, '-u', 'root', '-B', '1468', '-s', root], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  children.add(child);
  // Ready when it answers a request.
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      await tftpGet({ port, file: FILE, options: [['blksize', '1468']], timeoutMs: 200, retries: 2, deadlineMs: 5000 });
      break;
    } catch (err) {
      if (child.exitCode !== null) return `in.tftpd exited with ${child.exitCode}`;
      if (Date.now() > deadline) {
        await stopChild(child, 'in.tftpd');
        return `in.tftpd did not answer: ${(err as Error).message}`;
      }
    }
  }
  return { name: 'tftpd-hpa', port, stop: () => stopChild(child, 'in.tftpd') };
}

/**
 * Busy CPU seconds of the whole machine (/proc/stat: user, nice, system, irq, softirq, steal).
 * The server's share is this less the client process's own CPU time: tftpd-hpa forks a
 * process per transfer that no per-process counter sees whole.
 */
function machineBusySeconds(): number | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    return [0, 1, 2, 5, 6, 7].reduce((sum, i) => sum + (f[i] ?? 0), 0) / 100; // USER_HZ is 100
  } catch {
    return undefined;
  }
}

const clientCpuSeconds = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

// ---- one scenario ---------------------------------------------------------------------------

async function download(profile: Profile, port: number, deadlineMs: number, ackDelayMs: number, expected: Buffer): Promise<GetResult> {
  const common = { port, file: FILE, deadlineMs, timeoutMs: 1000, retries: 8, ackDelayMs: ackDelayMs || undefined };
  switch (profile) {
    case 'ipxe':
      return tftpGet({ ...common, expected, options: [['tsize', '0'], ['blksize', '1432']] });
    case 'edk2-window4':
      return edk2Get({ ...common, expected, blksize: 1468, windowsize: 4 });
    case 'edk2-nowindow': {
      // EDK2 with PcdTftpWindowSize unset: the same probe, then blksize only.
      const probe = await tftpGet({ ...common, options: [['tsize', '0'], ['blksize', '1468']], abortOackWith: 8 });
      const r = await tftpGet({ ...common, expected, options: [['blksize', '1468']] });
      return { ...r, timeouts: probe.timeouts + r.timeouts };
    }
  }
}

async function scenario(server: ServerHandle, profile: Profile, concurrency: number, ackDelayMs: number, expected: Buffer): Promise<Row> {
  const size = expected.length;
  const load1 = loadavg()[0]!;
  const busyBefore = machineBusySeconds();
  const clientBefore = clientCpuSeconds();
  const start = performance.now();
  const durations: number[] = [];
  let ok = 0;
  let failed = 0;
  let clientTimeouts = 0;
  const errors = new Map<string, number>();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      const t0 = performance.now();
      try {
        // The client compares every block with the file as it arrives (memcmp, no copy, no hash).
        const r = await download(profile, server.port, SCENARIO_TIMEOUT_MS, ackDelayMs, expected);
        ok++;
        clientTimeouts += r.timeouts;
        durations.push(performance.now() - t0);
      } catch (err) {
        failed++;
        const key = (err as Error).message.replace(/\d+/g, 'N');
        errors.set(key, (errors.get(key) ?? 0) + 1);
      }
    }),
  );
  const wallS = (performance.now() - start) / 1000;
  const busyAfter = machineBusySeconds();
  const clientCpuS = clientCpuSeconds() - clientBefore;
  durations.sort((a, b) => a - b);
  const pct = (p: number): number => (durations.length ? durations[Math.min(durations.length - 1, Math.floor(p * durations.length))]! : NaN);
  const row: Row = {
    server: server.name,
    profile,
    ackDelayMs,
    concurrency,
    load1,
    ok,
    failed,
    clientTimeouts,
    wallS,
    mbPerS: (ok * size) / 1e6 / wallS,
    p50Ms: pct(0.5),
    p95Ms: pct(0.95),
    maxMs: durations.at(-1) ?? NaN,
    clientCpuS,
    serverCpuS: busyBefore !== undefined && busyAfter !== undefined ? Math.max(0, busyAfter - busyBefore - clientCpuS) : undefined,
  };
  if (errors.size) row.note = [...errors].map(([k, n]) => `${n}× ${k}`).join('; ');
  return row;
}

// ---- main -----------------------------------------------------------------------------------

const fmt = (n: number | undefined, digits = 1): string => (n === undefined || Number.isNaN(n) ? '–' : n.toFixed(digits));

function table(rows: Row[]): string {
  const lines = [
    '| server | client profile | C | ok | failed | client resends | storm time (s) | downloads/s | aggregate MB/s | p50 (ms) | p95 (ms) | max (ms) | server+kernel CPU (s) | client CPU (s) | load avg |',
    '|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.server} | ${r.profile} | ${r.concurrency} | ${r.ok} | ${r.failed} | ${r.clientTimeouts} | ${fmt(r.wallS, 2)} | ${fmt(r.ok / r.wallS, 1)} | ${fmt(r.mbPerS)} | ${fmt(r.p50Ms, 0)} | ${fmt(r.p95Ms, 0)} | ${fmt(r.maxMs, 0)} | ${fmt(r.serverCpuS, 2)} | ${fmt(r.clientCpuS, 2)} | ${fmt(r.load1, 1)} |`,
    );
  }
  return lines.join('\n');
}

/** Storm times of every run of one scenario, for the spread. */
function spread(all: Row[], r: Row): string {
  const times = all.filter((x) => x.server === r.server && x.profile === r.profile && x.concurrency === r.concurrency && x.ackDelayMs === r.ackDelayMs).map((x) => x.wallS.toFixed(2));
  return times.join(' / ');
}

async function main(): Promise<void> {
  const source = path.join('/usr/lib/ipxe', FILE);
  const root = mkdtempSync(path.join(tmpdir(), 'metalboot-bench-tftp-'));
  chmodSync(root, 0o755);
  try {
    if (existsSync(source)) copyFileSync(source, path.join(root, FILE));
    else throw new Error(`${source} not found (Debian package ipxe)`);
    chmodSync(path.join(root, FILE), 0o644);
    const data = readFileSync(path.join(root, FILE));

    const servers: ServerHandle[] = [await startMetalboot(root)];
    const hpa = await startTftpdHpa(root);
    const skipped: string[] = [];
    if (typeof hpa === 'string') skipped.push(`tftpd-hpa skipped: ${hpa}`);
    else servers.push(hpa);

    // Warm up each server (JIT, page cache, forked children) so C=1 measures steady state.
    for (const server of servers) for (const profile of PROFILES) await download(profile.name, server.port, 30_000, 0, data);

    const load1AtStart = loadavg()[0]!;
    const startedAt = new Date().toISOString();
    const all: Row[] = [];
    const shown: Row[] = [];
    for (const ackDelayMs of ACK_DELAYS_MS) {
      for (const concurrency of CONCURRENCY) {
        for (const profile of PROFILES) {
          const byServer = new Map<string, Row[]>();
          // Runs alternate between servers so that a noisy minute hits both.
          for (let run = 0; run < RUNS; run++) {
            for (const server of servers) {
              const row = await scenario(server, profile.name, concurrency, ackDelayMs, data);
              all.push(row);
              byServer.set(server.name, [...(byServer.get(server.name) ?? []), row]);
              console.error(
                `delay=${ackDelayMs} ${server.name.padEnd(10)} ${profile.name.padEnd(14)} C=${String(concurrency).padStart(3)} run ${run + 1}  ${fmt(row.wallS, 2)} s  ${fmt(row.mbPerS)} MB/s  ok=${row.ok} failed=${row.failed} resends=${row.clientTimeouts} client=${fmt(row.clientCpuS, 2)}s load=${fmt(row.load1, 1)}${row.note ? `  (${row.note})` : ''}`,
              );
            }
          }
          for (const rows of byServer.values()) shown.push(medianBy(rows, (r) => r.wallS)!);
        }
      }
    }
    for (const s of servers) await s.stop();

    const hpaVersion = await new Promise<string>((resolve) => {
      if (!existsSync('/usr/sbin/in.tftpd')) return resolve('not installed');
      const c = spawn('/usr/sbin/in.tftpd', ['-V'], { stdio: ['ignore', 'pipe', 'ignore'] });
      let out = '';
      c.stdout.on('data', (d: Buffer) => (out += d.toString()));
      c.on('close', () => resolve(out.trim().split('\n')[0] ?? ''));
      c.on('error', () => resolve('unknown'));
    });
    const sections = ACK_DELAYS_MS.flatMap((d) => {
      const rows = shown.filter((r) => r.ackDelayMs === d);
      return [
        `### Per-ACK delay ${d} ms`,
        '',
        table(rows),
        '',
        ...(RUNS > 1 ? ['Storm time of every run (s), in order:', '', ...rows.map((r) => `- ${r.server} ${r.profile} C=${r.concurrency}: ${spread(all, r)}`), ''] : []),
      ];
    });
    const md = [
      `File: ${FILE} (${data.length} bytes), loopback, per-ACK delay ${ACK_DELAYS_MS.join(' and ')} ms, client retransmit timeout 1 s.`,
      `Machine: ${cpus().length} CPUs (${cpus()[0]?.model ?? 'unknown'}), Node ${process.version}, ${hpaVersion}.`,
      `Started ${startedAt}, 1-minute load average ${load1AtStart.toFixed(2)} before the first scenario; ${RUNS} run(s) per scenario${RUNS > 1 ? ', the table shows the run with the median storm time' : ''}.`,
      `Profiles: ${PROFILES.map((p) => `\`${p.name}\` = ${p.label}`).join('; ')}.`,
      ...skipped,
      '',
      ...sections,
      'Notes: storm time is from the first request to the last completed download; downloads/s is',
      'completed downloads over storm time; MB/s is completed bytes over storm time; server+kernel',
      "CPU is the machine's busy time less the client process's (it includes loopback UDP work in the",
      'kernel and anything else running). All clients run in one Node process on the same machine:',
      'where client CPU is close to storm time, the client is the limit.',
    ].join('\n');
    console.log(md);
    mkdirSync(args.out, { recursive: true });
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    writeFileSync(path.join(args.out, `tftp-${stamp}.md`), md + '\n');
    writeFileSync(path.join(args.out, `tftp-${stamp}.json`), JSON.stringify({ file: FILE, size: data.length, runs: RUNS, load1AtStart, startedAt, rows: all, shown }, null, 2));
  } finally {
    cleanupChildren();
    rmSync(root, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
