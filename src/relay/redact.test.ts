import { describe, expect, it } from 'vitest';
import { REDACTED, redactHeaders, redactJson, redactUrl } from './redact.js';

describe('redactUrl', () => {
  it.each([
    ['/nodes/n1/v1/commands/?wait=true&agent_token=s3cr3t', `/nodes/n1/v1/commands/?wait=true&agent_token=${REDACTED}`],
    ['/v1/commands/?agent_token=a&agent_token=b', `/v1/commands/?agent_token=${REDACTED}&agent_token=${REDACTED}`],
    ['/v1/lookup?addresses=52:54:00:00:00:01', '/v1/lookup?addresses=52:54:00:00:00:01'],
    ['/x?agent%5Ftoken=s3cr3t', `/x?agent%5Ftoken=${REDACTED}`],
    ['/x?password=p&user=u', `/x?password=${REDACTED}&user=u`],
    ['/x?bad%zz_token=s', `/x?bad%zz_token=${REDACTED}`],
    [
      'https://10.0.0.5:9999/v1/commands/?agent_token=t#frag',
      `https://10.0.0.5:9999/v1/commands/?agent_token=${REDACTED}#frag`,
    ],
    ['/no/query', '/no/query'],
  ])('%s', (input, expected) => {
    expect(redactUrl(input)).toBe(expected);
  });
});

describe('redactHeaders', () => {
  it('hides credentials and keeps the rest', () => {
    expect(
      redactHeaders({
        Authorization: 'Basic x',
        'x-auth-token': 't',
        cookie: 'c',
        'x-openstack-request-id': 'r',
        gone: undefined,
      }),
    ).toEqual({
      Authorization: REDACTED,
      'x-auth-token': REDACTED,
      cookie: REDACTED,
      'x-openstack-request-id': 'r',
    });
  });
});

describe('redactJson', () => {
  it('hides token values at any depth and shortens certificates', () => {
    const pem = `-----BEGIN CERTIFICATE-----\n${'A'.repeat(600)}\n-----END CERTIFICATE-----`;
    const out = redactJson({
      agent_token: 'secret',
      callback_url: 'https://x:9999',
      agent_verify_ca: pem,
      config: { agent_token: 'deep', agent_token_required: true },
      list: [{ password: 'p' }],
    }) as Record<string, unknown>;
    expect(out['agent_token']).toBe(REDACTED);
    expect(out['callback_url']).toBe('https://x:9999');
    expect(String(out['agent_verify_ca']).length).toBeLessThan(120);
    expect(out['config']).toEqual({ agent_token: REDACTED, agent_token_required: REDACTED });
    expect(out['list']).toEqual([{ password: REDACTED }]);
    expect(JSON.stringify(out)).not.toContain('secret');
  });
});

describe('redactUrl and signed URLs', () => {
  it.each([
    ['/images/x?temp_url_sig=abc&temp_url_expires=1', '/images/x?temp_url_sig=***&temp_url_expires=1'],
    ['/o/k?X-Amz-Signature=ff&X-Amz-Date=20260101', '/o/k?X-Amz-Signature=***&X-Amz-Date=20260101'],
    ['/o/k?sig=ff&signed=1', '/o/k?sig=***&signed=1'],
  ])('redacts the signature of %s', (url, redacted) => {
    expect(redactUrl(url)).toBe(redacted);
  });
});
