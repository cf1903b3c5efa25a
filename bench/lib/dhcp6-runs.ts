/**
 * What bench/dhcp6.ts adds to the shared measurements of bench/lib/dhcp-runs.ts: perfdhcp -6's
 * arguments for new and repeat clients, the readiness probe, and the check that every simulated
 * client is a client of its own to both servers (its own address, the reserved one for repeat
 * clients) before anything is measured.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { eui64LinkLocal, setAddresses } from './dhcp6-lab.js';
import { NET6, reservations6, type Peer6Name } from './dhcp6-peers.js';
import { REPEAT_CLIENTS, type Kind } from './dhcp-report.js';
import { start, stop, type Ctx, type PerfArgs } from './dhcp-runs.js';
import { perfdhcp6Args, type Mode6 } from './perfdhcp.js';

/** New clients of warm-up runs: another MAC range, so the measured run's clients are all new. */
export const WARMUP_MAC_BASE = '02:6f:00:00:00:00';

function clients6(kind: Kind, warmUp: boolean): { macBase: string; clients: number } {
  if (kind === 'repeat') return { macBase: NET6.reservedMacBase, clients: REPEAT_CLIENTS };
  return { macBase: warmUp ? WARMUP_MAC_BASE : NET6.newMacBase, clients: NET6.newClients };
}

/** DHCPv6's perfdhcp arguments in the lab (dhcp6-lab.ts): DUID-LL clients, direct or relay. */
export function perf6(ifname: string, threads: 'single' | 'multi'): PerfArgs {
  return (r) =>
    perfdhcp6Args({
      mode: r.mode as Mode6,
      rate: r.rate,
      periodS: r.periodS,
      exitWaitUs: r.exitWaitUs,
      timestamps: r.timestamps,
      ...clients6(r.kind, r.warmUp === true),
      ifname,
      localIp: NET6.clientIp,
      serverIp: NET6.serverIp,
      threads,
    });
}

/** The readiness probe: reservation 0, relayed. */
export const PROBE6: readonly string[] = perfdhcp6Args({
  mode: 'relay',
  rate: 10,
  periodS: 1,
  macBase: NET6.reservedMacBase,
  clients: 1,
  ifname: '',
  localIp: NET6.clientIp,
  serverIp: NET6.serverIp,
  exitWaitUs: 300_000,
  dropTimeS: 0.5,
});

/**
 * What perfdhcp's clients look like with the kernel's own link-local address: the client
 * interface's addresses are swapped for the EUI-64 one alone for 20 new clients (direct), then
 * put back. Reports, does not judge.
 */
async function eui64Check(ctx: Ctx): Promise<string> {
  const mac = (
    await ctx.lab.exec('cli', 'cat', [`/sys/class/net/${ctx.ifname}/address`], { check: true })
  ).stdout.trim();
  const ll = eui64LinkLocal(mac);
  await ctx.lab.exec('cli', 'ip', ['-6', 'addr', 'flush', 'dev', ctx.ifname], { check: true });
  await ctx.lab.exec('cli', 'ip', ['addr', 'add', `${ll}/64`, 'dev', ctx.ifname, 'nodad'], { check: true });
  try {
    const args = [...ctx.perf({ mode: 'direct', kind: 'new', rate: 20, periodS: 1, warmUp: true }), '-x', 'l'];
    const r = await ctx.lab.exec('cli', 'perfdhcp', args, { timeoutMs: 30_000 });
    writeFileSync(
      path.join(ctx.runDir, 'runs', 'check-clients-metalboot-eui64-source.txt'),
      `$ perfdhcp ${args.join(' ')}\n${r.stdout}\n--- stderr\n${r.stderr}`,
    );
    const leases = parseLeases6(r.stdout);
    const line = `metalboot, direct, new clients sent from the kernel's EUI-64 link-local address ${ll} alone (20 exchanges): ${new Set(leases.map((l) => l.clientId)).size} DUIDs, ${new Set(leases.map((l) => l.address)).size} distinct address(es) — not the set-up measured`;
    ctx.log(`  check: ${line}`);
    return line;
  } finally {
    await setAddresses(ctx.lab, 'cli', ctx.ifname, NET6.clientLinkLocal, NET6.clientCidr);
  }
}

