/**
 * Router advertisements from metalboot (radvd, docs/decisions/0011-router-advertisement.md)
 * with real peers in network namespaces, IPv6 on:
 *
 *   ns srv     eth0 10.81.0.1/24 ─┐                    metalboot, advertisements on (MaxRtrAdvInterval 4 s)
 *   ns client  eth0 (no IPv4) ────┤ br0 (ns sw)         a host: accepts RAs, sends RS only when told
 *   ns quiet   eth0 10.82.0.1/24 ─┐                    metalboot --router-advertisements=false
 *   ns client2 eth0 ──────────────┤ br1
 *
 * A router solicitation (a raw ICMPv6 socket in Python) gets an advertisement with router
 * lifetime 0, no prefix and M=O=0, as tshark's dissector reads it, and the host's routes and
 * addresses stay as they were; periodic advertisements come without any solicitation; the
 * metrics count both; a killed radvd is started again; SIGTERM of metalboot leaves no radvd;
 * SIGKILL of metalboot leaves one that dies, without answering, at the next solicitation;
 * metalboot with advertisements off sends none; IPv6 disabled on the interface or NET_RAW
 * missing are said at start-up, and DHCP is served all the same.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import ipaddr from 'ipaddr.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CapturedPacket, createLab, type Lab, requireRoot, requireTools, tsharkFields } from '../../lab/netns.js';
import { type MetalbootProcess, startMetalboot } from '../support/metalboot-process.js';

const SERVER_IP = '10.81.0.1';
const QUIET_IP = '10.82.0.1';
const CLIENT_MAC = '52:54:00:ad:00:01';

/** An ICMPv6 router advertisement (type 134) in an Ethernet frame, with its IPv6 destination (uncompressed). */
function advertisement(p: CapturedPacket): { to: string } | undefined {
  const f = p.frame;
  if (f.length < 55 || f.readUInt16BE(12) !== 0x86dd || f[20] !== 58 || f[54] !== 134) return undefined;
  const words: string[] = [];
  for (let i = 38; i < 54; i += 2) words.push(f.readUInt16BE(i).toString(16));
  return { to: words.join(':') };
}

const isRa = (p: CapturedPacket) => advertisement(p) !== undefined;

/** Python: one router solicitation from `ifname`'s link-local address, with a source link-layer option. */
const RS_SCRIPT = `import socket, struct, sys
ifname = sys.argv[1]
idx = socket.if_nametoindex(ifname)
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, idx)
mac = bytes.fromhex(open('/sys/class/net/%s/address' % ifname).read().strip().replace(':', ''))
s.sendto(struct.pack('!BBHI', 133, 0, 0, 0) + bytes([1, 1]) + mac, ('ff02::2', 0, 0, idx))
`;

/** The radvd processes (main and privilege-separation child) that run with `config`. */
function radvdsWith(config: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (cmd[0]?.endsWith('radvd') && cmd.includes(config) && !/^\d+ \(.*\) Z /.test(stat)) out.push(Number(name));
    } catch {
      // gone
    }
  }
  return out;
}

