/**
 * Static host entries: `MAC,IP[,hostname]`. The flag form separates entries with `;`
 * (the DHCP Hosts format of the provisioner form); the file form has one per line with `#`
 * comments, which also reads a dnsmasq dhcp-hostsfile of that shape unchanged.
 */
import { parseMac, type Mac } from '../net/mac.js';
import { parseIpv4, type Ipv4 } from '../net/ipv4.js';

export interface StaticHost {
  readonly mac: Mac;
  readonly ip: Ipv4;
  readonly hostname: string | undefined;
}

export type HostParse = { ok: true; host: StaticHost } | { ok: false; error: string };

const HOSTNAME = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

export function parseHostEntry(entry: string): HostParse {
  const fields = entry.split(',').map((f) => f.trim());
  if (fields.length < 2 || fields.length > 3) return { ok: false, error: `"${entry}" is not MAC,IP[,hostname]` };
  const mac = parseMac(fields[0]!);
  if (mac === undefined) return { ok: false, error: `"${fields[0]}" is not a MAC address` };
  const ip = parseIpv4(fields[1]!);
  if (ip === undefined) return { ok: false, error: `"${fields[1]}" is not an IPv4 address` };
  const hostname = fields[2] === undefined || fields[2] === '' ? undefined : fields[2];
  if (hostname !== undefined && !HOSTNAME.test(hostname))
    return { ok: false, error: `"${hostname}" is not a valid hostname` };
  return { ok: true, host: { mac, ip, hostname } };
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
