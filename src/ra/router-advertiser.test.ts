/**
 * RouterAdvertiser with a stand-in radvd (sh) that writes radvd 2.19's own lines: the status it
 * shows, the metrics from the lines, the start-up errors, the yield to a router with other
 * flags, and what close() leaves behind. The real radvd in network namespaces:
 * test/e2e/router-advertisements.test.ts.
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RouterAdvertiser, type RouterAdvertiserOptions } from './router-advertiser.js';
import { processAlive as alive } from '../../test/support/process-alive.js';

let dir: string;
const open: RouterAdvertiser[] = [];

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'metalboot-ra-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((r) => r.close()));
});

const STATUS = 'Name:\tnode\nCapBnd:\t000001ffffffffff\n';
const PROC_OK: Record<string, string> = {
  '/proc/sys/net/ipv6/conf/all/disable_ipv6': '0',
  '/proc/sys/net/ipv6/conf/eth9/disable_ipv6': '0',
  '/proc/self/status': STATUS,
};

/** A stand-in radvd: the start of a real run, then `body`, then radvd's lines at SIGTERM. */
function fakeRadvd(name: string, body: string): string {
  const p = path.join(dir, name);
  writeFileSync(
    p,
    `#!/bin/sh
trap 'echo "exiting, 1 sigterm(s) received" >&2; echo "sending RA to ff02::1 on eth9 (fe80::1), 2 options (using 24/1210 bytes)" >&2; echo "removing x.pid" >&2; exit 0' TERM
echo "version 2.19 started" >&2
echo "radvd PID is $$" >&2
printf '%s ' "$@" > "${p}.args"
${body}
while true; do sleep 0.05; done
`,
  );
  chmodSync(p, 0o755);
  return p;
}

interface Log {
  level: number;
  msg: string;
  [k: string]: unknown;
}

function advertiser(o: Partial<RouterAdvertiserOptions> = {}, proc: Record<string, string> = PROC_OK) {
  const logs: Log[] = [];
  const registry = new Registry();
  const ra = new RouterAdvertiser({
    interface: 'eth9',
    maxIntervalSeconds: 600,
    runtimeDir: dir,
    logger: pino({ level: 'debug' }, { write: (s: string) => logs.push(JSON.parse(s) as Log) }),
    registry,
    readText: (p) => proc[p],
    restartDelayMs: 50,
    readyTimeoutMs: 2000,
    ...o,
  });
  open.push(ra);
  const metric = async (name: string, labels: Record<string, string> = {}) => {
    const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
    return m?.values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val))?.value;
  };
  return { ra, logs, metric };
}

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const SENDING = `echo "eth9 is ready" >&2
echo "sending RA to ff02::1 on eth9 (fe80::1), 2 options (using 24/1210 bytes)" >&2
echo "eth9 next scheduled RA in 16 second(s)" >&2`;

