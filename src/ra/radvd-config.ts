/**
 * radvd's configuration (radvd.conf(5), radvd 2.19) and command line, rendered from values.
 * Pure: no I/O.
 *
 * What metalboot sends today (ANSWER_ONLY, docs/decisions/0011-router-advertisement.md) is an
 * advertisement a host acts on in no way but one: it answers iPXE's router solicitation, so
 * iPXE's "Configuring" step ends at once instead of waiting ~15 s on an IPv4-only network.
 *
 *   Router Lifetime 0        "I am not a default router" (RFC 4861 §4.2, §6.3.4): no route
 *   no Prefix Information    no address, no on-link prefix
 *   M = 0, O = 0             no DHCPv6: iPXE ends its IPv6 configuration there
 *   Cur Hop Limit 0, Reachable Time 0, Retrans Timer 0, no MTU option: "unspecified"
 *   Source Link-Layer Address option (radvd's default): saves the host a neighbour solicitation
 *
 * The same renderer takes prefixes, a router lifetime and the M and O flags, for IPv6
 * provisioning later. Timing is RFC 4861 §6.2.1's (MaxRtrAdvInterval 4–1800 s, default 600;
 * MinRtrAdvInterval 0.33 × Max, at least 3 s); radvd itself keeps §6.2.4's first three
 * advertisements at most 16 s apart and §6.2.6's answers to solicitations (unicast, RFC 7772).
 */
import ipaddr from 'ipaddr.js';
import { MetalbootError } from '../base/errors.js';

export interface RaPrefix {
  /** An IPv6 prefix, `2001:db8:1::/64`. */
  readonly prefix: string;
  readonly onLink: boolean;
  /** SLAAC (the A flag). */
  readonly autonomous: boolean;
  readonly validLifetimeSeconds: number;
  readonly preferredLifetimeSeconds: number;
}

/** What the advertisements say. */
export interface RaContent {
  /** 0: not a default router. Otherwise between MaxRtrAdvInterval and 9000 (RFC 4861 §6.2.1). */
  readonly routerLifetimeSeconds: number;
  /** M: addresses from DHCPv6. */
  readonly managed: boolean;
  /** O: other configuration from DHCPv6. */
  readonly other: boolean;
  readonly prefixes: readonly RaPrefix[];
}

/** Answer the solicitation, change nothing on any host. */
export const ANSWER_ONLY: RaContent = Object.freeze({
  routerLifetimeSeconds: 0,
  managed: false,
  other: false,
  prefixes: Object.freeze([]),
});

export interface RadvdInterfaceConfig extends RaContent {
  readonly interface: string;
  /** MaxRtrAdvInterval, 4–1800 s. */
  readonly maxIntervalSeconds: number;
}

/** RFC 4861 §6.2.1's default MaxRtrAdvInterval. */
export const DEFAULT_MAX_INTERVAL_SECONDS = 600;
export const MIN_MAX_INTERVAL_SECONDS = 4;
export const MAX_MAX_INTERVAL_SECONDS = 1800;
/** radvd refuses a MinRtrAdvInterval under 3 s (RFC 4861's lower bound). */
const MIN_MIN_INTERVAL_SECONDS = 3;
const MAX_ROUTER_LIFETIME_SECONDS = 9000;

/**
 * Words radvd's scanner reads as keywords (scanner.l of 2.19): an interface named one of them
 * would not parse. radvd takes names unquoted, so such names are refused, not quoted.
 */
const RADVD_KEYWORDS: ReadonlySet<string> = new Set(
  `interface prefix route RDNSS DNSSL clients lowpanco abro AdvRASrcAddress IgnoreIfMissing AdvSendAdvert
  MaxRtrAdvInterval MinRtrAdvInterval AdvManagedFlag AdvOtherConfigFlag AdvLinkMTU AdvRAMTU AdvReachableTime
  AdvRetransTimer AdvCurHopLimit AdvDefaultLifetime AdvDefaultPreference AdvSourceLLAddress AdvOnLink
  AdvAutonomous AdvValidLifetime AdvPreferredLifetime DeprecatePrefix DecrementLifetimes AdvRouterAddr
  AdvHomeAgentFlag AdvIntervalOpt AdvHomeAgentInfo UnicastOnly AdvRASolicitedUnicast Base6Interface
  Base6to4Interface HomeAgentPreference HomeAgentLifetime AdvRoutePreference AdvRouteLifetime RemoveRoute
  AdvRDNSSPreference AdvRDNSSOpen AdvRDNSSLifetime FlushRDNSS AdvDNSSLLifetime FlushDNSSL MinDelayBetweenRAs
  AdvMobRtrSupportFlag AdvContextLength AdvContextCompressionFlag AdvContextID AdvLifeTime AdvContextPrefix
  AdvVersionLow AdvVersionHigh AdvValidLifeTime Adv6LBRaddress infinity on off low medium high`.split(/\s+/),
);

/** Linux interface names radvd reads as one word: no separators, quotes or braces; not a number. */
const SAFE_INTERFACE = /^[A-Za-z0-9_.-]{1,15}$/;

/** Why radvd could not take this interface name, or undefined when it can. */
export function interfaceNameProblem(name: string): string | undefined {
  if (!SAFE_INTERFACE.test(name))
    return `interface name ${JSON.stringify(name)} is not 1-15 of A-Z a-z 0-9 _ . - (radvd reads names unquoted)`;
  if (/^[0-9.]+$/.test(name)) return `interface name ${JSON.stringify(name)} would read as a number in radvd.conf`;
  if (RADVD_KEYWORDS.has(name)) return `interface name ${JSON.stringify(name)} is a radvd.conf keyword`;
  return undefined;
}

