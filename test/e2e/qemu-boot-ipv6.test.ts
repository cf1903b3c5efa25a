/**
 * Real UEFI firmware booting over IPv6 only, through metalboot, in QEMU under TCG on a lab bridge
 * with no IPv4 at all (docs/research/ipv6-firmware-boot.md has what each firmware sends):
 * - OVMF UEFI PXEv6: DHCPv6 → `tftp://[fd00:79::1]/snponly.efi` over TFTP on IPv6 → iPXE (after
 *   metalboot's router advertisement with the M flag) → DHCPv6 as iPXE →
 *   `http://[fd00:79::1]:8080/boot.ipxe` → the host's inspector script → kernel and initramfs
 *   through the image proxy (its worker, on [::]:8082) over IPv6 → the kernel's banner.
 * - OVMF UEFI HTTP boot over IPv6: DHCPv6 (vendor class HTTPClient) →
 *   `http://[fd00:79::1]:8080/ipxe/snponly.efi` → the same chain. OVMF tries HTTP boot over
 *   IPv4 first (about a minute of DHCPv4 that nobody answers).
 * The hosts are BareMetalHosts whose only address is IPv6 (an IPv6 `ip-address` annotation).
 * Seconds from power-on are printed, never asserted.
 */
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLab, type Lab } from '../../lab/netns.js';
import { qemuArgs, readSerial, requireQemuBoot, waitForSerial } from '../../lab/qemu-vm.js';
import { startStaticHttpd } from '../../lab/static-httpd.js';
import { testKernel } from '../support/linux-kernel.js';
import { startMetalboot, type MetalbootProcess } from '../support/metalboot-process.js';
import { bmhManifest } from '../support/boot-lab.js';

const SERVER = 'fd00:79::1';
const VMS = {
  pxe6: { firmware: 'uefi' as const, mac: '52:54:00:6e:00:01', ip: 'fd00:79::21', name: 'uefi-pxe6' },
  http6: { firmware: 'uefi' as const, mac: '52:54:00:6e:00:02', ip: 'fd00:79::22', name: 'uefi-http6' },
};

const bmh = (vm: (typeof VMS)[keyof typeof VMS]) => bmhManifest(vm, { prefixLength: 64 });

