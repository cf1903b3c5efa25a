/**
 * metalboot in-process, configured as the Helm chart runs it (BareMetalHosts from a Kubernetes
 * API, leader election, the image proxy in its worker thread with a cache, TFTP, the callback
 * listener and the Ironic API proxy) on loopback ports, with the process's registry (default
 * metrics included), and a way to make it count one of everything the chart's dashboard and
 * alerts query. Files go to a scratch directory under the repository's .cache/.
 */
import dgram from 'node:dgram';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { request as httpRequest } from 'undici';
import { closeAll, startAll } from '../../src/base/service.js';
import { loadConfig } from '../../src/config/load.js';
import { decode, encode } from '../../src/dhcp/codec.js';
import { MESSAGE_TYPE, getMessageType } from '../../src/dhcp/options.js';
import { encode6 } from '../../src/dhcp6/codec.js';
import { MSG6, OPT6, duidLl, iaNaOption, option } from '../../src/dhcp6/options.js';
import { macToBytes, parseMac } from '../../src/net/mac.js';
import { buildProduct, type Product } from '../../src/wiring/product.js';
import { processRegistry } from '../../src/wiring/registry.js';
import { IPXE, request as dhcpRequest } from '../../lab/dhcp-requests.js';
import { exchange, tftpGet, TftpClientError } from '../../lab/tftp-client.js';
import { startKubeApiServer, type KubeApiServer } from './kube-apiserver.js';
import { writeKubeconfig } from './kube-config.js';
import { startUpstreamHttpd, type UpstreamHttpd } from './upstream-httpd.js';
import { until } from './until.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const SCRATCH_ROOT = path.join(REPO, '.cache', 'scratch');

export const BMH_MAC = '52:54:00:6d:62:01';
/** The BareMetalHost's lease: a loopback address, so its ACK (unicast to ciaddr) reaches the test. */
export const BMH_IP = '127.0.0.21';
const UNKNOWN_MAC = '52:54:00:6d:62:99';
const KERNEL = Buffer.alloc(256 * 1024, 0x6b);
const BINARY = Buffer.alloc(40_000, 0x69);

export interface MonitoredProduct {
  readonly product: Product;
  readonly httpUrl: string;
  /** GET /metrics, as Prometheus would scrape it. */
  metrics(): Promise<string>;
  /** Makes it count one of each thing the dashboard and the alerts query. */
  exercise(): Promise<void>;
  close(): Promise<void>;
}

