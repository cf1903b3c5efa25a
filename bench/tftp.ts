/**
 * TFTP boot-storm benchmark: C concurrent downloads of ipxe.efi from metalboot and from
 * tftpd-hpa (in.tftpd run by hand on loopback, never the system service), for clients that
 * behave like iPXE (tsize, blksize 1432, no window) and like EDK2 (tsize probe, ERROR 8, then
 * blksize 1468 with and without windowsize 4). Reports completion time of the whole storm,
 * aggregate throughput, per-download latency percentiles, failures and server CPU time.
 *
 *   node --import tsx bench/tftp.ts [--concurrency 1,50,200,500] [--ack-delay-ms 0]
 *        [--file ipxe.efi] [--scenario-timeout-s 120] [--max-total-s 1800] [--no-tftpd-hpa]
 *
 * Writes bench/out/tftp-<time>.md and .json. Needs root for in.tftpd --secure (chroot); without
 * root or without in.tftpd the tftpd-hpa rows are skipped.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createServer } from 'node:net';
import { edk2Get, tftpGet, type GetResult } from '../test/support/tftp-client.js';
import { sha256 } from '../test/support/tftp-fixture.js';

const { values: args } = parseArgs({
  options: {
    concurrency: { type: 'string', default: '1,50,200,500' },
    'ack-delay-ms': { type: 'string', default: '0' },
    file: { type: 'string', default: 'ipxe.efi' },
    'scenario-timeout-s': { type: 'string', default: '120' },
    'no-tftpd-hpa': { type: 'boolean', default: false },
    'max-total-s': { type: 'string', default: '1800' },
    out: { type: 'string', default: path.join(import.meta.dirname, 'out') },
  },
});

const CONCURRENCY = args.concurrency.split(',').map(Number);
const ACK_DELAY_MS = Number(args['ack-delay-ms']);
const SCENARIO_TIMEOUT_MS = Number(args['scenario-timeout-s']) * 1000;
const FILE = args.file;

type Profile = 'ipxe' | 'edk2-window4' | 'edk2-nowindow';
const PROFILES: { name: Profile; label: string }[] = [
  { name: 'ipxe', label: 'iPXE: tsize, blksize 1432, no window' },
  { name: 'edk2-nowindow', label: 'EDK2: tsize probe + ERROR 8, blksize 1468, no window' },
  { name: 'edk2-window4', label: 'EDK2: tsize probe + ERROR 8, blksize 1468, windowsize 4' },
];

interface Row {
  server: string;
  profile: Profile;
  concurrency: number;
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
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, 'tftp-server-main.ts'), '--root', root], {
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

async function download(profile: Profile, port: number, deadlineMs: number): Promise<GetResult> {
  const common = { port, file: FILE, deadlineMs, timeoutMs: 1000, retries: 8, ackDelayMs: ACK_DELAY_MS || undefined };
  switch (profile) {
    case 'ipxe':
      return tftpGet({ ...common, options: [['tsize', '0'], ['blksize', '1432']] });
    case 'edk2-window4':
      return edk2Get({ ...common, blksize: 1468, windowsize: 4 });
    case 'edk2-nowindow': {
      // EDK2 with PcdTftpWindowSize unset: the same probe, then blksize only.
      const probe = await tftpGet({ ...common, options: [['tsize', '0'], ['blksize', '1468']], abortOackWith: 8 });
      const r = await tftpGet({ ...common, options: [['blksize', '1468']] });
      return { ...r, timeouts: probe.timeouts + r.timeouts };
    }
  }
}

async function scenario(server: ServerHandle, profile: Profile, concurrency: number, expectedSha: string, size: number): Promise<Row> {
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
        const r = await download(profile, server.port, SCENARIO_TIMEOUT_MS);
        if (sha256(r.data) !== expectedSha) throw new Error('checksum mismatch');
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
    concurrency,
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
    '| server | client profile | C | ok | failed | client resends | storm time (s) | aggregate MB/s | p50 (ms) | p95 (ms) | max (ms) | server+kernel CPU (s) | client CPU (s) |',
    '|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.server} | ${r.profile} | ${r.concurrency} | ${r.ok} | ${r.failed} | ${r.clientTimeouts} | ${fmt(r.wallS, 2)} | ${fmt(r.mbPerS)} | ${fmt(r.p50Ms, 0)} | ${fmt(r.p95Ms, 0)} | ${fmt(r.maxMs, 0)} | ${fmt(r.serverCpuS, 2)} | ${fmt(r.clientCpuS, 2)} |`,
    );
  }
  return lines.join('\n');
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
    const expectedSha = sha256(data);

    const servers: ServerHandle[] = [await startMetalboot(root)];
    const hpa = await startTftpdHpa(root);
    const skipped: string[] = [];
    if (typeof hpa === 'string') skipped.push(`tftpd-hpa skipped: ${hpa}`);
    else servers.push(hpa);

    // Warm up each server (JIT, page cache, forked children) so C=1 measures steady state.
    for (const server of servers) for (const profile of PROFILES) await download(profile.name, server.port, 30_000);

    const rows: Row[] = [];
    for (const concurrency of CONCURRENCY) {
      for (const profile of PROFILES) {
        for (const server of servers) {
          const row = await scenario(server, profile.name, concurrency, expectedSha, data.length);
          rows.push(row);
          console.error(
            `${server.name.padEnd(10)} ${profile.name.padEnd(14)} C=${String(concurrency).padStart(3)}  ${fmt(row.wallS, 2)} s  ${fmt(row.mbPerS)} MB/s  ok=${row.ok} failed=${row.failed}${row.note ? `  (${row.note})` : ''}`,
          );
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
    const md = [
      `File: ${FILE} (${data.length} bytes), loopback, per-ACK delay ${ACK_DELAY_MS} ms, client retransmit timeout 1 s.`,
      `Machine: ${cpus().length} CPUs (${cpus()[0]?.model ?? 'unknown'}), Node ${process.version}, ${hpaVersion}.`,
      `Profiles: ${PROFILES.map((p) => `\`${p.name}\` = ${p.label}`).join('; ')}.`,
      ...skipped,
      '',
      table(rows),
      '',
      'Notes: storm time is from the first request to the last completed download; MB/s is',
      'completed bytes over storm time; server+kernel CPU is the machine\'s busy time less the',
      'client process\'s (it includes loopback UDP work in the kernel). All clients run in one Node',
      'process on the same machine: where client CPU is close to storm time, the client is the limit.',
    ].join('\n');
    console.log(md);
    mkdirSync(args.out, { recursive: true });
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    writeFileSync(path.join(args.out, `tftp-${stamp}.md`), md + '\n');
    writeFileSync(path.join(args.out, `tftp-${stamp}.json`), JSON.stringify({ file: FILE, size: data.length, ackDelayMs: ACK_DELAY_MS, rows }, null, 2));
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
