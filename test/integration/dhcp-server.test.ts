/**
 * The DHCP shell on real loopback sockets: receive buffer, replies, drops and their metrics.
 * Requests are relay-shaped (giaddr 127.0.0.1), so replies come back to the test's socket on
 * the policy's relay port.
 */
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { DEFAULT_DHCP_RECV_BUFFER_BYTES, DhcpServer, type DhcpServerOptions } from '../../src/dhcp/dhcp-server.js';
import type { DhcpOutcome } from '../../src/dhcp/decide.js';
import { dhcpPolicy, type DhcpPolicy } from '../../src/dhcp/policy.js';
import { decode, encode, type DhcpMessage } from '../../src/dhcp/codec.js';
import { MESSAGE_TYPE, getMessageType } from '../../src/dhcp/options.js';
import { request, UEFI_PXE } from '../../lab/dhcp-requests.js';
import { HostIndex } from '../../src/leases/host-index.js';
import { LeasePool } from '../../src/leases/pool.js';
import { LeaseStore } from '../../src/leases/lease-store.js';
import { staticToHost } from '../../src/leases/static-hosts.js';
import { DEFAULT_BOOT_FILES } from '../../src/boot/boot-files.js';
import { formatIpv4, parseIpv4 } from '../../src/net/ipv4.js';
import { parseMac } from '../../src/net/mac.js';
import type { InterfaceTable } from '../../src/net/interfaces.js';

const ip4 = (s: string) => parseIpv4(s)!;
const HOST_MAC = '52:54:00:00:00:01';

function readSysctl(name: string): number | undefined {
  try {
    return Number(readFileSync(`/proc/sys/${name.replaceAll('.', '/')}`, 'utf8').trim());
  } catch {
    return undefined;
  }
}

interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

const servers: DhcpServer[] = [];
const clients: dgram.Socket[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
  for (const c of clients.splice(0)) c.close();
});

async function setup(
  o: {
    listenHost?: string;
    relayPort?: number;
    recvBufferBytes?: number;
    interfaces?: () => InterfaceTable;
    start?: boolean;
  } = {},
) {
  const logs: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => logs.push(JSON.parse(s) as LogLine) });
  const registry = new Registry();
  const index = new HostIndex();
  index.replaceAll('static', [
    staticToHost({ mac: parseMac(HOST_MAC)!, ip: ip4('127.0.0.21'), hostname: undefined }, 'test', {
      prefix: 8,
      gateway: undefined,
      dns: [],
      ntp: [],
    }),
  ]);
  const now = () => 1_000_000;
  const pool = new LeasePool({ ranges: [], isClaimed: (a) => index.isClaimed(a), serverIp: ip4('127.0.0.1') });
  const policy: DhcpPolicy = dhcpPolicy({
    serverIp: ip4('127.0.0.1'),
    serverPrefix: 8,
    ports: { relay: o.relayPort ?? 67, client: 68 },
    reply: { serverId: ip4('127.0.0.1'), tftpServer: ip4('127.0.0.1'), domainName: undefined },
    boot: { bootFiles: DEFAULT_BOOT_FILES, httpAdvertiseUrl: 'http://127.0.0.1:8080' },
    leaseSeconds: 3600,
    rangeGateway: undefined,
    rangeDns: [],
    rangeNtp: [],
  });
  const outcomes: DhcpOutcome[] = [];
  const opts: DhcpServerOptions = {
    listen: { host: o.listenHost ?? '127.0.0.1', port: 0 },
    policy,
    state: { index, pool, now },
    leases: new LeaseStore(pool, undefined, now, logger),
    logger,
    registry,
    onOutcome: (x) => outcomes.push(x),
    ...(o.recvBufferBytes === undefined ? {} : { recvBufferBytes: o.recvBufferBytes }),
    ...(o.interfaces === undefined ? {} : { interfaces: o.interfaces }),
  };
  const server = new DhcpServer(opts);
  servers.push(server);
  if (o.start !== false) await server.start();
  const metric = async (name: string, label: string, value: string): Promise<number> => {
    const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
    return (m?.values.find((v) => v.labels[label] === value)?.value as number | undefined) ?? 0;
  };
  const capWarnings = () => logs.filter((l) => l.level === 40 && l.sysctl === 'net.core.rmem_max');
  return { server, logs, outcomes, metric, capWarnings };
}

