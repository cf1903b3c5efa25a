/**
 * End-to-end UEFI Secure Boot through metalboot, with real firmware and signed
 * binaries, all from Debian packages: OVMF built with Secure Boot and Microsoft's keys enrolled
 * (ovmf: OVMF_CODE_4M.secboot.fd + OVMF_VARS_4M.ms.fd), the Microsoft-signed shim (shim-signed),
 * Debian's signed GRUB network image (grub-efi-amd64-signed) and Debian's signed cloud kernel as
 * the "IPA kernel" (test/support/linux-kernel.ts), in QEMU under TCG on the lab bridge.
 *
 * - A BareMetalHost with spec.bootMode UEFISecureBoot (inspecting): DHCP → shimx64.efi over
 *   TFTP → grubx64.efi → grub/grub.cfg, rendered for the host its address belongs to → the
 *   kernel and initramfs over TFTP, fetched through the image proxy → the kernel says Secure
 *   Boot is enabled on the serial console.
 * - A Secure Boot host in state provisioning: Ironic's per-node GRUB configuration
 *   (grub.cfg-01-<mac>, linuxefi with an Ironic HTTP URL) rewritten by metalboot names a kernel
 *   whose signature was stripped: GRUB, through shim, refuses it ("bad shim signature").
 * - A UEFI host without UEFISecureBoot, in the same run, still gets iPXE (plain OVMF).
 * Times are printed, never asserted.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qemuArgs, readSerial, waitForSerial } from '../../lab/qemu-vm.js';
import {
  formatStep,
  SECURE_BOOT_VM,
  SERVER_IP,
  secureBootHost,
  startBootLab,
  VMS,
  type BootLab,
} from '../support/boot-lab.js';
import { testKernel } from '../support/linux-kernel.js';

interface SbVm {
  readonly firmware: 'uefi';
  readonly mac: string;
  readonly ip: string;
  readonly name: string;
}
const SB: SbVm = SECURE_BOOT_VM as SbVm;
const SB_UNSIGNED: SbVm = { firmware: 'uefi', mac: '52:54:00:5e:00:32', ip: '10.78.0.32', name: 'sb-unsigned' };

const host = secureBootHost;

/** Ironic's pxe_grub_config.template as Ironic writes it for a node it deploys, pointing at its own httpd. */
const ironicGrubConfig = `set default=deploy
set timeout=5
set hidden_timeout_quiet=false

menuentry "deploy"  {
    linuxefi http://127.0.0.1:6180/images/unsigned.kernel selinux=0 troubleshoot=0 text ipa-api-url=http://127.0.0.1:6385 boot_server=127.0.0.1
    initrdefi http://127.0.0.1:6180/images/ironic-python-agent.initramfs
}
`;

/** The parts of /debug/explain this test reads. */
interface Explained {
  readonly chain: { readonly chain: string; readonly why: string };
  readonly dhcp: { readonly boot: Readonly<Record<string, unknown>> };
}

