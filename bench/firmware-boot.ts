/**
 * Real firmware booting through a server, with and without router advertisements: QEMU under
 * TCG (SeaBIOS + the iPXE e1000 ROM, or OVMF → snponly.efi over TFTP → iPXE) on a bridge in a
 * network namespace, IPv6 on, powered on once per run. Servers (--modes):
 *
 *   metalboot-ra     metalboot as it ships: router advertisements on (radvd)
 *   metalboot-no-ra  metalboot --router-advertisements=false: iPXE's router solicitation unanswered
 *   dnsmasq          dnsmasq (DHCP + TFTP, as Ironic's) and Python's http.server with a boot script
 *   dnsmasq-radvd    the same, plus radvd with metalboot's answer-only configuration
 *
 * Each boot's milestones come from a capture on the server's bridge (lab/boot-timeline.ts), so
 * every server is timed the same way: the DHCP ACK to iPXE (the last before the first script
 * request), the first GET /boot.ipxe, the first kernel request; and "Linux version" on the VM's
 * serial console. All in seconds from power-on (QEMU's start). The table shows the median and
 * the range (min–max) of --runs runs.
 *
 *   sudo node --import tsx bench/firmware-boot.ts                  # ~15–25 min: 2 firmwares × 3 servers × 3 runs
 *   sudo node --import tsx bench/firmware-boot.ts --runs 1 --firmware bios --modes metalboot-ra --no-results
 *
 * Needs root, qemu-system-x86, ipxe, ipxe-qemu, ovmf, python3, tcpdump, radvd, dnsmasq (for the
 * dnsmasq modes) and a Linux kernel for the VM (--kernel; the QEMU e2e test caches Debian's
 * cloud kernel in .cache/tools/vmlinuz). metalboot is the committed HEAD built into bench/out/
 * (--worktree: src/ as it is). Everything runs in the lab's namespaces and is removed on exit.
 */
import type { ChildProcess } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { bootTimeline, lastBefore } from '../lab/boot-timeline.js';
import { createLab, findExecutable, type Lab, requireTools } from '../lab/netns.js';
import { type Firmware, qemuArgs, requireQemuBoot } from '../lab/qemu-vm.js';
import { ANSWER_ONLY, radvdArgs, renderRadvdConfig } from '../src/ra/radvd-config.js';
import {
  defineOptions,
  defineScript,
  elapsedLog,
  publishResults,
  QuietGate,
  runIfEntry,
  type Args,
  type Run,
} from './lib/harness.js';
import { debVersion, gitState, loadAvg1, machine, REPO_ROOT } from './lib/machine.js';
import { metalbootBuild } from './lib/metalboot-build.js';
import { RESULTS_FILE, subsection } from './lib/results-md.js';
import { fmt, median } from './lib/stats.js';
import { startStaticHttpd } from '../lab/static-httpd.js';

export const MODES = ['metalboot-ra', 'metalboot-no-ra', 'dnsmasq', 'dnsmasq-radvd'] as const;
type Mode = (typeof MODES)[number];

export const options = defineOptions({
  firmware: { type: 'list', help: 'firmwares to boot', default: 'bios,uefi', choices: ['bios', 'uefi'] },
  modes: {
    type: 'list',
    help: 'servers (see the top of the file)',
    default: 'metalboot-ra,metalboot-no-ra,dnsmasq',
    choices: MODES,
  },
  runs: { type: 'number', help: 'boots per firmware and server', default: '3' },
  kernel: {
    type: 'string',
    help: 'the Linux kernel the VM boots',
    default: path.join(REPO_ROOT, '.cache/tools/vmlinuz'),
  },
  'boot-timeout-s': { type: 'number', help: 'give up on a boot after this long', default: '180' },
  worktree: { type: 'boolean', help: 'measure src/ as it is (tsx) instead of the committed HEAD' },
  'max-total-s': {
    type: 'number',
    help: 'stop before a boot that would start after this many seconds',
    default: '3000',
  },
  'quiet-load': {
    type: 'number',
    help: 'wait for the 1-minute load average to drop below this before each server',
    default: '1.5',
  },
  'quiet-wait-s': { type: 'number', help: 'but at most this long', default: '120' },
  'no-results': { type: 'boolean', help: 'leave bench/RESULTS.md alone' },
});

