/**
 * The range journal on a full disk: a 64 KiB tmpfs (mounted by the test, unmounted after it,
 * even on failure), filled to the last page with a filler file. tmpfs gives out whole pages, so
 * a batch of records that crosses the last page boundary is a short write, as on a real disk
 * that fills up. What must hold:
 * - no append resolves (no ACK leaves) unless its whole record is in the file;
 * - a torn tail never swallows the next record, once space is back;
 * - a compaction that cannot be written leaves the journal as it was, and no temporary file;
 * - metalboot starts on a full disk, answers static hosts, answers renewals with the lease the
 *   journal holds, and refuses new range leases with the drop reason 'journal-full'.
 * Needs root (mount).
 */
import { spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_BOOT_FILES } from '../../src/boot/boot-files.js';
import { decode, encode, type DhcpMessage } from '../../src/dhcp/codec.js';
import { DhcpServer } from '../../src/dhcp/dhcp-server.js';
import { MESSAGE_TYPE, OPT, getMessageType } from '../../src/dhcp/options.js';
import { dhcpPolicy } from '../../src/dhcp/policy.js';
import { HostIndex } from '../../src/leases/host-index.js';
import { LeaseJournal } from '../../src/leases/lease-journal.js';
import { LeaseStore } from '../../src/leases/lease-store.js';
import { LeasePool, type JournalRecord } from '../../src/leases/pool.js';
import { staticToHost } from '../../src/leases/static-hosts.js';
import { formatIpv4, parseIpv4 } from '../../src/net/ipv4.js';
import { parseMac } from '../../src/net/mac.js';
import { request, UEFI_PXE } from '../../lab/dhcp-requests.js';

if (process.getuid?.() !== 0) throw new Error('these tests mount a tmpfs: run them as root');

const ip4 = (s: string) => parseIpv4(s)!;
const mac = (n: number) =>
  `52:54:00:10:${((n >> 8) & 255).toString(16).padStart(2, '0')}:${(n & 255).toString(16).padStart(2, '0')}`;
const bind = (n: number): JournalRecord => ({
  t: 'bind',
  ip: `10.99.${n >> 8}.${n & 255}`,
  mac: mac(n),
  exp: 4_000_000_000_000 + n,
});

let mnt: string;
let filler: string;

beforeEach(() => {
  mnt = mkdtempSync(path.join(tmpdir(), 'metalboot-fulldisk-'));
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'metalboot-test', mnt], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  if (r.status !== 0) throw new Error(`mount tmpfs: ${r.stderr}`);
  filler = path.join(mnt, 'filler');
});

afterEach(() => {
  spawnSync('umount', ['-l', mnt], { timeout: 10_000 });
  rmSync(mnt, { recursive: true, force: true });
});

