/**
 * DHCPv6 against real clients in network namespaces: ISC `dhclient -6` for a BareMetalHost
 * (ipv6-address annotation), a static host and the IPv6 range (bind, renew at T1, release, and a
 * restart of metalboot that keeps the range's bindings through its journal), and `dhcrelay -6`
 * relaying a host on another link. The client script records what dhclient received.
 *
 *   ns srv     eth0 fd00:77::1/64  metalboot --dhcp6-server-ip fd00:77::1/64
 *   ns c_*     eth0 (link-local only)                                  ─ br0
 *   ns relay   eth0 fd00:77::2/64 ─ dhcrelay -6 ─ eth1 fd00:78::1/64    ─ br0 / br1
 *   ns c_far   eth0 (link-local only)                                  ─ br1
 */
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLab, requireRoot, requireTools, type Lab } from '../../lab/netns.js';
import { startMetalboot, type MetalbootProcess } from '../support/metalboot-process.js';
import { clientEvents } from '../support/client-events.js';
import { until } from '../support/until.js';

const SERVER = 'fd00:77::1';
const MAC_BMH = '52:54:00:bb:00:01';
const MAC_STATIC = '52:54:00:bb:00:02';
const MAC_RANGE = '52:54:00:bb:00:03';
const MAC_RANGE_B = '52:54:00:bb:00:04';
const MAC_FAR = '52:54:00:bb:00:05';

const BMH_YAML = `
apiVersion: metal3.io/v1alpha1
kind: BareMetalHost
metadata:
  name: node-1
  namespace: metal3
  annotations:
    metal3.vcluster.com/ip-address: 10.77.0.21/24
    metal3.vcluster.com/ipv6-address: fd00:77::21/64
    metal3.vcluster.com/dns-servers: 10.77.0.53,fd00:77::53
spec:
  bootMACAddress: ${MAC_BMH}
---
apiVersion: metal3.io/v1alpha1
kind: BareMetalHost
metadata:
  name: far-1
  namespace: metal3
  annotations:
    metal3.vcluster.com/ip-address: fd00:78::21/64
spec:
  bootMACAddress: ${MAC_FAR}
`;

/** Records dhclient's variables, one block per invocation; configures nothing on the host. */
const RECORD = (out: string) => `#!/bin/sh
env | grep -E '^(new_|old_|reason=)' | sort | sed "s/^/$reason /" >> ${out}
echo "$reason END" >> ${out}
exit 0
`;

const events = clientEvents;

