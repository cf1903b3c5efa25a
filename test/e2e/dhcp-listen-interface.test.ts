/**
 * --dhcp-listen=<an address of eth0>:67 on a two-interface server: DHCP on the interface that
 * owns the address, and only there (docs/decisions/0009-dhcp-on-one-interface.md). Both clients
 * are in the static host list, so the server would answer either if it heard it; it must hear
 * the eth0 one (through socat bound to eth0) and not the eth1 one. Then: a unicast renewal, a
 * killed socat started again, and no socat left once metalboot stops.
 *
 *   ns srv:  eth0 10.81.0.1/24 ── br0 ── ns prov   (udhcpc, MAC_PROV)
 *            eth1 10.82.0.1/24 ── br1 ── ns other  (udhcpc, MAC_OTHER)
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLab, requireRoot, requireTools, type Lab } from '../../lab/netns.js';
import { startMetalboot, type MetalbootProcess } from '../support/metalboot-process.js';
import { processAlive as alive } from '../support/process-alive.js';

const SERVER = '10.81.0.1';
const MAC_PROV = '52:54:00:cc:00:01';
const MAC_OTHER = '52:54:00:cc:00:02';
const IP_PROV = '10.81.0.50';

/** udhcpc's script: records each event and sets the address, so that a renewal is a real unicast. */
const SCRIPT = (out: string) => `#!/bin/sh
echo "$1 ip=$ip serverid=$serverid" >> ${out}
case "$1" in
  bound|renew) ip addr flush dev "$interface"; ip addr add "$ip/$subnet" dev "$interface" ;;
  deconfig) ip addr flush dev "$interface" ;;
esac
exit 0
`;

