/**
 * The HTTP boot routes through fastify inject(): every script branch (golden files in
 * test/fixtures/scripts), the NIC loop's 404s, iPXE binaries, operations routes, and the
 * installer branch against a real local HTTP server standing in for Ironic's httpd.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/wiring/http.js';
import { IpxeScripts } from '../../src/boot/ipxe-scripts.js';
import { IpxeFiles } from '../../src/boot/ipxe-files.js';
import { HostIndex } from '../../src/leases/host-index.js';
import { LeasePool } from '../../src/leases/pool.js';
import { bmhToHost } from '../../src/leases/bmh.js';
import { staticToHost } from '../../src/leases/static-hosts.js';
import { parseIpv4 } from '../../src/net/ipv4.js';
import { parseMac } from '../../src/net/mac.js';
import { DEFAULT_BOOT_FILES } from '../../src/boot/boot-files.js';
import { dhcpPolicy, type DhcpPolicy } from '../../src/dhcp/policy.js';

const ip = (s: string) => parseIpv4(s)!;
const golden = (name: string) => path.join(__dirname, '../fixtures/scripts', name);
const P = 'metal3.vcluster.com/';

function bmh(
  name: string,
  mac: string,
  state: string,
  annotations: Record<string, string> = { [`${P}ip-address`]: `10.0.0.${20 + Number.parseInt(mac.slice(-2), 16)}/24` },
) {
  const r = bmhToHost(
    {
      apiVersion: 'metal3.io/v1alpha1',
      kind: 'BareMetalHost',
      metadata: { name, namespace: 'metal3', annotations },
      spec: { bootMACAddress: mac },
      status: { provisioning: { state } },
    },
    { annotationPrefix: P, from: 'test' },
  );
  if (r.kind !== 'host') throw new Error(r.reason);
  return r.host;
}

const IRONIC_CONFIG = `#!ipxe
set attempts:int32 10
:retry_boot
imgfree
kernel --timeout 60000 http://ironic.example:6180/deploy-1/deploy_kernel selinux=0 troubleshoot=0 text ipa-api-url=http://ironic.example:6385 ipa-global-request-id=req-1 BOOTIF=\${mac} initrd=deploy_ramdisk || goto retry
initrd --timeout 60000 http://ironic.example:6180/deploy-1/deploy_ramdisk || goto retry
boot
`;

describe('HTTP boot routes', () => {
  let app: FastifyInstance;
  let ironic: http.Server;
  let ironicUrl: string;
  let root: string;
  const ironicRequests: string[] = [];
  const index = new HostIndex();
  const registry = new Registry();

  beforeAll(async () => {
    ironic = http.createServer((req, res) => {
      ironicRequests.push(req.url ?? '');
      if (req.url === '/pxelinux.cfg/52-54-00-00-00-04') {
        res
          .writeHead(200, { 'content-type': 'text/plain' })
          .end(IRONIC_CONFIG.replaceAll('http://ironic.example:6180', ironicUrl));
      } else if (req.url === '/pxelinux.cfg/52-54-00-00-00-06') {
        res.writeHead(500).end('boom');
      } else res.writeHead(404).end();
    });
    await new Promise<void>((r) => ironic.listen(0, '127.0.0.1', () => r()));
    ironicUrl = `http://127.0.0.1:${(ironic.address() as AddressInfo).port}`;

    root = mkdtempSync(path.join(tmpdir(), 'metalboot-http-'));
    writeFileSync(path.join(root, 'snponly.efi'), Buffer.alloc(70_000, 7));
    const files = new IpxeFiles({ root, watch: false, logger: pino({ level: 'silent' }) });
    await files.start();

    index.replaceAll('bmh', [
      bmh('inspecting-0', '52:54:00:00:00:01', 'inspecting'),
      bmh('new-0', '52:54:00:00:00:02', ''),
      bmh('done-0', '52:54:00:00:00:03', 'provisioned'),
      bmh('deploying-0', '52:54:00:00:00:04', 'provisioning'),
      bmh('deploying-1', '52:54:00:00:00:05', 'provisioning'),
      bmh('broken-ironic', '52:54:00:00:00:06', 'provisioning'),
      bmh('no-ip', '52:54:00:00:00:07', 'inspecting', {}),
    ]);
    index.replaceAll('static', [
      staticToHost({ mac: parseMac('52:54:00:00:00:10')!, ip: ip('10.0.0.31'), hostname: undefined }, 'test', {
        prefix: 24,
        gateway: undefined,
        dns: [],
        ntp: [],
      }),
    ]);
    const pool = new LeasePool({ ranges: [], isClaimed: () => false, serverIp: ip('10.0.0.1') });
    const policy: DhcpPolicy = dhcpPolicy({
      serverIp: ip('10.0.0.1'),
      serverPrefix: 24,
      ports: { relay: 67, client: 68 },
      reply: { serverId: ip('10.0.0.1'), tftpServer: ip('10.0.0.1'), domainName: undefined },
      boot: { bootFiles: DEFAULT_BOOT_FILES, httpAdvertiseUrl: 'http://10.0.0.1:8080' },
      leaseSeconds: 3600,
      rangeGateway: undefined,
      rangeDns: [],
      rangeNtp: [],
    });
    app = await buildApp({
      logger: pino({ level: 'silent' }),
      registry,
      boot: {
        scripts: new IpxeScripts(undefined),
        index,
        files,
        baseUrl: 'http://10.0.0.1:8080',
        apiUrl: 'http://10.0.0.1:8080',
        ironicHttpUrl: ironicUrl,
        ironicApiUrl: 'http://ironic.example:6385',
        annotationPrefix: P,
        inspector: {
          collectors: 'default,logs',
          extraKernelParams: ['console=ttyS0,115200'],
          kernelPath: 'images/ironic-python-agent.kernel',
          initramfsPath: 'images/ironic-python-agent.initramfs',
        },
        installer: { extraKernelParams: ['console=ttyS0,115200', 'ipa-debug=1'] },
      },
      ops: {
        readiness: [{ name: 'sources', check: () => ({ ok: true, detail: 'loaded' }) }],
        policy,
        state: { index, pool, now: () => 0 },
      },
    });
  });

  afterAll(async () => {
    await app?.close();
    await new Promise((r) => ironic?.close(r));
    rmSync(root, { recursive: true, force: true });
  });

  const get = (url: string) => app.inject({ method: 'GET', url });

  it('GET /boot.ipxe loops over the NICs', async () => {
    const r = await get('/boot.ipxe');
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toContain('text/plain');
    await expect(r.body).toMatchFileSnapshot(golden('boot.ipxe'));
  });

  it.each([
    ['inspector for an inspecting BareMetalHost', '52-54-00-00-00-01', 'inspector.ipxe'],
    ['inspector for a BareMetalHost without a state yet', '52-54-00-00-00-02', 'inspector-new.ipxe'],
    ['local boot for a provisioned BareMetalHost', '52-54-00-00-00-03', 'localboot.ipxe'],
    ["Ironic's per-node config, rewritten, while provisioning", '52-54-00-00-00-04', 'installer-ironic.ipxe'],
    ["metalboot's installer when Ironic has no per-node config", '52-54-00-00-00-05', 'installer.ipxe'],
    ['a retry script when Ironic fails', '52-54-00-00-00-06', 'retry.ipxe'],
    ['inspector for a static host Ironic has no config for', '52-54-00-00-00-10', 'inspector-static.ipxe'],
  ])('%s', async (_name, mac, file) => {
    const r = await get(`/boot/${mac}.ipxe`);
    expect(r.statusCode).toBe(200);
    expect(r.body.startsWith('#!ipxe\n')).toBe(true);
    await expect(r.body).toMatchFileSnapshot(golden(file));
  });

  it('the inspector script carries the IPA contract', async () => {
    const body = (await get('/boot/52:54:00:00:00:01.ipxe')).body;
    for (const p of [
      'ipa-inspection-callback-url=http://10.0.0.1:8080/v1/continue_inspection',
      'ipa-inspection-collectors=default,logs',
      'BOOTIF=52:54:00:00:00:01',
      'ipa-insecure=1',
      'ipa-collect-lldp=1',
      'ipa-inspection-dhcp-all-interfaces=1',
      'console=ttyS0,115200',
      'initrd=ironic-python-agent.initramfs',
    ]) {
      expect(body).toContain(p);
    }
    expect(body).toMatch(
      /kernel --timeout 60000 http:\/\/10\.0\.0\.1:8080\/images\/ironic-python-agent\.kernel .* \|\| goto retry/,
    );
    expect(body).not.toContain('ipa-inspector-collectors');
  });

  it("rewrites every Ironic URL in Ironic's config to metalboot's and appends installer params", async () => {
    const body = (await get('/boot/52-54-00-00-00-04.ipxe')).body;
    expect(body).not.toContain(ironicUrl);
    expect(body).not.toContain('ironic.example');
    expect(body).toContain('kernel --timeout 60000 http://10.0.0.1:8080/deploy-1/deploy_kernel');
    expect(body).toContain('ipa-api-url=http://10.0.0.1:8080 ');
    expect(body).toContain('initrd=deploy_ramdisk console=ttyS0,115200 ipa-debug=1 || goto retry');
    expect(ironicRequests).toContain('/pxelinux.cfg/52-54-00-00-00-04');
  });

  it.each([
    ['an unknown MAC', '/boot/52-54-00-99-99-99.ipxe'],
    ['a host that cannot be served still gets its script (the lease is a DHCP matter)', '/boot/52-54-00-00-00-07.ipxe'],
    ['not a MAC', '/boot/nonsense.ipxe'],
  ])('%s', async (name, url) => {
    const r = await get(url);
    expect(r.statusCode).toBe(name.startsWith('a host') ? 200 : 404);
  });

  it('the fallback script explains and retries', async () => {
    const r = await get('/boot/fallback.ipxe?mac0=52-54-00-99-99-99');
    expect(r.statusCode).toBe(200);
    expect(r.body).toContain('no BareMetalHost or static host matches');
    expect(r.body).toContain('chain --autofree http://10.0.0.1:8080/boot.ipxe');
  });

  it('serves iPXE binaries with Content-Length and no redirects; refuses traversal', async () => {
    const r = await get('/ipxe/snponly.efi');
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-length']).toBe('70000');
    expect(createHash('sha256').update(r.rawPayload).digest('hex')).toBe(
      createHash('sha256').update(Buffer.alloc(70_000, 7)).digest('hex'),
    );
    const head = await app.inject({ method: 'HEAD', url: '/ipxe/snponly.efi' });
    expect(head.statusCode).toBe(200);
    expect(head.headers['content-length']).toBe('70000');
    expect((await get('/ipxe/nope.efi')).statusCode).toBe(404);
    expect((await get('/ipxe/..%2f..%2fetc%2fpasswd')).statusCode).toBeGreaterThanOrEqual(400);
  });

  it('/debug/explain says why for each kind of MAC', async () => {
    const known = (await get('/debug/explain?mac=52:54:00:00:00:01')).json();
    expect(known).toMatchObject({
      host: { source: 'bmh', name: 'metal3/inspecting-0', provisioningState: 'inspecting', lease: { ip: '10.0.0.21' } },
      dhcp: {
        answer: 'offer',
        boot: {
          'uefi-x64-pxe': { kind: 'tftp', file: 'snponly.efi' },
          ipxe: { kind: 'ipxe-script', url: 'http://10.0.0.1:8080/boot.ipxe' },
        },
      },
      script: { kind: 'inspector' },
    });
    const noIp = (await get('/debug/explain?mac=52:54:00:00:00:07')).json();
    expect(noIp.dhcp).toEqual({
      answer: 'silent',
      reason: 'host-not-servable',
      detail: 'annotation metal3.vcluster.com/ip-address is missing',
    });
    const unknown = (await get('/debug/explain?mac=52:54:00:99:99:99')).json();
    expect(unknown.dhcp).toEqual({ answer: 'silent', reason: 'unknown-host' });
    expect((await get('/debug/explain?mac=zz')).statusCode).toBe(400);
  });

  it('/healthz, /readyz and /metrics', async () => {
    expect((await get('/healthz')).json()).toEqual({ status: 'ok' });
    expect((await get('/readyz')).json()).toEqual({
      status: 'ready',
      checks: [{ name: 'sources', ok: true, detail: 'loaded' }],
    });
    const m = (await get('/metrics')).body;
    expect(m).toContain('metalboot_boot_scripts_total{kind="inspector"}');
    expect(m).toContain('metalboot_http_requests_total');
  });
});