describe('UEFI Secure Boot through metalboot', () => {
  let bootLab: BootLab;
  let work: string;

  beforeAll(async () => {
    work = mkdtempSync(path.join(tmpdir(), 'metalboot-sb-'));
    // The same Debian kernel with its Authenticode signature removed: what shim must refuse.
    const unsigned = path.join(work, 'unsigned.kernel');
    execFileSync('osslsigncode', ['remove-signature', '-in', testKernel(), '-out', unsigned], { timeout: 60_000 });
    bootLab = await startBootLab(['--image-listen', `${SERVER_IP}:8082`], {
      extraHosts: host(SB, 'inspecting') + host(SB_UNSIGNED, 'provisioning'),
      ironicFiles: {
        'images/unsigned.kernel': readFileSync(unsigned),
        [`grub.cfg-01-${SB_UNSIGNED.mac.replaceAll(':', '-')}`]: ironicGrubConfig,
      },
    });
  }, 300_000);

  afterAll(async () => {
    await bootLab?.close();
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  });

  const logs = () => bootLab.server.logs();
  const http = async (url: string) =>
    (await bootLab.lab.exec('srv', 'curl', ['-sf', `http://${SERVER_IP}:8080${url}`], { check: true })).stdout;

  /** Powers on a Secure Boot VM; resolves with its serial console path once QEMU runs. */
  const powerOn = async (vm: SbVm) => {
    const { ifname } = await bootLab.lab.addTap();
    const serialPath = path.join(bootLab.lab.dir, `${vm.name}-serial.log`);
    const qemu = bootLab.lab.spawn(
      'srv',
      'qemu-system-x86_64',
      qemuArgs(vm, { tap: ifname, serialPath, dir: bootLab.lab.dir, secureBoot: true }),
    );
    return { serialPath, qemu, stillRunning: () => qemu.exitCode === null && qemu.signalCode === null };
  };

  it('/debug/explain names the chain and why', async () => {
    const sb = JSON.parse(await http(`/debug/explain?mac=${SB.mac}`)) as Explained;
    expect(sb.chain).toEqual({ chain: 'secure-boot', why: 'spec.bootMode is UEFISecureBoot' });
    expect(sb.dhcp.boot['uefi-x64-pxe']).toEqual({ kind: 'tftp', file: 'shimx64.efi' });
    expect(sb.dhcp.boot['uefi-x64-http']).toMatchObject({ kind: 'http-binary', file: 'shimx64.efi' });
    const plain = JSON.parse(await http(`/debug/explain?mac=${VMS.uefi.mac}`)) as Explained;
    expect(plain.chain.chain).toBe('ipxe');
    expect(plain.dhcp.boot['uefi-x64-pxe']).toEqual({ kind: 'tftp', file: 'snponly.efi' });
  });

  it('OVMF with Secure Boot enforced boots shim → GRUB → the signed kernel of its inspector config', async () => {
    const poweredOn = Date.now();
    const { serialPath, stillRunning } = await powerOn(SB);
    const at = async (name: string, match: (l: Record<string, unknown>) => boolean) => {
      const line = await bootLab.server.waitForLog(match, 150_000);
      return { name, at: (line.time as number) - poweredOn };
    };
    const steps = [
      await at(
        'DHCP ACK → shimx64.efi',
        (l) => l.msg === 'dhcp reply' && l.mac === SB.mac && l.type === 'ACK' && l.boot === 'shimx64.efi',
      ),
      await at('TFTP shimx64.efi', (l) => l.msg === 'transfer complete' && l.file === 'shimx64.efi'),
      await at('TFTP grubx64.efi', (l) => l.msg === 'transfer complete' && l.file === 'grubx64.efi'),
      await at('grub/grub.cfg → inspector', (l) => l.msg === 'grub config served' && l.mac === SB.mac),
      await at(
        'kernel over TFTP',
        (l) => l.msg === 'transfer complete' && l.file === 'images/ironic-python-agent.kernel',
      ),
    ];
    const serial = await waitForSerial(serialPath, /Linux version \d/, 180_000, { stillRunning });
    const text = await waitForSerial(serialPath, 'secureboot: Secure boot enabled', 60_000, { stillRunning }).catch(
      () => readSerial(serialPath),
    );
    steps.push({ name: 'kernel running, Secure Boot enabled', at: Date.now() - poweredOn });
    console.log(`Secure Boot timeline:\n${steps.map((s) => formatStep(s)).join('\n')}`);
    expect(serial).toMatch(/Linux version \d/);
    expect(text).toContain('secureboot: Secure boot enabled');
    console.log(
      text
        .split('\n')
        .filter((l) => /Secure boot|Linux version|Command line/.test(l))
        .join('\n'),
    );
    const grub = logs().find((l) => l.msg === 'grub config served' && l.mac === SB.mac);
    // What Debian's grubnetx64 asks for: its prefix's grub.cfg, by an absolute TFTP name.
    expect(grub).toMatchObject({ file: '/grub/grub.cfg', config: 'inspector', host: `metal3/${SB.name}`, peer: SB.ip });
    // The kernel came through the image proxy (the worker on :8082), fetched by the TFTP server.
    expect(
      logs().find((l) => l.msg === 'image served' && l.url === '/images/ironic-python-agent.kernel'),
    ).toMatchObject({ status: 200, thread: 'image-worker' });
    expect(text).toMatch(
      /Command line:.*ipa-inspection-callback-url=http:\/\/10\.78\.0\.1:8080\/v1\/continue_inspection/,
    );
    expect(text).toMatch(/Command line:.*console=ttyS0/);
  }, 400_000);

  it("GRUB refuses the unsigned kernel that Ironic's per-node GRUB config names", async () => {
    const { serialPath, stillRunning } = await powerOn(SB_UNSIGNED);
    await bootLab.server.waitForLog(
      (l) => l.msg === 'grub config served' && l.mac === SB_UNSIGNED.mac && l.config === 'installer',
      240_000,
    );
    const text = await waitForSerial(serialPath, 'bad shim signature', 180_000, { stillRunning });
    console.log(
      text
        .split('\n')
        .filter((l) => /error|Welcome to GRUB|metalboot/.test(l))
        .join('\n'),
    );
    expect(text).toContain('error: bad shim signature');
    expect(text).not.toMatch(/Linux version \d/);
    // Ironic's URL was rewritten to a path on metalboot's TFTP server, fetched through the image proxy.
    expect(logs().find((l) => l.msg === 'transfer complete' && l.file === 'images/unsigned.kernel')).toBeDefined();
  }, 400_000);

  it('a UEFI host without UEFISecureBoot still boots iPXE (plain OVMF)', async () => {
    const { steps, serial } = await bootLab.boot(VMS.uefi);
    console.log(`iPXE timeline:\n${steps.map(formatStep).join('\n')}`);
    expect(steps.every((s) => s.at !== undefined)).toBe(true);
    const ack = logs().find((l) => l.msg === 'dhcp reply' && l.mac === VMS.uefi.mac && l.type === 'ACK');
    expect(ack).toMatchObject({ client: 'pxe', boot: 'snponly.efi' });
    expect(serial()).toMatch(/iPXE/);
    expect(serial()).toMatch(/Linux version \d/);
  }, 400_000);
});
