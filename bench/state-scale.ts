/**
 * State scale: memory and lookup cost with 1,000, 10,000 and 100,000 BareMetalHosts loaded, each
 * size in a fresh Node.js process (so one size's heap never flatters or burdens another).
 *
 *   node --import tsx bench/state-scale.ts [--quick] [--sizes 1000,10000,100000] [--no-results]
 *
 * Per size the child: builds the BareMetalHost objects a Kubernetes list would return (boot MAC,
 * two inspected NICs, ip-address/gateway/dns annotations), converts them with bmhToHost into a
 * HostIndex, and reports RSS and heap after a full GC before and after loading; then ns per
 * HostIndex.lookup (known and unknown MACs), ns per decide() of a UEFI PXE DISCOVER from a
 * random known host, and the time to parse the same hosts from manifest YAML (with a Secret
 * per host, as users apply them) through parseBmhManifests. Replaces `## State scale` in
 * bench/RESULTS.md unless --no-results.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { decide } from '../src/dhcp/decide.js';
import { MESSAGE_TYPE } from '../src/dhcp/options.js';
import { request, UEFI_PXE } from '../lab/dhcp-requests.js';
import { bmhToHost } from '../src/leases/bmh.js';
import { parseBmhManifests } from '../src/leases/bmh-manifests.js';
import { HostIndex } from '../src/leases/host-index.js';
import { LeasePool } from '../src/leases/pool.js';
import type { HostRecord } from '../src/leases/host.js';
import { parseMac, type Mac } from '../src/net/mac.js';
import { ANNOTATION_PREFIX, bmhManifest, bmhObject, hostMac, policy } from './lib/dhcp-fixture.js';
import { defineOptions, publishResults, runIfEntry, type Args } from './lib/harness.js';
import { gitState, loadAvg1, machine } from './lib/machine.js';
import { bench, consume } from './lib/microbench.js';
import { fmt } from './lib/stats.js';

export const options = defineOptions({
  quick: { type: 'boolean', help: 'shorter timings, at most 2,000 hosts parsed from YAML' },
  sizes: { type: 'numbers', help: 'numbers of BareMetalHosts, each in a fresh process', default: '1000,10000,100000' },
  child: { type: 'number', help: 'internal: measure this many hosts in this process and print JSON' },
  'no-results': { type: 'boolean', help: 'leave bench/RESULTS.md alone' },
});

interface ChildResult {
  hosts: number;
  rssBeforeMiB: number;
  rssAfterMiB: number;
  heapBeforeMiB: number;
  heapAfterMiB: number;
  loadObjectsMs: number;
  yamlHosts: number;
  yamlParseMs: number;
  lookupNs: number;
  lookupMissNs: number;
  decideNs: number;
}

const MiB = 2 ** 20;

function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g === undefined) throw new Error('run the child with --expose-gc');
  g();
  g();
}

function child(n: number, quick: boolean): ChildResult {
  const timing = quick ? { trials: 3, trialMs: 200, warmupMs: 200 } : { trials: 5, trialMs: 400, warmupMs: 400 };
  gc();
  const before = process.memoryUsage();
  const t0 = performance.now();
  const records: HostRecord[] = [];
  for (let i = 0; i < n; i++) {
    const r = bmhToHost(bmhObject(i), { annotationPrefix: ANNOTATION_PREFIX, from: 'kubernetes' });
    if (r.kind === 'host') records.push(r.host);
  }
  const index = new HostIndex();
  const conflicts = index.replaceAll('bmh', records);
  const loadObjectsMs = performance.now() - t0;
  if (conflicts.length > 0) throw new Error(`fixture has ${conflicts.length} conflicts`);
  records.length = 0;
  gc();
  const after = process.memoryUsage();

  // Lookups: known MACs in a pseudo-random order, and MACs nobody owns.
  const known: Mac[] = [];
  const unknown: Mac[] = [];
  for (let k = 0; k < 4096; k++) {
    known.push(parseMac(hostMac((k * 2654435761) % n))!);
    unknown.push(parseMac(`02:99:00:${hostMac(k).slice(9)}`)!);
  }
  const lookup = bench('lookup', (i) => index.lookup(known[i & 4095]!), timing);
  const miss = bench('lookup-miss', (i) => index.lookup(unknown[i & 4095]!), timing);
  const pol = policy();
  const state = {
    index,
    pool: new LeasePool({ ranges: [], isClaimed: (ip) => index.isClaimed(ip), serverIp: pol.serverIp }),
    now: () => 1_800_000_000_000,
  };
  const discovers = known
    .slice(0, 1024)
    .map((mac, k) => request({ type: MESSAGE_TYPE.DISCOVER, mac, xid: k, broadcast: true, options: UEFI_PXE }));
  const first = decide(discovers[0]!, pol, state);
  if (first.kind !== 'reply') throw new Error(`DISCOVER not answered: ${first.reason}`);
  const dec = bench('decide', (i) => decide(discovers[i & 1023]!, pol, state), timing);

  // The same hosts as manifest YAML (bounded: the full set for up to 10,000 hosts, else the first 10,000 scaled).
  const yamlHosts = Math.min(n, quick ? 2000 : 10_000);
  let text = '';
  for (let i = 0; i < yamlHosts; i++) text += bmhManifest(i);
  const t1 = performance.now();
  const loaded = parseBmhManifests(text, 'bench.yaml', ANNOTATION_PREFIX);
  const yamlParseMs = performance.now() - t1;
  if (loaded.hosts.length !== yamlHosts) throw new Error(`parsed ${loaded.hosts.length} of ${yamlHosts} manifests`);
  consume(loaded);

  return {
    hosts: n,
    rssBeforeMiB: before.rss / MiB,
    rssAfterMiB: after.rss / MiB,
    heapBeforeMiB: before.heapUsed / MiB,
    heapAfterMiB: after.heapUsed / MiB,
    loadObjectsMs,
    yamlHosts,
    yamlParseMs,
    lookupNs: lookup.nsPerOp,
    lookupMissNs: miss.nsPerOp,
    decideNs: dec.nsPerOp,
  };
}

function parent(args: Args<typeof options>): void {
  const results: ChildResult[] = [];
  const load0 = loadAvg1();
  for (const n of args.sizes) {
    const r = spawnSync(
      process.execPath,
      [
        '--expose-gc',
        '--import',
        'tsx',
        fileURLToPath(import.meta.url),
        '--child',
        String(n),
        ...(args.quick ? ['--quick'] : []),
      ],
      {
        encoding: 'utf8',
        timeout: 300_000,
        maxBuffer: 16 * MiB,
      },
    );
    if (r.status !== 0) throw new Error(`child for ${n} hosts failed (${r.status ?? r.signal}):\n${r.stderr}`);
    const res = JSON.parse(r.stdout.trim().split('\n').pop()!) as ChildResult;
    results.push(res);
    console.log(
      `${fmt(n)} hosts: RSS ${res.rssAfterMiB.toFixed(1)} MiB (+${(res.rssAfterMiB - res.rssBeforeMiB).toFixed(1)}), lookup ${res.lookupNs.toFixed(0)} ns, decide ${res.decideNs.toFixed(0)} ns`,
    );
  }
  const load1 = loadAvg1();
  const m = machine();
  const git = gitState();
  const table = [
    '| BareMetalHosts | RSS after load (MiB) | RSS added (MiB) | heap added (MiB) | bytes per host (heap) | build index from objects (ms) | parse manifests YAML (ms per 1,000 hosts) | lookup, known MAC (ns) | lookup, unknown MAC (ns) | decide() of a PXE DISCOVER (ns) |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...results.map(
      (r) =>
        `| ${fmt(r.hosts)} | ${fmt(r.rssAfterMiB, 1)} | ${fmt(r.rssAfterMiB - r.rssBeforeMiB, 1)} | ${fmt(r.heapAfterMiB - r.heapBeforeMiB, 1)} | ${fmt(((r.heapAfterMiB - r.heapBeforeMiB) * MiB) / r.hosts)} | ${fmt(r.loadObjectsMs)} | ${fmt((r.yamlParseMs / r.yamlHosts) * 1000)} | ${fmt(r.lookupNs)} | ${fmt(r.lookupMissNs)} | ${fmt(r.decideNs)} |`,
    ),
  ].join('\n');
  const body = [
    `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC by \`node --import tsx bench/state-scale.ts${args.quick ? ' --quick' : ''}\`: one fresh Node.js ${process.version} process per size (\`--expose-gc\`; RSS and heap after a full GC), metalboot ${git.sha.slice(0, 12)} (src/ through tsx), ${m.nproc} × ${m.cpuModel}; load ${load0.toFixed(2)} before, ${load1.toFixed(2)} after${Math.max(load0, load1) >= 1 ? ' (not a quiet machine: treat timings as upper bounds)' : ''}.`,
    '',
    table,
    '',
    'Hosts are BareMetalHost objects as a Kubernetes list returns them (boot MAC, two inspected NICs, ip-address/gateway/dns-servers annotations, mixed provisioning states), converted with `bmhToHost` and loaded with `HostIndex.replaceAll`. Lookups use 4,096 known MACs in scattered order and 4,096 unknown ones; decide() answers a UEFI PXE DISCOVER (EDK2 options) from a random known host with an OFFER. The YAML column parses manifests (a BMC Secret and a BareMetalHost per host) with `parseBmhManifests`, for up to 10,000 hosts per size.',
  ].join('\n');
  console.log(`\n${table}`);
  publishResults({ heading: 'State scale', body, write: !args['no-results'], log: console.log });
}

export function main(args: Args<typeof options>): void {
  if (args.child !== undefined) console.log(JSON.stringify(child(args.child, args.quick)));
  else parent(args);
}

runIfEntry(import.meta.url, {
  name: 'state-scale bench',
  usage: 'node --import tsx bench/state-scale.ts [--quick] [--sizes 1000,10000,100000] [--no-results]',
  about:
    'RSS, heap per host, HostIndex.lookup, decide() and manifest parse time with N BareMetalHosts loaded, each size in a fresh process. Replaces ## State scale in bench/RESULTS.md.',
  options,
  main,
});
