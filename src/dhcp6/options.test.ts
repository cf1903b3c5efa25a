import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DecodeError, MetalbootError } from '../base/errors.js';
import { formatIpv6, parseIpv6, type Ipv6 } from '../net/ipv6.js';
import type { Dhcp6Option } from './codec.js';
import {
  MSG6,
  OPT6,
  STATUS6,
  bootFileParamOption,
  bootFileUrlOption,
  clientArchOption,
  clientLinkLayerOption,
  dnsServersOption,
  domainListOption,
  duidEn,
  duidLl,
  duidLlt,
  duidTime,
  elapsedTimeOption,
  findOption,
  findOptions,
  hasRapidCommit,
  iaAddrOption,
  iaNaOption,
  iaPdOption,
  iaTaOption,
  msg6Name,
  niiOption,
  ntpServerOption,
  oroOption,
  parseBootFileParams,
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
  preferenceOption,
  rapidCommitOption,
  readOption,
  statusOption,
  userClassOption,
  vendorClassIs,
  vendorClassOption,
} from './options.js';

const ip = (s: string): Ipv6 => parseIpv6(s)!;
const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replaceAll(' ', ''), 'hex'));
const MAC = hex('020000776001');

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(DecodeError);
    return (e as DecodeError).code;
  }
  return undefined;
}

function encodeError(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(MetalbootError);
    expect(e).not.toBeInstanceOf(DecodeError);
    return (e as MetalbootError).code;
  }
  return undefined;
}

describe('names', () => {
  it.each([
    [MSG6.SOLICIT, 'SOLICIT'],
    [MSG6.INFORMATION_REQUEST, 'INFORMATION_REQUEST'],
    [MSG6.RELAY_REPL, 'RELAY_REPL'],
    [99, 'type-99'],
  ])('msg6Name(%i) is %s', (n, name) => {
    expect(msg6Name(n)).toBe(name);
  });
});

describe('finding options', () => {
  const opts: Dhcp6Option[] = [
    { code: 3, data: hex('01') },
    { code: 8, data: hex('0005') },
    { code: 3, data: hex('02') },
  ];
  it('findOption gives the first, findOptions all in wire order, both undefined/empty when absent', () => {
    expect(findOption(opts, 3)).toEqual(hex('01'));
    expect(findOptions(opts, 3)).toEqual([hex('01'), hex('02')]);
    expect(findOption(opts, 1)).toBeUndefined();
    expect(findOptions(opts, 1)).toEqual([]);
  });
  it('readOption: undefined when absent, the value when well formed, DecodeError when malformed', () => {
    expect(readOption(opts, 8, parseElapsedTime)).toBe(5);
    expect(readOption(opts, 7, parsePreference)).toBeUndefined();
    expect(codeOf(() => readOption([{ code: 8, data: hex('00') }], 8, parseElapsedTime))).toBe(
      'DHCP6_ERR_OPTION_LENGTH',
    );
  });
});

describe('DUID', () => {
  it('builds DUID-LL, DUID-LLT and DUID-EN as RFC 8415 §11 draws them', () => {
    expect(Buffer.from(duidLl(MAC)).toString('hex')).toBe('00030001020000776001');
    expect(Buffer.from(duidLlt(MAC, 0x12345678)).toString('hex')).toBe('0001000112345678020000776001');
    expect(Buffer.from(duidEn(343, hex('abcd'))).toString('hex')).toBe('0002 00000157 abcd'.replaceAll(' ', ''));
  });

  it('counts DUID-LLT time from 2000-01-01 UTC', () => {
    expect(duidTime(Date.UTC(2000, 0, 1))).toBe(0);
    expect(duidTime(Date.UTC(2000, 0, 1, 0, 1))).toBe(60);
  });

  it.each([
    ['LLT', duidLlt(MAC, 99), { type: 'llt', hwType: 1, time: 99, linkLayer: MAC }],
    ['EN', duidEn(343, hex('0102')), { type: 'en', enterprise: 343, id: hex('0102') }],
    ['LL', duidLl(MAC, 6), { type: 'll', hwType: 6, linkLayer: MAC }],
    [
      'UUID',
      hex('0004 00112233445566778899aabbccddeeff'),
      { type: 'uuid', uuid: '00112233-4455-6677-8899-aabbccddeeff' },
    ],
    ['unknown type', hex('0009 ff'), { type: 'other', duidType: 9, data: hex('ff') }],
  ])('reads %s', (_n, bytes, want) => {
    expect(parseDuid(bytes)).toEqual(want);
  });

  it.each([
    ['one byte', hex('00')],
    ['131 bytes', new Uint8Array(131).fill(3)],
    ['LLT without an address', hex('0001 0001 00000000')],
    ['EN without an identifier', hex('0002 00000157')],
    ['LL without an address', hex('0003 0001')],
    ['UUID of 15 bytes', hex('0004 00112233445566778899aabbccddee')],
  ])('refuses %s', (_n, bytes) => {
    expect(codeOf(() => parseDuid(bytes))).toBe('DHCP6_ERR_OPTION_LENGTH');
  });

  it('refuses to build DUIDs with no wire form', () => {
    expect(encodeError(() => duidLl(new Uint8Array(0)))).toBe('DHCP6_ERR_ENCODE_INVALID');
    expect(encodeError(() => duidLl(new Uint8Array(127)))).toBe('DHCP6_ERR_ENCODE_INVALID');
    expect(encodeError(() => duidLlt(MAC, 2 ** 32))).toBe('DHCP6_ERR_ENCODE_INVALID');
    expect(encodeError(() => duidEn(-1, MAC))).toBe('DHCP6_ERR_ENCODE_INVALID');
  });
});

