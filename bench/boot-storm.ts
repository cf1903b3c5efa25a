/**
 * Boot-storm benchmark: N simulated UEFI hosts power on within a 0–20 s
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
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createLab, findExecutable, requireRoot, requireTools } from '../lab/netns.js';
import {
  defineOptions,
  elapsedLog,
  publishResults,
  QuietGate,
  runIfEntry,
  type Args,
  type Run,
} from './lib/harness.js';
import { gitState, machine, REPO_ROOT } from './lib/machine.js';
import { metalbootBuild } from './lib/metalboot-build.js';
import { RESULTS_FILE, subsection } from './lib/results-md.js';
import { fmt } from './lib/stats.js';
import { clientAddressBatch, STORM_ARTIFACTS, STORM_NET } from './lib/storm-net.js';
import { failureLines, phaseTable, profileSection, serverTable, targetLines, verdicts } from './lib/storm-report.js';
import { storm, type Ctx, type StormConfig, type StormOutput } from './lib/storm-run.js';
import { ELD_PRELOAD, IMAGE_PORT, startUpstream, steer, TFTP_FILE, TFTP_ROOT } from './lib/storm-server.js';

export const options = defineOptions({
  quick: { type: 'boolean', help: '100 hosts, 4 + 16 MiB images, no profile, RESULTS.md untouched unless --results' },
  hosts: { type: 'numbers', help: 'storm sizes [default: 100,250,500; --quick: 100]' },
  cache: { type: 'list', help: 'image cache off and/or on, in this order', default: 'off,on', choices: ['off', 'on'] },
  'image-worker': {
    type: 'string',
    help: 'image proxy in its worker processes (--image-listen) or in-process on the HTTP port',
    default: 'on',
    choices: ['on', 'off'],
  },
  'image-workers': {
    type: 'number',
    help: 'image worker processes (--image-workers); all of metalboot shares CPU 0 with them',
    default: '1',
  },
  'jitter-s': { type: 'number', help: 'hosts power on uniformly within this many seconds', default: '20' },
  'kernel-mib': { type: 'number', help: 'IPA kernel size [default: 15; --quick: 4]' },
  'initramfs-mib': { type: 'number', help: 'IPA initramfs size [default: 60; --quick: 16]' },
  'hash-images': {
    type: 'boolean',
    help: "the hosts check the images' sha256 (costs client CPU); sizes are always checked",
  },
  seed: { type: 'number', help: 'seed of the power-on times', default: '1' },
  'log-level': { type: 'string', help: "metalboot's --log-level", default: 'info' },
  worktree: { type: 'boolean', help: 'measure src/ as it is (through tsx) instead of the committed HEAD' },
  'no-profile': { type: 'boolean', help: 'no --cpu-prof repeat when a target is missed' },
  'cpu-prof': { type: 'boolean', help: 'run every storm under --cpu-prof' },
  'no-results': { type: 'boolean', help: 'leave bench/RESULTS.md alone' },
  results: { type: 'boolean', help: 'write RESULTS.md even with --quick' },
  'max-total-s': { type: 'number', help: 'stop (exit 2) after this many seconds [default: 890; --quick: 230]' },
  'quiet-load': { type: 'number', help: 'wait for the 1-minute load average to drop below this', default: '1.5' },
  'quiet-wait-s': { type: 'number', help: 'but at most this long [default: 90; --quick: 20]' },
  out: { type: 'string', help: 'output directory', default: path.join(REPO_ROOT, 'bench', 'out') },
});

/** Kept back from --max-total-s for the report and the lab's removal. */
const RESERVE_S = 40;

/** What a run measures, from its arguments; --quick changes the defaults. */
export function stormConfig(args: Args<typeof options>): StormConfig {
  const quick = args.quick;
  return {
    quick,
    hosts: args.hosts ?? (quick ? [100] : [100, 250, 500]),
    cache: args.cache.map((c) => c === 'on'),
    jitterS: args['jitter-s'],
    kernelBytes: Math.round((args['kernel-mib'] ?? (quick ? 4 : 15)) * 2 ** 20),
    initramfsBytes: Math.round((args['initramfs-mib'] ?? (quick ? 16 : 60)) * 2 ** 20),
    hashImages: args['hash-images'],
    seed: args.seed,
    tailS: quick ? 60 : 100,
    profile: !args['no-profile'] && !quick,
    cpuProf: args['cpu-prof'],
  };
}