describe('DHCPv6 with real clients', () => {
  let lab: Lab;
  let server: MetalbootProcess;
  let args: string[];

  /** A namespace without DAD and without SLAAC from stray advertisements: addresses usable at once. */
  async function ns6(name: string): Promise<void> {
    await lab.addNamespace(name);
    await lab.exec(
      name,
      'sysctl',
      [
        '-qw',
        'net.ipv6.conf.all.accept_dad=0',
        'net.ipv6.conf.default.accept_dad=0',
        'net.ipv6.conf.default.accept_ra=0',
      ],
      { check: true },
    );
  }

  async function plug(name: string, mac: string, bridge = 'br0', ip6?: string): Promise<string> {
    const link = await lab.connect(name, { mac, bridge });
    if (ip6 !== undefined)
      await lab.exec(name, 'ip', ['addr', 'add', ip6, 'dev', link.ifname, 'nodad'], { check: true });
    return link.ifname;
  }

  /** dhclient -6 in the foreground, recording to `<tag>.events`; killed by the lab at the end. */
  function dhclient(ns: string, ifname: string, tag: string, extra: string[] = []) {
    const dir = lab.dir;
    const script = path.join(dir, `${tag}.sh`);
    writeFileSync(script, RECORD(path.join(dir, `${tag}.events`)));
    chmodSync(script, 0o755);
    const conf = path.join(dir, `${tag}.conf`);
    writeFileSync(conf, 'request dhcp6.name-servers, dhcp6.domain-search;\n');
    const child = lab.spawn(ns, 'dhclient', [
      '-6',
      '-d',
      '-v',
      ...extra,
      '-cf',
      conf,
      '-sf',
      script,
      '-lf',
      path.join(dir, `${ns}.leases`),
      '-pf',
      path.join(dir, `${tag}.pid`),
      ifname,
    ]);
    return { child, out: path.join(dir, `${tag}.events`) };
  }

  const bound = (out: string) => until(() => events(out).find((e) => e.event === 'BOUND6'), 30_000, `BOUND6 in ${out}`);

  beforeAll(async () => {
    requireRoot();
    requireTools('ip', 'sysctl', 'dhclient', 'dhcrelay');
    lab = await createLab({ ipv6: true });
    await lab.addBridge('br1');
    await ns6('srv');
    await plug('srv', '52:54:00:bb:ff:01', 'br0', `${SERVER}/64`);
    // Relayed replies go back to the relay's own address on this link; the far link needs no route.
    writeFileSync(path.join(lab.dir, 'bmh.yaml'), BMH_YAML);
    args = [
      '--server-ip',
      '10.77.0.1/24',
      '--dhcp=false',
      '--dhcp6-server-ip',
      `${SERVER}/64`,
      '--dhcp6-interface',
      'eth0',
      '--tftp-listen',
      '',
      '--tftp-listen6',
      '',
      '--http-listen',
      '[::1]:0',
      '--callback-listen',
      '',
      '--router-advertisements=false',
      '--bmh-file',
      path.join(lab.dir, 'bmh.yaml'),
      '--dhcp-hosts',
      `${MAC_STATIC},[fd00:77::31],static-1`,
      '--dhcp6-range',
      'fd00:77::100,fd00:77::1ff,60',
      '--dhcp6-lease-file',
      path.join(lab.dir, 'leases6.journal'),
      '--dhcp6-dns',
      'fd00:77::54',
      '--dhcp6-domain-search',
      'prov.example',
      '--log-level',
      'debug',
    ];
    server = await startMetalboot(lab, 'srv', args);
  }, 120_000);

  afterAll(async () => {
    await lab?.close();
  });

  it('dhclient -6 gets the BareMetalHost address and its own IPv6 DNS server, found by its MAC', async () => {
    await ns6('c_bmh');
    const ifname = await plug('c_bmh', MAC_BMH);
    const { child, out } = dhclient('c_bmh', ifname, 'bmh');
    const b = await bound(out);
    child.kill('SIGTERM');
    expect(b.vars).toMatchObject({
      new_ip6_address: 'fd00:77::21',
      new_dhcp6_name_servers: 'fd00:77::53',
      new_dhcp6_domain_search: 'prov.example.',
    });
    const reply = server.logs().find((l) => l.msg === 'dhcp6 reply' && l.mac === MAC_BMH && l.type === 'REPLY');
    expect(reply).toMatchObject({ source: 'bmh', host: 'metal3/node-1', macFrom: 'link-local-eui64' });
  });

  it('dhclient -6 gets the static address, with the configured DNS server', async () => {
    await ns6('c_static');
    const ifname = await plug('c_static', MAC_STATIC);
    const { child, out } = dhclient('c_static', ifname, 'static');
    const b = await bound(out);
    child.kill('SIGTERM');
    expect(b.vars).toMatchObject({ new_ip6_address: 'fd00:77::31', new_dhcp6_name_servers: 'fd00:77::54' });
  });

  it('a range client binds, renews at T1, keeps its address through a restart of metalboot, and releases it', async () => {
    await ns6('c_range');
    const ifname = await plug('c_range', MAC_RANGE);
    const { child, out } = dhclient('c_range', ifname, 'range');
    const b = await bound(out);
    const addr = b.vars.new_ip6_address!;
    expect(addr).toMatch(/^fd00:77::1[0-9a-f]{2}$/);
    // Lease 60 s: T1 at 30 s, when dhclient sends a Renew to this server.
    const renew = await until(() => events(out).find((e) => e.event === 'RENEW6'), 60_000, 'RENEW6');
    expect(renew.vars.new_ip6_address).toBe(addr);
    child.kill('SIGTERM');

    // A crash: the binding is in the journal, so after the restart another host cannot get it
    // and the same host gets it back.
    await server.stop('SIGKILL');
    server = await startMetalboot(lab, 'srv', args);
    await ns6('c_range_b');
    const other = dhclient('c_range_b', await plug('c_range_b', MAC_RANGE_B), 'range-b');
    const ob = await bound(other.out);
    other.child.kill('SIGTERM');
    expect(ob.vars.new_ip6_address).not.toBe(addr);
    const again = dhclient('c_range', ifname, 'range-again');
    const ab = await until(
      () => events(again.out).find((e) => e.event === 'BOUND6' || e.event === 'RENEW6' || e.event === 'REBOOT6'),
      30_000,
      'the range client bound again',
    );
    expect(ab.vars.new_ip6_address).toBe(addr);
    again.child.kill('SIGTERM');
    await new Promise((r) => again.child.once('exit', r));

    // dhclient -6 -r sends a Release; the journal records the address as free.
    const rel = await lab.exec(
      'c_range',
      'dhclient',
      [
        '-6',
        '-r',
        '-v',
        '-lf',
        path.join(lab.dir, 'c_range.leases'),
        '-pf',
        path.join(lab.dir, 'range-r.pid'),
        '-sf',
        path.join(lab.dir, 'range.sh'),
        ifname,
      ],
      { timeoutMs: 30_000 },
    );
    expect(rel.code, rel.stderr).toBe(0);
    await until(
      () =>
        readFileSync(path.join(lab.dir, 'leases6.journal'), 'utf8').includes(`{"t":"free","ip":"${addr}"}`)
          ? true
          : undefined,
      10_000,
      'the release in the journal',
    );
  }, 150_000);

  it('dhcrelay -6 relays a host on another link, and the reply goes back through it', async () => {
    await ns6('relay');
    const up = await plug('relay', '52:54:00:bb:ff:02', 'br0', 'fd00:77::2/64');
    const down = await plug('relay', '52:54:00:bb:ff:03', 'br1', 'fd00:78::1/64');
    const relay = lab.spawn('relay', 'dhcrelay', ['-6', '-d', '-I', '-l', down, '-u', `${SERVER}%${up}`]);
    await ns6('c_far');
    const ifname = await plug('c_far', MAC_FAR, 'br1');
    const { child, out } = dhclient('c_far', ifname, 'far');
    const b = await bound(out);
    child.kill('SIGTERM');
    relay.kill('SIGTERM');
    expect(b.vars.new_ip6_address).toBe('fd00:78::21');
    const reply = server.logs().find((l) => l.msg === 'dhcp6 reply' && l.mac === MAC_FAR && l.type === 'REPLY');
    expect(reply).toMatchObject({ relays: 1, host: 'metal3/far-1', to: expect.stringContaining('fd00:77::2') });
  });
});