/** Fills the file system to its last page. */
function fill(): void {
  const fd = openSync(filler, 'a');
  const page = Buffer.alloc(4096, 0x2e);
  try {
    for (let i = 0; i < 1024; i++) writeSync(fd, page);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
}

const free = () => rmSync(filler, { force: true });

/** Lines of the journal file, which must end with a complete record. */
function journalLines(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  expect(text === '' || text.endsWith('\n')).toBe(true);
  return text.split('\n').filter((l) => l !== '');
}

describe('the range journal on a full disk', () => {
  it('acknowledges only whole records, and a torn tail never swallows the next one', async () => {
    const file = path.join(mnt, 'leases');
    const j = new LeaseJournal(file);
    await j.load();
    await j.open([]);
    await j.append(bind(1));
    fill();
    // Appends until the disk is full: the batch that crosses the last page is cut short.
    const acked: JournalRecord[] = [bind(1)];
    let refused = 0;
    for (let round = 0; round < 40 && refused === 0; round++) {
      const batch = Array.from({ length: 30 }, (_, i) => bind(100 + round * 30 + i));
      const results = await Promise.allSettled(batch.map((r) => j.append(r)));
      results.forEach((r, i) => {
        if (r.status === 'fulfilled') acked.push(batch[i]!);
        else refused++;
      });
    }
    expect(refused).toBeGreaterThan(0);
    // What was acknowledged is exactly what the file holds, and it ends with a whole record.
    expect(journalLines(file).map((l) => JSON.parse(l) as JournalRecord)).toEqual(acked);

    free();
    await j.append(bind(9999));
    await j.close();
    const again = await new LeaseJournal(file).load();
    expect(again).toMatchObject({ skipped: 0, torn: false });
    expect(again.records).toEqual([...acked, bind(9999)]);
  });

  it('keeps the journal as it was when a compaction cannot be written, and leaves no temporary file', async () => {
    const file = path.join(mnt, 'leases');
    const j = new LeaseJournal(file);
    await j.load();
    await j.open([]);
    const records = Array.from({ length: 100 }, (_, i) => bind(i));
    await Promise.all(records.map((r) => j.append(r)));
    await j.close();
    const before = readFileSync(file);
    fill();

    const k = new LeaseJournal(file);
    const loaded = await k.load();
    const opened = await k.open(loaded.records);
    expect(opened.compacted).toBe(false);
    expect(existsSync(`${file}.tmp`)).toBe(false);
    expect(readFileSync(file).equals(before)).toBe(true);
    // A compaction while running is refused the same way.
    await expect(k.compact(() => records)).rejects.toBeDefined();
    expect(existsSync(`${file}.tmp`)).toBe(false);
    expect(readFileSync(file).equals(before)).toBe(true);

    free();
    await k.append(bind(500));
    await k.close();
    expect((await new LeaseJournal(file).load()).records).toEqual([...records, bind(500)]);
  });
});

describe('metalboot with a full disk', () => {
  const sockets: dgram.Socket[] = [];
  const servers: DhcpServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
    for (const s of sockets.splice(0)) s.close();
  });

  it('starts, serves static hosts and renewals, and refuses new range leases as journal-full', async () => {
    const leaseFile = path.join(mnt, 'leases');
    let clock = 1_000_000_000_000;
    const now = () => clock;
    const logger = pino({ level: 'silent' });

    const relay = dgram.createSocket('udp4');
    sockets.push(relay);
    relay.bind(0, '127.0.0.1');
    await once(relay, 'listening');
    const replies: DhcpMessage[] = [];
    relay.on('message', (b) => replies.push(decode(b)));

    const start = async () => {
      const index = new HostIndex();
      index.replaceAll('static', [
        staticToHost({ mac: parseMac('52:54:00:00:00:01')!, ip: ip4('127.0.0.21'), hostname: undefined }, 'test', {
          prefix: 8,
          gateway: undefined,
          dns: [],
          ntp: [],
        }),
      ]);
      const pool = new LeasePool({
        // Every address has 11 characters, so every bind record has one length: once one does not
        // fit in the journal's last page, none does.
        ranges: [{ start: ip4('127.0.5.100'), end: ip4('127.0.5.250'), leaseSeconds: 3600 }],
        isClaimed: (a) => index.isClaimed(a),
        serverIp: ip4('127.0.0.1'),
      });
      const leases = new LeaseStore(pool, leaseFile, now, logger);
      await leases.start();
      const registry = new Registry();
      const policy = dhcpPolicy({
        serverIp: ip4('127.0.0.1'),
        serverPrefix: 8,
        ports: { relay: relay.address().port, client: 68 },
        reply: { serverId: ip4('127.0.0.1'), tftpServer: ip4('127.0.0.1'), domainName: undefined },
        boot: { bootFiles: DEFAULT_BOOT_FILES, httpAdvertiseUrl: 'http://127.0.0.1:8080' },
        leaseSeconds: 3600,
        rangeGateway: undefined,
        rangeDns: [],
        rangeNtp: [],
      });
      const server = new DhcpServer({
        listen: { host: '127.0.0.1', port: 0 },
        policy,
        state: { index, pool, now },
        leases,
        logger,
        registry,
      });
      servers.push(server);
      await server.start();
      const dropped = async (reason: string): Promise<number> => {
        const m = (await registry.getMetricsAsJSON()).find((x) => x.name === 'metalboot_dhcp_dropped_total');
        return (m?.values.find((v) => v.labels.reason === reason)?.value as number | undefined) ?? 0;
      };
      return { server, leases, dropped };
    };

    /** Sends one request and waits for the reply with its xid (undefined after 2 s). */
    let xid = 1;
    const ask = async (
      server: DhcpServer,
      spec: Omit<Parameters<typeof request>[0], 'xid' | 'giaddr'>,
    ): Promise<DhcpMessage | undefined> => {
      const id = xid++;
      relay.send(
        encode(request({ ...spec, xid: id, giaddr: '127.0.0.1', options: UEFI_PXE })),
        server.address().port,
        '127.0.0.1',
      );
      for (let i = 0; i < 200; i++) {
        const r = replies.find((m) => m.xid === id);
        if (r !== undefined) return r;
        await new Promise((res) => setTimeout(res, 10));
      }
      return undefined;
    };
    const lease = async (server: DhcpServer, m: string): Promise<{ ip: string; ack: DhcpMessage | undefined }> => {
      const offer = await ask(server, { type: MESSAGE_TYPE.DISCOVER, mac: m });
      expect(offer && getMessageType(offer.options)).toBe(MESSAGE_TYPE.OFFER);
      const ip = formatIpv4(offer!.yiaddr);
      const ack = await ask(server, { type: MESSAGE_TYPE.REQUEST, mac: m, requested: ip, serverId: '127.0.0.1' });
      return { ip, ack };
    };
    const leaseTime = (m: DhcpMessage) => Buffer.from(m.options.get(OPT.LEASE_TIME)!).readUInt32BE(0);

    // A range lease made while there is room.
    const first = await start();
    const renewing = await lease(first.server, mac(1));
    expect(renewing.ack && getMessageType(renewing.ack.options)).toBe(MESSAGE_TYPE.ACK);
    fill();

    // New range clients until the journal's last page is used up: every ACK is in the journal.
    const acked = new Map<string, string>([[mac(1), renewing.ip]]);
    let n = 2;
    for (; n < 140; n++) {
      const r = await lease(first.server, mac(n));
      if (r.ack === undefined) break;
      acked.set(mac(n), r.ip);
    }
    expect(await first.dropped('journal-full')).toBe(1);
    expect(await first.dropped('journal-failed')).toBe(0);

    // Once full: a new client is refused; a static host is answered; a renewal is ACKed with
    // the time the journal holds (10 minutes have passed of its 3,600 s).
    expect((await lease(first.server, mac(n + 1))).ack).toBeUndefined();
    expect(await first.dropped('journal-full')).toBe(2);
    const staticOffer = await ask(first.server, { type: MESSAGE_TYPE.DISCOVER, mac: '52:54:00:00:00:01' });
    expect(staticOffer && formatIpv4(staticOffer.yiaddr)).toBe('127.0.0.21');
    clock += 600_000;
    const renewed = await ask(first.server, { type: MESSAGE_TYPE.REQUEST, mac: mac(1), ciaddr: renewing.ip });
    expect(renewed && getMessageType(renewed.options)).toBe(MESSAGE_TYPE.ACK);
    expect(leaseTime(renewed!)).toBe(3000);

    // A restart on the full disk: it starts, and every acknowledged lease is still there.
    await first.server.close();
    await first.leases.close();
    servers.splice(0);
    expect(existsSync(`${leaseFile}.tmp`)).toBe(false);
    const second = await start();
    for (const [m, ip] of acked) {
      const offer = await ask(second.server, { type: MESSAGE_TYPE.DISCOVER, mac: m });
      expect(offer && formatIpv4(offer.yiaddr), m).toBe(ip);
    }
    await second.leases.close();
  });
});
