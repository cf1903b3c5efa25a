import { describe, expect, it } from 'vitest';
import {
  allowedQuery,
  isNodeIdent,
  microversionAtLeast,
  parseBaseUrl,
  parseMicroversion,
  rewriteHref,
  rewriteLinks,
  withProtocol,
} from './proxy-urls.js';

describe('parseBaseUrl', () => {
  it.each([
    ['http://ironic:6385', { origin: 'http://ironic:6385', basePath: '', hostname: 'ironic' }],
    [
      'https://ironic.example/baremetal/',
      { origin: 'https://ironic.example', basePath: '/baremetal', hostname: 'ironic.example' },
    ],
    ['http://[fd00::5]:6385', { origin: 'http://[fd00::5]:6385', basePath: '', hostname: 'fd00::5' }],
  ])('%s', (raw, expected) => {
    expect(parseBaseUrl(raw, 'x')).toMatchObject(expected);
  });

  it.each(['ftp://x', 'http://u:p@x', 'http://x/?q=1', 'http://x/#f', 'not a url'])('refuses %s', (raw) => {
    expect(() => parseBaseUrl(raw, 'x')).toThrow(expect.objectContaining({ code: 'PROXY_ERR_BAD_OPTIONS' }));
  });

  it('switches the scheme, keeping an explicit port', () => {
    expect(withProtocol(parseBaseUrl('http://10.0.0.2:8081/cb', 'x'), 'https:')).toMatchObject({
      origin: 'https://10.0.0.2:8081',
      basePath: '/cb',
      protocol: 'https:',
    });
  });
});

describe('isNodeIdent', () => {
  it.each([
    ['1be26c0b-03f2-4d2e-ae87-c02d7f33c123', true],
    ['node-1.rack_2~a', true],
    ['.', false],
    ['..', false],
    ['', false],
    ['a/b', false],
    ['a%2fb', false],
    ['a b', false],
    ['x'.repeat(256), false],
  ])('%s → %s', (s, ok) => {
    expect(isNodeIdent(s)).toBe(ok);
  });
});

describe('link rewriting', () => {
  const ironic = parseBaseUrl('http://ironic.internal:6385', 'i');
  const ours = parseBaseUrl('http://172.22.0.2:8080', 'a');

  it.each([
    ['http://ironic.internal:6385/v1/', 'http://172.22.0.2:8080/v1/'],
    ['http://ironic.internal:6385/', 'http://172.22.0.2:8080/'],
    ['http://ironic.internal:6385/v1/lookup?x=1', 'http://172.22.0.2:8080/v1/lookup?x=1'],
    [
      'https://docs.openstack.org/ironic/latest/contributor/webapi.html',
      'https://docs.openstack.org/ironic/latest/contributor/webapi.html',
    ],
    ['http://ironic.internal:6386/v1/', 'http://ironic.internal:6386/v1/'],
    ['/relative', '/relative'],
    // Never a network-path reference to another host: relative ones fold to one slash.
    ['http://ironic.internal:6385//evil/x', 'http://172.22.0.2:8080//evil/x'],
    ['//evil/x', '/evil/x'],
    ['/\\evil/x', '/evil/x'],
    ['/\t/evil/x', '/evil/x'],
  ])('%s → %s', (href, expected) => {
    expect(rewriteHref(href, ironic, ours)).toBe(expected);
  });

  it.each(['http://ironic.internal:6385//evil/x', 'http://ironic.internal:6385/\\evil', '//evil/x', '/\\evil'])(
    'keeps %s on our origin',
    (href) => {
      const out = rewriteHref(href, ironic, ours);
      expect(out).not.toMatch(/^[/\\]{2}/);
      expect(new URL(out, ours.origin).origin).toBe(ours.origin);
    },
  );

  it('respects base paths on both sides', () => {
    const from = parseBaseUrl('https://api.example/baremetal', 'i');
    const to = parseBaseUrl('http://10.0.0.2:8080/ironic', 'a');
    expect(rewriteHref('https://api.example/baremetal/v1/', from, to)).toBe('http://10.0.0.2:8080/ironic/v1/');
    expect(rewriteHref('https://api.example/baremetalx/v1/', from, to)).toBe('https://api.example/baremetalx/v1/');
  });

  it('rewrites every href of a version document and nothing else', () => {
    const doc = {
      name: 'OpenStack Ironic API',
      versions: [
        {
          id: 'v1',
          links: [{ href: 'http://ironic.internal:6385/v1/', rel: 'self' }],
          status: 'CURRENT',
          version: '1.99',
          min_version: '1.1',
        },
      ],
      default_version: { id: 'v1', links: [{ href: 'http://ironic.internal:6385/v1/', rel: 'self' }] },
      description: 'see http://ironic.internal:6385/v1/',
    };
    const out = rewriteLinks(doc, ironic, ours) as typeof doc;
    expect(out.versions[0]!.links[0]!.href).toBe('http://172.22.0.2:8080/v1/');
    expect(out.default_version.links[0]!.href).toBe('http://172.22.0.2:8080/v1/');
    expect(out.description).toBe('see http://ironic.internal:6385/v1/');
    expect(out.versions[0]!.version).toBe('1.99');
  });
});

describe('microversions', () => {
  it.each([
    ['1.68', [1, 68], true],
    ['1.99', [1, 99], true],
    ['1.62', [1, 62], false],
    ['latest', [1, Number.POSITIVE_INFINITY], true],
    ['2.0', [2, 0], true],
    ['one', undefined, false],
    [undefined, undefined, false],
  ] as const)('%s', (header, parsed, atLeast168) => {
    expect(parseMicroversion(header)).toEqual(parsed);
    expect(microversionAtLeast(parseMicroversion(header), 1, 68)).toBe(atLeast168);
  });
});

describe('query handling', () => {
  it('keeps only allowed parameters', () => {
    expect(allowedQuery('?addresses=52:54:00:00:00:01&node_uuid=u&evil=1', ['addresses', 'node_uuid'])).toBe(
      '?addresses=52%3A54%3A00%3A00%3A00%3A01&node_uuid=u',
    );
    expect(allowedQuery('?evil=1', ['node_uuid'])).toBe('');
    expect(allowedQuery('', ['node_uuid'])).toBe('');
  });
});
