/**
 * Golden DHCPv6 packets captured from real clients, relays and servers (test/fixtures/dhcp6,
 * see its README): parse (header and every option, in wire order, as the capture's independent
 * annotations say, relayed messages included), generate (our encoding of the parsed message is
 * byte-identical: DHCPv6 has no padding or reordering to forgive), and read every option we have
 * an accessor for without a DecodeError. Then what each real client says about itself.
 */
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { decode6, encode6, type Dhcp6Message, type Dhcp6Option } from './codec.js';
import {
  OPT6,
  MSG6,
  findOption,
  hasRapidCommit,
  innerMessage,
  msg6Name,
  parseBootFileUrl,
  parseClientArch,
  parseClientLinkLayer,
  parseDnsServers,
  parseDomainList,
  parseDuid,
  parseElapsedTime,
  parseIaAddr,
  parseIaNa,
  parseIaPd,
  parseIaTa,
  parseNii,
  parseNtpServer,
  parseOro,
  parsePreference,
  parseStatus,
  parseUserClass,
  parseVendorClass,
  readOption,
  relayReply,
  unwrapRelays,
} from './options.js';
import { formatIpv6 } from '../net/ipv6.js';

interface Expectation {
  msgType: number;
  msgName: string;
  transactionId?: number;
  hopCount?: number;
  linkAddress?: string;
  peerAddress?: string;
  options: [number, string][];
  inner?: Expectation;
}

interface Fixture {
  name: string;
  direction: 'client' | 'server' | 'relay';
  hex: string;
  expect: Expectation;
}

const DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../test/fixtures/dhcp6');
const fixtures: Fixture[] = readdirSync(DIR)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => JSON.parse(readFileSync(path.join(DIR, f), 'utf8')) as Fixture);
const cases = fixtures.map((f) => [f.name, f] as const);
const byName = (name: string): Dhcp6Message => {
  const f = fixtures.find((x) => x.name === name);
  if (f === undefined) throw new Error(`no fixture ${name}`);
  return decode6(Buffer.from(f.hex, 'hex'));
};

/** The message as the fixture's expectation describes it, relayed messages decoded too. */
function describeMessage(msg: Dhcp6Message): Expectation {
  const options = msg.options.map((o): [number, string] => [o.code, Buffer.from(o.data).toString('hex')]);
  const name = msg6Name(msg.msgType).replaceAll('_', '-');
  const head =
    msg.kind === 'client'
      ? { msgType: msg.msgType, msgName: name, transactionId: msg.transactionId }
      : {
          msgType: msg.msgType,
          msgName: name,
          hopCount: msg.hopCount,
          linkAddress: formatIpv6(msg.linkAddress),
          peerAddress: formatIpv6(msg.peerAddress),
        };
  return msg.kind === 'relay' ? { ...head, options, inner: describeMessage(innerMessage(msg)) } : { ...head, options };
}

/** Every accessor that applies to an option of this code, run on it (and on what it contains). */
const PARSERS: Record<number, (data: Uint8Array) => unknown> = {
  [OPT6.CLIENTID]: parseDuid,
  [OPT6.SERVERID]: parseDuid,
  [OPT6.IA_NA]: parseIaNa,
  [OPT6.IA_TA]: parseIaTa,
  [OPT6.IA_PD]: parseIaPd,
  [OPT6.IAADDR]: parseIaAddr,
  [OPT6.ORO]: parseOro,
  [OPT6.PREFERENCE]: parsePreference,
  [OPT6.ELAPSED_TIME]: parseElapsedTime,
  [OPT6.STATUS_CODE]: parseStatus,
  [OPT6.USER_CLASS]: parseUserClass,
  [OPT6.VENDOR_CLASS]: parseVendorClass,
  [OPT6.DNS_SERVERS]: parseDnsServers,
  [OPT6.DOMAIN_LIST]: parseDomainList,
  [OPT6.NTP_SERVER]: parseNtpServer,
  [OPT6.BOOTFILE_URL]: parseBootFileUrl,
  [OPT6.CLIENT_ARCH_TYPE]: parseClientArch,
  [OPT6.NII]: parseNii,
  [OPT6.CLIENT_LINKLAYER_ADDR]: parseClientLinkLayer,
};

function parseAll(options: readonly Dhcp6Option[]): number {
  let n = 0;
  for (const o of options) {
    const parse = PARSERS[o.code];
    if (parse === undefined) continue;
    const v = parse(o.data);
    n++;
    if (typeof v === 'object' && v !== null && 'options' in v) n += parseAll((v as { options: Dhcp6Option[] }).options);
  }
  return n;
}

describe('golden DHCPv6 packets', () => {
  it('has client, relay and server fixtures', () => {
    expect(new Set(fixtures.map((f) => f.direction))).toEqual(new Set(['client', 'relay', 'server']));
  });

  it.each(cases)('%s parses as captured', (_n, f) => {
    expect(describeMessage(decode6(Buffer.from(f.hex, 'hex')))).toEqual(f.expect);
  });

  it.each(cases)('%s generates the same bytes', (_n, f) => {
    const original = Buffer.from(f.hex, 'hex');
    const msg = decode6(original);
    expect(encode6(msg).toString('hex')).toBe(f.hex);
    if (msg.kind === 'relay')
      expect(encode6(innerMessage(msg))).toEqual(Buffer.from(findOption(msg.options, OPT6.RELAY_MSG)!));
  });

  it.each(cases)('%s: every option with an accessor reads without error', (_n, f) => {
    const msg = unwrapRelays(decode6(Buffer.from(f.hex, 'hex')));
    const n = parseAll(msg.message.options) + msg.relays.reduce((k, r) => k + parseAll(r.options), 0);
    expect(n).toBeGreaterThan(0);
  });
});

