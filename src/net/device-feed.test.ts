import { describe, expect, it } from 'vitest';
import { socatArgs, SOCAT_BLOCK_BYTES } from './device-feed.js';

describe('socatArgs', () => {
  it('receives on the device only, whole datagrams, one way, into a connected loopback socket', () => {
    expect(socatArgs({ device: 'eth0', port: 67, feedPort: 40123, recvBufferBytes: 2 * 1024 * 1024 })).toEqual([
      '-d',
      '-b',
      '65536',
      '-u',
      'UDP4-RECV:67,so-bindtodevice=eth0,reuseaddr,rcvbuf=2097152',
      'UDP4:127.0.0.1:40123',
    ]);
  });

  it('recvBufferBytes 0 keeps the kernel default (no rcvbuf option)', () => {
    expect(socatArgs({ device: 'br-prov.100', port: 1067, feedPort: 1, recvBufferBytes: 0 })[4]).toBe(
      'UDP4-RECV:1067,so-bindtodevice=br-prov.100,reuseaddr',
    );
  });

  it('the block size holds the largest UDP payload', () => {
    expect(SOCAT_BLOCK_BYTES).toBeGreaterThanOrEqual(65_507);
  });

  it.each([['eth,0'], ['a!b'], ['x y'], [''], ['sixteen-chars-xx']])(
    'refuses %j: socat would misread it (or Linux has no such name)',
    (device) => {
      expect(() => socatArgs({ device, port: 67, feedPort: 1, recvBufferBytes: 0 })).toThrow(
        expect.objectContaining({ code: 'NET_ERR_DEVICE_NAME' }),
      );
    },
  );
});
