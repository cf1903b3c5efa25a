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
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { edk2Get, tftpGet, type GetResult } from '../lab/tftp-client.js';
import { defineOptions, fileStamp, runIfEntry, type Args, type Run } from './lib/harness.js';
import { medianBy } from './lib/stats.js';
import {
  Children,
  machineBusySeconds,
  startMetalboot,
  startTftpdHpa,
  tftpdHpaVersion,
  type ServerHandle,
} from './lib/tftp-servers.js';

export const options = defineOptions({
  concurrency: { type: 'numbers', help: 'concurrent downloads per scenario', default: '1,50,200,500' },
  'ack-delay-ms': {
    type: 'numbers',
    help: "each client's wait before each ACK; the matrix runs once per value",
    default: '0',
  },
  profiles: {
    type: 'list',
    help: 'client profiles',
    default: 'ipxe,edk2-nowindow,edk2-window4',
    choices: ['ipxe', 'edk2-nowindow', 'edk2-window4'],
  },
  runs: { type: 'number', help: 'runs per scenario, servers taking turns (the table shows the median)', default: '1' },
  'cpu-prof': { type: 'string', help: 'run metalboot under node --cpu-prof, profiles into this directory' },
  file: { type: 'string', help: 'file from /usr/lib/ipxe to download', default: 'ipxe.efi' },
  'scenario-timeout-s': { type: 'number', help: "one download's deadline", default: '120' },
  'no-tftpd-hpa': { type: 'boolean', help: 'metalboot only' },
  'max-total-s': { type: 'number', help: 'stop (exit 2) after this many seconds', default: '1800' },
  out: { type: 'string', help: 'where the .md and .json go', default: path.join(import.meta.dirname, 'out') },
});

type Profile = 'ipxe' | 'edk2-window4' | 'edk2-nowindow';
const ALL_PROFILES: { name: Profile; label: string }[] = [
  { name: 'ipxe', label: 'iPXE: tsize, blksize 1432, no window' },
  { name: 'edk2-nowindow', label: 'EDK2: tsize probe + ERROR 8, blksize 1468, no window' },
  { name: 'edk2-window4', label: 'EDK2: tsize probe + ERROR 8, blksize 1468, windowsize 4' },
];

/** What every download of a run shares. */
interface Downloads {
  readonly file: string;
  readonly scenarioTimeoutMs: number;
}

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

const clientCpuSeconds = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

// ---- one scenario ---------------------------------------------------------------------------

async function download(
  file: string,
  profile: Profile,
  port: number,
  deadlineMs: number,
  ackDelayMs: number,
  expected: Buffer,
): Promise<GetResult> {
  const common = { port, file, deadlineMs, timeoutMs: 1000, retries: 8, ackDelayMs: ackDelayMs || undefined };
  switch (profile) {
    case 'ipxe':
      return tftpGet({
        ...common,
        expected,
        options: [
          ['tsize', '0'],
          ['blksize', '1432'],
        ],
      });
    case 'edk2-window4':
      return edk2Get({ ...common, expected, blksize: 1468, windowsize: 4 });
    case 'edk2-nowindow': {
      // EDK2 with PcdTftpWindowSize unset: the same probe, then blksize only.
      const probe = await tftpGet({
        ...common,
        options: [
          ['tsize', '0'],
          ['blksize', '1468'],
        ],
        abortOackWith: 8,
      });
      const r = await tftpGet({ ...common, expected, options: [['blksize', '1468']] });
      return { ...r, timeouts: probe.timeouts + r.timeouts };
    }
  }
}

async function scenario(
  d: Downloads,
  server: ServerHandle,
  profile: Profile,
  concurrency: number,
  ackDelayMs: number,
  expected: Buffer,
): Promise<Row> {
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
        const r = await download(d.file, profile, server.port, d.scenarioTimeoutMs, ackDelayMs, expected);
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
  const pct = (p: number): number =>
    durations.length ? durations[Math.min(durations.length - 1, Math.floor(p * durations.length))]! : NaN;
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
    serverCpuS:
      busyBefore !== undefined && busyAfter !== undefined
        ? Math.max(0, busyAfter - busyBefore - clientCpuS)
        : undefined,
  };
  if (errors.size) row.note = [...errors].map(([k, n]) => `${n}× ${k}`).join('; ');
  return row;
}

const fmt = (n: number | undefined, digits = 1): string =>
  n === undefined || Number.isNaN(n) ? '–' : n.toFixed(digits);

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
  const times = all
    .filter(
      (x) =>
        x.server === r.server &&
        x.profile === r.profile &&
        x.concurrency === r.concurrency &&
        x.ackDelayMs === r.ackDelayMs,
    )
    .map((x) => x.wallS.toFixed(2));
  return times.join(' / ');
}

