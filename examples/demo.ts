/**
 * `sudo npm run demo`: boots a QEMU virtual machine through metalboot on a private lab network
 * and prints the boot timeline as it happens. Everything runs inside network namespaces this
 * script creates (nothing touches the host's own network) and is removed on exit.
 *
 *   sudo npm run demo            # SeaBIOS + iPXE ROM (about 5 s under software emulation)
 *   sudo npm run demo -- uefi    # OVMF firmware PXE → snponly.efi over TFTP (about 12 s)
 *
 * metalboot's router advertisements (radvd) answer iPXE's IPv6 question; without radvd it
 * still boots, ~15 s slower (docs/decisions/0011-router-advertisement.md).
 */
import { execFileSync } from 'node:child_process';
import { formatStep, requireBootTools, startBootLab, VMS, type Firmware } from '../test/support/boot-lab.js';
import { findExecutable } from '../lab/netns.js';

const PACKAGES = ['iproute2', 'qemu-system-x86', 'ipxe', 'ipxe-qemu', 'ovmf', 'python3', 'procps', 'radvd'];

function ensurePackages(): void {
  if (process.getuid?.() !== 0) {
    console.error('metalboot demo: run as root (sudo npm run demo): it creates network namespaces and a tap device.');
    process.exit(1);
  }
  try {
    requireBootTools();
    if (findExecutable('python3') !== undefined && findExecutable('radvd') !== undefined) return;
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

async function main(): Promise<void> {
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
