import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  cleanupStaleLabs,
  createLab,
  LabError,
  listNamespaces,
  requireRoot,
  requireTools,
  tsharkFields,
  udpPackets,
  type Lab,
} from '../../lab/netns.js';

// A prefix of our own, so these tests never touch labs of other test files.
const PREFIX = 'mbt-';
const NETNS_TS = fileURLToPath(new URL('../../lab/netns.ts', import.meta.url));

const rootLinks = (): string[] =>
  spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8', timeout: 5_000 })
    .stdout.split('\n')
    .map((l) => l.split(':')[1]?.trim() ?? '')
    .filter((n) => n !== '')
    .sort();

const labNamespaces = (): string[] => listNamespaces().filter((n) => n.startsWith(PREFIX));

/** True while `pid` exists and is not a zombie (an orphan waits a moment for init to reap it). */
const alive = (pid: number): boolean => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
};

/** Runs a node script in the root namespace (it only creates namespaces), bounded in time. */
function runNode(
  script: string,
  opts: { timeoutMs: number; onLine?: (line: string, child: ReturnType<typeof spawn>) => void },
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      for (const line of d.toString().split('\n')) if (line.trim() !== '') opts.onLine?.(line, child);
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

describe('netns lab', () => {
  let scratch: string;
  const labs: Lab[] = [];
  const newLab = async (): Promise<Lab> => {
    const lab = await createLab({ prefix: PREFIX });
    labs.push(lab);
    return lab;
  };

  beforeAll(async () => {
    requireRoot();
    requireTools('ip', 'sysctl', 'busybox', 'tcpdump', 'tshark');
    scratch = mkdtempSync(path.join(tmpdir(), 'netns-lab-test-'));
    await cleanupStaleLabs(PREFIX);
  });

  afterEach(async () => {
    await Promise.all(labs.splice(0).map((l) => l.close()));
  });

  afterAll(() => {
    rmSync(scratch, { recursive: true, force: true });
  });

  it('lets two namespaces ping each other over the bridge', async () => {
    const lab = await newLab();
    await lab.addNamespace('a');
    await lab.addNamespace('b');
    const a = await lab.connect('a', { ip: '10.99.0.1/24', mac: '02:00:00:99:00:01' });
    const b = await lab.connect('b', { ip: '10.99.0.2/24' });

    expect(a).toMatchObject({ ns: 'a', ifname: 'eth0', mac: '02:00:00:99:00:01', bridge: 'br0' });
    const shown = await lab.exec('b', 'ip', ['-br', 'link', 'show', 'eth0'], { check: true });
    expect(shown.stdout).toContain(b.mac);

    const ab = await lab.exec('a', 'busybox', ['ping', '-c', '1', '-W', '3', '10.99.0.2'], { timeoutMs: 10_000 });
    expect(ab.code, ab.stdout + ab.stderr).toBe(0);
    const ba = await lab.exec('b', 'busybox', ['ping', '-c', '1', '-W', '3', '10.99.0.1'], { timeoutMs: 10_000 });
    expect(ba.code, ba.stdout + ba.stderr).toBe(0);
  });

  it('puts the bridge in the server namespace and gives a namespace a second network', async () => {
    const lab = await createLab({ prefix: PREFIX, switchNamespace: 'srv', bridgeIp: '10.99.5.1/24' });
    labs.push(lab);
    await lab.addBridge('br1', { ip: '10.99.6.1/24' });
    await lab.addNamespace('c');
    const first = await lab.connect('c', { ip: '10.99.5.2/24' });
    const second = await lab.connect('c', { ip: '10.99.6.2/24', bridge: 'br1' });

    expect([first.ifname, second.ifname]).toEqual(['eth0', 'eth1']);
    for (const target of ['10.99.5.1', '10.99.6.1']) {
      const r = await lab.exec('c', 'busybox', ['ping', '-c', '1', '-W', '3', target], { timeoutMs: 10_000 });
      expect(r.code, `${target}: ${r.stdout}${r.stderr}`).toBe(0);
    }
  });

  it('captures frames to a pcap that both the built-in parser and tshark read', async () => {
    const lab = await newLab();
    await lab.addNamespace('a');
    await lab.addNamespace('b');
    const a = await lab.connect('a', { ip: '10.99.1.1/24' });
    await lab.connect('b', { ip: '10.99.1.2/24' });

    const cap = await lab.capture('sw', 'br0', 'icmp or udp port 9999');
    await lab.exec('a', 'busybox', ['ping', '-c', '1', '-W', '3', '10.99.1.2'], { check: true });
    const { packets, pcapPath } = await cap.stop();

    expect(packets.find((p) => p.ipProtocol === 1 && p.srcIp === '10.99.1.1')).toMatchObject({
      srcMac: a.mac,
      dstIp: '10.99.1.2',
    });
    const icmp = await tsharkFields(pcapPath, ['ip.src', 'icmp.type'], { filter: 'icmp' });
    expect(icmp).toContainEqual({ 'ip.src': '10.99.1.1', 'icmp.type': '8' });
    expect(icmp).toContainEqual({ 'ip.src': '10.99.1.2', 'icmp.type': '0' });
    expect(await cap.stop()).toMatchObject({ pcapPath }); // idempotent
  });

  it('runs node scripts inside namespaces and sees their UDP traffic', async () => {
    const lab = await newLab();
    await lab.addNamespace('a');
    await lab.addNamespace('b');
    await lab.connect('a', { ip: '10.99.2.1/24' });
    await lab.connect('b', { ip: '10.99.2.2/24' });
    const server = path.join(lab.dir, 'echo-server.mjs');
    writeFileSync(
      server,
      `import dgram from 'node:dgram';
const s = dgram.createSocket('udp4');
s.on('message', (m, r) => s.send(Buffer.concat([Buffer.from('echo:'), m]), r.port, r.address));
s.bind(9999, process.env.BIND_IP, () => console.log('listening', s.address().address));
`,
    );
    const client = path.join(lab.dir, 'client.mjs');
    writeFileSync(
      client,
      `import dgram from 'node:dgram';
const s = dgram.createSocket('udp4');
const t = setTimeout(() => { console.error('no reply'); process.exit(2); }, 3000);
s.on('message', (m) => { console.log(m.toString()); clearTimeout(t); s.close(); });
s.send(process.argv[2], 9999, '10.99.2.2');
`,
    );

    const cap = await lab.capture('b', 'eth0', 'udp port 9999');
    const srv = lab.spawnNode('b', server, [], { BIND_IP: '10.99.2.2' });
    await lab.waitForOutput(srv, 'listening 10.99.2.2', 10_000);
    const cli = lab.spawnNode('a', client, ['hello']);
    await lab.waitForOutput(cli, 'echo:hello', 10_000);
    const seen = await cap.waitFor((p) => udpPackets(p, 9999).length >= 2, 5_000);
    expect(udpPackets(seen, 9999)).toHaveLength(2);
    const { packets } = await cap.stop();

    const udp = udpPackets(packets, 9999);
    expect(udp.map((p) => [p.srcIp, p.payload?.toString()])).toEqual([
      ['10.99.2.1', 'hello'],
      ['10.99.2.2', 'echo:hello'],
    ]);
  });

  it('bounds every exec in time', async () => {
    const lab = await newLab();
    const started = Date.now();
    const r = await lab.exec('sw', 'sleep', ['30'], { timeoutMs: 300 });
    expect(r).toMatchObject({ timedOut: true, code: null, signal: 'SIGKILL' });
    expect(Date.now() - started).toBeLessThan(5_000);
    await expect(lab.exec('sw', 'sleep', ['30'], { timeoutMs: 300, check: true })).rejects.toMatchObject({
      code: 'LAB_ERR_TIMEOUT',
    });
    await expect(lab.exec('sw', 'false', [], { check: true })).rejects.toMatchObject({
      code: 'LAB_ERR_COMMAND_FAILED',
    });
  });

  it('close() kills processes (and what they forked), removes namespaces and links, and is idempotent', async () => {
    const linksBefore = rootLinks();
    const lab = await createLab({ prefix: PREFIX });
    await lab.addNamespace('a');
    await lab.connect('a', { ip: '10.99.3.1/24' });
    await lab.addTap();
    const sleeper = lab.spawn('a', 'sleep', ['1000']);
    // A process that ignores SIGTERM and a grandchild the lab never saw.
    const stubborn = lab.spawn('a', 'sh', ['-c', 'trap "" TERM; sleep 1000 & echo $!; while :; do sleep 1; done']);
    const grandchild = Number((await lab.waitForOutput(stubborn, /^\d+$/m, 5_000)).match(/^(\d+)$/m)?.[1]);
    const names = lab.fullNamespaces;
    expect(names).toHaveLength(2);
    expect(listNamespaces()).toEqual(expect.arrayContaining(names));

    await lab.close();
    await lab.close();

    expect(listNamespaces().filter((n) => names.includes(n))).toEqual([]);
    expect(rootLinks()).toEqual(linksBefore);
    for (const pid of [sleeper.pid, stubborn.pid, grandchild]) expect(alive(pid ?? -1), `pid ${pid}`).toBe(false);
    expect(() => lab.exec('a', 'true')).toThrow(LabError);
  });

  it.each([
    ['process.exit() without close()', 'exit', null, 3],
    ['SIGTERM', 'signal', 'SIGTERM', null],
  ] as const)('the safety net removes an unclosed lab on %s', async (_, mode, signal, code) => {
    const script = path.join(scratch, `crash-${mode}.mts`);
    writeFileSync(
      script,
      `import { createLab } from ${JSON.stringify(NETNS_TS)};
const lab = await createLab({ prefix: ${JSON.stringify(PREFIX)} });
await lab.addNamespace('a');
await lab.connect('a', { ip: '10.99.4.1/24' });
lab.spawn('a', 'sleep', ['1000']);
console.log(JSON.stringify(lab.fullNamespaces));
if (${JSON.stringify(mode)} === 'exit') process.exit(3);
setTimeout(() => process.exit(4), 20_000);
`,
    );
    let names: string[] = [];
    const r = await runNode(script, {
      timeoutMs: 30_000,
      onLine: (line, child) => {
        if (!line.startsWith('[')) return;
        names = JSON.parse(line) as string[];
        if (mode === 'signal') child.kill('SIGTERM');
      },
    });
    expect(names, r.stderr).toHaveLength(2);
    expect({ code: r.code, signal: r.signal }).toEqual({ code, signal });
    expect(listNamespaces().filter((n) => names.includes(n))).toEqual([]);
  });

  it('cleanupStaleLabs() removes labs whose owner is gone and keeps live ones', async () => {
    const dead = spawnSync('true').pid;
    expect(alive(dead)).toBe(false);
    const stale = `${PREFIX}abcdef-${dead}-x`;
    spawnSync('ip', ['netns', 'add', stale], { timeout: 5_000 });
    const live = await newLab();

    const removed = await cleanupStaleLabs(PREFIX);

    expect(removed).toContain(stale);
    expect(labNamespaces()).not.toContain(stale);
    expect(labNamespaces()).toEqual(expect.arrayContaining(live.fullNamespaces));
  });
});
