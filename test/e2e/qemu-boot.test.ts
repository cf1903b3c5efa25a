/**
 * End-to-end boots of real firmware through metalboot, in QEMU under TCG (software emulation;
 * KVM hangs on these machines), on a bridge in a network namespace:
 * - SeaBIOS with the iPXE e1000 ROM from ipxe-qemu: DHCP as iPXE → boot.ipxe → host script →
 *   kernel + initramfs through the image proxy;
 * - OVMF (UEFI) firmware PXE: DHCP → snponly.efi over TFTP → iPXE → the same chain.
 * The "IPA kernel" is Debian's cloud kernel (test/support/linux-kernel.ts) with a random
 * initramfs: the kernel starts, prints its banner on the serial console and then fails to find
 * a root, which is all a network-boot server is responsible for. The upstream standing in for
 * Ironic's httpd is Python's http.server in the server namespace.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { createLab, requireRoot, requireTools, type Lab } from '../support/netns.js';
import { startMetalboot, type MetalbootProcess } from '../support/metalboot-process.js';
import { testKernel } from '../support/linux-kernel.js';

const SERVER = '10.78.0.1';
const BIOS_MAC = '52:54:00:5e:00:01';
const UEFI_MAC = '52:54:00:5e:00:02';

const BMH = (name: string, mac: string, ip: string) => `---
apiVersion: metal3.io/v1alpha1
kind: BareMetalHost
metadata:
  name: ${name}
  namespace: metal3
  annotations:
    metal3.vcluster.com/ip-address: ${ip}/24
spec:
  bootMACAddress: "${mac}"
`;

interface Step { name: string; at: number | undefined }

describe('QEMU boots through metalboot', () => {
  let lab: Lab;
  let server: MetalbootProcess;
  let dir: string;

  beforeAll(async () => {
    requireRoot();
    requireTools('ip', 'qemu', 'ipxe', 'ovmf', 'tun');
    for (const f of ['/usr/lib/ipxe/qemu/pxe-e1000.rom', '/usr/share/OVMF/OVMF_CODE_4M.fd', '/usr/share/OVMF/OVMF_VARS_4M.fd', '/usr/lib/ipxe/snponly.efi']) {
      if (!existsSync(f)) throw new Error(`${f} is missing (Debian packages ipxe, ipxe-qemu, ovmf)`);
    }
    lab = await createLab({ switchNamespace: 'srv', bridgeIp: `${SERVER}/24` });
    dir = lab.dir;
    // The stand-in for Ironic's httpd: the IPA kernel and initramfs under images/.
    mkdirSync(path.join(dir, 'ironic/images'), { recursive: true });
    copyFileSync(testKernel(), path.join(dir, 'ironic/images/ironic-python-agent.kernel'));
    writeFileSync(path.join(dir, 'ironic/images/ironic-python-agent.initramfs'), randomBytes(2 * 1024 * 1024));
    const upstream = lab.spawn('srv', 'python3', ['-m', 'http.server', '6180', '--bind', '127.0.0.1', '--directory', path.join(dir, 'ironic')]);
    await lab.waitForOutput(upstream, /Serving HTTP/, 15_000);
    writeFileSync(path.join(dir, 'bmh.yaml'), BMH('bios-0', BIOS_MAC, '10.78.0.21') + BMH('uefi-0', UEFI_MAC, '10.78.0.22'));
    server = await startMetalboot(lab, 'srv', [
      '--server-ip', `${SERVER}/24`, '--bmh-file', path.join(dir, 'bmh.yaml'), '--tftp-root', '/usr/lib/ipxe',
      '--ironic-http-url', 'http://127.0.0.1:6180', '--inspector-extra-kernel-param', 'console=ttyS0',
    ]);
  }, 120_000);

  afterAll(async () => {
    await lab?.close();
  });

  async function boot(kind: 'bios' | 'uefi', mac: string): Promise<{ steps: Step[]; serial: () => string }> {
    const { ifname } = await lab.addTap();
    const serialPath = path.join(dir, `${kind}-serial.log`);
    const args = ['-accel', 'tcg', '-nodefaults', '-display', 'none', '-m', '256', '-no-reboot', '-serial', `file:${serialPath}`,
      '-netdev', `tap,id=n0,ifname=${ifname},script=no,downscript=no`];
    if (kind === 'bios') {
      args.push('-device', `e1000,netdev=n0,mac=${mac},romfile=/usr/lib/ipxe/qemu/pxe-e1000.rom`, '-boot', 'n');
    } else {
      const vars = path.join(dir, 'OVMF_VARS.fd');
      copyFileSync('/usr/share/OVMF/OVMF_VARS_4M.fd', vars);
      args.push('-machine', 'q35',
        '-drive', 'if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd',
        '-drive', `if=pflash,format=raw,unit=1,file=${vars}`,
        '-fw_cfg', 'name=opt/org.tianocore/IPv6PXESupport,string=n',
        // romfile= (empty): OVMF's own virtio-net driver, so the firmware PXE client asks.
        '-device', `virtio-net-pci,netdev=n0,mac=${mac},romfile=,bootindex=1`);
    }
    const poweredOn = Date.now();
    lab.spawn('srv', 'qemu-system-x86_64', args);
    const serial = () => (existsSync(serialPath) ? readFileSync(serialPath, 'latin1') : '');
    const logTime = (l: Record<string, unknown>) => (l.time as number) - poweredOn;
    const wait = async (name: string, match: (l: Record<string, unknown>) => boolean): Promise<Step> => {
      const line = await server.waitForLog(match, 150_000);
      return { name, at: logTime(line) };
    };
    const steps: Step[] = [];
    steps.push(await wait('DHCP ACK', (l) => l.msg === 'dhcp reply' && l.mac === mac && l.type === 'ACK'));
    if (kind === 'uefi') {
      steps.push(await wait('TFTP snponly.efi', (l) => l.msg === 'transfer complete' && String(l.file).includes('snponly.efi')));
      steps.push(await wait('DHCP ACK to iPXE', (l) => l.msg === 'dhcp reply' && l.mac === mac && l.type === 'ACK' && l.client === 'ipxe'));
    }
    steps.push(await wait('GET /boot.ipxe → host script', (l) => l.msg === 'boot script served' && l.mac === mac));
    const ip = kind === 'bios' ? '10.78.0.21' : '10.78.0.22';
    steps.push(await wait('kernel through the image proxy', (l) => l.msg === 'image served' && l.peer === ip && l.url === '/images/ironic-python-agent.kernel' && l.status === 200));
    steps.push(await wait('initramfs through the image proxy', (l) => l.msg === 'image served' && l.peer === ip && l.url === '/images/ironic-python-agent.initramfs' && l.status === 200));
    const deadline = Date.now() + 120_000;
    while (!/Linux version \d/.test(serial()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
    steps.push({ name: 'kernel running (serial: "Linux version")', at: /Linux version \d/.test(serial()) ? Date.now() - poweredOn : undefined });
    return { steps, serial };
  }

  function report(kind: string, steps: Step[]): void {
    // Seconds from power-on to each step: reported, never asserted (timings vary under TCG).
    console.log(`${kind} boot timeline:\n${steps.map((s) => `  ${((s.at ?? 0) / 1000).toFixed(1).padStart(6)} s  ${s.name}`).join('\n')}`);
  }

  it('SeaBIOS + iPXE ROM boots the inspector kernel', async () => {
    const { steps, serial } = await boot('bios', BIOS_MAC);
    report('BIOS', steps);
    expect(steps.map((s) => s.name)).toEqual(['DHCP ACK', 'GET /boot.ipxe → host script', 'kernel through the image proxy', 'initramfs through the image proxy', 'kernel running (serial: "Linux version")']);
    expect(serial()).toMatch(/Linux version \d/);
    const acks = server.logs().filter((l) => l.msg === 'dhcp reply' && l.mac === BIOS_MAC && l.type === 'ACK');
    expect(acks[0]).toMatchObject({ ip: '10.78.0.21', client: 'ipxe', boot: `http://${SERVER}:8080/boot.ipxe`, host: 'metal3/bios-0' });
    expect(server.logs().find((l) => l.msg === 'boot script served' && l.mac === BIOS_MAC)).toMatchObject({ script: 'inspector' });
  }, 200_000);

  it('OVMF UEFI PXE chain-loads snponly.efi over TFTP and boots the inspector kernel', async () => {
    const { steps, serial } = await boot('uefi', UEFI_MAC);
    report('UEFI', steps);
    const firstAck = server.logs().find((l) => l.msg === 'dhcp reply' && l.mac === UEFI_MAC && l.type === 'ACK');
    expect(firstAck).toMatchObject({ ip: '10.78.0.22', client: 'pxe', arch: 7, boot: 'snponly.efi' });
    expect(server.logs().find((l) => l.msg === 'boot script served' && l.mac === UEFI_MAC)).toMatchObject({ script: 'inspector' });
    expect(steps.map((s) => s.name)).toEqual(['DHCP ACK', 'TFTP snponly.efi', 'DHCP ACK to iPXE', 'GET /boot.ipxe → host script', 'kernel through the image proxy', 'initramfs through the image proxy', 'kernel running (serial: "Linux version")']);
    // The UEFI console goes to the serial port: iPXE's banner, then the kernel's.
    expect(serial()).toMatch(/iPXE/);
    expect(serial()).toMatch(/Linux version \d/);
  }, 200_000);
});