const SERVER_IP = '10.78.0.1';
const VMS: Readonly<Record<Firmware, { firmware: Firmware; mac: string; ip: string; name: string }>> = {
  bios: { firmware: 'bios', mac: '52:54:00:5e:00:01', ip: '10.78.0.21', name: 'bios-0' },
  uefi: { firmware: 'uefi', mac: '52:54:00:5e:00:02', ip: '10.78.0.22', name: 'uefi-0' },
};
const KERNEL = 'images/ironic-python-agent.kernel';
const INITRAMFS = 'images/ironic-python-agent.initramfs';

/** One boot, in seconds from power-on; undefined: it did not happen within the timeout. */
export interface BootResult {
  readonly mode: Mode;
  readonly firmware: Firmware;
  readonly run: number;
  readonly ack: number | undefined;
  readonly bootIpxe: number | undefined;
  readonly kernelRequest: number | undefined;
  readonly kernelRunning: number | undefined;
  /** The VM's first router solicitation, and the first advertisement after it. */
  readonly solicitation: number | undefined;
  readonly advertisement: number | undefined;
  /** metalboot's own view (/debug/explain timing.ackToScriptSeconds). */
  readonly explainAckToScript?: number | undefined;
  readonly load1: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const exited = (c: ChildProcess) => c.exitCode !== null || c.signalCode !== null;

function bmhYaml(): string {
  return Object.values(VMS)
    .map(
      (vm) => `---
apiVersion: metal3.io/v1alpha1
kind: BareMetalHost
metadata:
  name: ${vm.name}
  namespace: metal3
  annotations:
    metal3.vcluster.com/ip-address: ${vm.ip}/24
spec:
  bootMACAddress: "${vm.mac}"
`,
    )
    .join('');
}

/** dnsmasq as Ironic configures it for iPXE: static hosts, TFTP for the firmware, the script URL for iPXE. */
function dnsmasqConf(dir: string): string {
  return `port=0
interface=br0
bind-interfaces
dhcp-authoritative
dhcp-range=10.78.0.0,static,255.255.255.0,1h
${Object.values(VMS)
  .map((vm) => `dhcp-host=${vm.mac},${vm.ip}`)
  .join('\n')}
dhcp-userclass=set:ipxe,iPXE
dhcp-match=set:efi64,option:client-arch,7
dhcp-match=set:efi64,option:client-arch,9
dhcp-boot=tag:ipxe,http://${SERVER_IP}:6180/boot.ipxe
dhcp-boot=tag:!ipxe,tag:efi64,snponly.efi
dhcp-boot=tag:!ipxe,tag:!efi64,undionly.kpxe
enable-tftp
tftp-root=/usr/lib/ipxe
pid-file=${path.join(dir, 'dnsmasq.pid')}
log-facility=-
`;
}

interface Server {
  readonly lab: Lab;
  readonly label: string;
  close(): Promise<void>;
}

async function startServer(mode: Mode, args: Args<typeof options>, log: (s: string) => void): Promise<Server> {
  const lab = await createLab({ switchNamespace: 'srv', bridgeIp: `${SERVER_IP}/24`, ipv6: true });
  try {
    // Another host on the network keeps the bridge's carrier up between boots, as on a real
    // provisioning network: the server's link-local address (radvd's source) is there before
    // a VM powers on, not a duplicate-address-detection second after its tap comes up.
    await lab.addNamespace('peer');
    await lab.connect('peer');
    const dir = lab.dir;
    mkdirSync(path.join(dir, 'ironic/images'), { recursive: true });
    copyFileSync(args.kernel, path.join(dir, 'ironic', KERNEL));
    writeFileSync(path.join(dir, 'ironic', INITRAMFS), randomBytes(2 * 1024 * 1024));
    if (mode.startsWith('metalboot')) {
      await startStaticHttpd(lab, 'srv', { dir: path.join(dir, 'ironic'), host: '127.0.0.1', port: 6180 });
      writeFileSync(path.join(dir, 'bmh.yaml'), bmhYaml());
      const build = metalbootBuild({
        worktree: args.worktree,
        sha: gitState().sha,
        outDir: path.join(REPO_ROOT, 'bench/out'),
      });
      const logFile = path.join(dir, 'metalboot.log');
      const fd = openSync(logFile, 'w');
      const child = lab.spawn(
        'srv',
        build.node,
        [
          ...build.nodeArgs,
          build.entry,
          ...[
            '--server-ip',
            `${SERVER_IP}/24`,
            '--bmh-file',
            path.join(dir, 'bmh.yaml'),
            '--tftp-root',
            '/usr/lib/ipxe',
          ],
          ...[
            '--ironic-http-url',
            'http://127.0.0.1:6180',
            '--image-listen',
            `${SERVER_IP}:8082`,
            '--callback-listen',
            '',
          ],
          ...['--inspector-extra-kernel-param', 'console=ttyS0'],
          ...(mode === 'metalboot-no-ra' ? ['--router-advertisements=false'] : []),
        ],
        { stdio: ['ignore', fd, fd], cwd: REPO_ROOT },
      );
      closeSync(fd);
      const deadline = Date.now() + 60_000;
      while (!/"msg":"ready"/.test(readFileSync(logFile, 'utf8'))) {
        if (exited(child) || Date.now() > deadline)
          throw new Error(`metalboot did not start:\n${readFileSync(logFile, 'utf8').slice(-3000)}`);
        await sleep(100);
      }
      log(`${mode}: metalboot ready (${build.label})`);
      return { lab, label: build.label, close: () => lab.close() };
    }
    writeFileSync(
      path.join(dir, 'ironic/boot.ipxe'),
      `#!ipxe\nkernel http://${SERVER_IP}:6180/${KERNEL} console=ttyS0 || shell\ninitrd http://${SERVER_IP}:6180/${INITRAMFS} || shell\nboot\n`,
    );
    await startStaticHttpd(lab, 'srv', { dir: path.join(dir, 'ironic'), host: SERVER_IP, port: 6180 });
    writeFileSync(path.join(dir, 'dnsmasq.conf'), dnsmasqConf(dir));
    const dnsmasq = lab.spawn('srv', 'dnsmasq', ['-k', `--conf-file=${path.join(dir, 'dnsmasq.conf')}`]);
    await lab.waitForOutput(dnsmasq, /TFTP root is/, 15_000);
    if (mode === 'dnsmasq-radvd') {
      const conf = path.join(dir, 'radvd.conf');
      writeFileSync(conf, renderRadvdConfig({ ...ANSWER_ONLY, interface: 'br0', maxIntervalSeconds: 600 }), {
        mode: 0o600,
      });
      lab.spawn('srv', 'radvd', radvdArgs({ configPath: conf, pidPath: path.join(dir, 'radvd.pid') }));
    }
    const label = `dnsmasq ${debVersion('dnsmasq-base') ?? '?'} + Python http.server${mode === 'dnsmasq-radvd' ? ` + radvd ${debVersion('radvd') ?? '?'}` : ''}`;
    log(`${mode}: ${label} ready`);
    return { lab, label, close: () => lab.close() };
  } catch (err) {
    await lab.close();
    throw err;
  }
}

async function bootOnce(
  server: Server,
  mode: Mode,
  firmware: Firmware,
  run: number,
  args: Args<typeof options>,
): Promise<BootResult> {
  const { lab } = server;
  const vm = VMS[firmware];
  const { ifname } = await lab.addTap();
  const serialPath = path.join(lab.dir, `${vm.name}-${run}-serial.log`);
  const cap = await lab.capture(
    'srv',
    'br0',
    // DHCP, ICMPv6, and TCP segments whose payload starts with "GET " or "HEAD".
    'udp port 67 or udp port 68 or icmp6 or (tcp and (tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420 or tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x48454144))',
  );
  const load1 = loadAvg1();
  const poweredOn = Date.now();
  const qemu = lab.spawn('srv', 'qemu-system-x86_64', qemuArgs(vm, { tap: ifname, serialPath, dir: lab.dir }));
  const serial = () => (existsSync(serialPath) ? readFileSync(serialPath, 'latin1') : '');
  let kernelRunning: number | undefined;
  const deadline = poweredOn + args['boot-timeout-s'] * 1000;
  while (Date.now() < deadline && !exited(qemu)) {
    if (/Linux version \d/.test(serial())) {
      kernelRunning = (Date.now() - poweredOn) / 1000;
      break;
    }
    await sleep(100);
  }
  qemu.kill('SIGKILL');
  const { packets } = await cap.stop();
  let explainAckToScript: number | undefined;
  if (mode.startsWith('metalboot')) {
    const r = await lab.exec('srv', 'curl', ['-s', `http://127.0.0.1:8080/debug/explain?mac=${vm.mac}`], {
      timeoutMs: 10_000,
    });
    try {
      explainAckToScript = (JSON.parse(r.stdout) as { timing?: { ackToScriptSeconds?: number } }).timing
        ?.ackToScriptSeconds;
    } catch {
      explainAckToScript = undefined;
    }
  }
  const t = bootTimeline(packets, { mac: vm.mac, ip: vm.ip });
  const at = (s: number | undefined) => (s === undefined ? undefined : s - poweredOn / 1000);
  const bootIpxe = t.requests.find((r) => r.path === '/boot.ipxe')?.at;
  const solicitation = t.solicitations[0];
  return {
    mode,
    firmware,
    run,
    ack: at(bootIpxe === undefined ? t.acks.at(-1) : lastBefore(t.acks, bootIpxe)),
    bootIpxe: at(bootIpxe),
    kernelRequest: at(t.requests.find((r) => r.path.endsWith('ironic-python-agent.kernel'))?.at),
    kernelRunning,
    solicitation: at(solicitation),
    advertisement: at(solicitation === undefined ? undefined : t.advertisements.find((a) => a >= solicitation)),
    explainAckToScript,
    load1,
  };
}

/** "median (min–max)" of the defined values, or "—". */
export function spread(values: readonly (number | undefined)[], digits = 1): string {
  const v = values.filter((x): x is number => x !== undefined);
  if (v.length === 0) return '—';
  const missing = values.length - v.length;
  const range = v.length > 1 ? ` (${fmt(Math.min(...v), digits)}–${fmt(Math.max(...v), digits)})` : '';
  return `${fmt(median(v), digits)}${range}${missing > 0 ? `, ${missing} of ${values.length} missing` : ''}`;
}

export function resultsTable(
  results: readonly BootResult[],
  modes: readonly Mode[],
  firmwares: readonly Firmware[],
): string {
  const rows = [
    '| firmware | server | power-on → DHCP ACK to iPXE | ACK → GET /boot.ipxe | power-on → GET /boot.ipxe | power-on → kernel running | RS → RA |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const firmware of firmwares)
    for (const mode of modes) {
      const rs = results.filter((r) => r.mode === mode && r.firmware === firmware);
      if (rs.length === 0) continue;
      const gap = rs.map((r) => (r.ack === undefined || r.bootIpxe === undefined ? undefined : r.bootIpxe - r.ack));
      const raLatency = rs.map((r) =>
        r.solicitation === undefined || r.advertisement === undefined
          ? undefined
          : (r.advertisement - r.solicitation) * 1000,
      );
      rows.push(
        `| ${firmware === 'bios' ? 'SeaBIOS + iPXE' : 'OVMF → snponly.efi'} | ${mode} | ${spread(rs.map((r) => r.ack))} s | ${spread(gap)} s | ${spread(rs.map((r) => r.bootIpxe))} s | ${spread(rs.map((r) => r.kernelRunning))} s | ${raLatency.some((x) => x !== undefined) ? `${spread(raLatency, 0)} ms` : 'none'} |`,
      );
    }
  return rows.join('\n');
}

export async function main(args: Args<typeof options>, run: Run): Promise<void> {
  requireQemuBoot();
  requireTools('tcpdump', 'python3', 'radvd', 'curl');
  const modes = args.modes as readonly Mode[];
  if (modes.some((m) => m.startsWith('dnsmasq')) && findExecutable('dnsmasq') === undefined)
    throw new Error('dnsmasq is missing (Debian package dnsmasq-base)');
  if (!existsSync(args.kernel))
    throw new Error(`no kernel at ${args.kernel}: run the QEMU e2e test once (it caches one), or pass --kernel`);
  const firmwares = args.firmware as readonly Firmware[];
  const log = elapsedLog(run.startedMs, (s) => process.stderr.write(`${s}\n`));
  const gate = new QuietGate({ threshold: args['quiet-load'], perWaitS: args['quiet-wait-s'], log });
  const results: BootResult[] = [];
  const labels = new Map<Mode, string>();
  const loadBefore = loadAvg1();
  for (const mode of modes) {
    await gate.wait(mode);
    const server = await startServer(mode, args, log);
    run.onExit(() => server.lab.closeSync());
    labels.set(mode, server.label);
    try {
      for (let i = 1; i <= args.runs; i++)
        for (const firmware of firmwares) {
          run.limit.check();
          const r = await bootOnce(server, mode, firmware, i, args);
          results.push(r);
          log(
            `${mode} ${firmware} run ${i}: ACK ${fmt(r.ack, 1)} s, GET /boot.ipxe ${fmt(r.bootIpxe, 1)} s, kernel running ${fmt(r.kernelRunning, 1)} s (load ${r.load1.toFixed(2)})`,
          );
        }
    } finally {
      await server.close();
    }
  }
  const mc = machine();
  const body = [
    resultsTable(results, modes, firmwares),
    '',
    `Seconds from power-on (QEMU's start), median and (min–max) of ${args.runs} boots each, from a capture on the server's bridge; "kernel running" is "Linux version" on the serial console. ` +
      "The ACK is the last DHCP ACK before GET /boot.ipxe (iPXE's; under OVMF the firmware's own came before TFTP). RS → RA: from the VM's first router solicitation to the first advertisement it got.",
    '',
    `**Set-up**: \`sudo node --import tsx bench/firmware-boot.ts --runs ${args.runs}\`. QEMU ${debVersion('qemu-system-x86') ?? '?'} under TCG (software emulation), 256 MiB, iPXE ${debVersion('ipxe') ?? '?'} (ipxe-qemu ROM, snponly.efi), OVMF ${debVersion('ovmf') ?? '?'}, Debian's cloud kernel with a 2 MiB random initramfs, IPv6 on in the lab. ` +
      [...labels].map(([m, l]) => `${m}: ${l}`).join('; ') +
      `. metalboot as the chart runs it (image proxy in its worker thread, \`--image-listen\`), images relayed from Python's http.server on 127.0.0.1; the dnsmasq modes serve them from that server directly.`,
    '',
    `Machine: ${mc.nproc} × ${mc.cpuModel}, ${mc.memGiB} GiB, Linux ${mc.kernel}; load average ${loadBefore.toFixed(2)} at start, ${loadAvg1().toFixed(2)} at the end, ${fmt(Math.min(...results.map((r) => r.load1)), 2)}–${fmt(Math.max(...results.map((r) => r.load1)), 2)} at the boots (other work shares this machine, and QEMU's TCG takes a core).`,
  ].join('\n');
  process.stdout.write(`${body}\n`);
  const runDir = path.join(REPO_ROOT, 'bench/out', `firmware-boot-${run.stamp}`);
  mkdirSync(runDir, { recursive: true });
  // The hand-written `### Reading it` notes of the section survive a re-run (they name the run they were written for).
  const notes =
    !args['no-results'] && existsSync(RESULTS_FILE)
      ? subsection(readFileSync(RESULTS_FILE, 'utf8'), 'Router advertisements', 'Reading it')
      : undefined;
  publishResults({
    heading: 'Router advertisements',
    body,
    resultsBody: notes === undefined ? body : `${body}\n\n${notes}\n`,
    write: !args['no-results'],
    skipped: args['no-results'] ? '--no-results' : undefined,
    runDir,
    json: results,
    log,
  });
}

export const script = defineScript({
  name: 'firmware-boot',
  usage: 'sudo node --import tsx bench/firmware-boot.ts [options]',
  about:
    'QEMU firmware boots through metalboot (router advertisements on / off) and dnsmasq + httpd: seconds from power-on',
  options,
  timeLimit: { seconds: (a) => a['max-total-s'], stop: 'check' },
  main,
});

runIfEntry(import.meta.url, script);
