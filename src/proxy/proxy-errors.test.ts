import { describe, expect, it } from 'vitest';
import { classifyForwardError, errorCode } from './proxy-errors.js';
import { MetalbootError } from '../base/errors.js';

const err = (code: string, cause?: unknown): Error => Object.assign(new Error(code), { code, cause });

describe('classifyForwardError', () => {
  it.each([
    [err('ECONNREFUSED'), 'refused', 502],
    [err('UND_ERR_SOCKET', err('ECONNRESET')), 'reset', 502],
    [err('UND_ERR_CONNECT_TIMEOUT'), 'connect-timeout', 504],
    [err('UND_ERR_HEADERS_TIMEOUT'), 'headers-timeout', 504],
    [err('DEPTH_ZERO_SELF_SIGNED_CERT'), 'tls-verify', 502],
    [err('UNABLE_TO_VERIFY_LEAF_SIGNATURE'), 'tls-verify', 502],
    [err('ERR_TLS_CERT_ALTNAME_INVALID'), 'tls-verify', 502],
    [err('CERT_HAS_EXPIRED'), 'tls-verify', 502],
    [err('ERR_SSL_WRONG_VERSION_NUMBER'), 'tls', 502],
    [err('EHOSTUNREACH'), 'unreachable', 502],
    [new MetalbootError('PROXY_ERR_BODY_TOO_LARGE', 'big'), 'body-too-large', 413],
    [new Error('no code'), 'other', 502],
  ] as const)('%s → %s %d', (e, reason, status) => {
    const a = classifyForwardError(e, 'IPA at https://192.0.2.10:9999');
    expect(a.reason).toBe(reason);
    expect(a.status).toBe(status);
  });

  it('names the peer and the code', () => {
    expect(classifyForwardError(err('DEPTH_ZERO_SELF_SIGNED_CERT'), 'IPA at https://192.0.2.10:9999').message).toBe(
      'IPA at https://192.0.2.10:9999 presented a certificate that does not verify (DEPTH_ZERO_SELF_SIGNED_CERT)',
    );
  });

  it('prefers the cause of a generic wrapper', () => {
    expect(errorCode(err('UND_ERR_SOCKET', err('ECONNRESET')))).toBe('ECONNRESET');
    expect(errorCode(err('UND_ERR_HEADERS_TIMEOUT'))).toBe('UND_ERR_HEADERS_TIMEOUT');
    expect(errorCode('x')).toBeUndefined();
  });
});
