/**
 * Boots real firmware over IPv6 only, with dnsmasq (Kea for HTTP boot) standing in for the server, and prints what
 * happened on the wire and on the serial console: the experiment behind
 * docs/research/ipv6-firmware-boot.md, kept so the product's e2e test can be written from it.
 *
 *   sudo node --import tsx lab/experiments/ipv6-boot.ts [--firmware ovmf-pxe6|ovmf-http6|bios-ipxe]
 *        [--ipv4-pxe] [--no-ra] [--router-lifetime 0] [--timeout 240] [--keep]
 *
 * ```
 *   ns srv  eth0 fd00::1/64 (no IPv4) ── dnsmasq: DHCPv6 (fd00::100–1ff), RA (M+O, lifetime 0), TFTP
 *      │                               └─ python3 http.server on [fd00::1]:8080
 *   ns sw   br0 ── tcpdump (everything) ── tapN ── QEMU -accel tcg
 * ```
 *
 * - ovmf-pxe6 (default): OVMF's own PXEv6 (fw_cfg IPv4PXESupport=n, IPv6PXESupport=y) gets
 *   `tftp://[fd00::1]/snponly.efi` in the DHCPv6 Boot File URL (option 59); iPXE then asks
 *   DHCPv6 again (user class "iPXE") and gets `http://[fd00::1]:8080/boot.ipxe`.
 * - ovmf-http6: both PXE clients off, so OVMF tries HTTPv4 (~65 s), then HTTPv6; kea-dhcp6
 *   answers the vendor class "HTTPClient" (enterprise 343) with
 *   `http://[fd00::1]:8080/snponly.efi` and echoes the vendor class, which EDK2's HttpBootDxe
 *   requires of an HTTP offer (dnsmasq 2.90 cannot encode it); radvd sends the RA, dnsmasq only
 *   serves TFTP.
 * - bios-ipxe: SeaBIOS with the iPXE e1000 ROM from ipxe-qemu.
 *
 * boot.ipxe echoes a few settings to the console and fetches the kernel over IPv6; with a real
 * kernel ($METALBOOT_TEST_KERNEL or .cache/tools/vmlinuz) it boots to "Linux version".
 * Nothing leaves the lab's namespaces; lab.close() removes everything, also on failure.
 */
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createLab, requireTools, tsharkFields } from '../netns.js';
import { qemuArgs, readSerial, requireQemuBoot, waitForSerial } from '../qemu-vm.js';
import { startStaticHttpd } from '../static-httpd.js';

export const SERVER6 = 'fd00::1';
export const HTTP_PORT = 8080;
const MAC = '52:54:00:66:00:01';
const UUID = '00112233-4455-6677-8899-aabbccddeeff';

type Firmware = 'ovmf-pxe6' | 'ovmf-http6' | 'bios-ipxe';

/** "HTTPClient" as a DHCPv6 Vendor Class (RFC 8415 §21.16): enterprise 343, one 10-byte class datum. */
export const HTTP_CLIENT_VENDOR_CLASS = '00:00:01:57:00:0a:48:54:54:50:43:6c:69:65:6e:74';