async function until(what: string, cond: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('router advertisements through radvd', () => {
  let lab: Lab;
  let server: MetalbootProcess;
  let clientLinkLocal: string;

  const sendRs = async (ns: string) => {
    const r = await lab.exec(ns, 'python3', [path.join(lab.dir, 'rs.py'), 'eth0'], { timeoutMs: 10_000 });
    expect(r.code, r.stderr).toBe(0);
  };
  const routes = async (ns: string) =>
    (await lab.exec(ns, 'ip', ['-6', 'route', 'show', 'table', 'all'], { check: true })).stdout;
  const addresses = async (ns: string) =>
    (await lab.exec(ns, 'ip', ['-6', '-o', 'addr', 'show'], { check: true })).stdout.replace(/valid_lft.*$/gm, '');
  const metrics = async (ip: string) =>
    (await lab.exec(ip === SERVER_IP ? 'srv' : 'quiet', 'curl', ['-sf', `http://${ip}:8080/metrics`], { check: true }))
      .stdout;
  const metric = (text: string, series: string) => {
    const m = new RegExp(`^${series.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(text);
    return m === null ? undefined : Number(m[1]);
  };
  /** Waits until the namespace's link-local address on eth0 is usable (DAD done). */
  const linkLocalOf = async (ns: string) => {
    let ll = '';
    await until(
      `${ns} link-local address`,
      async () => {
        const out = (await lab.exec(ns, 'ip', ['-6', '-o', 'addr', 'show', 'dev', 'eth0', 'scope', 'link'])).stdout;
        ll = /inet6 (fe80::[0-9a-f:]+)\/64/.exec(out)?.[1] ?? '';
        return ll !== '' && !out.includes('tentative');
      },
      10_000,
    );
    return ll;
  };

  const start = (ns: string, ip: string, extra: readonly string[], options = {}) =>
    startMetalboot(
      lab,
      ns,
      [
        '--server-ip',
        `${ip}/24`,
        '--dhcp-hosts',
        `${CLIENT_MAC},${ip.replace(/\.1$/, '.50')}`,
        '--tftp-listen',
        '',
        '--http-listen',
        `${ip}:8080`,
        '--callback-listen',
        '',
        '--config',
        path.join(lab.dir, 'fast-ra.yaml'),
        ...extra,
      ],
      options,
    );

  beforeAll(async () => {
    requireRoot();
    requireTools('ip', 'radvd', 'python3', 'tcpdump', 'tshark', 'curl', 'udhcpc', 'setpriv');
    lab = await createLab({ ipv6: true });
    // The switch forwards frames only: no IPv6 of its own, so it neither solicits nor answers.
    await lab.exec(
      'sw',
      'sysctl',
      ['-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1'],
      {
        check: true,
      },
    );
    await lab.addBridge('br1');
    for (const ns of ['srv', 'client', 'quiet', 'client2']) {
      await lab.addNamespace(ns);
      // No duplicate-address wait; hosts send a router solicitation only when a test does.
      await lab.exec(
        ns,
        'sysctl',
        ['-qw', 'net.ipv6.conf.default.accept_dad=0', 'net.ipv6.conf.default.router_solicitations=0'],
        { check: true },
      );
    }
    await lab.connect('srv', { ip: `${SERVER_IP}/24`, ifname: 'eth0' });
    await lab.connect('client', { ifname: 'eth0', mac: CLIENT_MAC });
    await lab.connect('quiet', { ip: `${QUIET_IP}/24`, ifname: 'eth0', bridge: 'br1' });
    // The same MAC on the other network: the quiet server's static host.
    await lab.connect('client2', { ifname: 'eth0', bridge: 'br1', mac: CLIENT_MAC });
    writeFileSync(path.join(lab.dir, 'rs.py'), RS_SCRIPT);
    // MaxRtrAdvInterval 4 s (RFC 4861's least): periodic advertisements within a test's patience.
    // radvd's files in the lab's directory, which lab.close() removes even after a SIGKILL.
    writeFileSync(
      path.join(lab.dir, 'fast-ra.yaml'),
      `routerAdvertisements:\n  maxIntervalSeconds: 4\n  runtimeDir: ${lab.dir}\n`,
    );
    await linkLocalOf('srv');
    clientLinkLocal = await linkLocalOf('client');
    server = await start('srv', SERVER_IP, []);
    await server.waitForLog((l) => l.msg === 'sending router advertisements', 15_000);
  }, 120_000);

  afterAll(async () => {
    await lab?.close();
  });

  it('answers a router solicitation: lifetime 0, no prefix, M=O=0, and the host routes as before', async () => {
    const routesBefore = await routes('client');
    const addressesBefore = await addresses('client');
    const cap = await lab.capture('client', 'eth0', 'icmp6');
    await sendRs('client');
    const full = ipaddr.parse(clientLinkLocal).toNormalizedString();
    await cap.waitFor((ps) => ps.some((p) => advertisement(p)?.to === full), 10_000);
    // Time for the kernel to act on the advertisement, if it were to.
    await new Promise((r) => setTimeout(r, 1000));
    const { pcapPath } = await cap.stop();
    const fields = [
      'ipv6.src',
      'ipv6.dst',
      'ipv6.hlim',
      'icmpv6.nd.ra.router_lifetime',
      'icmpv6.nd.ra.flag.m',
      'icmpv6.nd.ra.flag.o',
      'icmpv6.nd.ra.cur_hop_limit',
      'icmpv6.nd.ra.reachable_time',
      'icmpv6.nd.ra.retrans_timer',
      'icmpv6.opt.type',
    ];
    const ras = await tsharkFields(pcapPath, fields, { filter: 'icmpv6.type == 134' });
    const answer = ras.find((r) => r['ipv6.dst'] === clientLinkLocal);
    expect(answer, JSON.stringify(ras)).toBeDefined();
    expect(answer).toMatchObject({
      'ipv6.hlim': '255',
      'icmpv6.nd.ra.router_lifetime': '0',
      'icmpv6.nd.ra.flag.m': '0',
      'icmpv6.nd.ra.flag.o': '0',
      'icmpv6.nd.ra.cur_hop_limit': '0',
      'icmpv6.nd.ra.reachable_time': '0',
      'icmpv6.nd.ra.retrans_timer': '0',
      // The source link-layer address option only: no prefix information (3), no MTU (5).
      'icmpv6.opt.type': '1',
    });
    expect(answer!['ipv6.src']).toMatch(/^fe80::/);
    // Every advertisement on the wire says the same.
    for (const r of ras) expect([r['icmpv6.nd.ra.router_lifetime'], r['icmpv6.opt.type']]).toEqual(['0', '1']);
    expect(await routes('client')).toBe(routesBefore);
    expect(await addresses('client')).toBe(addressesBefore);
    expect(routesBefore).not.toMatch(/^default/m);

    const m = await metrics(SERVER_IP);
    expect(metric(m, 'metalboot_ra_solicitations_received_total')).toBeGreaterThanOrEqual(1);
    expect(metric(m, 'metalboot_ra_solicitations_answered_total')).toBeGreaterThanOrEqual(1);
    expect(metric(m, 'metalboot_ra_advertisements_sent_total{destination="unicast"}')).toBeGreaterThanOrEqual(1);
    expect(metric(m, 'metalboot_ra_status{status="sending"}')).toBe(1);
    const ready = JSON.parse(
      (await lab.exec('srv', 'curl', ['-s', `http://${SERVER_IP}:8080/readyz`], { check: true })).stdout,
    ) as { checks: { name: string; ok: boolean; detail: string }[] };
    expect(ready.checks.find((c) => c.name === 'router-advertisements')).toMatchObject({
      ok: true,
      detail: expect.stringMatching(/^sending on eth0 \(radvd pid \d+\)/),
    });
  });

  it('advertises periodically without any solicitation (MaxRtrAdvInterval 4 s)', async () => {
    const cap = await lab.capture('client', 'eth0', 'icmp6');
    const ps = await cap.waitFor(
      (p) => p.filter((x) => advertisement(x)?.to === 'ff02:0:0:0:0:0:0:1').length >= 2,
      15_000,
    );
    await cap.stop();
    // Nobody solicited: no RS (type 133) on the wire.
    expect(ps.some((p) => p.frame.length > 54 && p.frame.readUInt16BE(12) === 0x86dd && p.frame[54] === 133)).toBe(
      false,
    );
    const m = await metrics(SERVER_IP);
    expect(metric(m, 'metalboot_ra_advertisements_sent_total{destination="multicast"}')).toBeGreaterThanOrEqual(2);
  });

  it('starts radvd again when it is killed', async () => {
    const started = server.logs().filter((l) => l.msg === 'radvd started');
    const config = started[0]!.config as string;
    const [first] = radvdsWith(config).sort((a, b) => a - b);
    expect(first).toBeGreaterThan(0);
    const cap = await lab.capture('client', 'eth0', 'icmp6');
    process.kill(first!, 'SIGKILL');
    await server.waitForLog((l) => l.msg === 'radvd exited; restarting' && l.pid === first, 10_000);
    const restarted = await server.waitForLog((l) => l.msg === 'radvd restarted', 10_000);
    expect(restarted.pid).not.toBe(first);
    // The new radvd's first advertisement goes out at once.
    await cap.waitFor((p) => p.some(isRa), 10_000);
    await cap.stop();
    await until(
      'restart counted',
      async () => metric(await metrics(SERVER_IP), 'metalboot_ra_radvd_restarts_total') === 1,
      5000,
    );
  });

  it('metalboot with advertisements off sends none, and DHCP serves as before', async () => {
    const cap = await lab.capture('client2', 'eth0', 'icmp6');
    const quiet = await start('quiet', QUIET_IP, ['--router-advertisements=false']);
    try {
      expect(
        quiet.logs().some((l) => l.msg === 'router advertisements off (routerAdvertisements.enabled is false)'),
      ).toBe(true);
      await sendRs('client2');
      // Longer than radvd's first advertisement, its answer and one MaxRtrAdvInterval.
      await new Promise((r) => setTimeout(r, 6000));
      const { packets } = await cap.stop();
      expect(packets.some((p) => p.frame.length > 54 && p.frame[54] === 133)).toBe(true); // the RS went out
      expect(packets.filter(isRa)).toEqual([]);
      expect(metric(await metrics(QUIET_IP), 'metalboot_ra_advertisements_sent_total{destination="multicast"}')).toBe(
        undefined,
      );
    } finally {
      await quiet.stop();
    }
  });

  it.each([
    [
      'IPv6 disabled on the interface',
      async () => {
        await lab.exec('quiet', 'sysctl', ['-qw', 'net.ipv6.conf.eth0.disable_ipv6=1'], { check: true });
      },
      {},
      'ipv6-disabled',
      'IPv6 is disabled on eth0 (/proc/sys/net/ipv6/conf/eth0/disable_ipv6 = 1)',
    ],
    [
      'no NET_RAW in the bounding set',
      async () => {
        await lab.exec('quiet', 'sysctl', ['-qw', 'net.ipv6.conf.eth0.disable_ipv6=0'], { check: true });
      },
      { wrapper: ['setpriv', '--bounding-set=-net_raw'] },
      'no-net-raw',
      "NET_RAW is not in this process's capability bounding set",
    ],
  ])('%s: start-up says so, and metalboot serves DHCP all the same', async (_what, prepare, options, reason, text) => {
    await prepare();
    const m = await start('quiet', QUIET_IP, [], options);
    try {
      const line = await m.waitForLog((l) => String(l.msg).startsWith('no router advertisements:'), 5000);
      expect(line).toMatchObject({ level: 40, reason, component: 'ra' });
      expect(line.msg).toContain(text);
      const r = await lab.exec(
        'client2',
        'udhcpc',
        ['-i', 'eth0', '-f', '-q', '-n', '-t', '5', '-T', '2', '-s', '/bin/true'],
        {
          timeoutMs: 60_000,
        },
      );
      expect(`${r.stdout}${r.stderr}`).toContain('10.82.0.50');
    } finally {
      await m.stop();
    }
  });

  it('SIGTERM: metalboot stops radvd and removes its files', async () => {
    const config = server.logs().filter((l) => l.msg === 'radvd started')[0]!.config as string;
    expect(radvdsWith(config).length).toBeGreaterThanOrEqual(1);
    await server.stop('SIGTERM');
    expect(server.child.exitCode).toBe(0);
    await until('no radvd left', () => radvdsWith(config).length === 0, 3000);
    expect(existsSync(path.dirname(config))).toBe(false);
  });

  it('SIGKILL: the orphaned radvd answers nothing and dies at the next solicitation', async () => {
    const m = await start('srv', SERVER_IP, []);
    await m.waitForLog((l) => l.msg === 'sending router advertisements', 15_000);
    const config = m.logs().find((l) => l.msg === 'radvd started')!.config as string;
    const before = radvdsWith(config);
    expect(before.length).toBeGreaterThanOrEqual(1);
    await m.stop('SIGKILL');
    // Orphaned, asleep until radvd's next event.
    expect(radvdsWith(config).sort()).toEqual(before.sort());
    const cap = await lab.capture('client', 'eth0', 'icmp6');
    await sendRs('client');
    await until('the orphaned radvd gone', () => radvdsWith(config).length === 0, 5000);
    await new Promise((r) => setTimeout(r, 500));
    const { packets } = await cap.stop();
    expect(packets.filter(isRa)).toEqual([]);
  });
});
