import { describe, expect, it } from 'vitest';
import { parseIpv4 } from '../net/ipv4.js';
import { parseMac, type Mac } from '../net/mac.js';
import { LeasePool, LeasePool6 } from './pool.js';
import { MAX_RANGE_SLOTS } from './range.js';
import { formatIpv6, parseIpv6 } from '../net/ipv6.js';

const ip = (s: string) => parseIpv4(s)!;
const A = parseMac('52:54:00:00:00:0a')! as Mac;
const B = parseMac('52:54:00:00:00:0b')! as Mac;
const T0 = 1_000_000_000_000;
const newPool = () =>
  new LeasePool({
    ranges: [{ start: ip('10.0.0.10'), end: ip('10.0.0.20'), leaseSeconds: 3600 }],
    isClaimed: () => false,
    serverIp: ip('10.0.0.1'),
  });

describe('LeasePool commit and revert (a bind whose record could not be written)', () => {
  it('reverts a new lease: the address is free again, the MAC has no lease', () => {
    const pool = newPool();
    const c = pool.commit(A, ip('10.0.0.12'), T0);
    if (!c.ok) throw new Error(c.reason);
    expect(c.heldUntil).toBeUndefined();
    pool.revert(c.undo);
    expect(pool.leaseOf(A, T0)).toBeUndefined();
    expect(pool.hasRecord(A)).toBe(false);
    expect(pool.commit(B, ip('10.0.0.12'), T0).ok).toBe(true);
  });

  it('reverts a renewal to the lease the journal holds, and says until when it was held', () => {
    const pool = newPool();
    const first = pool.commit(A, ip('10.0.0.12'), T0);
    if (!first.ok) throw new Error(first.reason);
    const renewal = pool.commit(A, ip('10.0.0.12'), T0 + 600_000);
    if (!renewal.ok) throw new Error(renewal.reason);
    expect(renewal.heldUntil).toBe(T0 + 3_600_000);
    pool.revert(renewal.undo);
    expect(pool.leaseOf(A, T0 + 600_000)?.expiresAt).toBe(T0 + 3_600_000);
  });

  it('reverts a MAC that moved to another address back to its old one', () => {
    const pool = newPool();
    const first = pool.commit(A, ip('10.0.0.12'), T0);
    if (!first.ok) throw new Error(first.reason);
    const moved = pool.commit(A, ip('10.0.0.15'), T0 + 1000);
    if (!moved.ok) throw new Error(moved.reason);
    expect(moved.heldUntil).toBeUndefined();
    pool.revert(moved.undo);
    expect(pool.leaseOf(A, T0 + 1000)?.ip).toBe(ip('10.0.0.12'));
    expect(pool.commit(B, ip('10.0.0.15'), T0 + 1000).ok).toBe(true);
  });

  it('leaves a slot alone that changed after the commit', () => {
    const pool = newPool();
    const c = pool.commit(A, ip('10.0.0.12'), T0);
    if (!c.ok) throw new Error(c.reason);
    const again = pool.commit(A, ip('10.0.0.12'), T0 + 1000);
    if (!again.ok) throw new Error(again.reason);
    pool.revert(c.undo);
    expect(pool.leaseOf(A, T0 + 1000)?.expiresAt).toBe(T0 + 1000 + 3_600_000);
  });
});

describe('LeasePool after the range changed', () => {
  it('does not restore a lease outside every range, and serves that MAC from the new range', () => {
    const pool = newPool();
    expect(pool.restore({ t: 'bind', ip: '10.0.9.9', mac: A, exp: null })).toBe(false);
    expect(pool.restore({ t: 'bind', ip: '10.0.0.11', mac: B, exp: null })).toBe(true);
    expect(pool.leaseOf(A, T0)).toBeUndefined();
    const offer = pool.offer(A, undefined, T0);
    expect(offer?.ip).toBeGreaterThanOrEqual(ip('10.0.0.10'));
    expect(offer?.ip).toBeLessThanOrEqual(ip('10.0.0.20'));
    expect(pool.snapshot(T0).map((r) => r.ip)).toEqual(['10.0.0.11']);
  });
});

describe('LeasePool memory under a DISCOVER flood', () => {
  it('forgets offers that expired, so new MACs cost memory only while their offer lives', () => {
    const pool = new LeasePool({
      ranges: [{ start: ip('10.1.0.0'), end: ip('10.1.255.255'), leaseSeconds: 3600 }],
      isClaimed: () => false,
      serverIp: ip('10.0.0.1'),
      offerHoldMs: 1000,
    });
    const macOf = (n: number) =>
      parseMac(
        `52:54:01:${(n >> 16).toString(16).padStart(2, '0')}:${((n >> 8) & 255).toString(16).padStart(2, '0')}:${(n & 255).toString(16).padStart(2, '0')}`,
      )! as Mac;
    // 20,000 new MACs, 100 per second: at most ~100 offers are alive at any time.
    for (let n = 0; n < 20_000; n++) pool.offer(macOf(n), undefined, T0 + n * 10);
    expect(pool.tracked.addresses).toBeLessThanOrEqual(101);
    expect(pool.tracked.macs).toBeLessThanOrEqual(101);
    // A bound lease is not an offer: it stays.
    const c = pool.commit(A, ip('10.1.200.1'), T0 + 300_000);
    expect(c.ok).toBe(true);
    pool.offer(B, undefined, T0 + 400_000);
    expect(pool.leaseOf(A, T0 + 400_000)?.ip).toBe(ip('10.1.200.1'));
  });
});

describe('LeasePool6 (DHCPv6 ranges)', () => {
  const ip6 = (s: string) => parseIpv6(s)!;
  const pool6 = (end = 'fd00::1ff') =>
    new LeasePool6({
      ranges: [{ start: ip6('fd00::100'), end: ip6(end), leaseSeconds: 3600 }],
      isClaimed: (a) => a === ip6('fd00::101'),
      serverIp: ip6('fd00::100'),
    });

  it('offers, binds and journals IPv6 addresses as RFC 5952 text, skipping the server and claimed ones', () => {
    const pool = pool6();
    const o = pool.offer(A, undefined, T0)!;
    expect(formatIpv6(o.ip)).toBe('fd00::102');
    const c = pool.commit(A, o.ip, T0);
    if (!c.ok) throw new Error(c.reason);
    expect(c.record).toEqual({ t: 'bind', ip: 'fd00::102', mac: A, exp: T0 + 3_600_000 });
    const again = pool6();
    expect(again.restore(c.record)).toBe(true);
    expect(again.leaseOf(A, T0)?.ip).toBe(ip6('fd00::102'));
    expect(pool.commit(B, ip6('fd00::101'), T0)).toEqual({ ok: false, reason: 'address-claimed' });
  });

  it('walks only the first MAX_RANGE_SLOTS addresses of a huge range', () => {
    const pool = pool6('fd00::ffff:ffff:ffff');
    expect(pool.stats(T0).size).toBe(MAX_RANGE_SLOTS);
    expect(pool.rangeOf(ip6('fd00::ffff:ffff:0'))).toBeDefined();
    expect(pool.offer(B, undefined, T0)?.ip).toBe(ip6('fd00::102'));
  });

  it('refuses a journal record of the other family', () => {
    expect(pool6().restore({ t: 'bind', ip: '10.0.0.12', mac: A, exp: null })).toBe(false);
    expect(newPool().restore({ t: 'bind', ip: 'fd00::102', mac: A, exp: null })).toBe(false);
  });
});
