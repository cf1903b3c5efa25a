/**
 * metalboot in-process on loopback with simulated hosts that boot through its real DHCP, TFTP and
 * HTTP paths: host i has MAC 52:54:00:b0:<i/256>:<i%256> and the static lease 127.0.<1+i/250>.<1+i%250>,
 * and sends everything from that address (loopback takes all of 127/8), so metalboot matches its
 * TFTP, image and IPA requests to it by the address its ACK gave. Ironic's httpd and API are the
 * in-repo stand-ins; the image proxy runs in its worker thread, as the chart runs it.
 */
import dgram from 'node:dgram';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { Agent, request } from 'undici';
import { IPXE, UEFI_PXE, request as dhcpRequest } from '../../lab/dhcp-requests.js';
import { tftpGet } from '../../lab/tftp-client.js';
import { closeAll, startAll } from '../../src/base/service.js';
import { loadConfig } from '../../src/config/load.js';
import { encode } from '../../src/dhcp/codec.js';
import { MESSAGE_TYPE } from '../../src/dhcp/options.js';
import { buildProduct, type Product } from '../../src/wiring/product.js';
import { processRegistry } from '../../src/wiring/registry.js';
import { startIronic, type IronicFixture } from './ironic-fixture.js';
import { startUpstreamHttpd, type UpstreamHttpd } from './upstream-httpd.js';

export const KERNEL = Buffer.alloc(64 * 1024, 0x6b);
export const INITRAMFS = Buffer.alloc(96 * 1024, 0x69);
export const SNPONLY = Buffer.alloc(20_000, 0x73);

export interface SimulatedHost {
  readonly mac: string;
  readonly ip: string;
  readonly node: string;
}

export function simulatedHost(i: number): SimulatedHost {
  const hex = (n: number) => n.toString(16).padStart(2, '0');
  return {
    mac: `52:54:00:b0:${hex(Math.floor(i / 256))}:${hex(i % 256)}`,
    ip: `127.0.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`,
    node: `0f3a0b9e-7c55-4b62-9b8b-${i.toString(16).padStart(12, '0')}`,
  };
}

/** The steps of a simulated UEFI PXE boot into the inspector ramdisk, in order. */
export const BOOT_STEPS = [
  'firmware-dhcp',
  'tftp',
  'ipxe-dhcp',
  'scripts',
  'kernel',
  'initramfs',
  'lookup',
  'heartbeat',
] as const;
export type BootStep = (typeof BOOT_STEPS)[number];

/** The milestone metalboot records last for each step. */
const LAST_MILESTONE: Readonly<Record<BootStep, string>> = {
  'firmware-dhcp': 'dhcp-ack',
  tftp: 'tftp-end',
  'ipxe-dhcp': 'ipxe-dhcp-ack',
  scripts: 'host-script',
  kernel: 'kernel',
  initramfs: 'initramfs',
  lookup: 'ipa-lookup',
  heartbeat: 'ipa-heartbeat',
};

export interface SimulatedBoots {
  readonly product: Product;
  readonly httpUrl: string;
  readonly hosts: readonly SimulatedHost[];
  /** Runs one step of host i's boot. */
  step(i: number, step: BootStep): Promise<void>;
  /** Runs host i's boot from its first step through `last`. */
  boot(i: number, last?: BootStep): Promise<void>;
  close(): Promise<void>;
}