describe('IA_NA, IA_TA, IA_PD and IA Address', () => {
  it('nests an IA Address with a status in an IA_NA and reads it back', () => {
    const addr = iaAddrOption(ip('fd00:77::150'), 3600, 7200, [statusOption(STATUS6.Success, 'ok')]);
    const ia = iaNaOption(0x00776001, 1800, 2880, [addr]);
    expect(ia.code).toBe(OPT6.IA_NA);
    expect(Buffer.from(ia.data.subarray(0, 12)).toString('hex')).toBe('00776001 00000708 00000b40'.replaceAll(' ', ''));
    const back = parseIaNa(ia.data);
    expect([back.iaid, back.t1, back.t2]).toEqual([0x00776001, 1800, 2880]);
    const a = readOption(back.options, OPT6.IAADDR, parseIaAddr)!;
    expect([formatIpv6(a.address), a.preferred, a.valid]).toEqual(['fd00:77::150', 3600, 7200]);
    expect(readOption(a.options, OPT6.STATUS_CODE, parseStatus)).toEqual({ code: 0, message: 'ok' });
  });

  it('answers IA_TA and IA_PD with a status', () => {
    const ta = parseIaTa(iaTaOption(5, [statusOption(STATUS6.NoAddrsAvail)]).data);
    expect(ta.iaid).toBe(5);
    expect(readOption(ta.options, OPT6.STATUS_CODE, parseStatus)).toEqual({ code: 2, message: '' });
    const pd = parseIaPd(iaPdOption(6, 0, 0, [statusOption(STATUS6.NoPrefixAvail, 'no prefixes')]).data);
    expect(pd).toMatchObject({ iaid: 6, t1: 0, t2: 0 });
    expect(readOption(pd.options, OPT6.STATUS_CODE, parseStatus)?.code).toBe(6);
  });

  it.each([
    ['IA_NA of 11 bytes', () => parseIaNa(new Uint8Array(11)), 'DHCP6_ERR_OPTION_LENGTH'],
    ['IA_PD of 11 bytes', () => parseIaPd(new Uint8Array(11)), 'DHCP6_ERR_OPTION_LENGTH'],
    ['IA_TA of 3 bytes', () => parseIaTa(new Uint8Array(3)), 'DHCP6_ERR_OPTION_LENGTH'],
    ['IA Address of 23 bytes', () => parseIaAddr(new Uint8Array(23)), 'DHCP6_ERR_OPTION_LENGTH'],
    [
      'IA_NA with a truncated inner option',
      () => parseIaNa(hex(`${'00'.repeat(12)}00050018 00`)),
      'DHCP6_ERR_OPTION_TRUNCATED',
    ],
    ['IA_NA with trailing bytes', () => parseIaNa(hex(`${'00'.repeat(12)}0005`)), 'DHCP6_ERR_TRAILING_BYTES'],
  ])('refuses %s', (_n, f, code) => {
    expect(codeOf(f)).toBe(code);
  });
});

