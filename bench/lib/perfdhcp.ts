/**
 * perfdhcp (Kea, Debian `kea-admin`) as a DHCPv4 load generator: argument building and a parser
 * for its final report.
 *
 * What perfdhcp 2.2 sends (seen in test/fixtures/dhcp): every request is relay-shaped — source
 * port 67, giaddr = its own address, hops 1 — so servers answer it on port 67 at that address in
 * both modes. "broadcast" (`-l <ifname>`, no server) sends the requests to 255.255.255.255:67;
 * "relay" (`-l <ip> <server>`) sends them unicast to the server.
 *
 * Clients: `-b mac=<base> -R <n>` draws, per exchange, r = random() % n and adds it to the last
 * bytes of the base MAC byte by byte without carrying (perfdhcp TestControl::generateMacAddress),
 * so with a base whose low bytes are zero the MACs are exactly base+0 … base+n-1. The bench checks
 * this against the reservation list before it measures (see checkReservationMacs in dhcp.ts).
 */

export type Mode = 'broadcast' | 'relay';

export interface PerfdhcpRun {
  readonly mode: Mode;
  /** Offered exchanges per second (DISCOVERs initiated per second). */
  readonly rate: number;
  /** Seconds to keep initiating exchanges (perfdhcp -p takes whole seconds only). */
  readonly periodS?: number;
  /** Or: the number of exchanges to initiate (perfdhcp -n). */
  readonly count?: number;
  /** perfdhcp -g: 'multi' (a receiver thread; perfdhcp's default on more than one CPU) or 'single'. */
  readonly threads?: 'single' | 'multi';
  readonly macBase: string;
  readonly clients: number;
  /** Client-side interface (broadcast) and address (relay). */
  readonly ifname: string;
  readonly localIp: string;
  readonly serverIp: string;
  /** Print per-exchange timestamps (`-x t`) for latency percentiles. */
  readonly timestamps?: boolean;
  /** Seconds after which an unanswered request counts as dropped (perfdhcp -d, default 1). */
  readonly dropTimeS?: number;
  /** Microseconds to keep receiving after the last request (perfdhcp -W). */
  readonly exitWaitUs?: number;
}

export function perfdhcpArgs(r: PerfdhcpRun): string[] {
  const args = [
    '-4',
    '-g',
    r.threads ?? 'multi',
    '-r',
    String(r.rate),
    ...(r.count === undefined ? ['-p', String(r.periodS ?? 1)] : ['-n', String(r.count)]),
    '-d',
    String(r.dropTimeS ?? 1),
    '-W',
    String(r.exitWaitUs ?? 1_000_000),
    '-b',
    `mac=${r.macBase}`,
    '-R',
    String(r.clients),
  ];
  if (r.timestamps === true) args.push('-x', 't');
  if (r.mode === 'broadcast') args.push('-l', r.ifname);
  else args.push('-l', r.localIp, r.serverIp);
  return args;
}

export interface ExchangeStats {
  readonly sent: number;
  readonly received: number;
  readonly drops: number;
  readonly orphans: number;
  readonly rejectedLeases: number;
  readonly minMs: number;
  readonly avgMs: number;
  readonly maxMs: number;
}

export interface PerfdhcpReport {
  /** perfdhcp's own "Rate: … 4-way exchanges/second". */
  readonly rate: number | undefined;
  readonly discover: ExchangeStats | undefined;
  readonly request: ExchangeStats | undefined;
  /** Per-exchange delays in ms (with `-x t`). */
  readonly offerDelaysMs: number[];
  readonly ackDelaysMs: number[];
}

function num(block: string, label: string): number {
  const m = new RegExp(`^${label}: ([-\\d.]+)`, 'm').exec(block);
  return m === null ? NaN : Number(m[1]);
}

function exchange(out: string, name: string): ExchangeStats | undefined {
  const heading = `***Statistics for: ${name}***`;
  const start = out.indexOf(heading);
  if (start < 0) return undefined;
  const next = out.indexOf('***', start + heading.length);
  const block = out.slice(start, next < 0 ? undefined : next);
  return {
    sent: num(block, 'sent packets'),
    received: num(block, 'received packets'),
    drops: num(block, 'drops'),
    orphans: num(block, 'orphans'),
    rejectedLeases: num(block, 'rejected leases'),
    minMs: num(block, 'min delay'),
    avgMs: num(block, 'avg delay'),
    maxMs: num(block, 'max delay'),
  };
}

function timestamps(out: string, name: string): number[] {
  const heading = `***Timestamps for packets: ${name}***`;
  const start = out.indexOf(heading);
  if (start < 0) return [];
  const next = out.indexOf('***', start + heading.length);
  const block = out.slice(start, next < 0 ? undefined : next);
  const delays: number[] = [];
  for (const m of block.matchAll(/sent \/ received: ([\d.]+) \/ ([\d.]+)/g))
    delays.push((Number(m[2]) - Number(m[1])) * 1000);
  return delays;
}

export function parsePerfdhcp(out: string): PerfdhcpReport {
  const rate = /^Rate: ([\d.]+) 4-way exchanges\/second/m.exec(out);
  return {
    rate: rate === null ? undefined : Number(rate[1]),
    discover: exchange(out, 'DISCOVER-OFFER'),
    request: exchange(out, 'REQUEST-ACK'),
    offerDelaysMs: timestamps(out, 'DISCOVER-OFFER'),
    ackDelaysMs: timestamps(out, 'REQUEST-ACK'),
  };
}