describe('QEMU boots over IPv6 through metalboot', () => {
  let lab: Lab;
  let server: MetalbootProcess;

  beforeAll(async () => {
    requireQemuBoot();
    lab = await createLab({ switchNamespace: 'srv', ipv6: true });
    const dir = lab.dir;
    // No DAD: the server address is usable at once.
    await lab.exec('srv', 'sysctl', ['-qw', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0'], {
      check: true,
    });
    await lab.exec('srv', 'sysctl', ['-qw', 'net.ipv6.conf.br0.accept_dad=0'], { check: true });
    await lab.exec('srv', 'ip', ['addr', 'add', `${SERVER}/64`, 'dev', 'br0', 'nodad'], { check: true });
    mkdirSync(path.join(dir, 'ironic/images'), { recursive: true });
    copyFileSync(testKernel(), path.join(dir, 'ironic/images/ironic-python-agent.kernel'));
    writeFileSync(path.join(dir, 'ironic/images/ironic-python-agent.initramfs'), randomBytes(2 * 1024 * 1024));
    await startStaticHttpd(lab, 'srv', { dir: path.join(dir, 'ironic'), host: '127.0.0.1', port: 6180 });
    writeFileSync(path.join(dir, 'bmh.yaml'), Object.values(VMS).map(bmh).join(''));
    server = await startMetalboot(lab, 'srv', [
      // An IPv6-only network: no DHCPv4, no TFTP over IPv4.
      '--server-ip',
      '10.79.0.1/24',
      '--dhcp=false',
      '--tftp-listen',
      '',
      '--dhcp6-server-ip',
      `${SERVER}/64`,
      '--dhcp6-interface',
      'br0',
      '--bmh-file',
      path.join(dir, 'bmh.yaml'),
      '--tftp-root',
      '/usr/lib/ipxe',
      '--ironic-http-url',
      'http://127.0.0.1:6180',
      '--image-listen',
      '[::]:8082',
      '--inspector-extra-kernel-param',
      'console=ttyS0',
    ]);
    await server.waitForLog((l) => l.msg === 'radvd started', 15_000);
  }, 300_000);

  afterAll(async () => {
    await lab?.close();
  });

  const logs = () => server.logs();
  const http = async (url: string) =>
    (await lab.exec('srv', 'curl', ['-sfg', `http://[${SERVER}]:8080${url}`], { check: true })).stdout;

  /** Powers on `vm`; resolves when the kernel's banner is on the serial console. */
  async function boot(vm: (typeof VMS)[keyof typeof VMS], pxe: { ipv4: boolean; ipv6: boolean }) {
    const { ifname } = await lab.addTap();
    const serialPath = path.join(lab.dir, `${vm.name}-serial.log`);
    const poweredOn = Date.now();
    const qemu = lab.spawn(
      'srv',
      'qemu-system-x86_64',
      qemuArgs(vm, { tap: ifname, serialPath, dir: lab.dir, uefiPxe: pxe }),
    );
    const serial = await waitForSerial(serialPath, /Linux version \d/, 240_000, {
      stillRunning: () => qemu.exitCode === null && qemu.signalCode === null,
    }).catch((err: unknown) => {
      throw new Error(`${String(err)}\n--- metalboot ---\n${JSON.stringify(logs().slice(-30), null, 1)}`);
    });
    qemu.kill('SIGKILL');
    const mine = logs().filter((l) => l.mac === vm.mac || l.peer === vm.ip);
    console.log(
      `${vm.name}: kernel banner ${((Date.now() - poweredOn) / 1000).toFixed(1)} s after power-on\n${mine
        .map(
          (l) =>
            `  ${((Number(l.time) - poweredOn) / 1000).toFixed(1).padStart(6)} s  ${l.msg} ${l.type ?? ''} ${l.client ?? ''} ${l.boot ?? l.url ?? l.script ?? ''}`,
        )
        .join('\n')}`,
    );
    return serial;
  }

  const replies = (mac: string, client: string) =>
    logs().filter((l) => l.msg === 'dhcp6 reply' && l.mac === mac && l.type === 'REPLY' && l.client === client);
  const images = (ip: string) =>
    logs()
      .filter((l) => l.msg === 'image served' && l.peer === ip && l.status === 200)
      .map((l) => l.url);

  it('advertises with the Managed flag on the lab bridge', async () => {
    const metrics = await http('/metrics');
    expect(metrics).toMatch(/^metalboot_dhcp6_dropped_total\{reason="malformed"\} 0$/m);
    expect(logs().some((l) => String(l.msg).startsWith('no router advertisements'))).toBe(false);
  });

  it('OVMF PXEv6 loads snponly.efi over TFTP on IPv6, and iPXE boots the inspector kernel over IPv6', async () => {
    const vm = VMS.pxe6;
    const serial = await boot(vm, { ipv4: false, ipv6: true });
    expect(replies(vm.mac, 'pxe')[0]).toMatchObject({
      ip: vm.ip,
      arch: 7,
      boot: `tftp://[${SERVER}]/snponly.efi`,
      macFrom: 'link-local-eui64',
    });
    expect(logs().some((l) => l.msg === 'transfer complete' && String(l.file).includes('snponly.efi'))).toBe(true);
    expect(replies(vm.mac, 'ipxe')[0]).toMatchObject({ ip: vm.ip, boot: `http://[${SERVER}]:8080/boot.ipxe` });
    expect(logs().find((l) => l.msg === 'boot script served' && l.mac === vm.mac)).toMatchObject({
      script: 'inspector',
    });
    // Both images reached the host over IPv6 (iPXE may fetch one again after a slow first try).
    expect(new Set(images(vm.ip))).toEqual(
      new Set(['/images/ironic-python-agent.kernel', '/images/ironic-python-agent.initramfs']),
    );
    expect(serial).toMatch(/iPXE/);
    const explain = JSON.parse(await http(`/debug/explain?mac=${vm.mac}`)) as {
      dhcp6: { ip: string; boot: Record<string, string> };
    };
    expect(explain.dhcp6).toMatchObject({ ip: vm.ip, boot: { 'uefi-x64-pxe6': `tftp://[${SERVER}]/snponly.efi` } });
  }, 300_000);

  it('OVMF UEFI HTTP boot over IPv6 fetches snponly.efi by URL and boots the inspector kernel', async () => {
    const vm = VMS.http6;
    await boot(vm, { ipv4: false, ipv6: false });
    expect(replies(vm.mac, 'uefi-http')[0]).toMatchObject({
      ip: vm.ip,
      boot: `http://[${SERVER}]:8080/ipxe/snponly.efi`,
    });
    expect(replies(vm.mac, 'ipxe')[0]).toMatchObject({ ip: vm.ip });
    // Both images reached the host over IPv6 (iPXE may fetch one again after a slow first try).
    expect(new Set(images(vm.ip))).toEqual(
      new Set(['/images/ironic-python-agent.kernel', '/images/ironic-python-agent.initramfs']),
    );
    expect(readSerial(path.join(lab.dir, `${vm.name}-serial.log`))).toMatch(/Linux version \d/);
  }, 300_000);
});
