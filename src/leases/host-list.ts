/**
 * Static host entries: `MAC,IP[,hostname]`, where IP is an IPv4 address, an IPv6 address
 * (bracketed as dnsmasq writes it, or bare), or both (`MAC,10.0.0.5,[fd00::5],name`). The flag
 * form separates entries with `;` (the DHCP Hosts format of the provisioner form); the file form
 * has one per line with `#` comments, which also reads a dnsmasq dhcp-hostsfile of that shape
 * unchanged.
 */
import { parseMac, type Mac } from '../net/mac.js';
import { parseIpv4, type Ipv4 } from '../net/ipv4.js';
import { parseIpv6, type Ipv6 } from '../net/ipv6.js';

export interface StaticHost {
  readonly mac: Mac;
  /** The DHCPv4 address; undefined for an IPv6-only entry. */
  readonly ip: Ipv4 | undefined;
  /** The DHCPv6 address, when the entry has one. */
  readonly ip6?: Ipv6;
  readonly hostname: string | undefined;
}

export type HostParse = { ok: true; host: StaticHost } | { ok: false; error: string };

const HOSTNAME = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

export function parseHostEntry(entry: string): HostParse {
  const fields = entry.split(',').map((f) => f.trim());
  if (fields.length < 2 || fields.length > 4)
    return { ok: false, error: `"${entry}" is not MAC,IP[,hostname] (IP: IPv4, IPv6 or both)` };
  const mac = parseMac(fields[0]!);
  if (mac === undefined) return { ok: false, error: `"${fields[0]}" is not a MAC address` };
  let ip: Ipv4 | undefined;
  let ip6: Ipv6 | undefined;
  let i = 1;
  for (; i < fields.length; i++) {
    const f = fields[i]!;
    const v4 = parseIpv4(f);
    const v6 = v4 === undefined ? parseIpv6(f.startsWith('[') && f.endsWith(']') ? f.slice(1, -1) : f) : undefined;
    if (v4 === undefined && v6 === undefined) break;
    if ((v4 !== undefined && ip !== undefined) || (v6 !== undefined && ip6 !== undefined))
      return { ok: false, error: `"${entry}" has two addresses of one family` };
    if (v4 !== undefined) ip = v4;
    else ip6 = v6;
  }
  if (ip === undefined && ip6 === undefined)
    return { ok: false, error: `"${fields[1]}" is not an IPv4 or IPv6 address` };
  if (i < fields.length - 1) return { ok: false, error: `"${fields[i]}" is not an IPv4 or IPv6 address` };
  const hostname = fields[i] === undefined || fields[i] === '' ? undefined : fields[i];
  if (hostname !== undefined && !HOSTNAME.test(hostname))
    return { ok: false, error: `"${hostname}" is not a valid hostname` };
  return { ok: true, host: ip6 === undefined ? { mac, ip, hostname } : { mac, ip, ip6, hostname } };
}

/** Splits the `MAC,IP;MAC,IP` flag form into entries (empty entries ignored). */
export function splitHostList(text: string): string[] {
  return text
    .split(';')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** Splits a hosts file into `{line, entry}` pairs, dropping blank lines and `#` comments. */
export function splitHostsFile(text: string): { line: number; entry: string }[] {
  const out: { line: number; entry: string }[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const entry = raw.replace(/#.*/, '').trim();
    if (entry !== '') out.push({ line: i + 1, entry });
  });
  return out;
}