describe('small options', () => {
  it('Status Code: UTF-8 message', () => {
    const s = statusOption(STATUS6.NotOnLink, 'pas sur ce lien ✗');
    expect(parseStatus(s.data)).toEqual({ code: 4, message: 'pas sur ce lien ✗' });
    expect(codeOf(() => parseStatus(hex('00')))).toBe('DHCP6_ERR_OPTION_LENGTH');
  });

  it('ORO, Elapsed Time, Preference', () => {
    expect(parseOro(oroOption([23, 24, 59]).data)).toEqual([23, 24, 59]);
    expect(codeOf(() => parseOro(hex('001700')))).toBe('DHCP6_ERR_OPTION_LENGTH');
    expect(parseElapsedTime(elapsedTimeOption(0xffff).data)).toBe(0xffff);
    expect(parsePreference(preferenceOption(255).data)).toBe(255);
    expect(codeOf(() => parsePreference(hex('0001')))).toBe('DHCP6_ERR_OPTION_LENGTH');
  });

  it('Rapid Commit is empty', () => {
    expect(hasRapidCommit([rapidCommitOption()])).toBe(true);
    expect(hasRapidCommit([])).toBe(false);
    expect(codeOf(() => hasRapidCommit([{ code: OPT6.RAPID_COMMIT, data: hex('00') }]))).toBe(
      'DHCP6_ERR_OPTION_LENGTH',
    );
  });

  it('User Class: 2-byte-length items', () => {
    const o = userClassOption(['iPXE', '']);
    expect(Buffer.from(o.data).toString('hex')).toBe('000469505845 0000'.replaceAll(' ', ''));
    expect(parseUserClass(o.data)).toEqual(['iPXE', '']);
    expect(codeOf(() => parseUserClass(hex('0005 6950')))).toBe('DHCP6_ERR_OPTION_TRUNCATED');
    expect(codeOf(() => parseUserClass(hex('00')))).toBe('DHCP6_ERR_OPTION_TRUNCATED');
  });

  it('Vendor Class: enterprise and items; vendorClassIs looks at every item of every option', () => {
    const http = vendorClassOption(343, ['HTTPClient:Arch:00016:UNDI:003000']);
    expect(parseVendorClass(http.data)).toEqual({ enterprise: 343, items: ['HTTPClient:Arch:00016:UNDI:003000'] });
    const other = vendorClassOption(4491, ['docsis3.0']);
    expect(vendorClassIs([other, http], 'HTTPClient')).toBe(true);
    expect(vendorClassIs([other, http], 'PXEClient')).toBe(false);
    expect(vendorClassIs([], 'PXEClient')).toBe(false);
    expect(codeOf(() => parseVendorClass(hex('000001')))).toBe('DHCP6_ERR_OPTION_LENGTH');
    expect(codeOf(() => vendorClassIs([{ code: 16, data: hex('00000157 0009 50') }], 'P'))).toBe(
      'DHCP6_ERR_OPTION_TRUNCATED',
    );
  });

  it('Client Architecture, NII, Client Link-Layer Address', () => {
    expect(parseClientArch(clientArchOption([16, 7]).data)).toEqual([16, 7]);
    expect(codeOf(() => parseClientArch(hex('')))).toBe('DHCP6_ERR_OPTION_LENGTH');
    expect(codeOf(() => parseClientArch(hex('000700')))).toBe('DHCP6_ERR_OPTION_LENGTH');
    expect(parseNii(niiOption(1, 3, 10).data)).toEqual({ type: 1, major: 3, minor: 10 });
    expect(codeOf(() => parseNii(hex('0103')))).toBe('DHCP6_ERR_OPTION_LENGTH');
    expect(parseClientLinkLayer(clientLinkLayerOption(1, MAC).data)).toEqual({ hwType: 1, address: MAC });
    expect(codeOf(() => parseClientLinkLayer(hex('0001')))).toBe('DHCP6_ERR_OPTION_LENGTH');
  });

  it('Boot File URL and Boot File Parameters', () => {
    const url = 'http://[fd00:77::1]:8080/boot.ipxe';
    expect(parseBootFileUrl(bootFileUrlOption(url).data)).toBe(url);
    expect(codeOf(() => parseBootFileUrl(hex('')))).toBe('DHCP6_ERR_OPTION_LENGTH');
    expect(encodeError(() => bootFileUrlOption(''))).toBe('DHCP6_ERR_ENCODE_INVALID');
    const p = bootFileParamOption(['root=/dev/ram0', 'console=ttyS0']);
    expect(p.code).toBe(OPT6.BOOTFILE_PARAM);
    expect(parseBootFileParams(p.data)).toEqual(['root=/dev/ram0', 'console=ttyS0']);
  });
});

