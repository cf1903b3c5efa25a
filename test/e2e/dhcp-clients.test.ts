/**
 * The DHCP server against real clients in network namespaces: dhclient (isc-dhcp-client),
 * udhcpc (busybox) and perfdhcp (kea-admin), leases from a BareMetalHost manifest, a static
 * list and a range. Client scripts record what the client received instead of configuring
 * resolv.conf, and set the address so that renewals are real unicast RENEWING requests.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createLab, requireRoot, requireTools, type Lab } from '../../lab/netns.js';
import { startMetalboot, type MetalbootProcess } from '../support/metalboot-process.js';
import { clientEvents } from '../support/client-events.js';

const SERVER = '10.77.0.1';
const MAC_BMH = '52:54:00:aa:00:01';
const MAC_STATIC = '52:54:00:aa:00:02';
const MAC_RANGE_A = '52:54:00:aa:00:03';
const MAC_RANGE_B = '52:54:00:aa:00:04';
const MAC_UNKNOWN_BMH_UDHCPC = '52:54:00:aa:00:05';

const BMH_YAML = `
apiVersion: v1
kind: Secret
metadata: { name: node-1-bmc, namespace: metal3 }
stringData: { username: admin, password: secret }
---
apiVersion: metal3.io/v1alpha1
kind: BareMetalHost
metadata:
  name: node-1
  namespace: metal3
  annotations:
    metal3.vcluster.com/ip-address: 10.77.0.21/24
    metal3.vcluster.com/gateway: 10.77.0.1
    metal3.vcluster.com/dns-servers: 10.77.0.53,10.77.0.54
    metal3.vcluster.com/ntp-servers: 10.77.0.123
spec:
  bootMACAddress: ${MAC_BMH}
  online: true
  bmc: { address: ipmi://10.0.0.1, credentialsName: node-1-bmc }
---
apiVersion: metal3.io/v1alpha1
kind: BareMetalHost
metadata:
  name: node-5
  namespace: metal3
  annotations:
    metal3.vcluster.com/ip-address: 10.77.0.25/24
spec:
  bootMACAddress: ${MAC_UNKNOWN_BMH_UDHCPC}
`;

/** Records the variables a client script receives, one JSON object per invocation. */
const RECORD_SCRIPT = (out: string) => `#!/bin/sh
# dhclient sets $reason/$new_*; udhcpc passes the event as $1 and sets $ip, $subnet, …
ev="\${reason:-$1}"
env | grep -E '^(new_|ip=|subnet=|router=|dns=|ntpsrv=|lease=|serverid=|interface=|hostname=)' | sort | sed "s/^/$ev /" >> ${out}
echo "$ev END" >> ${out}
ifc="\${interface}"
addr="\${new_ip_address:-$ip}"
case "$ev" in
  BOUND|RENEW|REBOOT|REBIND|bound|renew)
    mask="\${new_subnet_mask:-$subnet}"
    ip addr flush dev "$ifc" 2>/dev/null
    ip addr add "$addr/$mask" dev "$ifc" 2>/dev/null || true ;;
  deconfig) ip addr flush dev "$ifc" 2>/dev/null || true ;;
esac
exit 0
`;

const events = clientEvents;