describe('what real clients, relays and servers send', () => {
  const duidOf = (name: string, code: number = OPT6.CLIENTID) =>
    readOption(unwrapRelays(byName(name)).message.options, code, parseDuid);

  it('dhclient -6 identifies itself with DUID-LLT, but with DUID-LL when stateless (-S)', () => {
    expect(duidOf('dhclient-solicit')).toMatchObject({ type: 'llt', hwType: 1 });
    expect(duidOf('dhclient-information-request')).toMatchObject({ type: 'll', hwType: 1 });
    const ll = duidOf('dhclient-information-request');
    expect(ll?.type === 'll' && Buffer.from(ll.linkLayer).toString('hex')).toBe('020000776002');
  });

  it('perfdhcp sends a DUID-LLT of its own template MAC 00:0c:01:02:03:04, not the -b mac= one', () => {
    const d = duidOf('perfdhcp-solicit');
    expect(d?.type === 'llt' && Buffer.from(d.linkLayer).toString('hex')).toBe('000c01020304');
  });

  it('dnsmasq advertises IA_NA with one IA Address from its range, T1 half the lease, and Success', () => {
    const adv = unwrapRelays(byName('dnsmasq-dhcrelay-relay-repl-advertise')).message;
    expect(adv.msgType).toBe(MSG6.ADVERTISE);
    const ia = readOption(adv.options, OPT6.IA_NA, parseIaNa)!;
    expect([ia.t1, ia.t2]).toEqual([60, 105]);
    const addr = readOption(ia.options, OPT6.IAADDR, parseIaAddr)!;
    expect(formatIpv6(addr.address)).toMatch(/^fd00:78::1[0-9a-f]{2}$/);
    expect([addr.preferred, addr.valid]).toEqual([120, 120]);
    expect(readOption(adv.options, OPT6.STATUS_CODE, parseStatus)).toEqual({ code: 0, message: 'success' });
    expect(readOption(adv.options, OPT6.DOMAIN_LIST, parseDomainList)).toEqual(['lab.example']);
    expect(readOption(adv.options, OPT6.DNS_SERVERS, parseDnsServers)?.map(formatIpv6)).toEqual(['fd00:77::1']);
    expect(readOption(adv.options, OPT6.PREFERENCE, parsePreference)).toBe(255);
    expect(duidOf('dnsmasq-dhcrelay-relay-repl-advertise', OPT6.SERVERID)).toMatchObject({ type: 'llt' });
  });

  it('dhcrelay forwards from the client link with hop-count 0 and adds neither Interface-Id nor option 79', () => {
    const fwd = byName('dhcrelay-relay-forw-solicit');
    expect(fwd).toMatchObject({ kind: 'relay', msgType: MSG6.RELAY_FORW, hopCount: 0 });
    if (fwd.kind !== 'relay') return;
    expect(formatIpv6(fwd.linkAddress)).toBe('fd00:78::1');
    expect(formatIpv6(fwd.peerAddress)).toMatch(/^fe80::/);
    expect(fwd.options.map((o) => o.code)).toEqual([OPT6.RELAY_MSG]);
    expect(unwrapRelays(fwd).message.msgType).toBe(MSG6.SOLICIT);
  });

  it('dhcrelay -I adds an Interface-Id, dnsmasq copies it back, and relayReply builds the same RELAY-REPL', () => {
    const fwd = byName('dhcrelay-interface-id-relay-forw-request');
    const repl = byName('dnsmasq-dhcrelay-interface-id-relay-repl-reply');
    if (fwd.kind !== 'relay' || repl.kind !== 'relay') throw new Error('not relays');
    const id = findOption(fwd.options, OPT6.INTERFACE_ID);
    expect(id?.length).toBe(4);
    expect(findOption(repl.options, OPT6.INTERFACE_ID)).toEqual(id);
    const { relays } = unwrapRelays(fwd);
    const reply = unwrapRelays(repl).message;
    // Same header and options as dnsmasq's, option for option (dnsmasq also puts 18 before 9).
    expect(encode6(relayReply(relays, reply))).toEqual(encode6(repl));
  });

  it('kea-dhcp6 identifies itself with the configured DUID-LL', () => {
    expect(duidOf('kea-advertise', OPT6.SERVERID)).toMatchObject({ type: 'll', hwType: 1 });
  });

  it('no client sends Rapid Commit', () => {
    for (const f of fixtures.filter((x) => x.direction === 'client'))
      expect(hasRapidCommit(unwrapRelays(decode6(Buffer.from(f.hex, 'hex'))).message.options)).toBe(false);
  });

  it('the Elapsed Time of a first Solicit is 0', () => {
    expect(
      readOption(unwrapRelays(byName('dhclient-solicit')).message.options, OPT6.ELAPSED_TIME, parseElapsedTime),
    ).toBe(0);
    expect(findOption(unwrapRelays(byName('perfdhcp-solicit')).message.options, OPT6.ELAPSED_TIME)).toEqual(
      Uint8Array.of(0, 0),
    );
  });
});
