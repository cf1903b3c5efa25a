/**
 * IP addresses as text, in one canonical form so that two spellings of one address compare
 * equal: IPv4 as a dotted quad, IPv6 as RFC 5952 prints it, and an IPv4-mapped IPv6 address
 * (`::ffff:192.0.2.10`, what a dual-stack socket reports for an IPv4 peer) as the IPv4 address.
 */
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

/** The canonical form of an IP literal (brackets allowed around IPv6); undefined for anything else. */
export function canonicalIp(text: string): string | undefined {
  const t = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  if (isIP(t) === 0) return undefined;
  return ipaddr.process(t).toString();
}

/** Whether a canonical IP is a loopback address (127.0.0.0/8, ::1). */
export function isLoopbackIp(canonical: string): boolean {
  return ipaddr.isValid(canonical) && ipaddr.parse(canonical).range() === 'loopback';
}