async function until<T>(what: string, fn: () => T | undefined, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('DHCP with real clients', () => {
  let lab: Lab;
  let server: MetalbootProcess;
  let dir: string;
  let serverArgs: string[];

  beforeAll(async () => {
    requireRoot();
    requireTools('ip', 'dhclient', 'udhcpc', 'perfdhcp', 'tcpdump');
    lab = await createLab();
    dir = lab.dir;
    await lab.addNamespace('srv');
    await lab.connect('srv', { ip: `${SERVER}/24` });
    writeFileSync(path.join(dir, 'bmh.yaml'), BMH_YAML);
    writeFileSync(path.join(dir, 'record.sh'), RECORD_SCRIPT(path.join(dir, 'events-$(basename $0)')));
    serverArgs = [
      '--server-ip',
      `${SERVER}/24`,
      '--dhcp-listen',
      '0.0.0.0:67',
      '--tftp-listen',
      '',
      '--log-level',
      'debug',
      '--bmh-file',
      path.join(dir, 'bmh.yaml'),
      '--dhcp-hosts',
      `${MAC_STATIC},10.77.0.31,static-1`,
      '--dhcp-range',
      '10.77.0.100,10.77.0.199,600',
      '--lease-file',
      path.join(dir, 'leases.journal'),
      '--dhcp-gateway',
      '10.77.0.1',
      '--dhcp-dns',
      '10.77.0.53',
      '--dhcp-ntp',
      '10.77.0.123',
    ];
    server = await startMetalboot(lab, 'srv', serverArgs);
  }, 120_000);

  afterAll(async () => {
    await lab?.close();
  });

  function scriptFor(name: string): { script: string; out: string } {
    const script = path.join(dir, name);
    writeFileSync(script, RECORD_SCRIPT(path.join(dir, `${name}.events`)));
    chmodSync(script, 0o755);
    return { script, out: path.join(dir, `${name}.events`) };
  }

  async function client(name: string, mac: string): Promise<string> {
    await lab.addNamespace(name);
    const link = await lab.connect(name, { mac });
    return link.ifname;
  }

  async function dhclientOnce(ns: string, ifname: string, tag: string) {
    const { script, out } = scriptFor(`dhclient-${tag}`);
    const conf = path.join(dir, `dhclient-${tag}.conf`);
    writeFileSync(
      conf,
      'request subnet-mask, broadcast-address, routers, domain-name-servers, host-name, ntp-servers;\n',
    );
    const r = await lab.exec(
      ns,
      'dhclient',
      [
        '-1',
        '-v',
        '-cf',
        conf,
        '-sf',
        script,
        '-lf',
        path.join(dir, `dhclient-${ns}.leases`),
        '-pf',
        path.join(dir, `dhclient-${tag}.pid`),
        ifname,
      ],
      { timeoutMs: 60_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    // -1 without -d: it forks to the background after binding; stop it so it cannot interfere.
    await lab.exec(ns, 'dhclient', ['-x', '-pf', path.join(dir, `dhclient-${tag}.pid`)], { timeoutMs: 10_000 });
    return events(out);
  }

  async function udhcpcOnce(ns: string, ifname: string, tag: string, extra: string[] = []) {
    const { script, out } = scriptFor(`udhcpc-${tag}`);
    const r = await lab.exec(
      ns,
      'udhcpc',
      ['-i', ifname, '-f', '-q', '-n', '-t', '5', '-T', '2', '-s', script, '-O', 'ntpsrv', '-O', 'hostname', ...extra],
      { timeoutMs: 60_000 },
    );
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    return events(out);
  }

  it('dhclient gets address, mask, router, DNS and NTP from a BareMetalHost manifest', async () => {
    const ifname = await client('c_bmh', MAC_BMH);
    const ev = await dhclientOnce('c_bmh', ifname, 'bmh');
    const bound = ev.find((e) => e.event === 'BOUND');
    expect(bound?.vars).toMatchObject({
      new_ip_address: '10.77.0.21',
      new_subnet_mask: '255.255.255.0',
      new_routers: '10.77.0.1',
      new_domain_name_servers: '10.77.0.53 10.77.0.54',
      new_ntp_servers: '10.77.0.123',
      new_host_name: 'node-1',
      new_dhcp_server_identifier: SERVER,
    });
  });

  it('dhclient renews from the same host (INIT-REBOOT with its lease file)', async () => {
    const ev = await dhclientOnce('c_bmh', 'eth0', 'bmh-reboot');
    expect(ev.find((e) => e.event === 'REBOOT' || e.event === 'BOUND')?.vars.new_ip_address).toBe('10.77.0.21');
  });

  it('udhcpc gets the static-list lease with the server defaults', async () => {
    const ifname = await client('c_static', MAC_STATIC);
    const ev = await udhcpcOnce('c_static', ifname, 'static');
    expect(ev.find((e) => e.event === 'bound')?.vars).toMatchObject({
      ip: '10.77.0.31',
      subnet: '255.255.255.0',
      router: '10.77.0.1',
      dns: '10.77.0.53',
      ntpsrv: '10.77.0.123',
      serverid: SERVER,
      hostname: 'static-1',
    });
  });

  it('udhcpc gets a BareMetalHost lease whose gateway defaults to the first host', async () => {
    const ifname = await client('c_bmh5', MAC_UNKNOWN_BMH_UDHCPC);
    const ev = await udhcpcOnce('c_bmh5', ifname, 'bmh5');
    expect(ev.find((e) => e.event === 'bound')?.vars).toMatchObject({ ip: '10.77.0.25', router: '10.77.0.1' });
  });

  it('a range lease: udhcpc binds, renews by unicast, releases, and the address is free again', async () => {
    const ifname = await client('c_range_a', MAC_RANGE_A);
    const { script, out } = scriptFor('udhcpc-range-a');
    const child = lab.spawn('c_range_a', 'udhcpc', [
      '-i',
      ifname,
      '-f',
      '-R',
      '-t',
      '5',
      '-T',
      '2',
      '-s',
      script,
      '-O',
      'ntpsrv',
    ]);
    const bound = await until('udhcpc bound', () => events(out).find((e) => e.event === 'bound'));
    const ip = bound.vars.ip!;
    expect(ip).toMatch(/^10\.77\.0\.1\d\d$/);
    expect(bound.vars).toMatchObject({ router: '10.77.0.1', dns: '10.77.0.53', ntpsrv: '10.77.0.123', lease: '600' });
    child.kill('SIGUSR1'); // renew now: a unicast REQUEST from ciaddr
    const renewed = await until('udhcpc renew', () => events(out).find((e) => e.event === 'renew'));
    expect(renewed.vars.ip).toBe(ip);
    await server.waitForLog(
      (l) => l.msg === 'dhcp reply' && l.type === 'ACK' && l.mac === MAC_RANGE_A && l.to === `${ip}:68`,
    );
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM'); // -R: release on exit
    await exited;
    await server.waitForLog(
      (l) =>
        l.msg === 'dhcp drop' && l.reason === 'released' && l.mac === MAC_RANGE_A && String(l.detail).includes('freed'),
    );
    await until(
      'journal free record',
      () => readFileSync(path.join(dir, 'leases.journal'), 'utf8').includes(`{"t":"free","ip":"${ip}"}`) || undefined,
    );
  });

  it('a range lease survives a kill -9 of the server and is never given to another host', async () => {
    const ifA = await client('c_keep', MAC_RANGE_B);
    const first = await udhcpcOnce('c_keep', ifA, 'keep-1');
    const ipA = first.find((e) => e.event === 'bound')!.vars.ip!;
    await server.stop('SIGKILL');
    server = await startMetalboot(lab, 'srv', serverArgs);
    // Another new client must get a different address…
    const ifC = await client('c_other', '52:54:00:aa:00:66');
    const other = await udhcpcOnce('c_other', ifC, 'other');
    expect(other.find((e) => e.event === 'bound')!.vars.ip).not.toBe(ipA);
    // …and the first one gets its own address back, asking for it (-r) or not.
    const again = await udhcpcOnce('c_keep', ifA, 'keep-2');
    expect(again.find((e) => e.event === 'bound')!.vars.ip).toBe(ipA);
  });

  it('serves an unknown host on the local segment from the range', async () => {
    const before = server.logs().filter((l) => l.reason === 'unknown-host').length;
    const ifname = await client('c_unknown', '52:54:00:aa:00:77');
    const r = await lab.exec(
      'c_unknown',
      'udhcpc',
      ['-i', ifname, '-f', '-q', '-n', '-t', '2', '-T', '1', '-s', '/bin/true', '-x', '0x52:0105676174657761'],
      { timeoutMs: 30_000 },
    );
    // It still gets a range lease: the range serves unknown hosts on the local segment.
    expect(r.code).toBe(0);
    expect(server.logs().filter((l) => l.reason === 'unknown-host').length).toBe(before);
  });

  it('perfdhcp completes 4-way exchanges in broadcast mode', async () => {
    await lab.addNamespace('perf');
    const link = await lab.connect('perf', { ip: '10.77.0.250/24' });
    const r = await lab.exec(
      'perf',
      'perfdhcp',
      ['-4', '-l', link.ifname, '-r', '20', '-n', '40', '-R', '40', '-p', '10'],
      { timeoutMs: 60_000 },
    );
    const out = `${r.stdout}\n${r.stderr}`;
    const sent = /sent packets: (\d+)/g;
    const recv = [...out.matchAll(/received packets: (\d+)/g)].map((m) => Number(m[1]));
    expect([...out.matchAll(sent)].length, out).toBe(2);
    expect(
      recv.every((n) => n > 0),
      out,
    ).toBe(true);
    expect(/drops: 0\b/.test(out) || /drops ratio: 0 %/.test(out), out).toBe(true);
  });

  it('perfdhcp completes 4-way exchanges as a relay (giaddr, replies to port 67)', async () => {
    await lab.addNamespace('relay');
    await lab.connect('relay', { ip: '10.77.0.251/24' });
    const r = await lab.exec('relay', 'perfdhcp', ['-4', '-r', '20', '-n', '40', '-R', '40', '-p', '10', SERVER], {
      timeoutMs: 60_000,
    });
    const out = `${r.stdout}\n${r.stderr}`;
    const recv = [...out.matchAll(/received packets: (\d+)/g)].map((m) => Number(m[1]));
    expect(recv.length, out).toBe(2);
    expect(
      recv.every((n) => n > 0),
      out,
    ).toBe(true);
    expect(/drops: 0\b/.test(out) || /drops ratio: 0 %/.test(out), out).toBe(true);
    expect(server.logs().some((l) => l.msg === 'dhcp reply' && l.to === '10.77.0.251:67')).toBe(true);
  });
});