export async function startMonitoredProduct(): Promise<MonitoredProduct> {
  mkdirSync(SCRATCH_ROOT, { recursive: true });
  const scratch = mkdtempSync(path.join(SCRATCH_ROOT, 'monitoring-'));
  const cleanups: (() => Promise<void> | void)[] = [() => rmSync(scratch, { recursive: true, force: true })];
  const close = async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  };
  try {
    const api: KubeApiServer = await startKubeApiServer({
      hosts: [
        {
          metadata: {
            name: 'worker-0',
            namespace: 'metal3',
            annotations: {
              'metal3.vcluster.com/ip-address': `${BMH_IP}/8`,
              'metal3.vcluster.com/ipv6-address': 'fd00:77::21/64',
            },
          },
          spec: { bootMACAddress: BMH_MAC },
          status: { provisioning: { state: 'inspecting' } },
        },
      ],
    });
    cleanups.push(() => api.close());
    const upstream: UpstreamHttpd = await startUpstreamHttpd();
    cleanups.push(() => upstream.close());
    upstream.setFile('/images/ironic-python-agent.kernel', KERNEL);
    upstream.setFile('/images/broken.img', KERNEL);
    upstream.behave('/images/broken.img', { dieAfterBytes: 0 });

    // The host's DHCP client: replies to a renewing client go to ciaddr:clientPort.
    const client = dgram.createSocket('udp4');
    cleanups.push(() => {
      client.close();
    });
    client.bind(0, BMH_IP);
    await once(client, 'listening');

    const tftpRoot = path.join(scratch, 'tftp');
    mkdirSync(tftpRoot);
    writeFileSync(path.join(tftpRoot, 'undionly.kpxe'), BINARY);
    const configFile = path.join(scratch, 'metalboot.yaml');
    // TFTP gives up on a silent client after 100 ms (one retry) instead of 5 s.
    const yaml = JSON.stringify({ dhcp: { clientPort: client.address().port }, tftp: { timeoutMs: 100, retries: 1 } });
    writeFileSync(configFile, yaml);
    const kubeconfig = await writeKubeconfig(api, { dir: scratch });
    const cacheDir = path.join(scratch, 'cache');
    mkdirSync(cacheDir);
    const loaded = loadConfig({
      argv: [
        ...['--config', configFile, '--server-ip', '127.0.0.1/8'],
        ...['--dhcp-listen', '127.0.0.1:0', '--tftp-listen', '127.0.0.1:0', '--tftp-root', tftpRoot],
        ...['--http-listen', '127.0.0.1:0', '--image-listen', '127.0.0.1:0', '--image-cache-dir', cacheDir],
        ...['--callback-listen', '127.0.0.1:0', '--ironic-http-url', upstream.url, '--ironic-api-url', upstream.url],
        ...['--kube', '--kubeconfig', kubeconfig, '--leader-election-id', 'metalboot'],
        ...['--leader-election-namespace', 'metal3', '--log-level', 'silent'],
        // DHCPv6 on loopback (its TFTP over IPv6 off): the dashboard's DHCPv6 panel.
        ...['--dhcp6-server-ip', 'fd00:77::1/64', '--dhcp6-listen', '[::1]:0', '--tftp-listen6', ''],
      ],
      env: {},
      readFile: (p) => readFileSync(p, 'utf8'),
      localAddresses: () => [],
    });
    if (loaded.kind !== 'config') throw new Error(`configuration refused: ${JSON.stringify(loaded)}`);
    const product = buildProduct(loaded.config, {
      logger: pino({ level: 'silent' }),
      registry: processRegistry(),
      hostname: 'metalboot-0',
    });
    cleanups.push(() => closeAll(product.services));
    await startAll(product.services);
    const httpUrl = `http://127.0.0.1:${product.http.address().port}`;
    const imageUrl = `http://127.0.0.1:${product.images!.address().port}`;
    const tftpPort = product.tftp!.address().port;
    const dhcpPort = product.dhcp!.address().port;
    const cacheResult = async (url: string) => {
      const res = await httpRequest(url);
      await res.body.dump();
      return res.headers['x-cache'];
    };
    const get = async (url: string, init?: Parameters<typeof httpRequest>[1]) => {
      const res = await httpRequest(url, init);
      await res.body.dump();
      return res.statusCode;
    };

    const exercise = async () => {
      await until(() => (product.kube!.status().ready ? true : undefined), 10_000, 'BareMetalHosts listed');
      await until(() => (product.leader!.isLeader() ? true : undefined), 10_000, 'leadership');
      // DHCP: an ACK for the BareMetalHost (a renewal, unicast to it), a drop for a stranger.
      const ack = once(client, 'message') as Promise<[Buffer]>;
      client.send(
        encode(dhcpRequest({ type: MESSAGE_TYPE.REQUEST, mac: BMH_MAC, ciaddr: BMH_IP, options: IPXE })),
        dhcpPort,
        '127.0.0.1',
      );
      const [reply] = await ack;
      if (getMessageType(decode(reply).options) !== MESSAGE_TYPE.ACK) throw new Error('no DHCP ACK');
      client.send(
        encode(dhcpRequest({ type: MESSAGE_TYPE.DISCOVER, mac: UNKNOWN_MAC, giaddr: '127.0.0.1' })),
        dhcpPort,
        '127.0.0.1',
      );
      // DHCPv6: the BareMetalHost's Solicit (its MAC in a DUID-LL) is advertised its IPv6 address.
      const client6 = dgram.createSocket('udp6');
      try {
        await new Promise<void>((r) => client6.bind(0, '::1', r));
        const advertised = once(client6, 'message') as Promise<[Buffer]>;
        client6.send(
          encode6({
            kind: 'client',
            msgType: MSG6.SOLICIT,
            transactionId: 1,
            options: [option(OPT6.CLIENTID, duidLl(macToBytes(parseMac(BMH_MAC)!))), iaNaOption(1, 0, 0)],
          }),
          product.dhcp6!.address().port,
          '::1',
        );
        await advertised;
      } finally {
        client6.close();
      }
      // TFTP: a transfer that completes, one refused, one that fails (no ACK ever), a runt.
      await tftpGet({ port: tftpPort, file: 'undionly.kpxe', localAddress: BMH_IP });
      await tftpGet({ port: tftpPort, file: 'missing.efi', retries: 1 }).catch((err: unknown) => {
        if (!(err instanceof TftpClientError)) throw err;
      });
      await tftpGet({ port: tftpPort, file: 'undionly.kpxe', dropAck: () => true, timeoutMs: 2000, retries: 0 }).catch(
        (err: unknown) => {
          if (!(err instanceof TftpClientError)) throw err;
        },
      );
      await exchange(tftpPort, Uint8Array.of(0), { waitMs: 50 });
      // HTTP: the NIC loop, the host's script, a binary; images through the worker (a miss, a
      // hit, an upstream that dies); a heartbeat the API proxy refuses.
      await get(`${httpUrl}/boot.ipxe`);
      await get(`${httpUrl}/boot/${BMH_MAC}.ipxe`);
      await get(`${httpUrl}/ipxe/undionly.kpxe`);
      await get(`${imageUrl}/images/ironic-python-agent.kernel`);
      // Once its fill is stored, the same image is a hit.
      for (let i = 0; (await cacheResult(`${imageUrl}/images/ironic-python-agent.kernel`)) !== 'hit'; i++) {
        if (i === 100) throw new Error('no image cache hit');
        await new Promise((r) => setTimeout(r, 50));
      }
      await get(`${imageUrl}/images/broken.img`).catch(() => 0);
      await get(`${httpUrl}/v1/heartbeat/not%20a%20node`, { method: 'POST', body: '{}' });
      await get(`${httpUrl}/readyz`);
    };
    return {
      product,
      httpUrl,
      metrics: async () => {
        const res = await httpRequest(`${httpUrl}/metrics`);
        if (res.statusCode !== 200) throw new Error(`/metrics answered ${res.statusCode}`);
        return res.body.text();
      },
      exercise,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
