/**
 * A provisioning network in a box, shared by the QEMU end-to-end test and `npm run demo`:
 * a lab namespace with a bridge, metalboot serving one BareMetalHost per VM, a stand-in for
 * Ironic's httpd (Python's http.server) holding a real Linux kernel and an initramfs, and QEMU
 * (TCG) booting SeaBIOS+iPXE or OVMF firmware PXE on the bridge.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { createLab, type Lab } from '../../lab/netns.js';
import { type Firmware, qemuArgs, requireQemuBoot } from '../../lab/qemu-vm.js';
import { startMetalboot, type MetalbootProcess } from './metalboot-process.js';
import { testKernel } from './linux-kernel.js';
import { startStaticHttpd } from '../../lab/static-httpd.js';

export type { Firmware } from '../../lab/qemu-vm.js';

export interface BootVm {
  readonly firmware: Firmware;
  readonly mac: string;
  readonly ip: string;
  readonly name: string;
}

export const SERVER_IP = '10.78.0.1';

export const VMS: Readonly<Record<Firmware, BootVm>> = {
  bios: { firmware: 'bios', mac: '52:54:00:5e:00:01', ip: '10.78.0.21', name: 'bios-0' },
  uefi: { firmware: 'uefi', mac: '52:54:00:5e:00:02', ip: '10.78.0.22', name: 'uefi-0' },
};

/** A VM of the Secure Boot chain (UEFI with OVMF's Secure Boot firmware; npm run demo -- secureboot). */
export const SECURE_BOOT_VM: BootVm = { firmware: 'uefi', mac: '52:54:00:5e:00:31', ip: '10.78.0.31', name: 'sb-0' };

/**
 * A BareMetalHost manifest for a lab VM: its address with `prefixLength` (24; an IPv6 address
 * makes an IPv6-only host), and optionally spec.bootMode and a provisioning state.
 */
export function bmhManifest(
  vm: Pick<BootVm, 'name' | 'mac' | 'ip'>,
  o: { readonly prefixLength?: number; readonly bootMode?: string; readonly state?: string } = {},
): string {
  const lines = [
    '---',
    'apiVersion: metal3.io/v1alpha1',
    'kind: BareMetalHost',
    'metadata:',
    `  name: ${vm.name}`,
    '  namespace: metal3',
    '  annotations:',
    `    metal3.vcluster.com/ip-address: ${vm.ip}/${o.prefixLength ?? 24}`,
    'spec:',
    `  bootMACAddress: "${vm.mac}"`,
    ...(o.bootMode === undefined ? [] : [`  bootMode: ${o.bootMode}`]),
    ...(o.state === undefined ? [] : ['status:', '  provisioning:', `    state: ${o.state}`]),
  ];
  return `${lines.join('\n')}\n`;
}

/** A BareMetalHost manifest with spec.bootMode UEFISecureBoot, in provisioning state `state`. */
export function secureBootHost(vm: BootVm, state: string): string {
  return bmhManifest(vm, { bootMode: 'UEFISecureBoot', state });
}

export interface Step {
  readonly name: string;
  /** Milliseconds from power-on; undefined if the step never happened. */
  readonly at: number | undefined;
  readonly detail?: string;
}

export interface BootLab {
  readonly lab: Lab;
  readonly server: MetalbootProcess;
  /** Powers on a VM and resolves with each step of its boot as it happens. */
  boot(
    vm: BootVm,
    onStep?: (s: Step) => void,
    stepTimeoutMs?: number,
  ): Promise<{ steps: Step[]; serial: () => string }>;
  close(): Promise<void>;
}

const bmh = (vm: BootVm) => bmhManifest(vm);

export function requireBootTools(): void {
  requireQemuBoot();
}

export interface BootLabOptions {
  /**
   * IPv6 on the lab network (default true): iPXE's router solicitations then reach metalboot's
   * router advertisements (on by default) on the bridge. False: an IPv4-only server namespace.
   */
  readonly ipv6?: boolean;
  /** More BareMetalHost manifests (YAML documents) beside the VMS hosts. */
  readonly extraHosts?: string;
  /** More files for the stand-in Ironic httpd: path under its root → content. */
  readonly ironicFiles?: Readonly<Record<string, string | Buffer>>;
}

