/**
 * DHCPv6 benchmark: metalboot vs Kea (kea-dhcp6, memfile, single-threaded), driven by perfdhcp -6,
 * in two network namespaces joined by a veth pair on a bridge (bench/lib/dhcp6-lab.ts).
 *
 *   sudo node --import tsx bench/dhcp6.ts [--quick]
 *     [--servers metalboot,kea] [--modes direct,relay] [--kinds new,repeat]
 *     [--period-s 2] [--runs 3] [--worktree] [--no-results] [--max-total-s N]
 *
 * For every mode (direct: Solicits to ff02::1:2 on the link; relay: perfdhcp -A1, Relay-forward
 * unicast to the server) × kind (new: fresh DUID-LL clients → range leases; repeat: 500 reserved
 * clients) × server it sweeps offered rates with the DHCP benchmark's sweep (bench/lib/dhcp-runs.ts)
 * and runs the highest clean rate (< 0.1% of Solicits without a Reply) `--runs` times; then p50/p99
 * latency at 1,000/s (direct) per kind and server. Before measuring it checks that every
 * simulated client is a client of its own to each server (bench/lib/dhcp6-runs.ts). Server on
 * CPU 0, perfdhcp on CPU 1; CPU seconds from /proc.
 *
 * Raw output in bench/out/dhcp6-<time>/; the `## DHCPv6` section of bench/RESULTS.md is replaced
 * after a full run (not --quick, unless --results). Needs root, perfdhcp (kea-admin), kea-dhcp6
 * (kea-dhcp6-server), taskset.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { findExecutable, requireRoot, requireTools } from '../lab/netns.js';
import { createLab6 } from './lib/dhcp6-lab.js';
import { prepare6Peers, type Peer6Name } from './lib/dhcp6-peers.js';
import { dhcp6Section, LEGS6, ratios6Table, rates6Table } from './lib/dhcp6-report.js';
import { checkClients6, perf6, PROBE6 } from './lib/dhcp6-runs.js';
import { latencyTable, type DhcpSettings, type Kind, type Latency, type Sweep } from './lib/dhcp-report.js';
import { latency, sweep, type Ctx } from './lib/dhcp-runs.js';
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
import type { Mode6 } from './lib/perfdhcp.js';

export const options = defineOptions({
  quick: {
    type: 'boolean',
    help: 'direct mode only, single runs, 1 s periods, no bisection, no quiet-machine wait, the client check for metalboot only, no latency runs; RESULTS.md untouched unless --results',
  },
  servers: { type: 'list', help: 'servers to measure', default: 'metalboot,kea', choices: ['metalboot', 'kea'] },
  modes: {
    type: 'list',
    help: 'direct: Solicits to ff02::1:2 on the link; relay: perfdhcp -A1, unicast to the server [default: direct,relay; --quick: direct]',
    choices: ['direct', 'relay'],
  },
  kinds: {
    type: 'list',
    help: 'new: fresh DUID-LL clients → range leases; repeat: 500 reserved clients',
    default: 'new,repeat',
    choices: ['new', 'repeat'],
  },
  'period-s': { type: 'number', help: 'seconds per sweep run [default: 2; --quick: 1]' },
  runs: { type: 'number', help: 'runs at the highest clean rate and per latency row [default: 3; --quick: 1]' },
  'perfdhcp-threads': { type: 'string', help: 'perfdhcp -g', default: 'multi', choices: ['single', 'multi'] },
  worktree: { type: 'boolean', help: 'measure src/ as it is (through tsx) instead of the committed HEAD' },
  'no-results': { type: 'boolean', help: 'leave bench/RESULTS.md alone' },
  results: { type: 'boolean', help: 'write RESULTS.md even with --quick' },
  'max-total-s': { type: 'number', help: 'stop (exit 2) after this many seconds [default: 900; --quick: 150]' },
  out: { type: 'string', help: 'output directory', default: path.join(REPO_ROOT, 'bench', 'out') },
});

/** The 1-minute load average below which the machine counts as quiet. */
const LOAD_THRESHOLD = 1.0;

/** Where latency is measured: on the link, as booting hosts without a relay talk. */
const LATENCY_MODE: Mode6 = 'direct';

/** What a run measures, from its arguments; --quick changes the defaults. */
export function settings6(args: Args<typeof options>): DhcpSettings {
  const quick = args.quick;
  return {
    quick,
    servers: args.servers as Peer6Name[],
    modes: (args.modes ?? (quick ? ['direct'] : ['direct', 'relay'])) as Mode6[],
    kinds: args.kinds as Kind[],
    periodS: args['period-s'] ?? (quick ? 1 : 2),
    latencyPeriodS: quick ? 2 : 3,
    profilePeriodS: 0,
    runs: args.runs ?? (quick ? 1 : 3),
    overload: false,
    threads: args['perfdhcp-threads'] === 'single' ? 'single' : 'multi',
    metalbootFlags: [],
    quietWaitS: quick ? 0 : 30,
    quietBudgetS: quick ? 0 : 60,
  };
}