export interface Lease6Line {
  readonly clientId: string;
  readonly address: string;
}

/**
 * The leases perfdhcp -x l prints ("***Leases for SOLICIT-ADVERTISE***", then `client_id,adrress,prefix`
 * and one `duid,address,prefix` line per client): the last such block.
 */
export function parseLeases6(out: string): Lease6Line[] {
  const start = out.lastIndexOf('***Leases for ');
  if (start < 0) return [];
  const lines: Lease6Line[] = [];
  for (const m of out.slice(start).matchAll(/^([0-9a-f]{2}(?::[0-9a-f]{2})+),([0-9a-f:]*),/gm))
    lines.push({ clientId: m[1]!, address: m[2]! });
  return lines;
}

export interface ClientCheck {
  readonly ok: boolean;
  readonly text: string;
}

/**
 * What the leases of one check run show: repeat clients must each hold their reservation, new
 * clients distinct addresses from the range, as many as distinct DUIDs.
 */
export function judgeLeases(kind: Kind, leases: readonly Lease6Line[], expected: number): ClientCheck {
  const duids = new Set(leases.map((l) => l.clientId));
  const addresses = new Set(leases.map((l) => l.address).filter((a) => a !== ''));
  if (kind === 'repeat') {
    const byDuid = new Map(reservations6().map((r) => [r.duid, r.ip]));
    const wrong = leases.filter((l) => byDuid.get(l.clientId) !== l.address);
    const ok = leases.length >= expected * 0.97 && wrong.length === 0;
    return {
      ok,
      text: `${duids.size} DUIDs, ${leases.length - wrong.length}/${leases.length} leases the DUID's reservation${wrong.length > 0 ? ` (e.g. ${wrong[0]!.clientId} got ${wrong[0]!.address || 'none'})` : ''}`,
    };
  }
  const inRange = [...addresses].filter((a) => /^fd00:6::1[0-9a-f]:[0-9a-f]{1,4}$/.test(a)).length;
  const ok = leases.length >= expected * 0.97 && addresses.size === duids.size && inRange === addresses.size;
  return { ok, text: `${duids.size} DUIDs, ${addresses.size} distinct addresses, ${inRange} of them in the range` };
}

/**
 * Each simulated client is a client of its own: `count` exchanges per mode × kind against a
 * fresh `server`, with perfdhcp's lease list (-x l); for metalboot first eui64Check (unless
 * `eui64: false`). Throws when a check fails.
 */
export async function checkClients6(
  ctx: Ctx,
  server: Peer6Name,
  modes: readonly Mode6[],
  opts: { count?: number; eui64?: boolean } = {},
): Promise<string[]> {
  const count = opts.count ?? 200;
  const proc = await start(ctx, server);
  const out: string[] = [];
  try {
    if (server === 'metalboot' && opts.eui64 !== false) out.push(await eui64Check(ctx));
    for (const mode of modes)
      for (const kind of ['repeat', 'new'] as const) {
        const args = [...ctx.perf({ mode, kind, rate: count, periodS: 1 }), '-x', 'l'];
        const r = await ctx.lab.exec('cli', 'perfdhcp', args, { timeoutMs: 30_000 });
        writeFileSync(
          path.join(ctx.runDir, 'runs', `check-clients-${server}-${mode}-${kind}.txt`),
          `$ perfdhcp ${args.join(' ')}\n${r.stdout}\n--- stderr\n${r.stderr}`,
        );
        const judged = judgeLeases(kind, parseLeases6(r.stdout), count);
        const line = `${server}, ${mode}, ${kind} clients (${count} exchanges in 1 s): ${judged.text}`;
        ctx.log(`  check: ${line}`);
        if (!judged.ok) throw new Error(`client check failed: ${line}`);
        out.push(line);
      }
  } finally {
    await stop(proc);
  }
  return out;
}
