/**
 * DHCP benchmark: metalboot vs Kea (kea-dhcp4, memfile, single-threaded) vs dnsmasq, driven by
 * perfdhcp, in two network namespaces joined by a veth pair on a bridge.
 *
 *   sudo node --import tsx bench/dhcp.ts [--quick]
 *     [--servers metalboot,kea,dnsmasq] [--modes broadcast,relay] [--kinds new,repeat]
 *     [--period-s 3] [--runs 3] [--worktree] [--no-profile] [--no-results] [--max-total-s N]
 *     [--latency-only] [--metalboot-flags "--trace-gc --cpu-prof …"]
 *
 * For every server × mode (broadcast: requests to 255.255.255.255; relay: unicast to the server)
 * × kind (new: MACs counting up from 02:6e:… → range leases; repeat: 500 reserved MACs) it sweeps offered rates
 * (a ladder from 1,000/s up, or down when 1,000/s already drops), refines the edge once, then
 * repeats the best clean rate and twice that rate until each has `--runs` runs. A run is clean
 * when fewer than 0.1% of the DISCOVERs it sent fail to end in an ACK. Then p50/p99 latency at
 * 1,000/s (500 reserved clients, and new clients) from perfdhcp's per-exchange timestamps.
 *
 * The server runs on CPU 0 and perfdhcp on CPU 1 (taskset); CPU seconds are the server's
 * utime+stime from /proc. New-client runs restart the server with empty lease state; repeat
 * runs share one server per sweep. When metalboot misses a target it is profiled
 * with --cpu-prof at twice its clean rate.
 *
 * --latency-only skips the sweeps and measures latency only, for the client kinds in --kinds;
 * --metalboot-flags adds node flags to every metalboot start (e.g. --cpu-prof, --cpu-prof-dir).
 *
 * Raw perfdhcp output, server logs and JSON go to bench/out/dhcp-<time>/; the `## DHCP` section
 * of bench/RESULTS.md is replaced (full runs only, unless --no-results). Needs root, perfdhcp
 * (kea-admin), kea-dhcp4 (kea-dhcp4-server), dnsmasq, taskset.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createLab, requireRoot, requireTools, findExecutable } from '../lab/netns.js';
import { NET, preparePeers, type PeerName } from './lib/dhcp-peers.js';
import {
  dhcpSection,
  latencyTable,
  LADDER,
  profileSection,
  sweepTable,
  targets,
  type DhcpSettings,
  type Kind,
  type Latency,
  type Profile,
  type Sweep,
} from './lib/dhcp-report.js';
import { checkReservationMacs, latency, perf4, PROBE4, profile, sweep, type Ctx } from './lib/dhcp-runs.js';
import {
  defineOptions,
  elapsedLog,
  publishResults,
  QuietGate,
  runIfEntry,
  type Args,
  type Run,
} from './lib/harness.js';
import { commandOutput, debVersion, filesystemOf, gitState, machine, REPO_ROOT } from './lib/machine.js';
import { metalbootBuild } from './lib/metalboot-build.js';
import type { Mode } from './lib/perfdhcp.js';
import { RESULTS_FILE, subsection } from './lib/results-md.js';

export const options = defineOptions({
  quick: {
    type: 'boolean',
    help: 'broadcast only, single runs, shorter periods, no bisection; RESULTS.md untouched unless --results',
  },
  servers: {
    type: 'list',
    help: 'servers to measure',
    default: 'metalboot,kea,dnsmasq',
    choices: ['metalboot', 'kea', 'dnsmasq'],
  },
  modes: {
    type: 'list',
    help: 'broadcast: requests to 255.255.255.255; relay: unicast to the server [default: broadcast,relay; --quick: broadcast]',
    choices: ['broadcast', 'relay'],
  },
  kinds: {
    type: 'list',
    help: 'new: MACs counting up from 02:6e:… → range leases; repeat: 500 reserved MACs',
    default: 'new,repeat',
    choices: ['new', 'repeat'],
  },
  'period-s': { type: 'number', help: 'seconds per sweep run [default: 3; --quick: 2]' },
  runs: { type: 'number', help: 'runs per measured rate [default: 3; --quick: 1]' },
  // single: perfdhcp has one CPU (taskset), and with -g multi its receiving thread shares it with
  // the sending one; while it waits for its turn its socket overflows (UdpRcvbufErrors in the
  // client's namespace) and those losses count as the server's: a bare dgram responder that
  // dropped nothing itself lost 0–7% that way at 8,000–14,000 exchanges/s, none with -g single.
  'perfdhcp-threads': { type: 'string', help: 'perfdhcp -g', default: 'single', choices: ['single', 'multi'] },
  worktree: { type: 'boolean', help: 'measure src/ as it is (through tsx) instead of the committed HEAD' },
  'no-profile': { type: 'boolean', help: 'no --cpu-prof run when metalboot misses a target' },
  'no-results': { type: 'boolean', help: 'leave bench/RESULTS.md alone' },
  results: { type: 'boolean', help: 'write RESULTS.md even with --quick' },
  'max-total-s': { type: 'number', help: 'stop (exit 2) after this many seconds [default: 1500; --quick: 330]' },
  'latency-only': { type: 'boolean', help: 'no sweeps: latency at 1,000/s for --kinds only (RESULTS.md untouched)' },
  'metalboot-flags': { type: 'string', help: 'node flags for every metalboot start, e.g. "--trace-gc --cpu-prof"' },
  out: { type: 'string', help: 'output directory', default: path.join(REPO_ROOT, 'bench', 'out') },
});

/** The 1-minute load average below which the machine counts as quiet. */
const LOAD_THRESHOLD = 1.0;

