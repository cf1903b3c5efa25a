/**
 * DHCP codec throughput, in process: packets/s to decode and encode a UEFI PXE DISCOVER (the
 * options of an EDK2 x64 client, lab/dhcp-requests.ts UEFI_PXE), and for context the rest
 * of the pure per-packet path: decide() for that DISCOVER (a BareMetalHost among 10,000) and
 * encode() of the OFFER it returns.
 *
 *   npm run bench:codec [-- --quick] [-- --no-results]
 *
 * Median of 5 trials of 0.5 s after a warm-up (quick: 3 × 0.2 s). Replaces `## DHCP codec` in
 * bench/RESULTS.md unless --no-results.
 */
import { decode, encode, encodingLength } from '../src/dhcp/codec.js';
import { decide } from '../src/dhcp/decide.js';
import { MESSAGE_TYPE } from '../src/dhcp/options.js';
import { request, UEFI_PXE } from '../lab/dhcp-requests.js';
import { bmhToHost } from '../src/leases/bmh.js';
import { HostIndex } from '../src/leases/host-index.js';
import { LeasePool } from '../src/leases/pool.js';
import type { HostRecord } from '../src/leases/host.js';
import { ANNOTATION_PREFIX, bmhObject, hostMac, policy } from './lib/dhcp-fixture.js';
import { defineOptions, publishResults, runIfEntry, type Args } from './lib/harness.js';
import { gitState, loadAvg1, machine } from './lib/machine.js';
import { bench, consume, type MicroResult } from './lib/microbench.js';
import { fmt } from './lib/stats.js';

export const options = defineOptions({
  quick: { type: 'boolean', help: '3 trials of 0.2 s after a 0.2 s warm-up (else 5 of 0.5 s)' },
  'no-results': { type: 'boolean', help: 'leave bench/RESULTS.md alone' },
});

const HOSTS = 10_000;

/** A BareMetalHost among HOSTS, its UEFI PXE DISCOVER and the OFFER decide() answers it with. */
function fixture() {
  const index = new HostIndex();
  const records: HostRecord[] = [];
  for (let i = 0; i < HOSTS; i++) {
    const r = bmhToHost(bmhObject(i), { annotationPrefix: ANNOTATION_PREFIX, from: 'bench' });
    if (r.kind === 'host') records.push(r.host);
  }
  index.replaceAll('bmh', records);
  const pol = policy();
  const state = {
    index,
    pool: new LeasePool({ ranges: [], isClaimed: (ip) => index.isClaimed(ip), serverIp: pol.serverIp }),
    now: () => 1_800_000_000_000,
  };

  const discover = request({
    type: MESSAGE_TYPE.DISCOVER,
    mac: hostMac(4242),
    xid: 0x5eed,
    broadcast: true,
    options: UEFI_PXE,
  });
  const discoverBytes = encode(discover);
  const outcome = decide(decode(discoverBytes), pol, state);
  if (outcome.kind !== 'reply') throw new Error(`the bench DISCOVER was not answered: ${outcome.reason}`);
  const offer = outcome.reply;
  return { pol, state, discover, discoverBytes, offer, offerBytes: encode(offer) };
}

export function main(args: Args<typeof options>): void {
  const timing = args.quick ? { trials: 3, trialMs: 200, warmupMs: 200 } : { trials: 5, trialMs: 500, warmupMs: 500 };
  const { pol, state, discover, discoverBytes, offer, offerBytes } = fixture();
  const target = Buffer.alloc(1500);

  const load0 = loadAvg1();
  const results: MicroResult[] = [
    bench(
      `decode: UEFI PXE DISCOVER (${discoverBytes.length} bytes, ${discover.options.size} options)`,
      () => decode(discoverBytes),
      timing,
    ),
    bench('encode: the same DISCOVER, new buffer', () => encode(discover), timing),
    bench('encode: the same DISCOVER into a reused buffer', () => encode(discover, target), timing),
    bench(
      `decide: that DISCOVER → OFFER (BareMetalHost among ${fmt(HOSTS)})`,
      () => decide(discover, pol, state),
      timing,
    ),
    bench(`encode: the OFFER (${offerBytes.length} bytes, ${offer.options.size} options)`, () => encode(offer), timing),
    bench(
      'decode → decide → encode: the whole pure path of one DISCOVER',
      () => {
        const o = decide(decode(discoverBytes), pol, state);
        return o.kind === 'reply' ? encode(o.reply) : o;
      },
      timing,
    ),
  ];
  consume(encodingLength(offer));
  const load1 = loadAvg1();

  const m = machine();
  const git = gitState();
  const dirty = git.srcDirty.filter((p) => p.startsWith('src/dhcp/') || p.startsWith('src/net/'));
  const table = [
    '| operation | packets/s (median) | ns/packet | slowest–fastest trial (/s) |',
    '|---|---:|---:|---|',
    ...results.map(
      (r) => `| ${r.name} | ${fmt(r.opsPerS)} | ${fmt(r.nsPerOp)} | ${fmt(r.minOpsPerS)}–${fmt(r.maxOpsPerS)} |`,
    ),
  ].join('\n');
  const body = [
    `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC by \`npm run bench:codec\`${args.quick ? ' (--quick)' : ''}: one process, no pinning, median of ${timing.trials} trials of ${timing.trialMs} ms after a ${timing.warmupMs} ms warm-up. metalboot ${git.sha.slice(0, 12)}${dirty.length > 0 ? ` with uncommitted changes in ${dirty.join(', ')}` : ''} (src/ through tsx), Node.js ${process.version}, ${m.nproc} × ${m.cpuModel}; load ${load0.toFixed(2)} before, ${load1.toFixed(2)} after${Math.max(load0, load1) >= 1 ? ' (not a quiet machine: treat as lower bounds)' : ''}.`,
    '',
    table,
    '',
    'The DISCOVER carries the options of an EDK2 x64 PXE client (60 PXEClient:Arch:00007, 93, 94, 97, 57, 55 with 35 codes). decide() includes the host lookup, client classification, boot-file choice and building the OFFER (option 43, 66/67, 97 echo, parameter-request filtering).',
  ].join('\n');
  console.log(table);
  publishResults({ heading: 'DHCP codec', body, write: !args['no-results'], log: console.log });
}

runIfEntry(import.meta.url, {
  name: 'dhcp codec bench',
  usage: 'npm run bench:codec [-- --quick] [-- --no-results]',
  about:
    'Packets/s of the DHCP codec, decide() and the whole pure path of a UEFI PXE DISCOVER, in one process. Replaces ## DHCP codec in bench/RESULTS.md.',
  options,
  main,
});
