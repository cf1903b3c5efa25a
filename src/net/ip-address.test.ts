import { describe, expect, it } from 'vitest';
import { canonicalIp, isLoopbackIp } from './ip-address.js';

describe('canonicalIp', () => {
  it.each([
    ['192.0.2.10', '192.0.2.10'],
    ['::ffff:192.0.2.10', '192.0.2.10'],
    ['::FFFF:c000:20a', '192.0.2.10'],
    ['[2001:db8::1]', '2001:db8::1'],
    ['2001:0DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['::1', '::1'],
  ])('%s → %s', (text, canonical) => {
    expect(canonicalIp(text)).toBe(canonical);
  });

  it.each(['ipa-host.example', '', '127.1', '0x7f.0.0.1', '192.0.2.10:9999', '[192.0.2.10]x'])('refuses %j', (text) => {
    expect(canonicalIp(text)).toBeUndefined();
  });
});

describe('isLoopbackIp', () => {
  it.each([
    ['127.0.0.1', true],
    ['127.3.2.1', true],
    ['::1', true],
    ['192.0.2.10', false],
    ['2001:db8::1', false],
  ])('%s → %s', (ip, loopback) => {
    expect(isLoopbackIp(ip)).toBe(loopback);
  });
});
