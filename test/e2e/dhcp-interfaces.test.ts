/**
 * The DHCP shell on a multi-homed server: replies to address-less clients must leave on the
 * provisioning interface even when the default route points out of another one (docs/architecture.md,
 * "Node.js networking facts"). And hostile datagrams on port 67 are dropped with a reason
 * while the next valid DISCOVER is still answered.
 *
 *   ns srv:  eth0 10.79.0.1/24 ── br0 ── ns client (the booting host)
 *            eth1 10.80.0.1/24 ── br1 ── ns other   (default route of srv via 10.80.0.254)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { createLab, requireRoot, requireTools, type Lab } from '../../lab/netns.js';
import { startMetalboot, type MetalbootProcess } from '../support/metalboot-process.js';

const CLIENT_MAC = '52:54:00:bb:00:01';

describe('DHCP on a two-interface server', () => {
  let lab: Lab;
  let server: MetalbootProcess;

  beforeAll(async () => {
    requireRoot();
    requireTools('ip', 'udhcpc', 'tcpdump');
    lab = await createLab();
    await lab.addBridge('br1');
    await lab.addNamespace('srv');
    await lab.connect('srv', { ip: '10.79.0.1/24', ifname: 'eth0' });
    await lab.connect('srv', { ip: '10.80.0.1/24', ifname: 'eth1', bridge: 'br1' });
    await lab.addNamespace('other');
    await lab.connect('other', { ip: '10.80.0.254/24', bridge: 'br1' });
    await lab.exec('srv', 'ip', ['route', 'add', 'default', 'via', '10.80.0.254', 'dev', 'eth1'], { check: true });
    await lab.addNamespace('client');
    await lab.connect('client', { mac: CLIENT_MAC, ifname: 'eth0' });
    await lab.addNamespace('noise');
    await lab.connect('noise', { ip: '10.79.0.99/24', ifname: 'eth0' });
    server = await startMetalboot(lab, 'srv', [
      '--server-ip',
      '10.79.0.1/24',
      '--dhcp-hosts',
      `${CLIENT_MAC},10.79.0.50`,
      '--tftp-listen',
      '',
      '--http-listen',
      '127.0.0.1:0',
      '--log-level',
      'debug',
    ]);
  }, 120_000);

  afterAll(async () => {
    await lab?.close();
  });

  it('broadcast replies leave on the provisioning interface, not the default-route one', async () => {
    const onProvisioning = await lab.capture('srv', 'eth0', 'udp port 67 or udp port 68');
    const onOther = await lab.capture('srv', 'eth1', 'udp port 67 or udp port 68');
    const r = await lab.exec(
      'client',
      'udhcpc',
      ['-i', 'eth0', '-f', '-q', '-n', '-t', '5', '-T', '2', '-s', '/bin/true'],
      { timeoutMs: 60_000 },
    );
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(`${r.stdout}${r.stderr}`).toContain('10.79.0.50');
    const prov = (await onProvisioning.stop()).packets.filter((p) => p.srcPort === 67);
    const other = (await onOther.stop()).packets.filter((p) => p.srcPort === 67 || p.dstPort === 68);
    expect(prov.length).toBeGreaterThanOrEqual(2); // OFFER and ACK
    expect(prov.every((p) => p.srcIp === '10.79.0.1' && p.dstIp === '255.255.255.255')).toBe(true);
    expect(other).toEqual([]);
  });

  it('drops garbage, truncated and oversized datagrams with a reason and answers the next DISCOVER', async () => {
    const script = path.join(lab.dir, 'garbage.mjs');
    writeFileSync(
      script,
      `
      import dgram from 'node:dgram';
      const s = dgram.createSocket('udp4');
      s.bind(0, () => {
        s.setBroadcast(true);
        const valid = Buffer.alloc(300); valid[0] = 1; valid[1] = 1; valid[2] = 6; valid.writeUInt32BE(0x63825363, 236);
        const cut = Buffer.from(valid); cut[240] = 53; cut[241] = 200; // option runs past the end
        const sends = [Buffer.from('hello'), Buffer.alloc(0), Buffer.alloc(239, 1), cut, Buffer.alloc(9000, 0xff), Buffer.alloc(600, 0x41)];
        let left = sends.length;
        // Broadcast (the receive socket) and unicast to the server IP (the send socket).
        left *= 2;
        for (const b of sends) for (const to of ['255.255.255.255', '10.79.0.1']) s.send(b, 67, to, (err) => { if (err) console.error(err.message); if (--left === 0) s.close(); });
      });`,
    );
    const r = await lab.exec('noise', process.execPath, [script], { timeoutMs: 20_000 });
    expect(r.code, r.stderr).toBe(0);
    await server.waitForLog(
      (l) => l.msg === 'dhcp drop' && l.reason === 'malformed' && l.code === 'DHCP_ERR_OPTION_TRUNCATED',
    );
    await server.waitForLog((l) => l.msg === 'dhcp drop' && l.reason === 'malformed' && l.code === 'DHCP_ERR_TOO_LONG');
    const codes = new Set(
      server
        .logs()
        .filter((l) => l.reason === 'malformed')
        .map((l) => l.code),
    );
    expect([...codes].sort()).toEqual(
      ['DHCP_ERR_BAD_OP', 'DHCP_ERR_OPTION_TRUNCATED', 'DHCP_ERR_SHORT', 'DHCP_ERR_TOO_LONG'].sort(),
    );
    const again = await lab.exec(
      'client',
      'udhcpc',
      ['-i', 'eth0', '-f', '-q', '-n', '-t', '5', '-T', '2', '-s', '/bin/true'],
      { timeoutMs: 60_000 },
    );
    expect(again.code).toBe(0);
    expect(server.child.exitCode).toBeNull();
  });
});
