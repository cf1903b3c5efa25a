/**
 * What radvd says on stderr, read line by line: the only account it gives of what it sent and
 * answered (radvd exports no counters). Pure: no I/O, no clock.
 *
 * radvd 2.19 run with `-d 5 -m stderr_clean` (radvdArgs) writes one message per line, with no
 * timestamp and no priority. The lines metalboot acts on, with radvd's debug level:
 *
 *   sending RA to ff02::1 on eth0 (fe80::1), 2 options (using 24/1210 bytes)   5  send.c
 *   sendmsg: Network is unreachable                                            (after a failed send)
 *   eth0 received RS from: fe80::5054:ff:fe12:3401                             3  process.c
 *   eth0 processed an RS                                                       2  (an RS that passed the checks, answered)
 *   eth0 received RA from: fe80::2 [(myself)]                                  3
 *   our AdvManagedFlag on eth0 doesn't agree with fe80::2                      (RFC 4861 §6.2.7 consistency check)
 *   eth0 is ready                                                              4  interface.c (link-local address, joined ff02::2)
 *   not sending RA for eth0, interface is not ready                            3
 *   radvd PID is 1234                                                          3  (the pidfile is written)
 *   can't create socket(AF_INET6): Operation not permitted                     (no CAP_NET_RAW; radvd exits 1)
 *
 * "sending RA" is written before the send; a "sendmsg:" line right after it means that one
 * failed. RadvdLogReader holds each send back until the next line says which.
 */

export type RadvdLine =
  | { readonly kind: 'sent'; readonly to: string; readonly iface: string; readonly multicast: boolean }
  | { readonly kind: 'send-failed'; readonly to: string | undefined; readonly error: string }
  | { readonly kind: 'solicitation'; readonly iface: string; readonly from: string }
  | { readonly kind: 'solicitation-answered'; readonly iface: string }
  | { readonly kind: 'own-advertisement'; readonly iface: string }
  | { readonly kind: 'foreign-advertisement'; readonly iface: string; readonly from: string }
  /** Another router advertises a value other than ours (AdvManagedFlag, AdvOtherConfigFlag, …). */
  | { readonly kind: 'disagreement'; readonly field: string; readonly iface: string; readonly from: string }
  | { readonly kind: 'interface-ready'; readonly iface: string }
  | { readonly kind: 'interface-not-ready'; readonly iface: string }
  | { readonly kind: 'pid'; readonly pid: number }
  | { readonly kind: 'started'; readonly version: string }
  | { readonly kind: 'no-raw-socket'; readonly text: string }
  /** Routine debug output (poll timeouts, timers, packets received): logged at trace. */
  | { readonly kind: 'chatter'; readonly text: string }
  | { readonly kind: 'other'; readonly text: string };

