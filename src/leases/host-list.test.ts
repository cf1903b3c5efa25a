import { describe, expect, it } from 'vitest';
import { parseHostEntry } from './host-list.js';
import { formatIpv4 } from '../net/ipv4.js';
import { formatIpv6 } from '../net/ipv6.js';
import { staticToHost } from './static-hosts.js';

const ok = (entry: string) => {
  const r = parseHostEntry(entry);
  if (!r.ok) throw new Error(r.error);
  return r.host;
};

describe('static host entries with IPv6', () => {
  it('reads IPv4, IPv6 (bare or bracketed as dnsmasq writes it) or both, then the hostname', () => {
    const both = ok('52:54:00:00:00:01,10.0.0.5,[fd00::5],n1');
    expect([formatIpv4(both.ip!), formatIpv6(both.ip6!), both.hostname]).toEqual(['10.0.0.5', 'fd00::5', 'n1']);
    const only6 = ok('52:54:00:00:00:02,fd00::6');
    expect(only6.ip).toBeUndefined();
    expect(formatIpv6(only6.ip6!)).toBe('fd00::6');
    expect(ok('52:54:00:00:00:03,10.0.0.7').ip6).toBeUndefined();
  });

  it('refuses two addresses of one family, junk between, and no address at all', () => {
    expect(parseHostEntry('52:54:00:00:00:01,fd00::5,fd00::6')).toEqual({
      ok: false,
      error: '"52:54:00:00:00:01,fd00::5,fd00::6" has two addresses of one family',
    });
    expect(parseHostEntry('52:54:00:00:00:01,10.0.0.5,x,fd00::5')).toEqual({
      ok: false,
      error: '"x" is not an IPv4 or IPv6 address',
    });
    expect(parseHostEntry('52:54:00:00:00:01,n1')).toEqual({ ok: false, error: '"n1" is not an IPv4 or IPv6 address' });
  });

  it('gives an IPv6-only entry a DHCPv6 lease and says why it has no IPv4 one', () => {
    const h = staticToHost(ok('52:54:00:00:00:02,[fd00::6],n2'), 'hosts.txt:3', {
      prefix: 24,
      gateway: undefined,
      dns: [],
      ntp: [],
      v6: { prefix: 64, dns: [], ntp: [] },
    });
    expect(h.lease).toBeUndefined();
    expect(h.problem).toBe('static entry hosts.txt:3 has no IPv4 address');
    expect(h.lease6).toMatchObject({ prefix: 64, hostname: 'n2' });
  });
});
