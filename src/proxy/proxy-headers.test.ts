import { describe, expect, it } from 'vitest';
import {
  declaredLength,
  forwardRequestHeaders,
  forwardResponseHeaders,
  hasRequestBody,
  viaIncludes,
} from './proxy-headers.js';

describe('forwardRequestHeaders', () => {
  it('keeps the Ironic microversion, request id, content type and credentials', () => {
    const out = forwardRequestHeaders(
      {
        'x-openstack-ironic-api-version': '1.68',
        'x-openstack-request-id': 'req-1',
        'content-type': 'application/json',
        authorization: 'Basic eA==',
        'x-auth-token': 't',
        accept: 'application/json',
      },
      { clientIp: '192.0.2.10' },
    );
    expect(out).toMatchObject({
      'x-openstack-ironic-api-version': '1.68',
      'x-openstack-request-id': 'req-1',
      'content-type': 'application/json',
      authorization: 'Basic eA==',
      'x-auth-token': 't',
      accept: 'application/json',
    });
  });

  it.each([
    ['connection', 'keep-alive'],
    ['keep-alive', 'timeout=5'],
    ['transfer-encoding', 'chunked'],
    ['te', 'trailers'],
    ['upgrade', 'h2c'],
    ['proxy-authorization', 'x'],
    ['host', 'metalboot:8080'],
    ['expect', '100-continue'],
    ['content-length', '12'],
  ])('drops %s', (name, value) => {
    expect(forwardRequestHeaders({ [name]: value }, { clientIp: '192.0.2.10' })).not.toHaveProperty(name);
  });

  it('drops the fields a Connection header names', () => {
    const out = forwardRequestHeaders(
      { connection: 'close, X-Secret-Hop', 'x-secret-hop': '1', 'x-kept': '2' },
      { clientIp: '192.0.2.10' },
    );
    expect(out).not.toHaveProperty('x-secret-hop');
    expect(out['x-kept']).toBe('2');
  });

  it('extends X-Forwarded-For and Via and sets a known Content-Length', () => {
    const out = forwardRequestHeaders(
      { 'x-forwarded-for': '10.0.0.1', via: '1.1 lb' },
      { clientIp: '192.0.2.10', contentLength: 42 },
    );
    expect(out).toMatchObject({
      'x-forwarded-for': '10.0.0.1, 192.0.2.10',
      via: '1.1 lb, 1.1 metalboot',
      'content-length': '42',
    });
  });
});

describe('forwardResponseHeaders', () => {
  it('keeps the microversion range and drops hop-by-hop fields', () => {
    const out = forwardResponseHeaders({
      'x-openstack-ironic-api-minimum-version': '1.1',
      'x-openstack-ironic-api-maximum-version': '1.99',
      'x-openstack-ironic-api-version': '1.68',
      'openstack-request-id': 'req-2',
      'content-length': '10',
      connection: 'keep-alive',
      'transfer-encoding': 'chunked',
    });
    expect(out).toEqual({
      'x-openstack-ironic-api-minimum-version': '1.1',
      'x-openstack-ironic-api-maximum-version': '1.99',
      'x-openstack-ironic-api-version': '1.68',
      'openstack-request-id': 'req-2',
      'content-length': '10',
    });
  });

  it('drops the length and validators of a rewritten body', () => {
    expect(
      forwardResponseHeaders(
        { 'content-length': '10', etag: '"x"', 'content-type': 'application/json' },
        { rewrittenBody: true },
      ),
    ).toEqual({ 'content-type': 'application/json' });
  });
});

describe('body framing', () => {
  it.each([
    [{}, undefined, false],
    [{ 'content-length': '0' }, 0, false],
    [{ 'content-length': '12' }, 12, true],
    [{ 'transfer-encoding': 'chunked' }, undefined, true],
    [{ 'content-length': '-1' }, 'invalid', false],
    [{ 'content-length': '1e3' }, 'invalid', false],
  ] as const)('%j → length %s, body %s', (headers, length, body) => {
    expect(declaredLength(headers)).toBe(length);
    expect(hasRequestBody(headers)).toBe(body);
  });
});

describe('viaIncludes', () => {
  it.each([
    [undefined, false],
    ['1.1 metalboot', false],
    ['1.1 metalboot-callback-abc', true],
    ['1.0 fred, 1.1 metalboot-callback-abc (metalboot)', true],
    ['HTTP/1.1 METALBOOT-callback-abc', true],
    ['1.1 metalboot-callback-abcd', false],
  ])('%j → %s', (via, seen) => {
    expect(viaIncludes(via === undefined ? {} : { via }, 'metalboot-callback-abc')).toBe(seen);
  });

  it('is what forwardRequestHeaders adds under the given pseudonym', () => {
    const out = forwardRequestHeaders({ via: '1.0 fred' }, { clientIp: '192.0.2.1', via: 'metalboot-callback-abc' });
    expect(out['via']).toBe('1.0 fred, 1.1 metalboot-callback-abc');
    expect(viaIncludes({ via: String(out['via']) }, 'metalboot-callback-abc')).toBe(true);
  });
});
