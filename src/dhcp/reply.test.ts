import { describe, expect, it } from 'vitest';
import { BOOTREPLY, type DhcpMessage } from './codec.js';
import { MESSAGE_TYPE, OPT, u32, u8 } from './options.js';
import { withLeaseTime } from './reply.js';
import { IPV4_ANY } from '../net/ipv4.js';
import { INFINITE_LEASE } from '../leases/range.js';

const ack = (): DhcpMessage => ({
  op: BOOTREPLY,
  htype: 1,
  hlen: 6,
  hops: 0,
  xid: 7,
  secs: 0,
  flags: 0,
  ciaddr: IPV4_ANY,
  yiaddr: IPV4_ANY,
  siaddr: IPV4_ANY,
  giaddr: IPV4_ANY,
  chaddr: new Uint8Array(16),
  sname: '',
  file: '',
  options: new Map([
    [OPT.MESSAGE_TYPE, u8(MESSAGE_TYPE.ACK)],
    [OPT.LEASE_TIME, u32(3600)],
    [OPT.RENEWAL_TIME, u32(1800)],
    [OPT.REBINDING_TIME, u32(3150)],
  ]),
});
const seconds = (m: DhcpMessage, code: number) => {
  const v = m.options.get(code);
  return v === undefined ? undefined : Buffer.from(v).readUInt32BE(0);
};

describe('withLeaseTime (a renewal answered with the lease the journal holds)', () => {
  it('sets the lease time with T1 and T2 at half and seven eighths, leaving the original alone', () => {
    const a = ack();
    const r = withLeaseTime(a, 3000);
    expect([seconds(r, OPT.LEASE_TIME), seconds(r, OPT.RENEWAL_TIME), seconds(r, OPT.REBINDING_TIME)]).toEqual([
      3000, 1500, 2625,
    ]);
    expect(seconds(a, OPT.LEASE_TIME)).toBe(3600);
    expect(r.xid).toBe(7);
  });

  it('sends no T1 and T2 for an infinite lease', () => {
    const r = withLeaseTime(ack(), INFINITE_LEASE);
    expect([seconds(r, OPT.LEASE_TIME), seconds(r, OPT.RENEWAL_TIME), seconds(r, OPT.REBINDING_TIME)]).toEqual([
      INFINITE_LEASE,
      undefined,
      undefined,
    ]);
  });
});
