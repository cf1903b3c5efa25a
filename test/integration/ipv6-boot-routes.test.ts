/**
 * The product with DHCPv6 on, over real loopback sockets of both families: one dual-stack HTTP
 * listener ([::]:0) gives a host that fetches its scripts over IPv6 IPv6 URLs (boot loop, kernel,
 * initramfs, API and callback) and a host over IPv4 the IPv4 ones; TFTP serves over IPv6;
 * DHCPv6 answers on ::1; /debug/explain answers for both families.
 */
import dgram from 'node:dgram';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeAll, startAll } from '../../src/base/service.js';
import { loadConfig } from '../../src/config/load.js';
import { decode6, encode6 } from '../../src/dhcp6/codec.js';
import {
  MSG6,
  OPT6,
  clientArchOption,
  duidLl,
  findOption,
  iaNaOption,
  option,
  parseBootFileUrl,
  vendorClassOption,
} from '../../src/dhcp6/options.js';
import { macToBytes, parseMac } from '../../src/net/mac.js';
import { buildProduct, type Product } from '../../src/wiring/product.js';
import { tftpGet } from '../../lab/tftp-client.js';

const MAC = '52:54:00:00:06:01';

describe('boot over IPv6 in the product', () => {
  let product: Product;
  let root: string;
  let v4: string;
  let v6: string;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'metalboot-ipv6-'));
    await writeFile(join(root, 'snponly.efi'), Buffer.alloc(3000, 9));
    const loaded = loadConfig({
      argv: [
        ...['--server-ip', '127.0.0.1/8', '--dhcp=false', '--tftp-listen', '', '--tftp-root', root],
        ...['--dhcp6-server-ip', 'fd00:77::1/64', '--dhcp6-listen', '[::1]:0', '--tftp-listen6', '[::1]:0'],
        ...['--http-listen', '[::]:0', '--callback-listen', '', '--router-advertisements=false'],
        ...['--dhcp-hosts', `${MAC},127.0.0.1,[fd00:77::21],n1`, '--log-level', 'silent'],
      ],
      env: {},
      readFile: () => '',
      localAddresses: () => [],
    });
    if (loaded.kind !== 'config') throw new Error(JSON.stringify(loaded));
    product = buildProduct(loaded.config, { logger: pino({ level: 'silent' }), registry: new Registry() });
    await startAll(product.services);
    const port = product.http.address().port;
    v4 = `http://127.0.0.1:${port}`;
    v6 = `http://[::1]:${port}`;
  });

  afterAll(async () => {
    if (product !== undefined) await closeAll(product.services);
    await rm(root, { recursive: true, force: true });
  });

  it('gives scripts fetched over IPv6 IPv6 URLs, and over IPv4 the IPv4 ones, from one listener', async () => {
    const loop6 = await (await fetch(`${v6}/boot.ipxe`)).text();
    expect(loop6).toMatch(/chain --autofree http:\/\/\[fd00:77::1\]:\d+\/boot\//);
    const loop4 = await (await fetch(`${v4}/boot.ipxe`)).text();
    expect(loop4).toContain('chain --autofree http://127.0.0.1:');
    const host6 = await (await fetch(`${v6}/boot/${MAC.replaceAll(':', '-')}.ipxe`)).text();
    expect(host6).toMatch(/kernel --timeout 60000 http:\/\/\[fd00:77::1\]:\d+\/images\/ironic-python-agent\.kernel /);
    expect(host6).toMatch(/ipa-api-url=http:\/\/\[fd00:77::1\]:\d+ /);
    expect(host6).toMatch(/ipa-inspection-callback-url=http:\/\/\[fd00:77::1\]:\d+\/v1\/continue_inspection /);
    const host4 = await (await fetch(`${v4}/boot/${MAC.replaceAll(':', '-')}.ipxe`)).text();
    expect(host4).not.toContain('fd00:77::1');
  });

  it('answers DHCPv6 on ::1 with the URL of TFTP over IPv6 (where it listens), and serves the file over TFTP on ::1', async () => {
    const client = dgram.createSocket('udp6');
    await new Promise<void>((r) => client.bind(0, '::1', r));
    try {
      client.send(
        encode6({
          kind: 'client',
          msgType: MSG6.SOLICIT,
          transactionId: 0x42,
          options: [
            option(OPT6.CLIENTID, duidLl(macToBytes(parseMac(MAC)!))),
            iaNaOption(1, 0, 0),
            clientArchOption([7]),
            vendorClassOption(343, ['PXEClient:Arch:00007:UNDI:003000']),
          ],
        }),
        product.dhcp6!.address().port,
        '::1',
      );
      const adv = decode6(((await once(client, 'message')) as [Buffer])[0]);
      expect(adv.kind === 'client' && adv.msgType).toBe(MSG6.ADVERTISE);
      expect(parseBootFileUrl(findOption(adv.options, OPT6.BOOTFILE_URL)!)).toBe('tftp://[::1]/snponly.efi');
    } finally {
      client.close();
    }
    const got = await tftpGet({ host: '::1', port: product.tftp6!.address().port, file: 'snponly.efi' });
    expect(got.data.length).toBe(3000);
  });

  it('explains both families', async () => {
    const e = (await (await fetch(`${v4}/debug/explain?mac=${MAC}`)).json()) as {
      host: { lease6: unknown };
      dhcp6: { boot: Record<string, string> };
    };
    expect(e.host.lease6).toEqual({ ip: 'fd00:77::21/64', dns: [], ntp: [] });
    expect(e.dhcp6).toMatchObject({ answer: 'advertise', source: 'static', ip: 'fd00:77::21' });
    expect(e.dhcp6.boot['uefi-x64-pxe6']).toBe('tftp://[::1]/snponly.efi');
  });
});
