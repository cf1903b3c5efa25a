/**
 * perfdhcp (Kea, Debian `kea-admin`) as a DHCPv4 load generator: argument building and a parser
 * for its final report.
 *
 * What perfdhcp 2.2 sends (seen in test/fixtures/dhcp): every request is relay-shaped — source
 * port 67, giaddr = its own address, hops 1 — so servers answer it on port 67 at that address in
 * both modes. "broadcast" (`-l <ifname>`, no server) sends the requests to 255.255.255.255:67;
 * "relay" (`-l <ip> <server>`) sends them unicast to the server.
 *
 * Clients: `-b mac=<base> -R <n>` takes, per exchange, the next r of a counter that starts at 0
 * in every run and wraps at n (perfdhcp 2.2's SequentialGenerator, not a random draw), and adds
 * it to the last bytes of the base MAC byte by byte without carrying
 * (TestControl::generateMacAddress), so with a base whose low bytes are zero the MACs are exactly
 * base+0, base+1, … base+n-1, in that order. The bench checks
 * this against the reservation list before it measures (see checkReservationMacs in dhcp.ts).
 *
 * DHCPv6 (`-6`, perfdhcp6Args): a Solicit/Advertise/Request/Reply exchange per client. Each
 * client's DUID is the DUID template with its last six bytes replaced by the client's MAC from
 * the same `-b mac=… -R n` scheme (TestControl::generateDuid). Without `-b duid=` the template is
 * a DUID-LLT of 00:0c:01:02:03:04 stamped with the time perfdhcp started, so DUIDs change from
 * run to run; perfdhcp6Args passes `-b duid=00030001<base MAC>`, a DUID-LL, so client i's DUID is
 * DUID-LL(base+i) in every run. perfdhcp adds no option 79 and sends from the first IPv6 address
 * of `-l <ifname>` (direct: to ff02::1:2) or from `-l <address>` (relay, `-A1`: a Relay-forward
 * whose link- and peer-address are that address, to port 547 of the server).
 */

export type Mode = 'broadcast' | 'relay';
/** DHCPv6: direct (to ff02::1:2 on the link) or relay (perfdhcp -A1, unicast to the server). */
export type Mode6 = 'direct' | 'relay';
export type AnyMode = Mode | Mode6;

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

/** The flags both families share: threads, rate, period or count, drop time, exit wait. */
function loadArgs(r: Omit<PerfdhcpRun, 'mode'>): string[] {
  return [
    '-g',
    r.threads ?? 'multi',
    '-r',
    String(r.rate),
    ...(r.count === undefined ? ['-p', String(r.periodS ?? 1)] : ['-n', String(r.count)]),
    '-d',
    String(r.dropTimeS ?? 1),
    '-W',
    String(r.exitWaitUs ?? 1_000_000),
  ];
}

export function perfdhcpArgs(r: PerfdhcpRun): string[] {
  const args = ['-4', ...loadArgs(r), '-b', `mac=${r.macBase}`, '-R', String(r.clients)];
  if (r.timestamps === true) args.push('-x', 't');
  if (r.mode === 'broadcast') args.push('-l', r.ifname);
  else args.push('-l', r.localIp, r.serverIp);
  return args;
}

export interface Perfdhcp6Run extends Omit<PerfdhcpRun, 'mode'> {
  readonly mode: Mode6;
}

/** DUID-LL (RFC 8415 §11.4: type 3, hardware type 1 Ethernet) of `mac`, as perfdhcp's -b duid= takes it. */
export function duidLl(mac: string): string {
  return `00030001${mac.replaceAll(':', '').toLowerCase()}`;
}

/**
 * perfdhcp -6: clients are DUID-LL(`macBase` + i) for i < `clients` (see the note at the top).
 * direct: `-l <ifname>`, Solicits to ff02::1:2; relay: `-A1 -l <localIp> <serverIp>`.
 */
export function perfdhcp6Args(r: Perfdhcp6Run): string[] {
  const args = [
    '-6',
    ...loadArgs(r),
    '-b',
    `duid=${duidLl(r.macBase)}`,
    '-b',
    `mac=${r.macBase}`,
    '-R',
    String(r.clients),
  ];
  if (r.timestamps === true) args.push('-x', 't');
  if (r.mode === 'direct') args.push('-l', r.ifname);
  else args.push('-A', '1', '-l', r.localIp, r.serverIp);
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

/**
 * The final report of a DHCPv4 or DHCPv6 run. For -6 the legs are SOLICIT-ADVERTISE and
 * REQUEST-REPLY; they land in `discover`/`request` and `offerDelaysMs`/`ackDelaysMs`.
 */
export function parsePerfdhcp(out: string): PerfdhcpReport {
  const rate = /^Rate: ([\d.]+) 4-way exchanges\/second/m.exec(out);
  const v6 = out.includes('***Statistics for: SOLICIT-ADVERTISE***');
  const [first, second] = v6 ? ['SOLICIT-ADVERTISE', 'REQUEST-REPLY'] : ['DISCOVER-OFFER', 'REQUEST-ACK'];
  return {
    rate: rate === null ? undefined : Number(rate[1]),
    discover: exchange(out, first),
    request: exchange(out, second),
    offerDelaysMs: timestamps(out, first),
    ackDelaysMs: timestamps(out, second),
  };
}
