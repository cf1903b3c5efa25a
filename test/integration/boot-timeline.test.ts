/**
 * Boot timelines through the whole product on loopback: a simulated UEFI PXE host goes through
 * metalboot's real DHCP, TFTP, script, image-worker and Ironic API proxy paths
 * (test/support/simulated-boots.ts), and /debug/boots, /debug/boots/<mac>, the live stream and
 * /metrics tell its milestones, in order, with the measured time between them.
 */
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostTimelineView } from '../../src/boot/boot-timeline.js';
import { KERNEL, SNPONLY, startSimulatedBoots, type SimulatedBoots } from '../support/simulated-boots.js';

let sim: SimulatedBoots;

beforeAll(async () => {
  sim = await startSimulatedBoots(3);
}, 60_000);

afterAll(async () => {
  await sim?.close();
});

async function getJson<T>(path: string): Promise<{ status: number; body: T }> {
  const res = await request(`${sim.httpUrl}${path}`);
  return { status: res.statusCode, body: (await res.body.json()) as T };
}

describe('boot timelines', () => {
  it('record every milestone of a boot in order, with durations that add up', async () => {
    const h = sim.hosts[0]!;
    await sim.boot(0);
    const { status, body } = await getJson<HostTimelineView>(`/debug/boots/${h.mac.replaceAll(':', '-')}`);
    expect(status).toBe(200);
    expect(body.milestones.map((m) => m.milestone)).toEqual([
      'dhcp-offer',
      'dhcp-ack',
      'tftp-start',
      'tftp-end',
      'ipxe-dhcp-ack',
      'boot-script',
      'host-script',
      'kernel',
      'initramfs',
      'ipa-lookup',
      'ipa-heartbeat',
    ]);
    expect(body).toMatchObject({ mac: h.mac, state: 'agent', lastMilestone: 'ipa-heartbeat', boot: 1 });
    const byName = Object.fromEntries(body.milestones.map((m) => [m.milestone, m]));
    expect(byName['dhcp-ack']!.detail).toMatchObject({ ip: `${h.ip}/8`, client: 'PXE firmware, arch 7' });
    expect(byName['tftp-end']!.detail).toMatchObject({ file: 'snponly.efi', bytes: SNPONLY.length, resends: 0 });
    expect(byName['host-script']!.detail).toEqual({ script: 'inspector' });
    expect(byName.kernel!.detail).toMatchObject({
      path: '/images/ironic-python-agent.kernel',
      status: 200,
      bytes: KERNEL.length,
    });
    expect(byName['ipa-heartbeat']!.detail).toMatchObject({ node: h.node, status: 202 });
    // Durations: each from the entry before; together the span from the first to the last.
    const sum = body.milestones.reduce((s, m) => s + (m.msSincePrevious ?? 0), 0);
    expect(sum).toBe(body.spanMs);
    expect(body.spanMs).toBe(Date.parse(body.milestones.at(-1)!.at) - Date.parse(body.milestones[0]!.at));
    expect(body.milestones.every((m) => m.msSincePrevious === null || m.msSincePrevious >= 0)).toBe(true);
  });

  it('lists hosts most recent first, filtered by state, last milestone and stuck time', async () => {
    await sim.boot(1, 'scripts');
    await sim.boot(2, 'kernel');
    const [a, b, c] = sim.hosts.map((h) => h.mac);
    const macs = async (q: string) =>
      (await getJson<{ hosts: HostTimelineView[] }>(`/debug/boots${q}`)).body.hosts.map((h) => h.mac);
    expect(await macs('')).toEqual([c, b, a]);
    expect(await macs('?state=ipxe')).toEqual([b]);
    expect(await macs('?milestone=kernel')).toEqual([c]);
    expect(await macs('?state=agent')).toEqual([a]);
    expect(await macs('?stuckFor=3600')).toEqual([]);
    expect(await macs('?stuckFor=0&limit=2')).toEqual([c, b]);
    expect((await getJson('/debug/boots?state=sleeping')).status).toBe(400);
    expect((await getJson('/debug/boots?stuckFor=soon')).status).toBe(400);
    expect((await getJson('/debug/boots/not-a-mac')).status).toBe(400);
    expect((await getJson('/debug/boots/52:54:00:ff:ff:ff')).status).toBe(404);
  });

  it('counts the measured times between milestones in /metrics', async () => {
    const res = await request(`${sim.httpUrl}/metrics`);
    const text = await res.body.text();
    expect(text).toMatch(/^metalboot_boot_milestone_seconds_count\{from="dhcp-offer",to="dhcp-ack"\} 3$/m);
    expect(text).toMatch(/^metalboot_boot_milestone_seconds_count\{from="kernel",to="initramfs"\} 1$/m);
  });

  it('streams a snapshot, then the hosts that changed', async () => {
    await sim.boot(1, 'scripts');
    const ac = new AbortController();
    const res = await request(`${sim.httpUrl}/debug/boots/events`, { signal: ac.signal });
    const chunks = res.body[Symbol.asyncIterator]();
    try {
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
      const events: { name: string; data: unknown }[] = [];
      let buffer = '';
      const next = async (name: string) => {
        for (let r = await chunks.next(); r.done !== true; r = await chunks.next()) {
          buffer += (r.value as Buffer).toString('utf8');
          for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const ev = /^event: (\S+)$/m.exec(block)?.[1];
            const data = /^data: (.*)$/m.exec(block)?.[1];
            if (ev !== undefined && data !== undefined) events.push({ name: ev, data: JSON.parse(data) });
          }
          const found = events.find((e) => e.name === name);
          if (found !== undefined) return found.data as { hosts: HostTimelineView[] };
        }
        throw new Error(`the stream ended before a ${name} event`);
      };
      const snapshot = await next('snapshot');
      expect(snapshot.hosts[0]).toMatchObject({ mac: sim.hosts[1]!.mac, lastMilestone: 'host-script' });
      await sim.step(1, 'kernel');
      const update = await next('hosts');
      expect(update.hosts.map((h) => [h.mac, h.lastMilestone])).toEqual([[sim.hosts[1]!.mac, 'kernel']]);
    } finally {
      ac.abort();
      await res.body.dump().catch(() => undefined);
    }
  });

  it('serves the live page from ui/ without anything from elsewhere', async () => {
    const redirect = await request(`${sim.httpUrl}/ui`);
    await redirect.body.dump();
    expect([redirect.statusCode, redirect.headers.location]).toEqual([308, 'ui/']);
    const page = await request(`${sim.httpUrl}/ui/`);
    const html = await page.body.text();
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-security-policy']).toContain("default-src 'none'");
    expect(html).toContain('<script type="module" src="app.js"></script>');
    expect(html).not.toMatch(/https?:\/\//);
    for (const f of ['app.js', 'style.css']) {
      const res = await request(`${sim.httpUrl}/ui/${f}`);
      expect(res.statusCode, f).toBe(200);
      expect(await res.body.text()).not.toMatch(/https?:\/\//);
    }
    const missing = await request(`${sim.httpUrl}/ui/secrets.txt`);
    await missing.body.dump();
    expect(missing.statusCode).toBe(404);
  });
});