/** A bound client socket standing in for a relay agent on 127.0.0.1. */
async function relay(): Promise<dgram.Socket> {
  const c = dgram.createSocket('udp4');
  clients.push(c);
  c.bind(0, '127.0.0.1');
  await once(c, 'listening');
  return c;
}

function discover(mac: string, giaddr: string): Buffer {
  return encode(request({ type: MESSAGE_TYPE.DISCOVER, mac, xid: 0x5eed, giaddr, options: UEFI_PXE }));
}

async function until(cond: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200 && !(await cond()); i++) await new Promise((r) => setTimeout(r, 10));
}

describe('DhcpServer receive buffer', () => {
  it('asks the kernel for the default 2 MiB on its socket, or warns that net.core.rmem_max capped it', async () => {
    const { server, capWarnings } = await setup();
    // Linux reports twice the size set.
    if (server.recvBufferSize() < 2 * DEFAULT_DHCP_RECV_BUFFER_BYTES) expect(capWarnings()).toHaveLength(1);
    else expect(capWarnings()).toHaveLength(0);
  });

  const rmemMax = readSysctl('net.core.rmem_max');
  const rmemDefault = readSysctl('net.core.rmem_default');
  const fits = rmemMax === undefined || rmemDefault === undefined ? 0 : Math.min(rmemMax, 4 * rmemDefault);

  it.runIf(fits > rmemDefault!)(
    'sets recvBufferBytes on the socket when the kernel allows it, without a warning',
    async () => {
      const { server, capWarnings } = await setup({ recvBufferBytes: fits });
      expect(server.recvBufferSize()).toBeGreaterThanOrEqual(fits);
      expect(server.recvBufferSize()).toBeGreaterThan(2 * rmemDefault!);
      expect(capWarnings()).toHaveLength(0);
    },
  );

  it.runIf(rmemMax !== undefined && rmemMax < 2 ** 29)(
    'warns once, naming net.core.rmem_max, when the kernel caps the buffer of its two sockets',
    async () => {
      const requested = 2 * rmemMax! + 4096;
      const { server, capWarnings } = await setup({ listenHost: '0.0.0.0', recvBufferBytes: requested });
      expect(server.recvBufferSize()).toBeLessThan(2 * requested);
      const warned = capWarnings();
      expect(warned).toHaveLength(1);
      expect(warned[0]).toMatchObject({ requested, granted: rmemMax, fix: `sysctl -w net.core.rmem_max=${requested}` });
    },
  );

  it('leaves the kernel default alone with recvBufferBytes 0', async () => {
    const { server, capWarnings } = await setup({ recvBufferBytes: 0 });
    // Never set, so not doubled: the kernel reports net.core.rmem_default as it is.
    if (rmemDefault !== undefined) expect(server.recvBufferSize()).toBe(rmemDefault);
    expect(capWarnings()).toHaveLength(0);
  });
});