/** dnsmasq's arguments: DHCPv6 stateful range, RA with M and O, TFTP, boot URLs per client kind. */
export function dnsmasqArgs(o: { tftpRoot: string; ra: boolean; dhcp: boolean; routerLifetime?: number }): string[] {
  const url = `http://[${SERVER6}]:${HTTP_PORT}`;
  const args = [
    '--no-daemon',
    '--conf-file=/dev/null',
    '--port=0',
    '--no-resolv',
    '--no-hosts',
    '--log-dhcp',
    '--log-debug',
    '--log-facility=-',
    '--user=root',
    '--group=root',
    '--interface=eth0',
    '--bind-interfaces',
    '--dhcp-authoritative',
    '--enable-tftp',
    `--tftp-root=${o.tftpRoot}`,
    // iPXE sends user class "iPXE" (option 15); EDK2's HTTP boot client the vendor class HTTPClient.
    '--dhcp-userclass=set:ipxe,iPXE',
    '--dhcp-vendorclass=set:http,enterprise:343,HTTPClient',
    `--dhcp-option=tag:ipxe,option6:bootfile-url,${url}/boot.ipxe`,
    `--dhcp-option=tag:!ipxe,tag:http,option6:bootfile-url,${url}/snponly.efi`,
    `--dhcp-option=tag:!ipxe,tag:!http,option6:bootfile-url,tftp://[${SERVER6}]/snponly.efi`,
  ];
  // No vendor class echo: dnsmasq 2.90 writes option6:16 as a length-prefixed string list
  // (no enterprise number), which EDK2 does not take for "HTTPClient". Kea does it (keaConfig).
  if (o.dhcp) args.push(`--dhcp-range=${SERVER6.replace(/1$/, '100')},${SERVER6.replace(/1$/, '1ff')},64,10m`);
  // Router lifetime 0 unless told: on-link prefix fd00::/64 (L=1, A=0) and M=O=1, no default route.
  if (o.ra && o.dhcp) args.push('--enable-ra', `--ra-param=eth0,4,${o.routerLifetime ?? 0}`);
  return args;
}

/**
 * kea-dhcp6's configuration for the HTTP boot: the same range; "iPXE" (user class) gets the
 * boot script, EDK2's HTTPClient the snponly.efi URL and its vendor class echoed
 * (HttpBootDxe takes an Advertise as an HTTP offer only if option 16 carries "HTTPClient").
 */
export function keaConfig(dir: string): unknown {
  const url = `http://[${SERVER6}]:${HTTP_PORT}`;
  return {
    Dhcp6: {
      'interfaces-config': { interfaces: ['eth0'] },
      'lease-database': { type: 'memfile', persist: false },
      // Not /var/lib/kea/kea-dhcp6-serverid: nothing outside the lab's directory.
      'server-id': { type: 'LL', persist: false },
      'control-socket': { 'socket-type': 'unix', 'socket-name': path.join(dir, 'kea6.sock') },
      'preferred-lifetime': 600,
      'valid-lifetime': 600,
      'client-classes': [
        {
          name: 'ipxe',
          test: 'option[15].exists',
          'option-data': [{ name: 'bootfile-url', data: `${url}/boot.ipxe` }],
        },
        {
          name: 'http',
          test: "not option[15].exists and option[16].exists and substring(option[16].hex,6,10) == 'HTTPClient'",
          'option-data': [
            { name: 'bootfile-url', data: `${url}/snponly.efi` },
            {
              code: 16,
              space: 'dhcp6',
              'csv-format': false,
              'always-send': true,
              data: HTTP_CLIENT_VENDOR_CLASS.replaceAll(':', ''),
            },
          ],
        },
      ],
      subnet6: [
        {
          id: 1,
          subnet: 'fd00::/64',
          interface: 'eth0',
          pools: [{ pool: `${SERVER6.replace(/1$/, '100')}-${SERVER6.replace(/1$/, '1ff')}` }],
        },
      ],
      loggers: [{ name: 'kea-dhcp6', output_options: [{ output: 'stdout' }], severity: 'DEBUG', debuglevel: 55 }],
    },
  };
}

/** radvd's configuration when Kea serves DHCPv6: what dnsmasq --enable-ra sends (M=O=1, lifetime 0, fd00::/64 on-link). */
export const RADVD_CONF = `interface eth0 {
  AdvSendAdvert on;
  MinRtrAdvInterval 3;
  MaxRtrAdvInterval 4;
  AdvManagedFlag on;
  AdvOtherConfigFlag on;
  AdvDefaultLifetime 0;
  prefix fd00::/64 { AdvOnLink on; AdvAutonomous off; AdvValidLifetime 600; AdvPreferredLifetime 600; };
};
`;

