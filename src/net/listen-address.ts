import { parseIpv4 } from './ipv4.js';
import { formatIpv6, parseIpv6 } from './ipv6.js';

/** `ADDR:PORT` as used by every `--*-listen` flag. `host` is an IPv4 or (unbracketed) IPv6 literal. */
export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/**
 * Parses `0.0.0.0:67`, `:8080` (all IPv4 addresses), `10.0.0.1:69`, `[::]:547` (all IPv6
 * addresses, and IPv4 too where the socket is dual-stack) or `[fd00::1]:69`. Returns undefined
 * if invalid. An IPv6 host is kept in its RFC 5952 form, without brackets.
 */
export function parseListenAddress(text: string): ListenAddress | undefined {
  const i = text.lastIndexOf(':');
  if (i < 0) return undefined;
  const hostText = text.slice(0, i);
  const portText = text.slice(i + 1);
  if (!/^\d{1,5}$/.test(portText)) return undefined;
  const port = Number(portText);
  if (port > 65535) return undefined;
  if (hostText.startsWith('[') && hostText.endsWith(']')) {
    const v6 = parseIpv6(hostText.slice(1, -1));
    return v6 === undefined ? undefined : { host: formatIpv6(v6), port };
  }
  const host = hostText === '' ? '0.0.0.0' : hostText;
  if (parseIpv4(host) === undefined) return undefined;
  return { host, port };
}

export function isIpv6Host(host: string): boolean {
  return host.includes(':');
}

export function formatListenAddress(a: ListenAddress): string {
  return isIpv6Host(a.host) ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/**
 * An advertise URL whose port is 0 with the port its listener is bound to: `--http-listen :0`
 * makes the default `http://<ip>:0` name whatever port the listener got. Any other URL
 * unchanged. Pure.
 */
export function withBoundPort(url: string, port: number): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return url;
  }
  if (u.port !== '0') return url;
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/(?:[^@/?#]*@)?(?:\[[^\]]*\]|[^:/?#]*)):0+(?=[/?#]|$)/i, `$1:${port}`);
}
