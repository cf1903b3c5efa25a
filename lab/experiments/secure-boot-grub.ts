/**
 * Lab experiment: what Debian's signed grubnetx64 asks for over TFTP when shim loads
 * it under OVMF Secure Boot, whether it reaches an HTTP server on a non-default port
 * (`(http,<ip>:<port>)`), and what it prints for a kernel without a valid signature.
 * dnsmasq serves DHCP + TFTP on a lab bridge; Python serves HTTP on port 8000.
 *   npx tsx lab/experiments/secure-boot-grub.ts [signed|unsigned]
 */
import { copyFileSync, mkdirSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { createLab } from '../netns.js';
import { startStaticHttpd } from '../static-httpd.js';

const mode = process.argv[2] ?? 'signed';
const kernel = process.env.KERNEL ?? path.join(import.meta.dirname, '../../.cache/tools/vmlinuz');
const KERNEL_AT = process.env.KERNEL_AT ?? '';
const lab = await createLab({ switchNamespace: 'srv', bridgeIp: '10.79.0.1/24' });
try {
  const tftp = path.join(lab.dir, 'tftp');
  const http = path.join(lab.dir, 'http');
  mkdirSync(path.join(tftp, 'grub'), { recursive: true });
  mkdirSync(http, { recursive: true });
  const images = process.env.KERNEL_AT === undefined ? tftp : http;
  copyFileSync('/usr/lib/shim/shimx64.efi.signed', path.join(tftp, 'shimx64.efi'));
  copyFileSync('/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed', path.join(tftp, 'grubx64.efi'));
  if (mode === 'unsigned') {
    execFileSync('osslsigncode', ['remove-signature', '-in', kernel, '-out', path.join(images, 'vmlinuz')]);
  } else copyFileSync(kernel, path.join(images, 'vmlinuz'));
  writeFileSync(path.join(images, 'initrd'), Buffer.alloc(1024 * 1024, 1));
  writeFileSync(
    path.join(tftp, process.env.CFG ?? 'grub/grub.cfg'),
    `echo "exp: prefix=$prefix root=$root mac=$net_default_mac ip=$net_default_ip"
set timeout=0
echo "exp: loading kernel"
linux ${KERNEL_AT}/vmlinuz console=ttyS0 earlyprintk=ttyS0
echo "exp: loading initrd"
initrd ${KERNEL_AT}/initrd
echo "exp: booting"
boot
`,
  );
  await startStaticHttpd(lab, 'srv', { dir: http, host: '10.79.0.1', port: 8000 });
  const dns = lab.spawn('srv', 'dnsmasq', [
    '--no-daemon',
    '--port=0',
    '--interface=br0',
    '--bind-interfaces',
    '--log-dhcp',
    '--dhcp-range=10.79.0.50,10.79.0.60,1h',
    '--enable-tftp',
    `--tftp-root=${tftp}`,
    '--log-queries',
    '--dhcp-boot=shimx64.efi',
    '--log-facility=-',
  ]);
  const { ifname } = await lab.addTap();
  const serial = path.join(lab.dir, 'serial.log');
  const vars = path.join(lab.dir, 'vars.fd');
  copyFileSync('/usr/share/OVMF/OVMF_VARS_4M.ms.fd', vars);
  lab.spawn('srv', 'qemu-system-x86_64', [
    '-accel',
    'tcg',
    '-nodefaults',
    '-display',
    'none',
    '-m',
    '512',
    '-no-reboot',
    '-serial',
    `file:${serial}`,
    '-machine',
    'q35,smm=on',
    '-global',
    'driver=cfi.pflash01,property=secure,value=on',
    '-drive',
    'if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.secboot.fd',
    '-drive',
    `if=pflash,format=raw,unit=1,file=${vars}`,
    '-fw_cfg',
    'name=opt/org.tianocore/IPv6PXESupport,string=n',
    '-netdev',
    `tap,id=n0,ifname=${ifname},script=no,downscript=no`,
    '-device',
    'virtio-net-pci,netdev=n0,mac=52:54:00:5e:00:09,romfile=,bootindex=1',
  ]);
  const deadline = Date.now() + Number(process.env.SECONDS ?? 150) * 1000;
  while (Date.now() < deadline) {
    const s = existsSync(serial) ? readFileSync(serial, 'latin1') : '';
    if (/Secure boot enabled|Kernel panic|VFS: Unable|bad shim|Security Violation|error:.*sign/i.test(s)) {
      await new Promise((r) => setTimeout(r, 5000));
      break;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  console.log('---- dnsmasq');
  console.log(
    (() => {
      const o = lab.output(dns);
      return `${o.stdout}\n${o.stderr}`;
    })()
      .split('\n')
      .filter((l) => /tftp|sent|DHCPACK/i.test(l))
      .join('\n'),
  );
  console.log('---- serial');
  const s = existsSync(serial) ? readFileSync(serial, 'latin1') : '';
  console.log(
    s
      // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping terminal escapes from the console
      .replace(/\x1b\[[0-9;?]*[a-zA-Z]/g, '')
      .split('\n')
      .filter((l) => /exp:|error|secure|Linux version|shim|grub|Kernel panic|BdsDxe|PXE|Verif/i.test(l))
      .join('\n')
      .slice(0, 6000),
  );
} finally {
  await lab.close();
}