describe('DhcpServer replies and drops', () => {
  it('answers a relayed DISCOVER from a reserved host with an OFFER to the relay and counts both', async () => {
    const c = await relay();
    const { server, metric, logs } = await setup({ relayPort: c.address().port });
    const got = once(c, 'message') as Promise<[Buffer, dgram.RemoteInfo]>;
    c.send(discover(HOST_MAC, '127.0.0.1'), server.address().port, '127.0.0.1');
    const [buf] = await got;
    const offer: DhcpMessage = decode(buf);
    expect(getMessageType(offer.options)).toBe(MESSAGE_TYPE.OFFER);
    expect(offer.xid).toBe(0x5eed);
    expect(formatIpv4(offer.yiaddr)).toBe('127.0.0.21');
    await until(async () => (await metric('metalboot_dhcp_replies_total', 'type', 'OFFER')) === 1);
    expect(await metric('metalboot_dhcp_received_total', 'type', 'DISCOVER')).toBe(1);
    expect(await metric('metalboot_dhcp_replies_total', 'type', 'OFFER')).toBe(1);
    // By lease source too: this host is a static one.
    expect(await metric('metalboot_dhcp_replies_total', 'source', 'static')).toBe(1);
    expect(logs.find((l) => l.msg === 'dhcp reply')).toMatchObject({
      mac: HOST_MAC,
      type: 'OFFER',
      ip: '127.0.0.21',
      to: `127.0.0.1:${c.address().port}`,
      client: 'pxe',
    });
  });

  it('counts each request and reply once, however often the registry is read between them', async () => {
    const c = await relay();
    const { server, metric } = await setup({ relayPort: c.address().port });
    for (let i = 1; i <= 3; i++) {
      const got = once(c, 'message');
      c.send(discover(HOST_MAC, '127.0.0.1'), server.address().port, '127.0.0.1');
      await got;
      await until(async () => (await metric('metalboot_dhcp_replies_total', 'type', 'OFFER')) === i);
      // Read again: what was counted before the first read is not added twice.
      expect(await metric('metalboot_dhcp_replies_total', 'type', 'OFFER')).toBe(i);
      expect(await metric('metalboot_dhcp_received_total', 'type', 'DISCOVER')).toBe(i);
    }
  });

  it('counts a DISCOVER from an unknown MAC as dropped, unknown-host, and sends nothing', async () => {
    const c = await relay();
    let replies = 0;
    c.on('message', () => replies++);
    const { server, metric, outcomes } = await setup({ relayPort: c.address().port });
    c.send(discover('52:54:00:00:00:99', '127.0.0.1'), server.address().port, '127.0.0.1');
    await until(() => outcomes.length === 1);
    expect(outcomes[0]).toMatchObject({ kind: 'ignore', reason: 'unknown-host' });
    expect(await metric('metalboot_dhcp_dropped_total', 'reason', 'unknown-host')).toBe(1);
    expect(await metric('metalboot_dhcp_received_total', 'type', 'DISCOVER')).toBe(1);
    expect(replies).toBe(0);
  });

  it('logs a burst of malformed datagrams, then a few lines a second, while the metric counts every one', async () => {
    const c = await relay();
    const { server, metric, logs } = await setup();
    for (let i = 0; i < 100; i++) c.send(Buffer.alloc(100), server.address().port, '127.0.0.1');
    await until(async () => (await metric('metalboot_dhcp_dropped_total', 'reason', 'malformed')) === 100);
    expect(await metric('metalboot_dhcp_dropped_total', 'reason', 'malformed')).toBe(100);
    // 20 at once, then 5 a second: however long the 100 took to arrive, far fewer than 100 lines.
    expect(logs.filter((l) => l.msg === 'dhcp drop' && l.reason === 'malformed').length).toBeLessThan(60);
  });

  it('counts malformed datagrams', async () => {
    const c = await relay();
    const { server, metric } = await setup();
    c.send(Buffer.alloc(100), server.address().port, '127.0.0.1');
    await until(async () => (await metric('metalboot_dhcp_dropped_total', 'reason', 'malformed')) === 1);
    expect(await metric('metalboot_dhcp_received_total', 'type', 'malformed')).toBe(1);
  });

  it('counts a reply the kernel refuses to send as send-failed, not as a reply', async () => {
    const c = await relay();
    const { server, metric } = await setup({ relayPort: 67 });
    // A socket bound to 127.0.0.1 cannot send to a relay off the loopback (EINVAL/ENETUNREACH).
    c.send(discover(HOST_MAC, '10.99.0.1'), server.address().port, '127.0.0.1');
    await until(async () => (await metric('metalboot_dhcp_dropped_total', 'reason', 'send-failed')) === 1);
    expect(await metric('metalboot_dhcp_dropped_total', 'reason', 'send-failed')).toBe(1);
    expect(await metric('metalboot_dhcp_replies_total', 'type', 'OFFER')).toBe(0);
  });
});

describe('DhcpServer on a unicast listen address (one interface, socat for its broadcasts)', () => {
  it.each([
    ['0.0.0.0', ['dhcp']],
    ['127.0.0.1', ['dhcp']],
    ['10.99.0.1', ['dhcp', 'dhcp-feed']],
  ])('%s: readiness checks %j', async (listenHost, names) => {
    const { server } = await setup({ listenHost, start: false });
    expect(server.readiness.map((c) => c.name)).toEqual(names);
    for (const c of server.readiness) expect(c.check()).toMatchObject({ ok: false });
  });

  it('an address no interface has: NET_ERR_NO_INTERFACE naming it and the interfaces, nothing left bound', async () => {
    const { server } = await setup({
      listenHost: '10.99.0.1',
      start: false,
      interfaces: () => ({
        eth0: [{ address: '10.79.0.1', netmask: '', family: 'IPv4', mac: '', internal: false, cidr: '10.79.0.1/24' }],
      }),
    });
    await expect(server.start()).rejects.toMatchObject({
      code: 'NET_ERR_NO_INTERFACE',
      message: expect.stringContaining(
        'no network interface has 10.99.0.1, the DHCP listen address (interfaces: eth0 10.79.0.1/24)',
      ),
    });
    expect(server.listening).toBe(false);
  });
});