describe('RouterAdvertiser', () => {
  it('runs radvd with its own configuration and pidfile, shows "sending", and counts from its lines', async () => {
    const radvd = fakeRadvd(
      'radvd-ok',
      `${SENDING}
echo "eth9 received RS from: fe80::2" >&2
echo "sending RA to fe80::2 on eth9 (fe80::1), 2 options (using 24/1210 bytes)" >&2
echo "eth9 processed an RS" >&2
echo "sending RA to ff02::1 on eth9 (fe80::1), 2 options (using 24/1210 bytes)" >&2
echo "sendmsg: Network is down" >&2
echo "eth9 received RA from: fe80::7" >&2
echo "eth9 received RA from: fe80::7" >&2
echo "polling for 16 second(s), next iface is eth9" >&2`,
    );
    const { ra, metric, logs } = advertiser({ radvd });
    await ra.start();
    await until('sending', () => ra.status.status === 'sending');
    const conf = ra.configPath!;
    expect(path.dirname(conf).startsWith(path.join(dir, 'metalboot-radvd-'))).toBe(true);
    expect(readFileSync(conf, 'utf8')).toContain('AdvDefaultLifetime 0;');
    expect(readFileSync(`${radvd}.args`, 'utf8').trim()).toBe(
      `-n -d 5 -m stderr_clean -C ${conf} -p ${path.join(path.dirname(conf), 'radvd.pid')}`,
    );
    await until('the lines counted', async () => (await metric('metalboot_ra_foreign_advertisements_total')) === 2);
    expect(await metric('metalboot_ra_advertisements_sent_total', { destination: 'multicast' })).toBe(1);
    expect(await metric('metalboot_ra_advertisements_sent_total', { destination: 'unicast' })).toBe(1);
    expect(await metric('metalboot_ra_advertisement_send_failures_total')).toBe(1);
    expect(await metric('metalboot_ra_solicitations_received_total')).toBe(1);
    expect(await metric('metalboot_ra_solicitations_answered_total')).toBe(1);
    expect(await metric('metalboot_ra_status', { status: 'sending' })).toBe(1);
    expect(await metric('metalboot_ra_status', { status: 'off' })).toBe(0);
    // One line per other router, not one per advertisement.
    expect(logs.filter((l) => l.msg === 'another router advertises on this link')).toHaveLength(1);
    expect(ra.readiness[0]!.check()).toEqual({
      ok: true,
      detail: `sending on eth9 (radvd pid ${ra.status.pid}): answering router solicitations and advertising periodically`,
    });
  });

  it('close() stops radvd (its last advertisement counted) and removes its directory', async () => {
    const radvd = fakeRadvd('radvd-close', SENDING);
    const { ra, metric } = advertiser({ radvd });
    await ra.start();
    await until('sending', () => ra.status.status === 'sending');
    const pid = ra.status.pid!;
    const conf = ra.configPath!;
    await ra.close();
    expect(alive(pid)).toBe(false);
    expect(existsSync(path.dirname(conf))).toBe(false);
    expect(ra.status.status).toBe('stopped');
    expect(await metric('metalboot_ra_advertisements_sent_total', { destination: 'multicast' })).toBe(2);
  });

  it("close() also ends a process left with its configuration (radvd's privilege-separation child)", async () => {
    // The stand-in forks a child that keeps running after the parent exits, as radvd's privsep child could.
    const radvd = fakeRadvd(
      'radvd-privsep',
      `(trap '' TERM; while true; do sleep 0.05; done) & echo "$!" > "$0.child"\n${SENDING}`,
    );
    const { ra, logs } = advertiser({ radvd });
    await ra.start();
    await until('the child', () => existsSync(`${radvd}.child`));
    const child = Number(readFileSync(`${radvd}.child`, 'utf8'));
    expect(alive(child)).toBe(true);
    await ra.close();
    await until('the child gone', () => !alive(child), 3000);
    expect(logs.some((l) => l.msg === 'radvd process left after stop; killing it' && l.pid === child)).toBe(true);
  });

  it('restarts radvd when it dies, and counts the restart', async () => {
    const radvd = fakeRadvd('radvd-restart', SENDING);
    const { ra, metric } = advertiser({ radvd });
    await ra.start();
    await until('sending', () => ra.status.status === 'sending');
    const first = ra.status.pid!;
    process.kill(first, 'SIGKILL');
    await until('a new radvd sending', () => ra.status.pid !== undefined && ra.status.pid !== first);
    await until('sending again', () => ra.status.status === 'sending');
    await until('the restart counted', async () => (await metric('metalboot_ra_radvd_restarts_total')) === 1);
  });

  it('yields to a router that advertises another Managed flag: stops radvd and says why', async () => {
    const radvd = fakeRadvd(
      'radvd-yield',
      `${SENDING}
echo "eth9 received RA from: fe80::7" >&2
echo "our AdvManagedFlag on eth9 doesn't agree with fe80::7" >&2`,
    );
    const { ra, logs, metric } = advertiser({ radvd });
    await ra.start();
    await until('yielded', () => ra.status.status === 'yielded');
    await until('radvd stopped', () => ra.status.pid === undefined);
    expect(ra.status.why).toContain('router fe80::7 advertises a different Managed (M) flag');
    expect(
      logs.find((l) => l.msg.startsWith('another router advertises on this link with other DHCPv6 flags')),
    ).toMatchObject({
      level: 40,
      router: 'fe80::7',
      field: 'AdvManagedFlag',
    });
    expect(await metric('metalboot_ra_status', { status: 'yielded' })).toBe(1);
    await new Promise((r) => setTimeout(r, 200));
    expect(await metric('metalboot_ra_radvd_restarts_total')).toBe(0);
  });

  it('while the interface is not ready, says radvd waits for it; then "sending" once it is', async () => {
    const flag = path.join(dir, 'ready-flag');
    const radvd = fakeRadvd('radvd-later', `while [ ! -e '${flag}' ]; do sleep 0.02; done\n${SENDING}`);
    const { ra } = advertiser({ radvd });
    await ra.start();
    expect(ra.status).toMatchObject({ status: 'starting', why: expect.stringContaining('waits for the interface') });
    writeFileSync(flag, '');
    await until('sending', () => ra.status.status === 'sending');
  });

  it('does not yield to a router that only disagrees on a value hosts keep per router', async () => {
    const radvd = fakeRadvd('radvd-agree', `${SENDING}\necho "our AdvLinkMTU on eth9 doesn't agree with fe80::7" >&2`);
    const { ra, logs } = advertiser({ radvd });
    await ra.start();
    await until('the warning', () => logs.some((l) => l.msg === 'another router advertises a different value'));
    expect(ra.status.status).toBe('sending');
  });

  it.each([
    [
      'IPv6 disabled on the interface',
      { ...PROC_OK, '/proc/sys/net/ipv6/conf/eth9/disable_ipv6': '1' },
      undefined,
      'ipv6-disabled',
      'IPv6 is disabled on eth9',
    ],
    [
      'NET_RAW outside the bounding set',
      { ...PROC_OK, '/proc/self/status': 'CapBnd:\t000001ffffffdfff\n' },
      undefined,
      'no-net-raw',
      'NET_RAW is not in',
    ],
    ['radvd missing', PROC_OK, 'no-such-radvd', 'radvd', 'not found: install radvd (Debian/Ubuntu package "radvd")'],
    [
      'radvd without CAP_NET_RAW',
      PROC_OK,
      'radvd-noraw',
      'radvd',
      'radvd cannot open its raw ICMPv6 socket: it needs CAP_NET_RAW',
    ],
  ])('%s: off, one warning that says why, start() still resolves', async (_what, proc, radvdName, reason, message) => {
    const radvd =
      radvdName === 'radvd-noraw'
        ? (() => {
            const p = path.join(dir, 'radvd-noraw');
            writeFileSync(
              p,
              `#!/bin/sh\necho "version 2.19 started" >&2\necho "can't create socket(AF_INET6): Operation not permitted" >&2\necho "open_icmpv6_socket: Operation not permitted" >&2\nexit 1\n`,
            );
            chmodSync(p, 0o755);
            return p;
          })()
        : radvdName === undefined
          ? fakeRadvd('radvd-unused', SENDING)
          : path.join(dir, radvdName);
    const { ra, logs, metric } = advertiser({ radvd }, proc);
    await ra.start();
    expect(ra.status.status).toBe('off');
    expect(ra.status.why).toContain(message);
    const said = logs.filter((l) => l.msg.startsWith('no router advertisements:'));
    expect(said).toHaveLength(1);
    expect(said[0]).toMatchObject({ level: 40, reason });
    expect(said[0]!.msg).toContain('metalboot serves without them');
    expect(logs.filter((l) => l.level >= 50)).toEqual([]);
    expect(ra.readiness[0]!.check().ok).toBe(true);
    expect(await metric('metalboot_ra_status', { status: 'off' })).toBe(1);
    if (radvdName === undefined) expect(existsSync(`${radvd}.args`)).toBe(false);
  });
});