export async function main(args: Args<typeof options>, run: Run): Promise<void> {
  const st = settings6(args);
  const runName = `dhcp6-${run.stamp}`;
  const runDir = path.join(args.out, runName);
  const log = elapsedLog(run.startedMs, console.log);
  requireRoot();
  requireTools('ip', 'perfdhcp');
  if (findExecutable('taskset') === undefined) throw new Error('taskset is missing (Debian util-linux)');
  if (st.servers.includes('kea') && findExecutable('kea-dhcp6') === undefined)
    throw new Error('kea-dhcp6 is missing (Debian kea-dhcp6-server)');
  const m = machine();
  if (m.nproc < 2) throw new Error('needs at least 2 CPUs (server on CPU 0, perfdhcp on CPU 1)');
  mkdirSync(path.join(runDir, 'runs'), { recursive: true });
  const git = gitState();
  log(`metalboot ${git.sha.slice(0, 12)}, output in ${path.relative(REPO_ROOT, runDir)}`);
  const build = metalbootBuild({ worktree: args.worktree, sha: git.sha, outDir: args.out });
  const peers = prepare6Peers(path.join(runDir, 'conf'), build);
  const versions = {
    metalboot: `${git.sha.slice(0, 12)}: ${build.label}`,
    node: process.version,
    kea: `kea-dhcp6 ${commandOutput('kea-dhcp6', ['-v']) ?? '?'} (Debian ${debVersion('kea-dhcp6-server') ?? '?'})`,
    perfdhcp: `perfdhcp ${commandOutput('perfdhcp', ['-v']) ?? '?'} (Debian kea-admin ${debVersion('kea-admin') ?? '?'})`,
  };
  const quiet = new QuietGate({ threshold: LOAD_THRESHOLD, perWaitS: st.quietWaitS, budgetS: st.quietBudgetS, log });
  const { lab, ifname } = await createLab6();
  const sweeps: Sweep[] = [];
  const lats: Latency[] = [];
  const clientChecks: string[] = [];
  const readyMs: Ctx['readyMs'] = {};
  try {
    const ctx: Ctx = {
      lab,
      ifname,
      peers,
      perf: perf6(ifname, st.threads),
      probe: PROBE6,
      latencyMode: LATENCY_MODE,
      settings: st,
      runDir,
      log,
      quiet,
      seq: 0,
      readyMs,
    };
    log('checking that every simulated client is a client of its own');
    // Kea knows clients by DUID whatever their addresses; metalboot by the MAC it finds.
    for (const server of (st.servers as Peer6Name[]).filter((s) => !st.quick || s === 'metalboot'))
      clientChecks.push(...(await checkClients6(ctx, server, st.modes as Mode6[], { eui64: !st.quick })));
    for (const kind of st.kinds)
      for (const mode of st.modes) for (const server of st.servers) sweeps.push(await sweep(ctx, server, mode, kind));
    for (const kind of (['repeat', 'new'] as Kind[]).filter((k) => st.kinds.includes(k) && !st.quick))
      for (const server of st.servers) lats.push(await latency(ctx, server, kind));
  } finally {
    await lab.close();
  }

  const command = `sudo node --import tsx bench/dhcp6.ts${process.argv.slice(2).length > 0 ? ` ${process.argv.slice(2).join(' ')}` : ''}`;
  const body = dhcp6Section({
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
    clientChecks,
    latencyMode: LATENCY_MODE,
    sweeps,
    lats,
    readyMs,
    command,
  });
  console.log(
    `\n${rates6Table(sweeps)}\n\n${latencyTable(lats, LEGS6)}\n\n${ratios6Table(sweeps, lats, LATENCY_MODE)}\n`,
  );
  publishResults({
    heading: 'DHCPv6',
    body,
    runDir,
    log,
    json: { versions, machine: m, args, clientChecks, sweeps, lats, readyMs },
    write: !args['no-results'] && (!st.quick || args.results),
    skipped: st.quick ? 'quick run; pass --results to write it' : '--no-results',
  });
}

runIfEntry(import.meta.url, {
  name: 'dhcp6 bench',
  usage: 'sudo node --import tsx bench/dhcp6.ts [--quick] [options]',
  about:
    'metalboot vs Kea DHCPv6 under perfdhcp -6 in two network namespaces: highest clean rate with the spread of its runs, latency at 1,000/s, CPU per 1,000 exchanges, as ratios metalboot / Kea. Replaces ## DHCPv6 in bench/RESULTS.md (full runs).',
  options,
  timeLimit: {
    seconds: (a) => a['max-total-s'] ?? (a.quick ? 150 : 900),
    stop: 'exit',
    note: "the lab's exit handler removes the namespaces",
  },
  main,
});
