/**
 * The /ui page in a real headless Chromium (test/support/chromium.ts) against metalboot on
 * loopback with simulated hosts (test/support/simulated-boots.ts): the page loads without a
 * console error, a host appears and moves through its milestones as it boots, and under a
 * 100-host storm every host has a row, stuck ones carry /debug/explain's reason, and a
 * screenshot is written to test-artifacts/ui-storm.png (docs/images/ui-storm.png is a copy).
 * Skipped only where Debian's chromium is not installed.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Browser, chromiumAvailable, type Page, startChromium } from '../support/chromium.js';
import { BOOT_STEPS, type BootStep, type SimulatedBoots, startSimulatedBoots } from '../support/simulated-boots.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const HOSTS = 100;

let sim: SimulatedBoots;
let browser: Browser | undefined;
let page: Page;

const lastCell = (mac: string) =>
  `document.querySelector('tr[data-mac="${mac}"] td.last')?.firstChild?.textContent ?? ''`;

describe.skipIf(!chromiumAvailable())('the /ui page in Chromium', () => {
  beforeAll(async () => {
    sim = await startSimulatedBoots(HOSTS);
    browser = await startChromium();
    page = await browser.open({ width: 1400, height: 1000 });
    await page.navigate(`${sim.httpUrl}/ui`);
    await page.waitFor("document.getElementById('status').textContent.startsWith('live')", 10_000, 'the live stream');
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await sim?.close();
  });

  it('shows a host appear and move through its milestones as it boots', async () => {
    const mac = sim.hosts[0]!.mac;
    expect(await page.evaluate<number>("document.querySelectorAll('#rows tr').length")).toBe(0);
    const seen: string[] = [];
    for (const step of BOOT_STEPS) {
      await sim.step(0, step);
      const want = LAST[step];
      seen.push(await page.waitFor<string>(`(${lastCell(mac)}) === '${want}' && '${want}'`, 5_000, `row at ${want}`));
    }
    expect(seen).toEqual(BOOT_STEPS.map((s) => LAST[s]));
    // The bar holds one segment per milestone of the boot, in order.
    const segments = await page.evaluate<string[]>(
      `[...document.querySelectorAll('tr[data-mac="${mac}"] .bar i')].map((i) => i.dataset.milestone)`,
    );
    expect(segments).toEqual([
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
    expect(page.errors).toEqual([]);
  }, 60_000);

  it('keeps every host of a 100-host storm, highlights stuck ones with their reason, and is screenshotted', async () => {
    // Hosts 1…99 stop at every step of the chain, ten at a time.
    const rest = Array.from({ length: HOSTS - 1 }, (_, k) => k + 1);
    const lastStep = (i: number): BootStep => BOOT_STEPS[i % BOOT_STEPS.length]!;
    for (let k = 0; k < rest.length; k += 10)
      await Promise.all(rest.slice(k, k + 10).map((i) => sim.boot(i, lastStep(i))));
    await page.waitFor(`document.querySelectorAll('#rows tr').length === ${HOSTS}`, 10_000, 'a row per host');
    // Hosts idle for 5 s count as stuck from here on; each gets /debug/explain's reason.
    await page.evaluate(
      "(() => { const i = document.getElementById('stuck-after'); i.value = '5'; i.dispatchEvent(new Event('input')); })()",
    );
    const reason = await page.waitFor<string>(
      "[...document.querySelectorAll('tr.stuck .reason')].map((r) => r.textContent).find((t) => t !== '…')",
      20_000,
      'a stuck host with its reason',
    );
    // A static host: Ironic's per-node config if it has one, else the inspector (script-choice.ts).
    expect(reason).toMatch(/^script ironic-or-inspector: /);
    // A few hosts keep booting, so the screenshot shows both.
    await Promise.all([1, 2, 3].map((i) => sim.step(i, lastStep(i) === 'heartbeat' ? 'heartbeat' : nextStep(i))));
    await page.waitFor("document.querySelectorAll('#rows tr:not(.stuck)').length >= 3", 10_000, 'hosts not stuck');
    await page.waitFor(
      "[...document.querySelectorAll('tr.stuck .reason')].every((r) => r.textContent !== '…')",
      20_000,
      'every stuck host with its reason',
    );
    const rates = await page.evaluate<string>("document.getElementById('rate-dhcp').textContent");
    expect(rates).toMatch(/\/s$/);
    const png = await page.screenshot();
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    mkdirSync(path.join(REPO, 'test-artifacts'), { recursive: true });
    writeFileSync(path.join(REPO, 'test-artifacts', 'ui-storm.png'), png);
    expect(page.errors).toEqual([]);
  }, 120_000);
});

const LAST: Readonly<Record<BootStep, string>> = {
  'firmware-dhcp': 'dhcp-ack',
  tftp: 'tftp-end',
  'ipxe-dhcp': 'ipxe-dhcp-ack',
  scripts: 'host-script',
  kernel: 'kernel',
  initramfs: 'initramfs',
  lookup: 'ipa-lookup',
  heartbeat: 'ipa-heartbeat',
};

function nextStep(i: number): BootStep {
  return BOOT_STEPS[(i % BOOT_STEPS.length) + 1]!;
}
