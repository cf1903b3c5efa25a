import { describe, expect, it } from 'vitest';
import { classifyUpstreamError, type UpstreamFailure } from './errors.js';
import { clientResponseHeaders, isConditionalOrPartial, rewriteLocation, upstreamRequestHeaders } from './headers.js';

describe('upstreamRequestHeaders', () => {
  it('keeps Range, validators, User-Agent and Accept; drops credentials, Host and encodings', () => {
    const out = upstreamRequestHeaders(
      {
        host: 'metalboot:8080',
        range: 'bytes=0-1',
        'if-range': '"a"',
        'if-none-match': '"a"',
        'if-modified-since': 'x',
        'if-match': '"b"',
        'if-unmodified-since': 'y',
        'user-agent': 'iPXE/1.21.1',
        accept: '*/*',
        'accept-encoding': 'gzip',
        cookie: 'c=1',
        authorization: 'Basic x',
        'proxy-authorization': 'Basic y',
        connection: 'keep-alive',
        'x-other': '1',
      },
      { clientIp: '10.0.0.5', protocol: 'http' },
    );
    expect(out).toEqual({
      range: 'bytes=0-1',
      'if-range': '"a"',
      'if-none-match': '"a"',
      'if-modified-since': 'x',
      'if-match': '"b"',
      'if-unmodified-since': 'y',
      'user-agent': 'iPXE/1.21.1',
      accept: '*/*',
      'accept-encoding': 'identity',
      'x-forwarded-for': '10.0.0.5',
      'x-forwarded-proto': 'http',
      via: '1.1 metalboot',
    });
  });

  it('appends to an existing X-Forwarded-For', () => {
    expect(
      upstreamRequestHeaders({ 'x-forwarded-for': '192.0.2.1' }, { clientIp: '10.0.0.5', protocol: 'https' })[
        'x-forwarded-for'
      ],
    ).toBe('192.0.2.1, 10.0.0.5');
  });
});

describe('clientResponseHeaders', () => {
  it('drops hop-by-hop fields and the ones Connection names', () => {
    expect(
      clientResponseHeaders({
        'content-length': '10',
        'content-range': 'bytes 0-9/100',
        'accept-ranges': 'bytes',
        etag: '"a"',
        'last-modified': 'x',
        'content-type': 'application/octet-stream',
        connection: 'keep-alive, X-Private',
        'keep-alive': 'timeout=5',
        'transfer-encoding': 'chunked',
        'x-private': 'secret',
        upgrade: 'h2c',
        trailer: 'x',
        te: 'trailers',
        'proxy-authenticate': 'Basic',
        'set-cookie': ['a=1', 'b=2'],
        server: 'Apache',
      }),
    ).toEqual({
      'content-length': '10',
      'content-range': 'bytes 0-9/100',
      'accept-ranges': 'bytes',
      etag: '"a"',
      'last-modified': 'x',
      'content-type': 'application/octet-stream',
      'set-cookie': ['a=1', 'b=2'],
      server: 'Apache',
    });
  });
});

describe('rewriteLocation', () => {
  it.each<[string, string, string, string]>([
    ['into the upstream', 'http://ironic:6180/images/dir/', '', '/images/dir/'],
    ['into the base path', 'http://ironic:6180/base/images/dir/', '/base', '/images/dir/'],
    ['the upstream root', 'http://ironic:6180', '', '/'],
    ['a query on the root', 'http://ironic:6180?a=1', '', '/?a=1'],
    ['outside the base path', 'http://ironic:6180/other/x', '/base', 'http://ironic:6180/other/x'],
    ['a prefix of the host name only', 'http://ironic:61800/x', '', 'http://ironic:61800/x'],
    ['another host', 'http://elsewhere/x', '', 'http://elsewhere/x'],
    ['a relative path', '/images/x/', '', '/images/x/'],
    // Only same-origin relative locations: never a network-path reference to another host.
    ['a double slash after the upstream', 'http://ironic:6180//evil/x', '', '/evil/x'],
    ['a double slash after the base path', 'http://ironic:6180/base//evil/x', '/base', '/evil/x'],
    ['a backslash after the upstream', 'http://ironic:6180/\\evil/x', '', '/evil/x'],
    ['a slash, a tab and a slash', 'http://ironic:6180/\t/evil/x', '', '/evil/x'],
    ['many slashes', 'http://ironic:6180////evil', '', '/evil'],
    ['a protocol-relative location', '//evil/x', '', '/evil/x'],
    ['a backslash-relative location', '/\\evil/x', '', '/evil/x'],
  ])('%s', (_name, location, base, want) => {
    expect(rewriteLocation(location, 'http://ironic:6180', base)).toBe(want);
  });

  it('is applied to the response headers when the origin is given', () => {
    expect(clientResponseHeaders({ location: 'http://ironic:6180/images/d/' }, 'http://ironic:6180')).toEqual({
      location: '/images/d/',
    });
  });
});

describe('isConditionalOrPartial', () => {
  it.each<[Record<string, string>, boolean]>([
    [{}, false],
    [{ 'user-agent': 'x' }, false],
    [{ range: 'bytes=0-1' }, true],
    [{ 'if-none-match': '"a"' }, true],
    [{ 'if-modified-since': 'x' }, true],
    [{ 'if-match': '"a"' }, true],
    [{ 'if-unmodified-since': 'x' }, true],
    [{ 'if-range': '"a"' }, true],
  ])('%o → %s', (headers, want) => {
    expect(isConditionalOrPartial(headers)).toBe(want);
  });
});

describe('classifyUpstreamError', () => {
  const err = (code: string, cause?: unknown): Error =>
    Object.assign(new Error('x'), { code, ...(cause === undefined ? {} : { cause }) });
  it.each<[string, unknown, UpstreamFailure, number]>([
    ['connect timeout', err('UND_ERR_CONNECT_TIMEOUT'), 'connect-timeout', 504],
    ['headers timeout', err('UND_ERR_HEADERS_TIMEOUT'), 'headers-timeout', 504],
    ['body timeout', err('UND_ERR_BODY_TIMEOUT'), 'body-timeout', 504],
    ['refused', err('ECONNREFUSED'), 'refused', 502],
    ['refused, wrapped', Object.assign(new Error('x'), { cause: err('ECONNREFUSED') }), 'refused', 502],
    ['reset', err('ECONNRESET'), 'reset', 502],
    ['socket closed', err('UND_ERR_SOCKET'), 'reset', 502],
    ['DNS', err('ENOTFOUND'), 'dns', 502],
    ['DNS try again', err('EAI_AGAIN'), 'dns', 502],
    ['unreachable', err('EHOSTUNREACH'), 'unreachable', 502],
    ['TLS', err('UNABLE_TO_VERIFY_LEAF_SIGNATURE'), 'tls', 502],
    ['TLS, self-signed', err('DEPTH_ZERO_SELF_SIGNED_CERT'), 'tls', 502],
    ['short body in the cache', err('IMAGE_CACHE_ERR_LENGTH_MISMATCH'), 'length-mismatch', 502],
    ['no code', new Error('x'), 'other', 502],
    ['not an error', 'boom', 'other', 502],
  ])('%s', (_name, e, reason, status) => {
    const f = classifyUpstreamError(e);
    expect([f.reason, f.status]).toEqual([reason, status]);
    expect(f.message.length).toBeGreaterThan(0);
  });
});