export async function startBootLab(extraArgs: readonly string[] = [], options: BootLabOptions = {}): Promise<BootLab> {
  requireBootTools();
  const kernel = testKernel();
  const lab = await createLab({ switchNamespace: 'srv', bridgeIp: `${SERVER_IP}/24`, ipv6: options.ipv6 ?? true });
  try {
    const dir = lab.dir;
    mkdirSync(path.join(dir, 'ironic/images'), { recursive: true });
    copyFileSync(kernel, path.join(dir, 'ironic/images/ironic-python-agent.kernel'));
    writeFileSync(path.join(dir, 'ironic/images/ironic-python-agent.initramfs'), randomBytes(2 * 1024 * 1024));
    await startStaticHttpd(lab, 'srv', { dir: path.join(dir, 'ironic'), host: '127.0.0.1', port: 6180 });
    for (const [file, content] of Object.entries(options.ironicFiles ?? {})) {
      mkdirSync(path.dirname(path.join(dir, 'ironic', file)), { recursive: true });
      writeFileSync(path.join(dir, 'ironic', file), content);
    }
    writeFileSync(path.join(dir, 'bmh.yaml'), Object.values(VMS).map(bmh).join('') + (options.extraHosts ?? ''));
    const server = await startMetalboot(lab, 'srv', [
      '--server-ip',
      `${SERVER_IP}/24`,
      '--bmh-file',
      path.join(dir, 'bmh.yaml'),
      '--tftp-root',
      '/usr/lib/ipxe',
      '--ironic-http-url',
      'http://127.0.0.1:6180',
      '--inspector-extra-kernel-param',
      'console=ttyS0',
      ...extraArgs,
    ]);
    return { lab, server, boot: (vm, onStep, t) => bootVm(lab, server, vm, onStep, t), close: () => lab.close() };
  } catch (err) {
    await lab.close();
    throw err;
  }
}

async function bootVm(
  lab: Lab,
  server: MetalbootProcess,
  vm: BootVm,
  onStep: ((s: Step) => void) | undefined,
  stepTimeoutMs = 150_000,
) {
  const { ifname } = await lab.addTap();
  const serialPath = path.join(lab.dir, `${vm.firmware}-serial.log`);
  const args = qemuArgs(vm, { tap: ifname, serialPath, dir: lab.dir });
  const poweredOn = Date.now();
  lab.spawn('srv', 'qemu-system-x86_64', args);
  const serial = () => (existsSync(serialPath) ? readFileSync(serialPath, 'latin1') : '');
  const steps: Step[] = [];
  const record = (s: Step) => {
    steps.push(s);
    onStep?.(s);
  };
  const wait = async (
    name: string,
    match: (l: Record<string, unknown>) => boolean,
    detail?: (l: Record<string, unknown>) => string,
  ) => {
    const line = await server.waitForLog(match, stepTimeoutMs);
    record({ name, at: (line.time as number) - poweredOn, detail: detail?.(line) });
  };
  const isAck = (l: Record<string, unknown>) => l.msg === 'dhcp reply' && l.mac === vm.mac && l.type === 'ACK';
  await wait('DHCP ACK', isAck, (l) => `${l.ip} from ${l.source} ${l.host}, ${l.client} client → ${l.boot}`);
  if (vm.firmware === 'uefi') {
    await wait(
      'TFTP snponly.efi',
      (l) => l.msg === 'transfer complete' && String(l.file).includes('snponly.efi'),
      (l) => `${l.bytes} bytes in ${Number(l.seconds).toFixed(2)} s`,
    );
    await wait(
      'DHCP ACK to iPXE',
      (l) => isAck(l) && l.client === 'ipxe',
      (l) => `→ ${l.boot}`,
    );
  }
  await wait(
    'GET /boot.ipxe → host script',
    (l) => l.msg === 'boot script served' && l.mac === vm.mac,
    (l) => `${l.script} script for ${l.host}`,
  );
  const image = (file: string) => (l: Record<string, unknown>) =>
    l.msg === 'image served' && l.peer === vm.ip && l.url === `/images/${file}` && l.status === 200;
  const size = (l: Record<string, unknown>) => `${(Number(l.bytes) / 1e6).toFixed(1)} MB in ${l.ms} ms`;
  await wait('kernel through the image proxy', image('ironic-python-agent.kernel'), size);
  await wait('initramfs through the image proxy', image('ironic-python-agent.initramfs'), size);
  const deadline = Date.now() + 120_000;
  while (!/Linux version \d/.test(serial()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
  const banner = /Linux version \S+/.exec(serial())?.[0];
  record({
    name: 'kernel running (serial: "Linux version")',
    at: banner === undefined ? undefined : Date.now() - poweredOn,
    detail: banner,
  });
  return { steps, serial };
}

export function formatStep(s: Step): string {
  const at = s.at === undefined ? '   never' : `${(s.at / 1000).toFixed(1).padStart(6)} s`;
  return `${at}  ${s.name}${s.detail ? `  (${s.detail})` : ''}`;
}