async function until<T>(what: string, fn: () => T | undefined, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('--dhcp-listen with the address of one interface', () => {
  let lab: Lab;
  let server: MetalbootProcess;

  const udhcpcOnce = (ns: string, tries: number) =>
    lab.exec(ns, 'udhcpc', ['-i', 'eth0', '-f', '-q', '-n', '-t', String(tries), '-T', '2', '-s', '/bin/true'], {
      timeoutMs: 60_000,
    });
  const curl = async (p: string) => {
    const r = await lab.exec('srv', 'curl', ['-s', `http://127.0.0.1:8080${p}`], { timeoutMs: 10_000 });
    expect(r.code, r.stderr).toBe(0);
    return r.stdout;
  };
  const socatPid = () => {
    const started = server.logs().filter((l) => l.msg === 'socat listening' || l.msg === 'socat restarted');
    return started.at(-1)?.pid as number | undefined;
  };

  beforeAll(async () => {
    requireRoot();
    requireTools('ip', 'udhcpc', 'tcpdump', 'socat', 'curl');
    lab = await createLab();
    await lab.addBridge('br1');
    await lab.addNamespace('srv');
    await lab.connect('srv', { ip: `${SERVER}/24`, ifname: 'eth0' });
    await lab.connect('srv', { ip: '10.82.0.1/24', ifname: 'eth1', bridge: 'br1' });
    await lab.addNamespace('prov');
    await lab.connect('prov', { mac: MAC_PROV, ifname: 'eth0' });
    await lab.addNamespace('other');
    await lab.connect('other', { mac: MAC_OTHER, ifname: 'eth0', bridge: 'br1' });
    server = await startMetalboot(lab, 'srv', [
      '--server-ip',
      `${SERVER}/24`,
      `--dhcp-listen=${SERVER}:67`,
      '--dhcp-hosts',
      `${MAC_PROV},${IP_PROV};${MAC_OTHER},10.81.0.51`,
      '--tftp-listen',
      '',
      '--http-listen',
      '127.0.0.1:8080',
      '--log-level',
      'debug',
    ]);
  }, 120_000);

  afterAll(async () => {
    await lab?.close();
  });

  it('the host on eth0 gets a lease; the one on eth1 gets nothing, and its requests never reach metalboot', async () => {
    const onProv = await lab.capture('srv', 'eth0', 'udp port 67 or udp port 68');
    const onOther = await lab.capture('srv', 'eth1', 'udp port 67 or udp port 68');
    const prov = await udhcpcOnce('prov', 5);
    expect(prov.code, `${prov.stdout}\n${prov.stderr}`).toBe(0);
    expect(`${prov.stdout}${prov.stderr}`).toContain(IP_PROV);
    const other = await udhcpcOnce('other', 3);
    expect(other.code, `${other.stdout}\n${other.stderr}`).not.toBe(0);

    const atOther = (await onOther.stop()).packets;
    // The other host's DISCOVERs did reach the server's eth1 (so the test could fail)…
    expect(atOther.filter((p) => p.dstPort === 67 && p.dstIp === '255.255.255.255').length).toBeGreaterThanOrEqual(3);
    // …and nothing came back.
    expect(atOther.filter((p) => p.srcPort === 67)).toEqual([]);
    expect(server.logs().filter((l) => l.mac === MAC_OTHER)).toEqual([]);

    const atProv = (await onProv.stop()).packets.filter((p) => p.srcPort === 67);
    expect(atProv.length).toBeGreaterThanOrEqual(2); // OFFER and ACK
    expect(atProv.every((p) => p.srcIp === SERVER && p.dstIp === '255.255.255.255')).toBe(true);
    // The broadcasts came through socat.
    const fed = /^metalboot_dhcp_feed_datagrams_total (\d+)$/m.exec(await curl('/metrics'));
    expect(Number(fed?.[1])).toBeGreaterThanOrEqual(2);
    const ready = JSON.parse(await curl('/readyz')) as { checks: { name: string; ok: boolean; detail: string }[] };
    expect(ready.checks.find((c) => c.name === 'dhcp-feed')).toEqual({
      name: 'dhcp-feed',
      ok: true,
      detail: `socat on eth0 (pid ${socatPid()})`,
    });
  });

  it('a unicast renewal from the leased address is answered by unicast', async () => {
    const out = path.join(lab.dir, 'events-renew');
    const script = path.join(lab.dir, 'record.sh');
    writeFileSync(script, SCRIPT(out), { mode: 0o755 });
    const events = () => (existsSync(out) ? readFileSync(out, 'utf8') : '');
    const capture = await lab.capture('srv', 'eth0', 'udp port 67 or udp port 68');
    const child = lab.spawn('prov', 'udhcpc', ['-i', 'eth0', '-f', '-t', '5', '-T', '2', '-s', script]);
    try {
      await until('bound', () => (/^bound ip=10\.81\.0\.50 /m.test(events()) ? true : undefined));
      child.kill('SIGUSR1'); // renew now: a unicast REQUEST from ciaddr to the server
      await until('renew', () => (/^renew ip=10\.81\.0\.50 /m.test(events()) ? true : undefined));
    } finally {
      child.kill('SIGTERM');
    }
    await server.waitForLog(
      (l) => l.msg === 'dhcp reply' && l.type === 'ACK' && l.mac === MAC_PROV && l.to === `${IP_PROV}:68`,
    );
    const packets = (await capture.stop()).packets;
    expect(packets.some((p) => p.srcIp === IP_PROV && p.dstIp === SERVER && p.dstPort === 67)).toBe(true);
    expect(packets.some((p) => p.srcIp === SERVER && p.dstIp === IP_PROV && p.dstPort === 68)).toBe(true);
  });

  it('a killed socat is logged, started again, and DHCP works again', async () => {
    const first = socatPid()!;
    expect(alive(first)).toBe(true);
    process.kill(first, 'SIGKILL');
    const exited = await server.waitForLog((l) => l.msg === 'socat exited; restarting' && l.pid === first);
    expect(exited).toMatchObject({ level: 50, signal: 'SIGKILL', component: 'dhcp-feed', device: 'eth0' });
    const restarted = await server.waitForLog((l) => l.msg === 'socat restarted', 15_000);
    expect(restarted.pid).not.toBe(first);
    expect(alive(restarted.pid as number)).toBe(true);
    const again = await udhcpcOnce('prov', 5);
    expect(again.code, `${again.stdout}\n${again.stderr}`).toBe(0);
    expect(`${again.stdout}${again.stderr}`).toContain(IP_PROV);
  });

  it('stopping metalboot leaves no socat behind', async () => {
    const pid = socatPid()!;
    expect(alive(pid)).toBe(true);
    await server.stop('SIGTERM');
    expect(server.child.exitCode).toBe(0);
    expect(alive(pid)).toBe(false);
    const inNs = execFileSync('ip', ['netns', 'pids', lab.nsName('srv')], { encoding: 'utf8', timeout: 5000 })
      .split('\n')
      .filter((p) => p !== '')
      .map((p) => {
        try {
          return readFileSync(`/proc/${p}/comm`, 'utf8').trim();
        } catch {
          return '';
        }
      });
    expect(inNs.filter((c) => c === 'socat')).toEqual([]);
  });
});