export async function startSimulatedBoots(count: number): Promise<SimulatedBoots> {
  const scratch = mkdtempSync(path.join(tmpdir(), 'metalboot-boots-'));
  const cleanups: (() => unknown)[] = [() => rmSync(scratch, { recursive: true, force: true })];
  const close = async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  };
  try {
    const hosts = Array.from({ length: count }, (_, i) => simulatedHost(i));
    const upstream: UpstreamHttpd = await startUpstreamHttpd();
    cleanups.push(() => upstream.close());
    upstream.setFile('/images/ironic-python-agent.kernel', KERNEL);
    upstream.setFile('/images/ironic-python-agent.initramfs', INITRAMFS);
    const ironic: IronicFixture = await startIronic({ nodes: hosts.map((h) => ({ uuid: h.node, macs: [h.mac] })) });
    cleanups.push(() => ironic.close());
    const tftpRoot = path.join(scratch, 'tftp');
    mkdirSync(tftpRoot);
    writeFileSync(path.join(tftpRoot, 'snponly.efi'), SNPONLY);
    const hostsFile = path.join(scratch, 'hosts');
    writeFileSync(hostsFile, hosts.map((h) => `${h.mac},${h.ip}\n`).join(''));
    const loaded = loadConfig({
      argv: [
        ...['--server-ip', '127.0.0.1/8', '--dhcp-listen', '127.0.0.1:0', '--dhcp-hosts-file', hostsFile],
        ...['--tftp-listen', '127.0.0.1:0', '--tftp-root', tftpRoot],
        ...['--http-listen', '127.0.0.1:0', '--image-listen', '127.0.0.1:0', '--callback-listen', ''],
        ...['--ironic-http-url', upstream.url, '--ironic-api-url', ironic.url, '--log-level', 'silent'],
      ],
      env: {},
      readFile: (p) => (p === hostsFile ? hosts.map((h) => `${h.mac},${h.ip}\n`).join('') : ''),
      localAddresses: () => [],
    });
    if (loaded.kind !== 'config') throw new Error(`configuration refused: ${JSON.stringify(loaded)}`);
    const product = buildProduct(loaded.config, { logger: pino({ level: 'silent' }), registry: processRegistry() });
    cleanups.push(() => closeAll(product.services));
    await startAll(product.services);
    const httpUrl = `http://127.0.0.1:${product.http.address().port}`;
    const imageUrl = `http://127.0.0.1:${product.images!.address().port}`;
    const dhcpPort = product.dhcp!.address().port;
    const tftpPort = product.tftp!.address().port;

    const dhcp = dgram.createSocket('udp4');
    cleanups.push(() => new Promise<void>((r) => dhcp.close(() => r())));
    dhcp.bind(0, '127.0.0.1');
    await once(dhcp, 'listening');
    const agents = new Map<string, Agent>();
    cleanups.push(() => Promise.all([...agents.values()].map((a) => a.close())));
    /** HTTP from the host's own address. */
    const from = (ip: string): Agent => {
      let a = agents.get(ip);
      if (a === undefined) {
        a = new Agent({ localAddress: ip });
        agents.set(ip, a);
      }
      return a;
    };
    const get = async (h: SimulatedHost, url: string, headers: Record<string, string> = {}) => {
      const res = await request(url, { dispatcher: from(h.ip), headers });
      const body = await res.body.text();
      if (res.statusCode >= 400) throw new Error(`${url} answered ${res.statusCode}: ${body}`);
      return body;
    };
    const send = (h: SimulatedHost, type: number, options: typeof IPXE) =>
      new Promise<void>((resolve, reject) =>
        dhcp.send(
          encode(dhcpRequest({ type, mac: h.mac, requested: h.ip, serverId: '127.0.0.1', options })),
          dhcpPort,
          '127.0.0.1',
          (err) => (err ? reject(err) : resolve()),
        ),
      );
    const tokens = new Map<string, string>();
    const api = { 'x-openstack-ironic-api-version': '1.99', 'content-type': 'application/json' };

    /** Until metalboot has recorded `milestone` as the host's last (reports may follow the answer). */
    const recorded = async (h: SimulatedHost, milestone: string) => {
      const deadline = Date.now() + 10_000;
      for (;;) {
        const res = await request(`${httpUrl}/debug/boots/${h.mac}`);
        const body = await res.body.text();
        if (res.statusCode === 200 && (JSON.parse(body) as { lastMilestone: string }).lastMilestone === milestone)
          return;
        if (Date.now() > deadline) throw new Error(`${h.mac}: ${milestone} not recorded within 10 s (${body})`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    const step = async (i: number, s: BootStep): Promise<void> => {
      const h = hosts[i]!;
      await runStep(h, s);
      await recorded(h, LAST_MILESTONE[s]);
    };
    const runStep = async (h: SimulatedHost, s: BootStep): Promise<void> => {
      switch (s) {
        case 'firmware-dhcp':
          await send(h, MESSAGE_TYPE.DISCOVER, UEFI_PXE);
          await recorded(h, 'dhcp-offer');
          await send(h, MESSAGE_TYPE.REQUEST, UEFI_PXE);
          return;
        case 'tftp':
          await tftpGet({ port: tftpPort, file: 'snponly.efi', localAddress: h.ip, expected: SNPONLY });
          return;
        case 'ipxe-dhcp':
          await send(h, MESSAGE_TYPE.REQUEST, IPXE);
          return;
        case 'scripts':
          await get(h, `${httpUrl}/boot.ipxe`);
          await get(h, `${httpUrl}/boot/${h.mac.replaceAll(':', '-')}.ipxe`);
          return;
        case 'kernel':
          await get(h, `${imageUrl}/images/ironic-python-agent.kernel`);
          return;
        case 'initramfs':
          await get(h, `${imageUrl}/images/ironic-python-agent.initramfs`);
          return;
        case 'lookup': {
          const body = await get(h, `${httpUrl}/v1/lookup?addresses=${h.mac}`, api);
          tokens.set(h.mac, (JSON.parse(body) as { config: { agent_token: string } }).config.agent_token);
          return;
        }
        case 'heartbeat': {
          const res = await request(`${httpUrl}/v1/heartbeat/${h.node}`, {
            method: 'POST',
            dispatcher: from(h.ip),
            headers: api,
            body: JSON.stringify({
              callback_url: `http://${h.ip}:9999`,
              agent_token: tokens.get(h.mac),
              agent_version: '10.1.0',
            }),
          });
          const text = await res.body.text();
          if (res.statusCode !== 202) throw new Error(`heartbeat answered ${res.statusCode}: ${text}`);
          return;
        }
      }
    };
    const boot = async (i: number, last: BootStep = 'heartbeat') => {
      for (const s of BOOT_STEPS.slice(0, BOOT_STEPS.indexOf(last) + 1)) await step(i, s);
    };
    return { product, httpUrl, hosts, step, boot, close };
  } catch (err) {
    await close();
    throw err;
  }
}
