import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { qemuArgs, readSerial, uefiPxeFwCfg, waitForSerial } from './qemu-vm.js';

const fwCfg = (args: string[]) => args.filter((_, i) => args[i - 1] === '-fw_cfg');

describe('qemuArgs', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'qemu-vm-test-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const uefi = { firmware: 'uefi', mac: '52:54:00:00:00:01', name: 'u' } as const;
  const o = () => ({ tap: 'tap0', serialPath: path.join(dir, 'serial.log'), dir });

  it('UEFI by default: IPv6 PXE off, IPv4 PXE left on (the command line the QEMU e2e test always had)', () => {
    expect(fwCfg(qemuArgs(uefi, o()))).toEqual(['name=opt/org.tianocore/IPv6PXESupport,string=n']);
  });

  it.each([
    ['PXEv6 only', { ipv4: false, ipv6: true }, ['IPv4PXESupport,string=n', 'IPv6PXESupport,string=y']],
    ['both PXE clients', { ipv6: true }, ['IPv6PXESupport,string=y']],
    ['no PXE (HTTP boot only)', { ipv4: false, ipv6: false }, ['IPv4PXESupport,string=n', 'IPv6PXESupport,string=n']],
  ])('%s', (_name, uefiPxe, expected) => {
    expect(fwCfg(qemuArgs(uefi, { ...o(), uefiPxe }))).toEqual(expected.map((e) => `name=opt/org.tianocore/${e}`));
  });

  it('SeaBIOS ignores uefiPxe: no fw_cfg, no pflash', () => {
    const args = qemuArgs(
      { firmware: 'bios', mac: '52:54:00:00:00:02', name: 'b' },
      { ...o(), uefiPxe: { ipv6: true } },
    );
    expect(args.join(' ')).not.toMatch(/fw_cfg|pflash/);
    expect(args).toContain('e1000,netdev=n0,mac=52:54:00:00:00:02,romfile=/usr/lib/ipxe/qemu/pxe-e1000.rom');
  });

  it('uefiPxeFwCfg puts each setting after its own -fw_cfg', () => {
    expect(uefiPxeFwCfg({ ipv4: false })).toEqual([
      '-fw_cfg',
      'name=opt/org.tianocore/IPv4PXESupport,string=n',
      '-fw_cfg',
      'name=opt/org.tianocore/IPv6PXESupport,string=n',
    ]);
  });
});

describe('waitForSerial', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'qemu-serial-test-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reads nothing before QEMU creates the file', () => {
    expect(readSerial(path.join(dir, 'none.log'))).toBe('');
  });

  it('resolves with the console once the line appears', async () => {
    const file = path.join(dir, 'serial.log');
    setTimeout(() => writeFileSync(file, 'BdsDxe: loading\r\niPXE initialising devices...ok\r\n'), 20);
    await expect(waitForSerial(file, /iPXE initialising/, 2_000, { pollMs: 5 })).resolves.toContain('BdsDxe');
  });

  it('hands every poll the console text, for timing earlier lines', async () => {
    const file = path.join(dir, 'serial.log');
    writeFileSync(file, 'iPXE initialising devices...ok\r\nLinux version 6.1\r\n');
    const polled: string[] = [];
    await waitForSerial(file, 'Linux version', 1_000, { pollMs: 5, onPoll: (t) => polled.push(t) });
    expect(polled).toEqual(['iPXE initialising devices...ok\r\nLinux version 6.1\r\n']);
  });

  it('rejects after the timeout, quoting the console', async () => {
    const file = path.join(dir, 'serial.log');
    writeFileSync(file, 'Start PXE over IPv6.');
    await expect(waitForSerial(file, 'Linux version', 30, { pollMs: 5 })).rejects.toThrow(
      /no Linux version on the serial console within 30 ms:\nStart PXE over IPv6\./,
    );
  });

  it('rejects at once when QEMU has exited', async () => {
    const started = Date.now();
    await expect(
      waitForSerial(path.join(dir, 'serial.log'), 'x', 10_000, { pollMs: 5, stillRunning: () => false }),
    ).rejects.toThrow(/QEMU exited before x/);
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});