describe('addresses and names', () => {
  it('DNS servers: a list of 16-byte addresses', () => {
    const o = dnsServersOption([ip('fd00:77::1'), ip('fd00::53')]);
    expect(o.data.length).toBe(32);
    expect(parseDnsServers(o.data).map(formatIpv6)).toEqual(['fd00:77::1', 'fd00::53']);
    expect(codeOf(() => parseDnsServers(new Uint8Array(17)))).toBe('DHCP6_ERR_OPTION_LENGTH');
    expect(codeOf(() => parseDnsServers(new Uint8Array(0)))).toBe('DHCP6_ERR_OPTION_LENGTH');
  });

  it('Domain Search List in RFC 1035 wire form, a trailing dot the same name', () => {
    const o = domainListOption(['lab.example', 'example.org.']);
    expect(Buffer.from(o.data).toString('hex')).toBe(
      `03${Buffer.from('lab').toString('hex')}07${Buffer.from('example').toString('hex')}00` +
        `07${Buffer.from('example').toString('hex')}03${Buffer.from('org').toString('hex')}00`,
    );
    expect(parseDomainList(o.data)).toEqual(['lab.example', 'example.org']);
  });

  it.each([
    ['a 64-byte label', [`${'a'.repeat(64)}.example`]],
    ['an empty label', ['a..example']],
    ['a name over 255 bytes', [Array.from({ length: 5 }, () => 'a'.repeat(60)).join('.')]],
    ['a space', ['my host.example']],
  ])('refuses to encode %s', (_n, names) => {
    expect(encodeError(() => domainListOption(names))).toBe('DHCP6_ERR_ENCODE_INVALID');
  });

  it.each([
    ['a compression pointer', hex('03616263 c00c')],
    ['a 64-byte label', hex(`40${'61'.repeat(64)}00`)],
    ['a name without its zero label', hex('03616263')],
    ['a label running past the end', hex('05616263')],
    ['a dot inside a label', hex('03612e6300')],
    ['a name over 255 bytes', hex(`${`3f${'61'.repeat(63)}`.repeat(4)}00`)],
  ])('refuses to decode %s', (_n, data) => {
    expect(codeOf(() => parseDomainList(data))).toBe('DHCP6_ERR_DOMAIN_NAME');
  });

  it('accepts a name of exactly 255 bytes', () => {
    const name = [...Array.from({ length: 3 }, () => 'a'.repeat(63)), 'b'.repeat(61)].join('.');
    const o = domainListOption([name]);
    expect(o.data.length).toBe(255);
    expect(parseDomainList(o.data)).toEqual([name]);
  });

  it('NTP server: address, multicast and FQDN sub-options (RFC 5908)', () => {
    const o = ntpServerOption([
      { kind: 'server', address: ip('fd00:77::123') },
      { kind: 'multicast', address: ip('ff05::101') },
      { kind: 'fqdn', name: 'ntp.lab.example' },
    ]);
    expect(Buffer.from(o.data.subarray(0, 4)).toString('hex')).toBe('00010010');
    expect(parseNtpServer(o.data)).toEqual([
      { kind: 'server', address: ip('fd00:77::123') },
      { kind: 'multicast', address: ip('ff05::101') },
      { kind: 'fqdn', name: 'ntp.lab.example' },
    ]);
    expect(codeOf(() => parseNtpServer(hex('00010004 00000000')))).toBe('DHCP6_ERR_OPTION_LENGTH');
    expect(codeOf(() => parseNtpServer(hex('')))).toBe('DHCP6_ERR_OPTION_LENGTH');
    expect(codeOf(() => parseNtpServer(hex('00030006 0161 00 0162 00')))).toBe('DHCP6_ERR_OPTION_INVALID');
  });
});

describe('option accessor properties', () => {
  const label = fc.stringMatching(/^[a-z0-9-]{1,20}$/);
  const name = fc.array(label, { minLength: 1, maxLength: 5 }).map((l) => l.join('.'));

  it('domain lists round-trip', () => {
    fc.assert(
      fc.property(fc.array(name, { maxLength: 6 }), (names) => {
        expect(parseDomainList(domainListOption(names).data)).toEqual(names);
      }),
    );
  });

  it('every parser throws only DecodeError on arbitrary bytes', () => {
    const parsers = [
      parseDuid,
      parseIaNa,
      parseIaTa,
      parseIaPd,
      parseIaAddr,
      parseStatus,
      parseOro,
      parseElapsedTime,
      parsePreference,
      parseUserClass,
      parseVendorClass,
      parseClientArch,
      parseNii,
      parseClientLinkLayer,
      parseDnsServers,
      parseDomainList,
      parseNtpServer,
      parseBootFileUrl,
      parseBootFileParams,
    ];
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        for (const parse of parsers) {
          try {
            parse(bytes);
          } catch (e) {
            expect(e).toBeInstanceOf(DecodeError);
          }
        }
      }),
      { numRuns: 1000 },
    );
  });
});