export async function main(args: Args<typeof options>, run: Run): Promise<void> {
  const file = args.file;
  const runs = args.runs;
  const ackDelaysMs = args['ack-delay-ms'];
  const profiles = args.profiles.map((name) => ALL_PROFILES.find((x) => x.name === name)!);
  const downloads: Downloads = { file, scenarioTimeoutMs: args['scenario-timeout-s'] * 1000 };
  const children = new Children();
  run.onExit(() => children.killAll());
  const source = path.join('/usr/lib/ipxe', file);
  const root = mkdtempSync(path.join(tmpdir(), 'metalboot-bench-tftp-'));
  chmodSync(root, 0o755);
  try {
    if (existsSync(source)) copyFileSync(source, path.join(root, file));
    else throw new Error(`${source} not found (Debian package ipxe)`);
    chmodSync(path.join(root, file), 0o644);
    const data = readFileSync(path.join(root, file));

    const servers: ServerHandle[] = [await startMetalboot(children, root, args['cpu-prof'])];
    const hpa = args['no-tftpd-hpa'] ? 'disabled by --no-tftpd-hpa' : await startTftpdHpa(children, root, file);
    const skipped: string[] = [];
    if (typeof hpa === 'string') skipped.push(`tftpd-hpa skipped: ${hpa}`);
    else servers.push(hpa);

    // Warm up each server (JIT, page cache, forked children) so C=1 measures steady state.
    for (const server of servers)
      for (const profile of profiles) await download(file, profile.name, server.port, 30_000, 0, data);

    const load1AtStart = loadavg()[0]!;
    const startedAt = new Date().toISOString();
    const all: Row[] = [];
    const shown: Row[] = [];
    for (const ackDelayMs of ackDelaysMs) {
      for (const concurrency of args.concurrency) {
        for (const profile of profiles) {
          const byServer = new Map<string, Row[]>();
          // Runs alternate between servers so that a noisy minute hits both.
          for (let i = 0; i < runs; i++) {
            for (const server of servers) {
              const row = await scenario(downloads, server, profile.name, concurrency, ackDelayMs, data);
              all.push(row);
              byServer.set(server.name, [...(byServer.get(server.name) ?? []), row]);
              console.error(
                `delay=${ackDelayMs} ${server.name.padEnd(10)} ${profile.name.padEnd(14)} C=${String(concurrency).padStart(3)} run ${i + 1}  ${fmt(row.wallS, 2)} s  ${fmt(row.mbPerS)} MB/s  ok=${row.ok} failed=${row.failed} resends=${row.clientTimeouts} client=${fmt(row.clientCpuS, 2)}s load=${fmt(row.load1, 1)}${row.note ? `  (${row.note})` : ''}`,
              );
            }
          }
          for (const rows of byServer.values()) shown.push(medianBy(rows, (r) => r.wallS)!);
        }
      }
    }
    for (const s of servers) await s.stop();

    const hpaVersion = await tftpdHpaVersion();
    const sections = ackDelaysMs.flatMap((d) => {
      const rows = shown.filter((r) => r.ackDelayMs === d);
      return [
        `### Per-ACK delay ${d} ms`,
        '',
        table(rows),
        '',
        ...(runs > 1
          ? [
              'Storm time of every run (s), in order:',
              '',
              ...rows.map((r) => `- ${r.server} ${r.profile} C=${r.concurrency}: ${spread(all, r)}`),
              '',
            ]
          : []),
      ];
    });
    const md = [
      `File: ${file} (${data.length} bytes), loopback, per-ACK delay ${ackDelaysMs.join(' and ')} ms, client retransmit timeout 1 s.`,
      `Machine: ${cpus().length} CPUs (${cpus()[0]?.model ?? 'unknown'}), Node ${process.version}, ${hpaVersion}.`,
      `Started ${startedAt}, 1-minute load average ${load1AtStart.toFixed(2)} before the first scenario; ${runs} run(s) per scenario${runs > 1 ? ', the table shows the run with the median storm time' : ''}.`,
      `Profiles: ${profiles.map((p) => `\`${p.name}\` = ${p.label}`).join('; ')}.`,
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
    const stamp = fileStamp(Date.now());
    writeFileSync(path.join(args.out, `tftp-${stamp}.md`), `${md}\n`);
    writeFileSync(
      path.join(args.out, `tftp-${stamp}.json`),
      JSON.stringify({ file, size: data.length, runs, load1AtStart, startedAt, rows: all, shown }, null, 2),
    );
  } finally {
    children.killAll();
    rmSync(root, { recursive: true, force: true });
  }
}

runIfEntry(import.meta.url, {
  name: 'tftp bench',
  usage:
    'node --import tsx bench/tftp.ts [--concurrency 1,50,200,500] [--ack-delay-ms 0,1] [--profiles …] [--runs 3] [--no-tftpd-hpa] [--cpu-prof DIR]',
  about:
    'C concurrent downloads of an iPXE binary over loopback from metalboot and from tftpd-hpa, for iPXE- and EDK2-like clients. Writes bench/out/tftp-<time>.md and .json.',
  options,
  timeLimit: { seconds: (a) => a['max-total-s'], stop: 'exit', note: 'the exit handler kills the servers' },
  main,
});