const PATTERNS: readonly [RegExp, (m: RegExpExecArray) => RadvdLine][] = [
  [
    /^sending RA to (\S+) on (\S+) \(/,
    (m) => ({ kind: 'sent', to: m[1]!, iface: m[2]!, multicast: /^ff/i.test(m[1]!) }),
  ],
  [/^sendmsg: (.*)$/, (m) => ({ kind: 'send-failed', to: undefined, error: m[1]! })],
  [/^(\S+) received RS from: (\S+)$/, (m) => ({ kind: 'solicitation', iface: m[1]!, from: m[2]! })],
  [/^(\S+) processed an RS$/, (m) => ({ kind: 'solicitation-answered', iface: m[1]! })],
  [/^(\S+) received RA from: \S+ \(myself\)$/, (m) => ({ kind: 'own-advertisement', iface: m[1]! })],
  [/^(\S+) received RA from: (\S+)$/, (m) => ({ kind: 'foreign-advertisement', iface: m[1]!, from: m[2]! })],
  [
    /^our (\w+) on (\S+) doesn't agree with (\S+)$/,
    (m) => ({ kind: 'disagreement', field: m[1]!, iface: m[2]!, from: m[3]! }),
  ],
  [/^(\S+) is ready$/, (m) => ({ kind: 'interface-ready', iface: m[1]! })],
  [/^not sending RA for (\S+), interface is not ready$/, (m) => ({ kind: 'interface-not-ready', iface: m[1]! })],
  [/^radvd PID is (\d+)$/, (m) => ({ kind: 'pid', pid: Number(m[1]) })],
  [/^version (\S+) started$/, (m) => ({ kind: 'started', version: m[1]! })],
  [
    /^(can't create socket\(AF_INET6\)|open_icmpv6_socket): Operation not permitted$/,
    (m) => ({ kind: 'no-raw-socket', text: m[0] }),
  ],
];

/** Debug output that says nothing an operator needs (radvd's levels 1, 4 and 5, and expected warnings). */
const CHATTER: readonly RegExp[] = [
  /^polling for /,
  /^no iface is next/,
  /^timer_handler called for /,
  /^\S+ next scheduled RA in /,
  /^\S+ recvmsg len=/,
  /^\S+ received a packet$/,
  // Router solicitations and advertisements of the host's other interfaces: radvd ignores them.
  /^\S+ received icmpv6 RS\/RA packet on an unknown interface with index \d+$/,
  /^processed RA on /,
  /^poll returned early/,
  /^\S+ (is up|is running|supports multicast|mtu:|hardware type:|hardware address:|link layer token length:|prefix length:|linklocal address:|address:)/,
  /^\S+ if_index changed from /,
  /^netlink: /,
  /^ioctl\(SIOCGIFFLAGS\) succeeded on /,
  /^\S+ interface definition ok$/,
  /^config file, .*, syntax ok$/,
  /^(opened|locked|validated) pid file/,
  /^wrote pid \d+ to pid file/,
  /^radvd (startup|privsep) PID is /,
  /^initializing privsep$/,
  /^Freeing Interfaces$/,
  /^freeing interface /,
  // metalboot's advertisements make no host route through it: forwarding is not needed.
  /^IPv6 forwarding (setting is|seems to be disabled|on interface seems to be disabled)/,
  /^\S+: rate limiting RA's/,
  /^stopping all adverts on /,
  /^sending stop adverts$/,
  /^removing .*\.pid$/,
  /^returning from radvd main$/,
  /^Exiting, privsep_read_loop /,
  // A bug of radvd 2.19's log_close() with stderr_clean, at exit.
  /^radvd \(\d+\): unknown logging method: \d+$/,
];

/** One line of radvd's stderr. Pure. */
export function classifyRadvdLine(line: string): RadvdLine {
  const text = line.trim();
  for (const [re, make] of PATTERNS) {
    const m = re.exec(text);
    if (m !== null) return make(m);
  }
  if (CHATTER.some((re) => re.test(text))) return { kind: 'chatter', text };
  return { kind: 'other', text };
}

/**
 * Classifies radvd's lines in order, holding each "sending RA" back until the next line: a
 * "sendmsg:" line right after it turns it into `send-failed` (with its destination); any other
 * line, or end(), lets it through as `sent`.
 */
export class RadvdLogReader {
  #pending: Extract<RadvdLine, { kind: 'sent' }> | undefined;

  read(line: string): RadvdLine[] {
    const l = classifyRadvdLine(line);
    const held = this.#pending;
    this.#pending = undefined;
    if (l.kind === 'send-failed') return [{ ...l, to: held?.to }];
    const out: RadvdLine[] = held === undefined ? [] : [held];
    if (l.kind === 'sent') this.#pending = l;
    else out.push(l);
    return out;
  }

  /** The end of radvd's stderr: a send still held back went out. */
  end(): RadvdLine[] {
    const held = this.#pending;
    this.#pending = undefined;
    return held === undefined ? [] : [held];
  }
}
