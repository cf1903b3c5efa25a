import { describe, expect, it } from 'vitest';
import { connectedSocket, parseProcNetUdp } from './proc-net-udp.js';

// Captured on x86-64 (little-endian): socat's receiving socket on 0.0.0.0:67 (0043), its sending
// socket 127.0.0.1:45970 (B392) connected to 127.0.0.1:35613 (8B1D), the feed socket there, and a
// socket of another user connected to the same port.
const TEXT = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  280: 00000000:0043 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 372430 2 00000000b0b3a2c1 0
 6890: 0100007F:B392 0100007F:8B1D 01 00000000:00000000 00:00000000 00000000     0        0 372432 2 000000004daa2955 0
12917: 0100007F:8B1D 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 372424 2 00000000825ca275 0
13001: 0100007F:C001 0100007F:8B1D 01 00000000:00000000 00:00000000 00000000  1000        0 372999 2 00000000825ca276 0
garbage line
`;

describe('parseProcNetUdp', () => {
  it('reads addresses in host byte order, ports, state, uid and inode; skips the header and garbage', () => {
    const rows = parseProcNetUdp(TEXT, 'LE');
    expect(rows).toHaveLength(4);
    expect(rows[0]).toEqual({
      local: { address: '0.0.0.0', port: 67 },
      remote: { address: '0.0.0.0', port: 0 },
      connected: false,
      uid: 0,
      inode: 372430,
    });
    expect(rows[1]).toEqual({
      local: { address: '127.0.0.1', port: 45970 },
      remote: { address: '127.0.0.1', port: 35613 },
      connected: true,
      uid: 0,
      inode: 372432,
    });
  });

  it('a big-endian machine prints the address the other way round', () => {
    const [row] = parseProcNetUdp('  1: 7F000001:0043 0A4F0001:0044 01 0:0 0:0 0 1000 0 5 2 0 0', 'BE');
    expect(row?.local).toEqual({ address: '127.0.0.1', port: 67 });
    expect(row?.remote).toEqual({ address: '10.79.0.1', port: 68 });
  });
});

describe('connectedSocket', () => {
  const rows = parseProcNetUdp(TEXT, 'LE');
  it.each([
    ['the one socket of the uid connected to the port', 0, 35613, 45970],
    ['another uid has its own', 1000, 35613, 49153],
    ['nothing connected to another port', 0, 35614, undefined],
  ])('%s', (_name, uid, port, want) => {
    expect(connectedSocket(rows, { address: '127.0.0.1', port }, uid)?.local.port).toBe(want);
  });

  it('two candidates: undefined (they cannot be told apart)', () => {
    const twice = parseProcNetUdp(`${TEXT}${TEXT.split('\n')[2]!.replace('B392', 'B393')}\n`, 'LE');
    expect(connectedSocket(twice, { address: '127.0.0.1', port: 35613 }, 0)).toBeUndefined();
  });
});
