/**
 * The DHCPv6 shell on real loopback sockets (::1): replies go back to the sender's address and
 * port, garbage is counted and dropped by name, a range binding is in the journal file before
 * its Reply leaves, and a binding whose journal write fails is undone and not answered.
 */
import dgram from 'node:dgram';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { decode6, encode6, type Dhcp6Message } from '../../src/dhcp6/codec.js';
import { Dhcp6Server } from '../../src/dhcp6/dhcp6-server.js';
import { MSG6, OPT6, duidLl, findOption, iaNaOption, option } from '../../src/dhcp6/options.js';
import { dhcp6Policy, serverDuidOf } from '../../src/dhcp6/policy.js';
import { HostIndex } from '../../src/leases/host-index.js';
import { LeaseStore } from '../../src/leases/lease-store.js';
import { LeasePool6 } from '../../src/leases/pool.js';
import { parseIpv6 } from '../../src/net/ipv6.js';
import { macToBytes, parseMac } from '../../src/net/mac.js';

const SERVER = parseIpv6('fd00:77::1')!;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup() {
  const dir = mkdtempSync(path.join(tmpdir(), 'metalboot-dhcp6-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const registry = new Registry();
  const logger = pino({ level: 'silent' });
  const pool = new LeasePool6({
    ranges: [{ start: parseIpv6('fd00:77::100')!, end: parseIpv6('fd00:77::1ff')!, leaseSeconds: 600 }],
    isClaimed: () => false,
    serverIp: SERVER,
  });
  const journal = path.join(dir, 'leases6.journal');
  const leases = new LeaseStore(pool, journal, Date.now, logger);
  await leases.start();
  cleanups.push(() => leases.close());
  const server = new Dhcp6Server({
    listen: { host: '::1', port: 0 },
    interface: undefined,
    policy: dhcp6Policy({
      serverIp: SERVER,
      serverPrefix: 64,
      tftpServer: SERVER,
      boot: { bootFiles: {}, httpAdvertiseUrl: 'http://[fd00:77::1]:8080' },
      leaseSeconds: 3600,
      dns: [],
      ntp: [],
      domainSearch: [],
      rapidCommit: true,
    }),
    state: { index: new HostIndex(), pool, now: Date.now },
    leases,
    logger,
    registry,
  });
  await server.start();
  cleanups.push(() => server.close());
  const client = dgram.createSocket('udp6');
  await new Promise<void>((r) => client.bind(0, '::1', r));
  cleanups.push(() => new Promise<void>((r) => client.close(() => r())));
  const port = server.address().port;
  const send = (m: Dhcp6Message | Buffer) => client.send(Buffer.isBuffer(m) ? m : encode6(m), port, '::1');
  const receive = async () => decode6(((await once(client, 'message')) as [Buffer])[0]);
  const metric = async (name: string, label: string) => {
    const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
    return m?.values.filter((v) => Object.values(v.labels).includes(label)).reduce((n, v) => n + v.value, 0) ?? 0;
  };
  return { send, receive, metric, journal, pool, leases };
}

const MAC = '52:54:00:00:00:42';
const solicit = (xid: number, rapid: boolean): Dhcp6Message => ({
  kind: 'client',
  msgType: MSG6.SOLICIT,
  transactionId: xid,
  options: [
    option(OPT6.CLIENTID, duidLl(macToBytes(parseMac(MAC)!))),
    iaNaOption(1, 0, 0),
    ...(rapid ? [option(OPT6.RAPID_COMMIT, new Uint8Array(0))] : []),
  ],
});

describe('Dhcp6Server on ::1', () => {
  it('drops garbage by name and keeps answering', async () => {
    const t = await setup();
    for (const junk of [
      Buffer.alloc(0),
      Buffer.from([1]),
      Buffer.from([1, 0, 0, 0, 0, 1, 0, 9]),
      Buffer.alloc(2000, 0xff),
    ])
      t.send(junk);
    t.send(solicit(0x111, false));
    const adv = await t.receive();
    expect(adv).toMatchObject({ kind: 'client', msgType: MSG6.ADVERTISE, transactionId: 0x111 });
    expect(await t.metric('metalboot_dhcp6_received_total', 'malformed')).toBe(4);
    expect(Buffer.from(findOption(adv.options, OPT6.SERVERID)!)).toEqual(Buffer.from(serverDuidOf(SERVER)));
  });

  it('writes a Rapid Commit binding to the journal before its Reply leaves', async () => {
    const t = await setup();
    t.send(solicit(0x222, true));
    const reply = await t.receive();
    expect(reply).toMatchObject({ msgType: MSG6.REPLY, transactionId: 0x222 });
    // The Reply left after the append resolved: the record is in the file now.
    expect(readFileSync(t.journal, 'utf8')).toContain(`"mac":"${MAC}"`);
  });

  it('undoes a binding whose journal write fails, stays silent, and counts why', async () => {
    const t = await setup();
    // A journal that takes no more writes (closed): the append rejects, as on a failed disk.
    await t.leases.close();
    t.send(solicit(0x333, true));
    await until(async () =>
      (await t.metric('metalboot_dhcp6_dropped_total', 'journal-failed')) === 1 ? true : undefined,
    );
    expect(t.pool.leaseOf(parseMac(MAC)!, Date.now())).toBeUndefined();
    expect(await t.metric('metalboot_dhcp6_replies_total', 'REPLY')).toBe(0);
    // The server still answers what needs no write.
    t.send(solicit(0x334, false));
    expect(await t.receive()).toMatchObject({ msgType: MSG6.ADVERTISE, transactionId: 0x334 });
  });
});

async function until<T>(f: () => Promise<T | undefined>, ms = 5_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