export async function main(args: Args<typeof options>, run: Run): Promise<void> {
  const cfg = stormConfig(args);
  const imageWorker = args['image-worker'] === 'on';
  const runName = `boot-storm-${run.stamp}`;
  const runDir = path.join(args.out, runName);
  const log = elapsedLog(run.startedMs, console.error);
  requireRoot();
  requireTools('ip');
  for (const bin of ['taskset', 'curl']) if (findExecutable(bin) === undefined) throw new Error(`${bin} is missing`);
  const m = machine();
  if (m.nproc < 2) throw new Error('needs at least 2 CPUs (metalboot on CPU 0, hosts and httpd on CPU 1)');
  if (!existsSync(path.join(TFTP_ROOT, TFTP_FILE)))
    throw new Error(`${TFTP_ROOT}/${TFTP_FILE} is missing (Debian package ipxe)`);
  if (Math.max(...cfg.hosts) > 2_000) throw new Error('at most 2,000 hosts (one address each on the client interface)');
  mkdirSync(runDir, { recursive: true });
  const git = gitState();
  log(
    `metalboot ${git.sha.slice(0, 12)}${git.srcDirty.length > 0 && !args.worktree ? ` (src/ has uncommitted changes in ${git.srcDirty.length} files; measuring the commit)` : ''}; output in ${path.relative(REPO_ROOT, runDir)}`,
  );
  const build = metalbootBuild({ worktree: args.worktree, sha: git.sha, outDir: args.out });
  const preload = path.join(runDir, 'eld-preload.mjs');
  writeFileSync(preload, ELD_PRELOAD);
  const tftpBytes = readFileSync(path.join(TFTP_ROOT, TFTP_FILE));
  const tftp = { size: tftpBytes.length, sha256: createHash('sha256').update(tftpBytes).digest('hex') };

  const quiet = await new QuietGate({
    threshold: args['quiet-load'],
    perWaitS: args['quiet-wait-s'] ?? (cfg.quick ? 20 : 90),
    log,
  }).wait();
  log(
    `load ${quiet.load1.toFixed(2)} after waiting ${quiet.waitedS} s${quiet.quiet ? '' : ' (not quiet; measuring anyway)'}`,
  );

  const lab = await createLab({ switchNamespace: 'srv', bridgeIp: `${STORM_NET.serverIp}/${STORM_NET.prefix}` });
  const outputs: StormOutput[] = [];
  const skipped: string[] = [];
  let steering: string[] = [];
  const profiled: StormOutput[] = [];
  try {
    await lab.addNamespace('cli');
    const link = await lab.connect('cli', { ip: `${STORM_NET.clientIp}/${STORM_NET.prefix}` });
    const batch = path.join(runDir, 'client-addresses.batch');
    writeFileSync(batch, clientAddressBatch(Math.max(...cfg.hosts), link.ifname));
    await lab.exec('cli', 'ip', ['-batch', batch], { check: true, timeoutMs: 60_000 });
    // A route for the limited broadcast: DHCP leaves on the lab interface.
    await lab.exec('cli', 'ip', ['route', 'add', '255.255.255.255/32', 'dev', link.ifname], { check: true });
    // Receive processing on the receiver's CPU, as if each side had its own NIC: what the hosts
    // receive is processed on CPU 1, what metalboot receives (from the hosts and from the
    // httpd on loopback) on CPU 0. Without this a veth delivers in the sender's softirq.
    steering = [
      await steer(lab, 'cli', link.ifname, 2),
      await steer(lab, 'srv', link.peer, 1),
      await steer(lab, 'srv', 'lo', 1),
    ];
    const up = await startUpstream(lab, cfg.kernelBytes, cfg.initramfsBytes);
    const ctx: Ctx = {
      lab,
      build,
      upstreamPort: up.port,
      files: up.files,
      tftp,
      preload,
      logLevel: args['log-level'],
      imageWorker,
      imageWorkers: args['image-workers'],
      config: cfg,
      runDir,
      log,
    };
    log(
      `stand-in httpd on 127.0.0.1:${up.port}: kernel ${fmt(cfg.kernelBytes / 2 ** 20, 1)} MiB, initramfs ${fmt(cfg.initramfsBytes / 2 ** 20, 1)} MiB`,
    );
    for (const n of cfg.hosts) {
      for (const cache of cfg.cache) {
        const left = run.limit.leftS() - RESERVE_S;
        const tail = Math.min(cfg.tailS, left - cfg.jitterS - 25);
        if (tail < 20) {
          log(
            `n${n}-cache-${cache ? 'on' : 'off'}: skipped, ${left.toFixed(0)} s left of --max-total-s ${run.limit.seconds}`,
          );
          skipped.push(`${n} hosts, cache ${cache ? 'on' : 'off'}`);
          continue;
        }
        outputs.push(await storm(ctx, n, cache, cfg.cpuProf, tail));
      }
    }
    const missed = outputs.filter((o) => verdicts(o.row).some((v) => !v.met));
    // Per cache mode (the relay and the cache are different code paths): the largest storm
    // that missed a target and still fits the time left, repeated under --cpu-prof.
    for (const cache of cfg.profile && !cfg.cpuProf ? cfg.cache : []) {
      const left = run.limit.leftS() - RESERVE_S;
      const worst = missed
        .filter((o) => o.row.cache === cache)
        .sort((a, b) => b.row.hosts - a.row.hosts)
        .find((o) => o.row.wallS * 1.3 + 15 < left);
      if (worst === undefined) {
        if (missed.some((o) => o.row.cache === cache))
          log(`cache ${cache ? 'on' : 'off'}: a target was missed, but ${left.toFixed(0)} s are left: no profile`);
        continue;
      }
      log(`a target was missed: repeating ${worst.row.hosts} hosts, cache ${cache ? 'on' : 'off'} under --cpu-prof`);
      profiled.push(await storm(ctx, worst.row.hosts, cache, true, Math.min(cfg.tailS, left - cfg.jitterS - 25)));
    }
  } finally {
    await lab.close();
  }

  const rows = outputs.map((o) => o.row);
  const allRows = [...rows, ...profiled.map((p) => p.row)];
  const totalS = Math.round(run.limit.elapsedS());
  const cmd = `sudo node --import tsx bench/boot-storm.ts${cfg.quick ? ' --quick' : ''}${args.hosts !== undefined ? ` --hosts ${args.hosts.join(',')}` : ''}`;
  const loads = rows.flatMap((r) => [r.load1Before, r.load1After]);
  const versions = `metalboot ${git.sha.slice(0, 12)} (${build.label}); Node.js ${process.version}; prom-client ${JSON.parse(readFileSync(path.join(REPO_ROOT, 'node_modules/prom-client/package.json'), 'utf8')).version}; iPXE snponly.efi from ${TFTP_ROOT} (${fmt(tftp.size)} bytes)`;
  const body = [
    `Measured ${new Date(run.startedMs).toISOString().slice(0, 16).replace('T', ' ')} UTC by \`${cmd}\` (${Math.round(totalS / 60)} min). Raw JSON, logs and metrics: \`bench/out/${runName}/\`.`,
    '',
    `**Machine**: ${m.nproc} CPUs (${m.cpuModel}), ${m.memGiB} GiB, Linux ${m.kernel}. **Versions**: ${versions}. Load (1-min average) around the runs: ${fmt(Math.min(...loads), 2)}–${fmt(Math.max(...loads), 2)}${Math.max(...loads) >= args['quiet-load'] ? ` — **not a quiet machine**: other work was running (the script waited ${quiet.waitedS} s for the load to drop below ${args['quiet-load']}, then measured anyway), so CPU 0 was not metalboot's alone` : ''}.`,
    '',
    `**Set-up**: network namespace \`srv\` holds the bridge (${STORM_NET.serverIp}/${STORM_NET.prefix}), metalboot pinned to CPU 0 (\`taskset -c 0 node dist/src/main.js --server-ip ${STORM_NET.serverIp}/${STORM_NET.prefix} --bmh-file bmh.yaml --tftp-root ${TFTP_ROOT} --ironic-http-url http://127.0.0.1:PORT --callback-listen ""${imageWorker ? ` --image-listen 0.0.0.0:${IMAGE_PORT} --image-workers ${args['image-workers']}` : ''} [--image-cache-dir DIR]\`, log level ${args['log-level']}, a fresh process and an empty cache per run) and a stand-in for Ironic's httpd on 127.0.0.1 (Node, files in memory, Apache-style ETag/Last-Modified, pinned to CPU 1) serving \`${STORM_ARTIFACTS.kernel}\` (${fmt(cfg.kernelBytes)} bytes = ${fmt(cfg.kernelBytes / 2 ** 20, 0)} MiB) and \`${STORM_ARTIFACTS.initramfs}\` (${fmt(cfg.initramfsBytes)} bytes = ${fmt(cfg.initramfsBytes / 2 ** 20, 0)} MiB). Receive processing is steered (RPS) to the receiver's CPU: ${steering.join('; ')}. Namespace \`cli\`, on a veth into the bridge, holds the simulated hosts: one Node process pinned to CPU 1, every host with its own address on the interface. N BareMetalHosts (MACs 52:54:00:00:xx:xx, \`metal3.vcluster.com/ip-address\` in 10.60.0.0/16, state \`inspecting\`, so each gets the inspector script).`,
    '',
    `**Each host** powers on at a uniformly random time in 0–${cfg.jitterS} s (seeded) and then: DHCP DORA as EDK2 x64 UEFI PXE (options 60/93/94/97/57/55 of OVMF, its own xid; replies are broadcast and read from one 0.0.0.0:68 socket by xid and chaddr; DISCOVER/REQUEST resent after 4, 8, 16, 32 s) → TFTP of ${TFTP_FILE} from its leased address like EDK2 (tsize probe answered with ERROR 8, then blksize 1468 windowsize 4; resend after 4 s silence, 6 times) → DHCP DORA as iPXE (options 77 "iPXE", 93, 175; resent after 1, 2, 4, 8 s) → GET /boot.ipxe → GET /boot/<mac-hyphen>.ipxe → GET the kernel and initramfs URLs of that script through the image proxy on one keep-alive connection (HTTP runs in a worker thread of the client process with a minimal HTTP/1.1 client, so bulk downloads do not hold up other hosts' DHCP and TFTP in the client; bodies streamed and counted, size checked against Content-Length and the file${args['hash-images'] ? ', sha256 checked' : '; sha256 not checked unless --hash-images'}; a failed GET is retried after 5 s, twice, like the script's \`|| goto retry\`). No think time between phases: real firmware and iPXE take a second or more to start, so this storm is denser than a real one. Phase times are from the first packet or request to the last byte; p50 / p99 over the hosts that completed the phase, seconds.`,
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
    '### Targets',
    '',
    ...targetLines(rows),
    '',
    ...(failureLines(allRows).length > 0 ? ['### Failures', '', ...failureLines(allRows), ''] : []),
    ...(skipped.length > 0 ? [`Not run (time budget of ${run.limit.seconds} s): ${skipped.join('; ')}.`, ''] : []),
    ...(profiled.some((p) => p.profile !== undefined)
      ? [
          '### CPU profiles',
          '',
          ...profiled.flatMap((p) => (p.profile === undefined ? [] : [profileSection(p.profile, p.row, runName), ''])),
        ]
      : []),
  ].join('\n');

  console.log(`\n${phaseTable(allRows)}\n\n${serverTable(allRows)}\n\n${targetLines(rows).join('\n')}\n`);
  for (const p of profiled) if (p.profile !== undefined) console.log(profileSection(p.profile, p.row, runName));
  const write = !args['no-results'] && (!cfg.quick || args.results);
  // The hand-written `### Reading it` notes of the current section survive a re-run (they say which run they were written for).
  const notes =
    write && existsSync(RESULTS_FILE)
      ? subsection(readFileSync(RESULTS_FILE, 'utf8'), 'Boot storm', 'Reading it')
      : undefined;
  publishResults({
    heading: 'Boot storm',
    body,
    resultsBody: notes === undefined ? body : `${body}\n${notes}\n`,
    runDir,
    log,
    write,
    json: {
      args,
      machine: m,
      versions,
      kernelBytes: cfg.kernelBytes,
      initramfsBytes: cfg.initramfsBytes,
      rows: allRows,
      profiles: profiled.map((p) => p.profile),
    },
    skipped: cfg.quick ? 'quick run; pass --results to write it' : '--no-results',
  });
}

runIfEntry(import.meta.url, {
  name: 'boot-storm',
  usage: 'sudo node --import tsx bench/boot-storm.ts [--quick] [--hosts 100,250,500] [options]',
  about:
    'N simulated UEFI hosts boot through one metalboot in network namespaces: DHCP, TFTP, iPXE, scripts, kernel and initramfs through the image proxy. Replaces ## Boot storm in bench/RESULTS.md (full runs).',
  options,
  timeLimit: {
    seconds: (a) => a['max-total-s'] ?? (a.quick ? 230 : 890),
    stop: 'exit',
    note: "the lab's exit handler removes the namespaces",
  },
  main,
});
