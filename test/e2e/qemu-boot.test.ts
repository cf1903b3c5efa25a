/**
 * End-to-end boots of real firmware through metalboot, in QEMU under TCG (software emulation;
 * KVM hangs on these machines), on a bridge in a network namespace (test/support/boot-lab.ts):
 * - SeaBIOS with the iPXE e1000 ROM from ipxe-qemu: DHCP as iPXE → boot.ipxe → host script →
 *   kernel + initramfs through the image proxy;
 * - OVMF (UEFI) firmware PXE: DHCP → snponly.efi over TFTP → iPXE → the same chain.
 * The image proxy runs in its worker thread on port 8082 (--image-listen, the Helm chart's
 * default): the host scripts send both firmwares there for the kernel and initramfs.
 * The "IPA kernel" is Debian's cloud kernel with a random initramfs: the kernel starts, prints
 * its banner on the serial console and then fails to find a root, which is all a network-boot
 * server is responsible for. Seconds from power-on are printed, never asserted.
 * The lab has IPv6 on and metalboot its router advertisements (the default): iPXE's router
 * solicitation is answered, and /debug/explain shows each host's time from ACK to script.
 * metalboot's own timeline of each boot (/debug/boots/<mac>) names every milestone in order,
 * with measured durations that add up to the time from the first to the last.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatStep, startBootLab, SERVER_IP, VMS, type BootLab, type Step } from '../support/boot-lab.js';

describe('QEMU boots through metalboot', () => {
  let bootLab: BootLab;

  beforeAll(async () => {
    bootLab = await startBootLab(['--image-listen', `${SERVER_IP}:8082`]);
  }, 300_000);

  afterAll(async () => {
    await bootLab?.close();
  });

  const report = (kind: string, steps: Step[]) =>
    console.log(`${kind} boot timeline:\n${steps.map(formatStep).join('\n')}`);
  const logs = () => bootLab.server.logs();
  const http = async (url: string) =>
    (await bootLab.lab.exec('srv', 'curl', ['-sf', `http://${SERVER_IP}:8080${url}`], { check: true })).stdout;
  /** The router advertisements answered the VM's solicitation, and metalboot timed ACK → script. */
  const expectAnswered = async (mac: string, answeredBefore: number) => {
    const metrics = await http('/metrics');
    const answered = Number(/^metalboot_ra_solicitations_answered_total (\d+)/m.exec(metrics)?.[1]);
    expect(answered).toBeGreaterThan(answeredBefore);
    const explain = JSON.parse(await http(`/debug/explain?mac=${mac}`)) as {
      timing: { ackClient: string; ackToScriptSeconds: number };
    };
    expect(explain.timing.ackClient).toBe('ipxe');
    expect(typeof explain.timing.ackToScriptSeconds).toBe('number');
    console.log(`${mac}: ${explain.timing.ackToScriptSeconds} s from the ACK to iPXE to its first script request`);
    return answered;
  };
  let answered = 0;
  /**
   * metalboot's own timeline of the boot (/debug/boots/<mac>): every milestone, in order, each
   * measured from the one before; together they make the wall time from the first to the last.
   */
  const expectTimeline = async (mac: string, milestones: readonly string[]) => {
    const t = JSON.parse(await http(`/debug/boots/${mac}`)) as {
      boot: number;
      spanMs: number;
      milestones: { milestone: string; at: string; msSincePrevious: number | null; boot: number }[];
    };
    const boot = t.milestones.filter((m) => m.boot === t.boot);
    console.log(
      `${mac} timeline:\n${boot.map((m) => `  ${m.milestone.padEnd(16)} +${m.msSincePrevious ?? 0} ms`).join('\n')}`,
    );
    const names = boot.map((m) => m.milestone);
    expect(names[0]).toBe(milestones[0]);
    // In order: each expected milestone after the one before it (repeats merge into one entry).
    const positions = milestones.map((m) => names.indexOf(m));
    expect(positions.every((p) => p >= 0)).toBe(true);
    expect(positions).toEqual([...positions].sort((a, b) => a - b));
    const sum = t.milestones.reduce((s, m) => s + (m.msSincePrevious ?? 0), 0);
    expect(sum).toBe(t.spanMs);
    expect(sum).toBe(Date.parse(t.milestones.at(-1)!.at) - Date.parse(t.milestones[0]!.at));
  };

  it('metalboot advertises on the lab bridge', async () => {
    await bootLab.server.waitForLog((l) => l.msg === 'radvd started', 15_000);
    expect(bootLab.server.logs().some((l) => String(l.msg).startsWith('no router advertisements'))).toBe(false);
  });

  it('SeaBIOS + iPXE ROM boots the inspector kernel', async () => {
    const vm = VMS.bios;
    const { steps, serial } = await bootLab.boot(vm);
    report('BIOS', steps);
    expect(steps.map((s) => [s.name, s.at !== undefined])).toEqual([
      ['DHCP ACK', true],
      ['GET /boot.ipxe → host script', true],
      ['kernel through the image proxy', true],
      ['initramfs through the image proxy', true],
      ['kernel running (serial: "Linux version")', true],
    ]);
    const ack = logs().find((l) => l.msg === 'dhcp reply' && l.mac === vm.mac && l.type === 'ACK');
    expect(ack).toMatchObject({
      ip: vm.ip,
      client: 'ipxe',
      boot: `http://${SERVER_IP}:8080/boot.ipxe`,
      host: `metal3/${vm.name}`,
    });
    expect(logs().find((l) => l.msg === 'boot script served' && l.mac === vm.mac)).toMatchObject({
      script: 'inspector',
    });
    expect(logs().find((l) => l.msg === 'image served' && l.peer === vm.ip)).toMatchObject({
      thread: 'image-worker',
      status: 200,
    });
    expect(serial()).toMatch(/Linux version \d/);
    answered = await expectAnswered(vm.mac, answered);
    await expectTimeline(vm.mac, [
      'ipxe-dhcp-offer',
      'ipxe-dhcp-ack',
      'boot-script',
      'host-script',
      'kernel',
      'initramfs',
    ]);
  }, 300_000);

  it('OVMF UEFI PXE chain-loads snponly.efi over TFTP and boots the inspector kernel', async () => {
    const vm = VMS.uefi;
    const { steps, serial } = await bootLab.boot(vm);
    report('UEFI', steps);
    expect(steps.map((s) => [s.name, s.at !== undefined])).toEqual([
      ['DHCP ACK', true],
      ['TFTP snponly.efi', true],
      ['DHCP ACK to iPXE', true],
      ['GET /boot.ipxe → host script', true],
      ['kernel through the image proxy', true],
      ['initramfs through the image proxy', true],
      ['kernel running (serial: "Linux version")', true],
    ]);
    const firstAck = logs().find((l) => l.msg === 'dhcp reply' && l.mac === vm.mac && l.type === 'ACK');
    expect(firstAck).toMatchObject({ ip: vm.ip, client: 'pxe', arch: 7, boot: 'snponly.efi' });
    expect(logs().find((l) => l.msg === 'boot script served' && l.mac === vm.mac)).toMatchObject({
      script: 'inspector',
    });
    expect(logs().find((l) => l.msg === 'image served' && l.peer === vm.ip)).toMatchObject({
      thread: 'image-worker',
      status: 200,
    });
    // The UEFI console goes to the serial port: iPXE's banner, then the kernel's.
    expect(serial()).toMatch(/iPXE/);
    expect(serial()).toMatch(/Linux version \d/);
    answered = await expectAnswered(vm.mac, answered);
    await expectTimeline(vm.mac, [
      'dhcp-offer',
      'dhcp-ack',
      'tftp-start',
      'tftp-end',
      'ipxe-dhcp-offer',
      'ipxe-dhcp-ack',
      'boot-script',
      'host-script',
      'kernel',
      'initramfs',
    ]);
  }, 300_000);
});