/** MinRtrAdvInterval for a MaxRtrAdvInterval: RFC 4861's 0.33 × Max, at least radvd's 3 s. */
export function minIntervalFor(maxIntervalSeconds: number): number {
  return Math.max(MIN_MIN_INTERVAL_SECONDS, Math.round(0.33 * maxIntervalSeconds * 100) / 100);
}

function invalid(message: string): never {
  throw new MetalbootError('RA_ERR_CONFIG', message);
}

function canonicalPrefix(p: string): string {
  let parsed: [ipaddr.IPv6, number];
  try {
    const r = ipaddr.parseCIDR(p);
    if (r[0].kind() !== 'ipv6') invalid(`prefix ${JSON.stringify(p)} is not IPv6`);
    parsed = r as [ipaddr.IPv6, number];
  } catch (err) {
    if (err instanceof MetalbootError) throw err;
    invalid(`prefix ${JSON.stringify(p)} is not an IPv6 prefix (ADDRESS/LENGTH)`);
  }
  const [addr, len] = parsed;
  const network = ipaddr.IPv6.networkAddressFromCIDR(`${addr.toString()}/${len}`);
  return `${network.toString()}/${len}`;
}

function u32(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) invalid(`${name} ${v} is not a whole number of seconds`);
  return v;
}

/**
 * radvd.conf for one interface. Throws RA_ERR_CONFIG for values radvd would refuse or misread
 * (radvd does not exit on those: it skips the interface and sends nothing).
 */
export function renderRadvdConfig(c: RadvdInterfaceConfig): string {
  const nameProblem = interfaceNameProblem(c.interface);
  if (nameProblem !== undefined) invalid(nameProblem);
  const max = c.maxIntervalSeconds;
  if (!Number.isInteger(max) || max < MIN_MAX_INTERVAL_SECONDS || max > MAX_MAX_INTERVAL_SECONDS)
    invalid(`MaxRtrAdvInterval ${max} is not between ${MIN_MAX_INTERVAL_SECONDS} and ${MAX_MAX_INTERVAL_SECONDS} s`);
  const lifetime = c.routerLifetimeSeconds;
  if (!Number.isInteger(lifetime) || (lifetime !== 0 && (lifetime < max || lifetime > MAX_ROUTER_LIFETIME_SECONDS)))
    invalid(`router lifetime ${lifetime} is neither 0 nor between MaxRtrAdvInterval (${max}) and 9000 s`);
  const onOff = (b: boolean) => (b ? 'on' : 'off');
  const lines = [
    '# Written by metalboot; rewritten at every start. See docs/decisions/0011-router-advertisement.md.',
    `interface ${c.interface}`,
    '{',
    '    AdvSendAdvert on;',
    `    MaxRtrAdvInterval ${max};`,
    `    MinRtrAdvInterval ${minIntervalFor(max)};`,
    `    AdvDefaultLifetime ${lifetime};`,
    // RFC 4191 §2.2: the preference must be medium when the lifetime is 0.
    '    AdvDefaultPreference medium;',
    `    AdvManagedFlag ${onOff(c.managed)};`,
    `    AdvOtherConfigFlag ${onOff(c.other)};`,
    // Unspecified: hosts keep their own values (radvd would also write these to our sysctls).
    '    AdvCurHopLimit 0;',
    '    AdvReachableTime 0;',
    '    AdvRetransTimer 0;',
    '    AdvLinkMTU 0;',
    '    AdvSourceLLAddress on;',
    // RFC 7772: answer a solicitation from an address at once, to that address.
    '    AdvRASolicitedUnicast on;',
  ];
  const seen = new Set<string>();
  c.prefixes.forEach((p, i) => {
    const prefix = canonicalPrefix(p.prefix);
    if (seen.has(prefix)) invalid(`prefix ${prefix} is listed twice`);
    seen.add(prefix);
    const valid = u32(`prefixes[${i}] valid lifetime`, p.validLifetimeSeconds);
    const preferred = u32(`prefixes[${i}] preferred lifetime`, p.preferredLifetimeSeconds);
    if (preferred > valid) invalid(`prefix ${prefix}: preferred lifetime ${preferred} is over the valid ${valid}`);
    lines.push(
      '',
      `    prefix ${prefix}`,
      '    {',
      `        AdvOnLink ${onOff(p.onLink)};`,
      `        AdvAutonomous ${onOff(p.autonomous)};`,
      `        AdvValidLifetime ${valid};`,
      `        AdvPreferredLifetime ${preferred};`,
      '    };',
    );
  });
  lines.push('};', '');
  return lines.join('\n');
}

/**
 * radvd's arguments: in the foreground (-n), its own configuration and pidfile, every message
 * (-d 5: the "sending RA" and "received RS" lines metalboot counts are debug level 5 and 3) to
 * stderr without timestamps (stderr_clean). A radvd that logs on every event also dies on its
 * next event once metalboot is gone (SIGPIPE on the pipe nobody reads), before it sends.
 */
export function radvdArgs(o: { readonly configPath: string; readonly pidPath: string }): string[] {
  return ['-n', '-d', '5', '-m', 'stderr_clean', '-C', o.configPath, '-p', o.pidPath];
}
