/**
 * The time from a host's DHCP ACK to its first script request, through the whole product on
 * loopback against the in-repo API server: iPXE's REQUEST is acknowledged, then /boot.ipxe
 * comes from the leased address and the host script by MAC. /debug/explain and /metrics show
 * the time, and the host script's BootScriptServed Event says it.
 */
import dgram from 'node:dgram';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { IPXE, request } from '../../lab/dhcp-requests.js';
import { closeAll, startAll } from '../../src/base/service.js';
import { loadConfig } from '../../src/config/load.js';
import { encode } from '../../src/dhcp/codec.js';
import { MESSAGE_TYPE } from '../../src/dhcp/options.js';
import { buildProduct } from '../../src/wiring/product.js';
import { startKubeApiServer } from '../support/kube-apiserver.js';
import { writeKubeconfig } from '../support/kube-config.js';

const NS = 'metal3';
const MAC = '52:54:00:00:00:31';
const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function until(condition: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('ACK to first script request', () => {
  it('is in /debug/explain, /metrics and the host script Event', async () => {
    const s = await startKubeApiServer({
      token: 'test-token',
      hosts: [
        {
          // The lease is 127.0.0.1, so the loopback HTTP requests below come from this host.
          metadata: { name: 'h31', namespace: NS, annotations: { 'metal3.vcluster.com/ip-address': '127.0.0.1/8' } },
          spec: { bootMACAddress: MAC, online: true },
        },
      ],
    });
    cleanups.push(() => s.close());
    const root = await mkdtemp(join(tmpdir(), 'metalboot-timing-'));
    cleanups.push(() => rm(root, { recursive: true, force: true }));
    const loaded = loadConfig({
      argv: [
        ...['--kube', '--kubeconfig', await writeKubeconfig(s), '--kube-namespace', NS],
        ...['--server-ip', '127.0.0.1/8', '--dhcp-listen', '127.0.0.1:0', '--tftp-listen', '', '--tftp-root', root],
        ...['--http-listen', '127.0.0.1:0', '--callback-listen', '', '--log-level', 'silent'],
      ],
      env: {},
      readFile: () => '',
      localAddresses: () => [],
    });
    if (loaded.kind !== 'config') throw new Error(JSON.stringify(loaded));
    const product = buildProduct(loaded.config, { logger: pino({ level: 'silent' }), registry: new Registry() });
    cleanups.push(() => closeAll(product.services));
    await startAll(product.services);
    const base = `http://127.0.0.1:${product.http.address().port}`;

    // iPXE's REQUEST: acknowledged with 127.0.0.1.
    const client = dgram.createSocket('udp4');
    cleanups.push(() => new Promise<void>((r) => client.close(() => r())));
    const req = request({
      type: MESSAGE_TYPE.REQUEST,
      mac: MAC,
      requested: '127.0.0.1',
      serverId: '127.0.0.1',
      options: IPXE,
    });
    client.send(encode(req), product.dhcp!.address().port, '127.0.0.1');
    await until(() => s.events(NS).some((e) => e.reason === 'DHCPLeaseAcknowledged'), 'the ACK');
    const before = (await (await fetch(`${base}/debug/explain?mac=${MAC}`)).json()) as Record<string, unknown>;
    expect(before.timing).toMatchObject({ ackClient: 'ipxe', firstScriptRequest: null, ackToScriptSeconds: null });

    await new Promise((r) => setTimeout(r, 300));
    expect((await fetch(`${base}/boot.ipxe`)).status).toBe(200);
    expect((await fetch(`${base}/boot/${MAC.replaceAll(':', '-')}.ipxe`)).status).toBe(200);

    const after = (await (await fetch(`${base}/debug/explain?mac=${MAC}`)).json()) as {
      timing: { ackToScriptSeconds: number; firstScriptRequest: string };
    };
    expect(after.timing.ackToScriptSeconds).toBeGreaterThanOrEqual(0.3);
    expect(after.timing.ackToScriptSeconds).toBeLessThan(10);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toContain('metalboot_boot_ack_to_script_seconds_count 1');
    await until(() => s.events(NS).some((e) => e.reason === 'BootScriptServed'), 'the script Event');
    const seconds = after.timing.ackToScriptSeconds.toFixed(1);
    expect(s.events(NS).find((e) => e.reason === 'BootScriptServed')?.message).toBe(
      `served the inspector boot script: first script request ${seconds} s after the DHCP ACK`,
    );
  });
});