/** What a run measures, from its arguments; --quick changes the defaults. */
export function settings(args: Args<typeof options>): DhcpSettings {
  const quick = args.quick;
  return {
    quick,
    servers: args.servers as PeerName[],
    modes: (args.modes ?? (quick ? ['broadcast'] : ['broadcast', 'relay'])) as Mode[],
    kinds: args.kinds as Kind[],
    periodS: args['period-s'] ?? (quick ? 2 : 3),
    latencyPeriodS: quick ? 3 : 4,
    profilePeriodS: quick ? 4 : 8,
    runs: args.runs ?? (quick ? 1 : 3),
    threads: args['perfdhcp-threads'] === 'multi' ? 'multi' : 'single',
    metalbootFlags: (args['metalboot-flags'] ?? '').split(/\s+/).filter((f) => f.length > 0),
    quietWaitS: quick ? 20 : 60,
    quietBudgetS: quick ? 40 : 60,
  };
}

export async function main(args: Args<typeof options>, run: Run): Promise<void> {
  const st = settings(args);
  const runName = `dhcp-${run.stamp}`;
  const runDir = path.join(args.out, runName);
  const log = elapsedLog(run.startedMs, console.log);
  const latencyOnly = args['latency-only'];
  requireRoot();
  requireTools('ip', 'perfdhcp', 'dnsmasq');
  for (const bin of ['kea-dhcp4', 'taskset'])
    if (findExecutable(bin) === undefined)
      throw new Error(`${bin} is missing (Debian ${bin === 'taskset' ? 'util-linux' : 'kea-dhcp4-server'})`);
  mkdirSync(path.join(runDir, 'runs'), { recursive: true });
  const m = machine();
  if (m.nproc < 2) throw new Error('needs at least 2 CPUs (server on CPU 0, perfdhcp on CPU 1)');
  const git = gitState();
  log(
    `metalboot ${git.sha.slice(0, 12)}${git.srcDirty.length > 0 ? ` (src/ has uncommitted changes in ${git.srcDirty.length} files; measuring the commit)` : ''}, output in ${path.relative(REPO_ROOT, runDir)}`,
  );
  const build = metalbootBuild({ worktree: args.worktree, sha: git.sha, outDir: args.out });
  const peers = preparePeers(path.join(runDir, 'conf'), build);
  const versions = {
    metalboot: `${git.sha.slice(0, 12)}: ${build.label}`,
    node: process.version,
    kea: `kea-dhcp4 ${commandOutput('kea-dhcp4', ['-v']) ?? '?'} (Debian ${debVersion('kea-dhcp4-server') ?? '?'})`,
    dnsmasq: `${commandOutput('dnsmasq', ['-v']) ?? '?'} (Debian ${debVersion('dnsmasq-base') ?? '?'})`,
    perfdhcp: `perfdhcp ${commandOutput('perfdhcp', ['-v']) ?? '?'} (Debian kea-admin ${debVersion('kea-admin') ?? '?'})`,
  };
  const quiet = new QuietGate({ threshold: LOAD_THRESHOLD, perWaitS: st.quietWaitS, budgetS: st.quietBudgetS, log });
  const lab = await createLab({ switchNamespace: 'srv', bridgeIp: NET.serverCidr });
  const sweeps: Sweep[] = [];
  const lats: Latency[] = [];
  const profs: Profile[] = [];
  const readyMs: Ctx['readyMs'] = {};
  let macCheck = '';
  try {
    await lab.addNamespace('cli');
    const link = await lab.connect('cli', { ip: NET.clientCidr });
    const ctx: Ctx = {
      lab,
      ifname: link.ifname,
      peers,
      perf: perf4(link.ifname, st.threads),
      probe: PROBE4,
      latencyMode: 'broadcast',
      settings: st,
      runDir,
      log,
      quiet,
      seq: 0,
      readyMs,
    };
    macCheck = await checkReservationMacs(ctx);
    log(macCheck);
    if (!latencyOnly)
      for (const kind of st.kinds)
        for (const mode of st.modes) for (const server of st.servers) sweeps.push(await sweep(ctx, server, mode, kind));
    for (const kind of (['repeat', 'new'] as Kind[]).filter((k) => st.kinds.includes(k)))
      for (const server of st.servers) lats.push(await latency(ctx, server, kind));
    const t = targets(sweeps, lats);
    if (t.missed && !args['no-profile'] && st.servers.includes('metalboot')) {
      // Saturated: twice the clean rate, broadcast, once per client kind; new clients once more
      // without inlining, so a callee inlined into its caller is named in the profile.
      for (const kind of st.kinds) {
        const mb =
          sweeps.find((s) => s.server === 'metalboot' && s.kind === kind && s.mode === 'broadcast') ??
          sweeps.find((s) => s.server === 'metalboot' && s.kind === kind);
        if (mb === undefined) continue;
        for (const flags of kind === 'new' && !st.quick ? [[], ['--no-turbo-inlining']] : [[]]) {
          const p = await profile(ctx, mb.mode, kind, 2 * (mb.maxClean ?? LADDER[0]!), flags);
          if (p !== undefined) profs.push(p);
        }
      }
    }
  } finally {
    await lab.close();
  }

  const t = targets(sweeps, lats);
  const body = dhcpSection({
    settings: st,
    startedMs: run.startedMs,
    elapsedS: Math.round(run.limit.elapsedS()),
    runName,
    machine: m,
    leaseFilesystem: filesystemOf(runDir),
    loadThreshold: LOAD_THRESHOLD,
    quietSpentS: quiet.spentS,
    versions,
    peers,
    macCheck,
    sweeps,
    lats,
    profs,
    readyMs,
  });
  console.log(`\n${sweepTable(sweeps)}\n\n${latencyTable(lats)}\n\n${t.lines.join('\n')}\n`);
  for (const p of profs) console.log(profileSection(p, runName));
  const write = !args['no-results'] && !latencyOnly && (!st.quick || args.results);
  // The hand-written `### Reading it` notes of the current section survive a re-run (they say which run they were written for).
  const notes =
    write && existsSync(RESULTS_FILE)
      ? subsection(readFileSync(RESULTS_FILE, 'utf8'), 'DHCP', 'Reading it')
      : undefined;
  publishResults({
    heading: 'DHCP',
    body,
    resultsBody: notes === undefined ? body : `${body}\n${notes}\n`,
    runDir,
    log,
    json: { versions, machine: m, args, sweeps, lats, profiles: profs, readyMs },
    write,
    skipped: st.quick ? 'quick run; pass --results to write it' : '--no-results',
  });
}

runIfEntry(import.meta.url, {
  name: 'dhcp bench',
  usage: 'sudo node --import tsx bench/dhcp.ts [--quick] [options]',
  about:
    'metalboot vs Kea vs dnsmasq under perfdhcp in two network namespaces: highest clean rate, goodput at twice it, latency at 1,000/s, CPU per 1,000 exchanges. Replaces ## DHCP in bench/RESULTS.md (full runs).',
  options,
  timeLimit: {
    seconds: (a) => a['max-total-s'] ?? (a.quick ? 330 : 1500),
    stop: 'exit',
    note: "the lab's exit handler removes the namespaces",
  },
  main,
});
