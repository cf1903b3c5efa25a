import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { LeaseJournal } from './lease-journal.js';
import { LeasePool, type JournalRecord } from './pool.js';
import { LeaseStore } from './lease-store.js';
import { parseIpv4, formatIpv4 } from '../net/ipv4.js';
import { parseMac, type Mac } from '../net/mac.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'metalboot-journal-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const ip = (s: string) => parseIpv4(s)!;
const mac = (n: number) =>
  parseMac(`52:54:00:00:${(n >> 8).toString(16).padStart(2, '0')}:${(n & 255).toString(16).padStart(2, '0')}`)! as Mac;
const newPool = () =>
  new LeasePool({
    ranges: [{ start: ip('10.0.0.10'), end: ip('10.0.3.250'), leaseSeconds: 3600 }],
    isClaimed: () => false,
    serverIp: ip('10.0.0.1'),
  });

describe('LeaseJournal', () => {
  it('resolves appends only once they are in the file, batching concurrent ones', async () => {
    const file = path.join(dir, 'leases');
    const j = new LeaseJournal(file);
    await j.open([]);
    const recs: JournalRecord[] = Array.from({ length: 200 }, (_, i) => ({
      t: 'bind',
      ip: `10.0.0.${i}`,
      mac: mac(i),
      exp: 1,
    }));
    await Promise.all(
      recs.map(async (r) => {
        await j.append(r);
        expect(readFileSync(file, 'utf8')).toContain(JSON.stringify(r));
      }),
    );
    await j.close();
    expect((await new LeaseJournal(file).load()).records).toEqual(recs);
  });

  it('ignores a torn final line (kill -9 mid-write) and keeps every complete record', async () => {
    const file = path.join(dir, 'leases');
    const j = new LeaseJournal(file);
    await j.open([]);
    await j.append({ t: 'bind', ip: '10.0.0.5', mac: mac(5), exp: null });
    await j.close();
    appendFileSync(file, '{"t":"bind","ip":"10.0.0.6","ma');
    const loaded = await new LeaseJournal(file).load();
    expect(loaded.records).toEqual([{ t: 'bind', ip: '10.0.0.5', mac: mac(5), exp: null }]);
    expect(loaded).toMatchObject({ skipped: 0, torn: true });
  });

  it('rejects appends after close', async () => {
    const j = new LeaseJournal(path.join(dir, 'leases'));
    await j.open([]);
    await j.close();
    await expect(j.append({ t: 'free', ip: '10.0.0.1' })).rejects.toMatchObject({ code: 'LEASE_ERR_JOURNAL_CLOSED' });
  });
});

describe('LeaseStore', () => {
  it('restores bound leases and quarantines after a restart, and compacts a long journal', async () => {
    const file = path.join(dir, 'leases');
    let now = 1_000_000;
    const log = pino({ level: 'silent' });
    const poolA = newPool();
    const storeA = new LeaseStore(poolA, file, () => now, log);
    await storeA.start();
    const bound: string[] = [];
    // Churn: bind and free many times so the journal outgrows the live state and compacts.
    for (let i = 0; i < 1500; i++) {
      const m = mac(i % 50);
      const offer = poolA.offer(m, undefined, now)!;
      const c = poolA.commit(m, offer.ip, now);
      if (!c.ok) throw new Error(c.reason);
      await storeA.persist(c.record);
      if (i < 1450) await storeA.persist(poolA.release(m, offer.ip)!);
      else bound.push(`${m}=${formatIpv4(offer.ip)}`);
    }
    await storeA.persist(poolA.decline(mac(999), ip('10.0.1.1'), now)!);
    await storeA.close();
    const lines = readFileSync(file, 'utf8').trim().split('\n').length;
    expect(lines).toBeLessThan(1500);
    expect(existsSync(`${file}.tmp`)).toBe(false);

    const poolB = newPool();
    const storeB = new LeaseStore(poolB, file, () => now, log);
    await storeB.start();
    for (const b of bound) {
      const [m, a] = b.split('=') as [Mac, string];
      expect(formatIpv4(poolB.leaseOf(m, now)!.ip)).toBe(a);
    }
    expect(poolB.stats(now)).toMatchObject({ bound: 50, declined: 1 });
    now += 3_600_001;
    expect(poolB.stats(now)).toMatchObject({ bound: 0, declined: 0 });
    await storeB.close();
  });
});
