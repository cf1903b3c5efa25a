/**
 * A QEMU virtual machine that network-boots on a lab bridge, under TCG (software emulation: KVM
 * hangs on these machines): SeaBIOS with the iPXE e1000 ROM from ipxe-qemu, or OVMF (UEFI) with
 * its own virtio-net driver so that the firmware's PXE client asks first. Shared by the QEMU
 * end-to-end test, `npm run demo` and bench/firmware-boot.ts.
 *
 *   lab.spawn(lab.switchNs, 'qemu-system-x86_64', qemuArgs(vm, { tap, serialPath, dir }))
 */
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
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
 * Which of EDK2's own PXE clients OVMF offers as boot options, set through fw_cfg
 * (`opt/org.tianocore/IPv4PXESupport`, `…/IPv6PXESupport`, read by OvmfPkg's PlatformDxe into
 * NetworkPkg's PcdIPv4PXESupport/PcdIPv6PXESupport). Seen in the lab (Debian OVMF 2022.11):
 * a NIC's boot options come as PXEv4, PXEv6, HTTPv4, HTTPv6, tried in that order, so with
 * IPv4 off PXEv6 is the first. The HTTP boot options cannot be switched off this way.
 */
export interface UefiPxe {
  /** UEFI PXEv4 (default true). */
  readonly ipv4?: boolean;
  /** UEFI PXEv6 (default false: iPXE still does IPv6 once loaded). */
  readonly ipv6?: boolean;
}

export interface QemuArgsOptions {
  readonly tap: string;
  readonly serialPath: string;
  readonly dir: string;
  /** UEFI only: which firmware PXE clients to offer (default PXEv4 only). */
  readonly uefiPxe?: UefiPxe;
  /**
   * UEFI only: OVMF built with Secure Boot (OVMF_CODE_4M.secboot.fd, which needs SMM) and a
   * variable store with Microsoft's keys enrolled and Secure Boot on (OVMF_VARS_4M.ms.fd), so
   * only a Microsoft-signed first stage (shim) runs. Default false: the plain firmware.
   */
  readonly secureBoot?: boolean;
}

/** Debian's ovmf files for a Secure Boot VM (see QemuArgsOptions.secureBoot). */
export const OVMF_SECURE_BOOT = {
  code: '/usr/share/OVMF/OVMF_CODE_4M.secboot.fd',
  vars: '/usr/share/OVMF/OVMF_VARS_4M.ms.fd',
} as const;

/**
 * The `-fw_cfg` arguments for `pxe`. IPv4PXESupport is written only when switched off, so the
 * default is the command line the QEMU e2e test always had (IPv6PXESupport=n alone).
 */
export function uefiPxeFwCfg(pxe: UefiPxe = {}): string[] {
  const args: string[] = [];
  if (pxe.ipv4 === false) args.push('-fw_cfg', 'name=opt/org.tianocore/IPv4PXESupport,string=n');
  args.push('-fw_cfg', `name=opt/org.tianocore/IPv6PXESupport,string=${pxe.ipv6 === true ? 'y' : 'n'}`);
  return args;
}

/**
 * qemu-system-x86_64's arguments for `vm` on tap device `tap`, its serial console written to
 * `serialPath`. UEFI: a fresh copy of the OVMF variable store in `dir`, the firmware's PXE
 * clients as `uefiPxe` says (default: IPv4 only; iPXE still does IPv6), the NIC first in the
 * boot order.
 */
export function qemuArgs(vm: QemuVm, o: QemuArgsOptions): string[] {
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
  const sb = o.secureBoot === true;
  copyFileSync(sb ? OVMF_SECURE_BOOT.vars : '/usr/share/OVMF/OVMF_VARS_4M.fd', vars);
  if (sb) {
    // The Secure Boot firmware keeps its variables in SMM-protected flash; a signed kernel wants more memory.
    args[args.indexOf('-m') + 1] = '512';
    args.push('-global', 'driver=cfi.pflash01,property=secure,value=on');
  }
  args.push(
    '-machine',
    sb ? 'q35,smm=on' : 'q35',
    '-drive',
    `if=pflash,format=raw,unit=0,readonly=on,file=${sb ? OVMF_SECURE_BOOT.code : '/usr/share/OVMF/OVMF_CODE_4M.fd'}`,
    '-drive',
    `if=pflash,format=raw,unit=1,file=${vars}`,
    ...uefiPxeFwCfg(o.uefiPxe),
    // romfile= (empty): OVMF's own virtio-net driver, so the firmware's PXE client asks.
    '-device',
    `virtio-net-pci,netdev=n0,mac=${vm.mac},romfile=,bootindex=1`,
  );
  return args;
}

/** The serial console so far ('' before QEMU has created the file). Latin-1: firmware writes bytes, not UTF-8. */
export function readSerial(serialPath: string): string {
  return existsSync(serialPath) ? readFileSync(serialPath, 'latin1') : '';
}

/**
 * Polls the serial console file until `pattern` appears and resolves with the whole console
 * text; rejects after `timeoutMs` with the console's tail in the message, or at once when
 * `stillRunning` says QEMU has exited.
 */
export async function waitForSerial(
  serialPath: string,
  pattern: RegExp | string,
  timeoutMs: number,
  o: {
    readonly pollMs?: number;
    readonly stillRunning?: () => boolean;
    /** Called with the console text at every poll, e.g. to time earlier milestones. */
    readonly onPoll?: (text: string) => void;
  } = {},
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  const hit = (text: string) => (typeof pattern === 'string' ? text.includes(pattern) : pattern.test(text));
  for (;;) {
    const text = readSerial(serialPath);
    o.onPoll?.(text);
    if (hit(text)) return text;
    const tail = text.slice(-1500);
    if (o.stillRunning !== undefined && !o.stillRunning()) {
      throw new Error(`QEMU exited before ${String(pattern)} on the serial console:\n${tail}`);
    }
    if (Date.now() >= deadline)
      throw new Error(`no ${String(pattern)} on the serial console within ${timeoutMs} ms:\n${tail}`);
    await new Promise((resolve) => setTimeout(resolve, Math.min(o.pollMs ?? 250, Math.max(1, deadline - Date.now()))));
  }
}
