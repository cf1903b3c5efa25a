/**
 * A QEMU virtual machine that network-boots on a lab bridge, under TCG (software emulation: KVM
 * hangs on these machines): SeaBIOS with the iPXE e1000 ROM from ipxe-qemu, or OVMF (UEFI) with
 * its own virtio-net driver so that the firmware's PXE client asks first. Shared by the QEMU
 * end-to-end test, `npm run demo` and bench/firmware-boot.ts.
 *
 *   lab.spawn(lab.switchNs, 'qemu-system-x86_64', qemuArgs(vm, { tap, serialPath, dir }))
 */
import { copyFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { requireRoot, requireTools } from './netns.js';

export type Firmware = 'bios' | 'uefi';

export interface QemuVm {
  readonly firmware: Firmware;
  readonly mac: string;
  /** Names its OVMF variable store. */
  readonly name: string;
}

/** Throws naming what is missing (Debian packages qemu-system-x86, ipxe, ipxe-qemu, ovmf). */
export function requireQemuBoot(): void {
  requireRoot();
  requireTools('ip', 'qemu', 'ipxe', 'ovmf', 'tun');
  for (const f of [
    '/usr/lib/ipxe/qemu/pxe-e1000.rom',
    '/usr/share/OVMF/OVMF_CODE_4M.fd',
    '/usr/share/OVMF/OVMF_VARS_4M.fd',
    '/usr/lib/ipxe/snponly.efi',
  ]) {
    if (!existsSync(f)) throw new Error(`${f} is missing (Debian packages ipxe, ipxe-qemu, ovmf)`);
  }
}

/**
 * qemu-system-x86_64's arguments for `vm` on tap device `tap`, its serial console written to
 * `serialPath`. UEFI: a fresh copy of the OVMF variable store in `dir`, IPv6 PXE off in the
 * firmware (iPXE still does IPv6), the NIC first in the boot order.
 */
export function qemuArgs(
  vm: QemuVm,
  o: { readonly tap: string; readonly serialPath: string; readonly dir: string },
): string[] {
  const args = [
    '-accel',
    'tcg',
    '-nodefaults',
    '-display',
    'none',
    '-m',
    '256',
    '-no-reboot',
    '-serial',
    `file:${o.serialPath}`,
    '-netdev',
    `tap,id=n0,ifname=${o.tap},script=no,downscript=no`,
  ];
  if (vm.firmware === 'bios') {
    args.push('-device', `e1000,netdev=n0,mac=${vm.mac},romfile=/usr/lib/ipxe/qemu/pxe-e1000.rom`, '-boot', 'n');
    return args;
  }
  const vars = path.join(o.dir, `OVMF_VARS-${vm.name}-${Date.now()}.fd`);
  copyFileSync('/usr/share/OVMF/OVMF_VARS_4M.fd', vars);
  args.push(
    '-machine',
    'q35',
    '-drive',
    'if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd',
    '-drive',
    `if=pflash,format=raw,unit=1,file=${vars}`,
    '-fw_cfg',
    'name=opt/org.tianocore/IPv6PXESupport,string=n',
    // romfile= (empty): OVMF's own virtio-net driver, so the firmware's PXE client asks.
    '-device',
    `virtio-net-pci,netdev=n0,mac=${vm.mac},romfile=,bootindex=1`,
  );
  return args;
}
