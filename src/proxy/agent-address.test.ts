import { describe, expect, it } from 'vitest';
import { checkAgentAddress, portOf, type OwnListeners } from './agent-address.js';
import { parseBaseUrl } from './proxy-urls.js';

const own: OwnListeners = { addresses: ['172.22.0.2', 'fd00::2', '::ffff:10.0.0.2'], ports: [8080, 8081, 8082] };
const check = (url: string, source: string) => checkAgentAddress(parseBaseUrl(url, 'agent'), source, own)?.reason;

describe('checkAgentAddress', () => {
  it.each([
    ['https://192.0.2.10:9999', '192.0.2.10'],
    ['https://192.0.2.10:9999', '::ffff:192.0.2.10'],
    ['https://[2001:db8::10]:9999', '2001:db8::10'],
    ['https://[::ffff:192.0.2.10]:9999', '192.0.2.10'],
    ['https://172.22.0.2:9999', '172.22.0.2'],
    ['http://127.0.0.1:9999', '127.0.0.1'],
    ['http://192.0.2.10:8081', '192.0.2.10'],
  ])('lets %s from %s through', (url, source) => {
    expect(check(url, source)).toBeUndefined();
  });

  it.each([
    ['https://192.0.2.11:9999', '192.0.2.10', 'agent-not-source'],
    ['https://ipa-host:9999', '192.0.2.10', 'agent-not-source'],
    ['https://192.0.2.10:9999', '', 'agent-not-source'],
    ['https://[2001:db8::11]:9999', '2001:db8::10', 'agent-not-source'],
    ['https://172.22.0.2:8081', '172.22.0.2', 'agent-is-metalboot'],
    ['http://172.22.0.2:8080/nodes/x', '::ffff:172.22.0.2', 'agent-is-metalboot'],
    ['http://10.0.0.2:8082', '10.0.0.2', 'agent-is-metalboot'],
    ['http://[fd00::2]:8081', 'fd00::2', 'agent-is-metalboot'],
    ['http://127.0.0.1:8081', '127.0.0.1', 'agent-is-metalboot'],
    ['http://127.0.0.2:8080', '127.0.0.2', 'agent-is-metalboot'],
    ['http://[::1]:8081', '::1', 'agent-is-metalboot'],
  ])('refuses %s from %s (%s)', (url, source, reason) => {
    expect(check(url, source)).toBe(reason);
  });

  it('says which address the heartbeat came from', () => {
    expect(checkAgentAddress(parseBaseUrl('https://192.0.2.11:9999', 'a'), '::ffff:192.0.2.10', own)?.message).toBe(
      'callback_url host 192.0.2.11 is not the address the heartbeat came from (192.0.2.10)',
    );
  });
});

describe('portOf', () => {
  it.each([
    ['http://192.0.2.10', 80],
    ['https://192.0.2.10', 443],
    ['https://192.0.2.10:9999', 9999],
    ['http://192.0.2.10:443', 443],
  ])('%s → %d', (url, port) => {
    expect(portOf(parseBaseUrl(url, 'x'))).toBe(port);
  });
});
