import { describe, expect, it } from 'vitest';
import { type BootResult, resultsTable, spread } from './firmware-boot.js';

const boot = (o: Partial<BootResult>): BootResult => ({
  mode: 'metalboot-ra',
  firmware: 'bios',
  run: 1,
  ack: 3.3,
  bootIpxe: 3.4,
  kernelRequest: 3.5,
  kernelRunning: 5,
  solicitation: 3.0,
  advertisement: 3.002,
  load1: 1,
  ...o,
});

describe('firmware-boot report', () => {
  it('spread: the median and the range, and how many runs never got there', () => {
    expect(spread([3, 1, 2])).toBe('2.0 (1.0–3.0)');
    expect(spread([4.25])).toBe('4.3');
    expect(spread([1, undefined, 3])).toBe('2.0 (1.0–3.0), 1 of 3 missing');
    expect(spread([undefined])).toBe('—');
  });

  it('one row per firmware and server, the ACK → script gap and RS → RA latency', () => {
    const table = resultsTable(
      [
        boot({ run: 1 }),
        boot({ run: 2, ack: 3.5, bootIpxe: 3.6, kernelRunning: 6, advertisement: 3.004 }),
        boot({ mode: 'metalboot-no-ra', ack: 3.3, bootIpxe: 18.4, kernelRunning: 20, advertisement: undefined }),
      ],
      ['metalboot-ra', 'metalboot-no-ra', 'dnsmasq'],
      ['bios', 'uefi'],
    ).split('\n');
    expect(table).toHaveLength(4);
    expect(table[2]).toBe(
      '| SeaBIOS + iPXE | metalboot-ra | 3.4 (3.3–3.5) s | 0.1 (0.1–0.1) s | 3.5 (3.4–3.6) s | 5.5 (5.0–6.0) s | 3 (2–4) ms |',
    );
    expect(table[3]).toBe('| SeaBIOS + iPXE | metalboot-no-ra | 3.3 s | 15.1 s | 18.4 s | 20.0 s | none |');
  });
});
