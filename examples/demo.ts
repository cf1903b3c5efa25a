/**
 * `sudo npm run demo`: boots a QEMU virtual machine through metalboot on a private lab network
 * and prints the boot timeline as it happens. Everything runs inside network namespaces this
 * script creates (nothing touches the host's own network) and is removed on exit.
 *
 *   sudo npm run demo            # SeaBIOS + iPXE ROM (about 5 s under software emulation)
 *   sudo npm run demo -- uefi    # OVMF firmware PXE → snponly.efi over TFTP (about 12 s)
 *   sudo npm run demo -- secureboot
 *                                # OVMF with Secure Boot enforced (Microsoft keys): signed shim →
 *                                # Debian's signed GRUB → its grub.cfg from metalboot → Debian's
 *                                # signed kernel, which says "Secure boot enabled" (about 25 s)
 *
 * metalboot's router advertisements (radvd) answer iPXE's IPv6 question; without radvd it
 * still boots, ~15 s slower (docs/decisions/0011-router-advertisement.md).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import {
  formatStep,
  requireBootTools,
  SECURE_BOOT_VM,
  secureBootHost,
  startBootLab,
  VMS,
  type BootLab,
  type Firmware,
} from '../test/support/boot-lab.js';
import { findExecutable } from '../lab/netns.js';
import { qemuArgs, waitForSerial } from '../lab/qemu-vm.js';

const PACKAGES = [
  'iproute2',
  'qemu-system-x86',
  'ipxe',
  'ipxe-qemu',
  'ovmf',
  'python3',
  'procps',
  'radvd',
  'shim-signed',
  'grub-efi-amd64-signed',
];

function ensurePackages(): void {
  if (process.getuid?.() !== 0) {
    console.error('metalboot demo: run as root (sudo npm run demo): it creates network namespaces and a tap device.');
    process.exit(1);
  }
  try {
    requireBootTools();
    if (
      findExecutable('python3') !== undefined &&
      findExecutable('radvd') !== undefined &&
      existsSync('/usr/lib/shim/shimx64.efi.signed') &&
      existsSync('/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed')
    )
      return;
  } catch {
    // fall through to install
  }
  console.log(`metalboot demo: installing ${PACKAGES.join(' ')} …`);
  execFileSync('apt-get', ['update'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  execFileSync('apt-get', ['install', '-y', '--no-install-recommends', ...PACKAGES], {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
}

/** OVMF with Secure Boot enforced: shim → GRUB → grub.cfg → the signed kernel, step by step from metalboot's log. */
async function secureBoot(lab: BootLab): Promise<boolean> {
  const vm = SECURE_BOOT_VM;
  console.log(
    `metalboot demo: powering on an OVMF VM with Secure Boot enforced, MAC ${vm.mac} (BareMetalHost metal3/${vm.name}, spec.bootMode UEFISecureBoot)`,
  );
  console.log('  seconds from power-on:');
  const { ifname } = await lab.lab.addTap();
  const serialPath = path.join(lab.lab.dir, 'secureboot-serial.log');
  const poweredOn = Date.now();
  const qemu = lab.lab.spawn(
    'srv',
    'qemu-system-x86_64',
    qemuArgs(vm, { tap: ifname, serialPath, dir: lab.lab.dir, secureBoot: true }),
  );
  const step = async (
    name: string,
    match: (l: Record<string, unknown>) => boolean,
    detail: (l: Record<string, unknown>) => string,
  ) => {
    const l = await lab.server.waitForLog(match, 150_000);
    console.log(`  ${formatStep({ name, at: (l.time as number) - poweredOn, detail: detail(l) })}`);
  };
  await step(
    'DHCP ACK',
    (l) => l.msg === 'dhcp reply' && l.mac === vm.mac && l.type === 'ACK',
    (l) => `${l.client} client → ${l.boot}`,
  );
  for (const file of ['shimx64.efi', 'grubx64.efi'])
    await step(
      `TFTP ${file}`,
      (l) => l.msg === 'transfer complete' && l.file === file,
      (l) => `${l.size} bytes`,
    );
  await step(
    'GRUB asks for its configuration',
    (l) => l.msg === 'grub config served' && l.mac === vm.mac,
    (l) => `${l.file} → ${l.config} for ${l.host}`,
  );
  await step(
    'kernel over TFTP, through the image proxy',
    (l) => l.msg === 'transfer complete' && l.file === 'images/ironic-python-agent.kernel',
    (l) => `${l.size} bytes`,
  );
  const text = await waitForSerial(serialPath, 'secureboot: Secure boot enabled', 180_000, {
    stillRunning: () => qemu.exitCode === null,
  }).catch(() => '');
  const line = /^.*secureboot: Secure boot enabled.*$/m.exec(text)?.[0];
  console.log(
    `  ${formatStep({ name: 'the signed kernel runs', at: line === undefined ? undefined : Date.now() - poweredOn, detail: line?.trim() })}`,
  );
  return line !== undefined;
}

async function main(): Promise<void> {
  if (process.argv[2] === 'secureboot') {
    ensurePackages();
    console.log("metalboot demo: starting a lab network, metalboot and a stand-in for Ironic's HTTP server …");
    const lab = await startBootLab([], { extraHosts: secureBootHost(SECURE_BOOT_VM, 'inspecting') });
    try {
      const ok = await secureBoot(lab);
      console.log(
        ok
          ? '\nmetalboot demo: the VM booted the inspector kernel with UEFI Secure Boot enforced.'
          : '\nmetalboot demo: the boot did not complete; see the steps above.',
      );
      console.log(
        `metalboot's explanation: curl 'http://10.78.0.1:8080/debug/explain?mac=${SECURE_BOOT_VM.mac}' (inside the lab)`,
      );
      process.exitCode = ok ? 0 : 1;
    } finally {
      await lab.close();
      console.log('metalboot demo: lab removed.');
    }
    return;
  }
  const firmware: Firmware = process.argv[2] === 'uefi' ? 'uefi' : 'bios';
  ensurePackages();
  const vm = VMS[firmware];
  console.log("metalboot demo: starting a lab network, metalboot and a stand-in for Ironic's HTTP server …");
  const lab = await startBootLab();
  const stop = async () => {
    await lab.close();
    process.exit(130);
  };
  process.once('SIGINT', () => void stop());
  try {
    console.log(
      `metalboot demo: powering on a ${firmware === 'bios' ? 'SeaBIOS + iPXE' : 'OVMF UEFI'} VM with MAC ${vm.mac} (BareMetalHost metal3/${vm.name})`,
    );
    console.log('  seconds from power-on:');
    const { steps } = await lab.boot(vm, (s) => console.log(`  ${formatStep(s)}`));
    const ok = steps.every((s) => s.at !== undefined);
    console.log(
      ok
        ? '\nmetalboot demo: the VM booted the inspector kernel through metalboot.'
        : '\nmetalboot demo: the boot did not complete; see the steps above.',
    );
    console.log(
      `metalboot's own explanation of this host: curl 'http://10.78.0.1:8080/debug/explain?mac=${vm.mac}' (inside the lab)`,
    );
    process.exitCode = ok ? 0 : 1;
  } finally {
    await lab.close();
    console.log('metalboot demo: lab removed.');
  }
}

main().catch((err: unknown) => {
  console.error(`metalboot demo: ${(err as Error).message}`);
  process.exit(1);
});