const BOOT_SCRIPT = `#!ipxe
echo lab6: mac \${net0/mac:hexhyp} ip6 \${net0.ndp/ip6} \${net0.dhcpv6/ip6} filename \${filename}
echo lab6: user-class \${user-class} platform \${platform} buildarch \${buildarch}
kernel http://[${SERVER6}]:${HTTP_PORT}/vmlinuz console=ttyS0 lab6=\${net0/mac:hexhyp}
echo lab6: kernel loaded
boot
`;

function kernelPath(): string | undefined {
  const candidates = [process.env.METALBOOT_TEST_KERNEL, path.resolve('.cache/tools/vmlinuz')];
  return candidates.find((p): p is string => p !== undefined && existsSync(p));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      firmware: { type: 'string', default: 'ovmf-pxe6' },
      'ipv4-pxe': { type: 'boolean', default: false },
      'no-ra': { type: 'boolean', default: false },
      'router-lifetime': { type: 'string', default: '0' },
      timeout: { type: 'string', default: '240' },
      keep: { type: 'boolean', default: false },
    },
  });
  const firmware = values.firmware as Firmware;
  if (!['ovmf-pxe6', 'ovmf-http6', 'bios-ipxe'].includes(firmware)) throw new Error(`unknown --firmware ${firmware}`);
  const timeoutMs = Number(values.timeout) * 1000;
  requireQemuBoot();
  requireTools('dnsmasq', 'tcpdump', 'tshark', 'python3');

  const lab = await createLab({ ipv6: true, keepArtifacts: values.keep });
  try {
    // The switch only forwards frames: no IPv6 of its own on the wire.
    await lab.exec(
      'sw',
      'sysctl',
      ['-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1'],
      {
        check: true,
      },
    );
    await lab.addNamespace('srv');
    await lab.exec('srv', 'sysctl', ['-qw', 'net.ipv6.conf.default.accept_dad=0', 'net.ipv6.conf.all.forwarding=0'], {
      check: true,
    });
    await lab.connect('srv', { ifname: 'eth0', mac: '02:00:00:66:00:01' });
    await lab.addAddress('srv', 'eth0', `${SERVER6}/64`);

    const tftpRoot = path.join(lab.dir, 'tftp');
    const httpRoot = path.join(lab.dir, 'http');
    mkdirSync(tftpRoot);
    mkdirSync(httpRoot);
    copyFileSync('/usr/lib/ipxe/snponly.efi', path.join(tftpRoot, 'snponly.efi'));
    copyFileSync('/usr/lib/ipxe/snponly.efi', path.join(httpRoot, 'snponly.efi'));
    writeFileSync(path.join(httpRoot, 'boot.ipxe'), BOOT_SCRIPT);
    const kernel = kernelPath();
    if (kernel === undefined) writeFileSync(path.join(httpRoot, 'vmlinuz'), Buffer.alloc(1 << 20));
    else copyFileSync(kernel, path.join(httpRoot, 'vmlinuz'));

    const cap = await lab.capture('sw', 'br0');
    const httpd = await startStaticHttpd(lab, 'srv', { dir: httpRoot, host: SERVER6, port: HTTP_PORT });
    // HTTP boot: Kea answers DHCPv6 (it can echo the vendor class), dnsmasq only advertises.
    const kea = firmware === 'ovmf-http6';
    const dnsmasq = lab.spawn(
      'srv',
      'dnsmasq',
      dnsmasqArgs({ tftpRoot, ra: !values['no-ra'], dhcp: !kea, routerLifetime: Number(values['router-lifetime']) }),
    );
    await lab.waitForOutput(dnsmasq, kea ? /started/ : /DHCPv6, IP range/, 10_000);
    if (kea && !values['no-ra']) {
      writeFileSync(path.join(lab.dir, 'radvd.conf'), RADVD_CONF);
      lab.spawn('srv', 'radvd', [
        '--nodaemon',
        '--config',
        path.join(lab.dir, 'radvd.conf'),
        '--pidfile',
        path.join(lab.dir, 'radvd.pid'),
        '--logmethod',
        'stderr',
      ]);
    }
    let keaProc: ReturnType<typeof lab.spawn> | undefined;
    if (kea) {
      const conf = path.join(lab.dir, 'kea-dhcp6.json');
      writeFileSync(conf, JSON.stringify(keaConfig(lab.dir), null, 2));
      keaProc = lab.spawn('srv', 'kea-dhcp6', ['-c', conf], {
        env: { KEA_PIDFILE_DIR: lab.dir, KEA_LOCKFILE_DIR: lab.dir },
      });
      await lab.waitForOutput(keaProc, /DHCP6_STARTED/, 15_000);
    }

    const { ifname: tap } = await lab.addTap();
    const serialPath = path.join(lab.dir, `${firmware}-serial.log`);
    const vm = { firmware: firmware === 'bios-ipxe' ? 'bios' : 'uefi', mac: MAC, name: firmware } as const;
    const args = [
      ...qemuArgs(vm, {
        tap,
        serialPath,
        dir: lab.dir,
        uefiPxe: firmware === 'ovmf-pxe6' ? { ipv4: values['ipv4-pxe'], ipv6: true } : { ipv4: false, ipv6: false },
      }),
      '-uuid',
      UUID,
    ];
    console.log(`qemu-system-x86_64 ${args.join(' ')}`);
    const poweredOn = Date.now();
    const qemu = lab.spawn(lab.switchNs, 'qemu-system-x86_64', args);
    const running = () => qemu.exitCode === null && qemu.signalCode === null;
    const at = () => `${((Date.now() - poweredOn) / 1000).toFixed(1)} s`;
    const seen = new Set<string>();
    // SeaBIOS+iPXE writes to the VGA console only: its milestones show in the capture, the kernel's on ttyS0.
    const milestones: [string, RegExp][] = [
      ['iPXE banner', /iPXE initialising|iPXE \d/],
      ['boot.ipxe ran', /lab6: mac/],
      ['kernel loaded', /lab6: kernel loaded/],
      ['Linux running', /Linux version \d/],
    ];
    let outcome = 'ok';
    try {
      await waitForSerial(serialPath, /Linux version \d/, timeoutMs, {
        stillRunning: running,
        onPoll: (text) => {
          for (const [name, re] of milestones) {
            if (!seen.has(name) && re.test(text)) {
              seen.add(name);
              console.log(`${at()}  ${name}`);
            }
          }
        },
      });
    } catch (err) {
      outcome = `no kernel: ${(err as Error).message.split('\n')[0]}`;
    }
    console.log(outcome);
    qemu.kill('SIGKILL');
    httpd.kill('SIGTERM');
    const { pcapPath } = await cap.stop();
    const rows = await tsharkFields(pcapPath, ['frame.time_epoch', 'eth.src', '_ws.col.Protocol', '_ws.col.Info'], {
      filter: 'dhcpv6 or icmpv6 or dhcp or tftp or http.request or arp',
    });
    const t0 = poweredOn / 1000;
    for (const r of rows) {
      const t = (Number(r['frame.time_epoch']) - t0).toFixed(2).padStart(7);
      console.log(`${t}  ${r['eth.src']}  ${r['_ws.col.Protocol']}  ${r['_ws.col.Info']}`);
    }
    console.log('--- serial (last 3000 chars) ---');
    console.log(
      readSerial(serialPath)
        .replace(new RegExp(`${String.fromCharCode(27)}\\[[0-9;?]*[A-Za-z]`, 'g'), '') // ANSI escapes
        .slice(-3000),
    );
    console.log('--- dnsmasq (last 4000 chars) ---');
    console.log(lab.output(dnsmasq).stdout.slice(-4000), lab.output(dnsmasq).stderr.slice(-4000));
    if (keaProc !== undefined) {
      console.log('--- kea-dhcp6 (last 6000 chars) ---');
      console.log(lab.output(keaProc).stdout.slice(-6000), lab.output(keaProc).stderr.slice(-2000));
    }
    if (values.keep) console.log(`kept: ${lab.dir} (pcap ${pcapPath})`);
  } finally {
    await lab.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
