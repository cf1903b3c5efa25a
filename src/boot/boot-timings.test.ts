import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { parseIpv4 } from '../net/ipv4.js';
import { parseMac } from '../net/mac.js';
import { ackToScriptText, BootTimings } from './boot-timings.js';

const A = parseMac('52:54:00:00:00:0a')!;
const B = parseMac('52:54:00:00:00:0b')!;
const IP_A = parseIpv4('10.0.0.10')!;
const IP_B = parseIpv4('10.0.0.11')!;

describe('BootTimings', () => {
  it('times the first script request after the ACK, by address (/boot.ipxe) then by MAC (the host script)', () => {
    const t = new BootTimings();
    t.acknowledged(A, IP_A, 'ipxe', 10_000);
    // /boot.ipxe: no MAC, matched by the address the ACK gave; the time is not yet given to an Event.
    expect(t.scriptRequested({ ip: IP_A }, 10_400)).toEqual({ ms: 400, client: 'ipxe' });
    // The host script right after: the same first-request time, given once to its Event.
    expect(t.scriptRequested({ mac: A, ip: IP_A }, 10_450)).toEqual({ ms: 400, client: 'ipxe' });
    expect(t.scriptRequested({ mac: A, ip: IP_A }, 12_000)).toBeUndefined();
    expect(t.explain(A)).toEqual({
      lastAck: new Date(10_000).toISOString(),
      ackClient: 'ipxe',
      firstScriptRequest: new Date(10_400).toISOString(),
      ackToScriptSeconds: 0.4,
    });
  });

  it('a new ACK starts over; an ACK with no script yet shows null', () => {
    const t = new BootTimings();
    t.acknowledged(A, IP_A, 'pxe', 1_000);
    t.acknowledged(A, IP_A, 'ipxe', 2_000);
    expect(t.explain(A)).toMatchObject({ ackClient: 'ipxe', firstScriptRequest: null, ackToScriptSeconds: null });
    expect(t.scriptRequested({ mac: A }, 17_300)).toEqual({ ms: 15_300, client: 'ipxe' });
  });

  it('knows nothing of a host without an ACK, or of an address another host took since', () => {
    const t = new BootTimings();
    expect(t.scriptRequested({ ip: IP_A }, 1)).toBeUndefined();
    expect(t.explain(A)).toBeUndefined();
    t.acknowledged(A, IP_A, 'ipxe', 1_000);
    expect(t.macOf(IP_A)).toBe(A);
    t.acknowledged(B, IP_A, 'ipxe', 2_000);
    expect(t.macOf(IP_A)).toBe(B);
    expect(t.macOf(IP_B)).toBeUndefined();
    expect(t.scriptRequested({ ip: IP_A }, 2_500)).toEqual({ ms: 500, client: 'ipxe' });
    expect(t.explain(A)).toMatchObject({ firstScriptRequest: null });
  });

  it('keeps at most maxHosts, the least recently acknowledged going first', () => {
    const t = new BootTimings({ maxHosts: 1 });
    t.acknowledged(A, IP_A, 'ipxe', 1);
    t.acknowledged(B, IP_B, 'ipxe', 2);
    expect(t.explain(A)).toBeUndefined();
    expect(t.scriptRequested({ ip: IP_A }, 3)).toBeUndefined();
    expect(t.explain(B)).toBeDefined();
  });

  it('observes each first request in metalboot_boot_ack_to_script_seconds', async () => {
    const registry = new Registry();
    const t = new BootTimings({ registry });
    t.acknowledged(A, IP_A, 'ipxe', 0);
    t.scriptRequested({ ip: IP_A }, 15_000);
    t.scriptRequested({ mac: A }, 15_100);
    t.acknowledged(B, IP_B, 'ipxe', 0);
    t.scriptRequested({ mac: B }, 300);
    const text = await registry.metrics();
    expect(text).toContain('metalboot_boot_ack_to_script_seconds_count 2');
    expect(text).toContain('metalboot_boot_ack_to_script_seconds_bucket{le="0.5"} 1');
    expect(text).toContain('metalboot_boot_ack_to_script_seconds_bucket{le="13"} 1');
    expect(text).toContain('metalboot_boot_ack_to_script_seconds_bucket{le="20"} 2');
  });

  it('says it in an Event', () => {
    expect(ackToScriptText({ ms: 15_340, client: 'ipxe' })).toBe('first script request 15.3 s after the DHCP ACK');
  });
});
