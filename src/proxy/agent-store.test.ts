import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentStore, formatAgentRecord, MAX_MACS_PER_NODE, mergeMacs, parseAgentRecord } from './agent-store.js';
import { agentIdOf } from './callback-url.js';

const logger = pino({ level: 'silent' });
const dirs: string[] = [];
const tmp = (): string => {
  const d = mkdtempSync(path.join(tmpdir(), 'metalboot-agents-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const store = (stateDir: string | undefined, over: { now?: () => number; pendingWaitMs?: number } = {}): AgentStore =>
  new AgentStore({ stateDir, logger, registry: new Registry(), ...over });
const NODE = '1be26c0b-03f2-4d2e-ae87-c02d7f33c123';
const A10 = agentIdOf('https://192.0.2.10:9999', 'PEM');
const A10_PLAIN = agentIdOf('https://192.0.2.10:9999', undefined);
const A11 = agentIdOf('http://192.0.2.11:9999', undefined);

describe('agent records', () => {
  it('round-trip through the file format', () => {
    const r = {
      node: NODE,
      agentUrl: 'https://192.0.2.10:9999',
      agentCaPem: 'PEM',
      agentId: A10,
      macs: ['52:54:00:00:00:01'],
      updatedAt: 5,
    };
    expect(parseAgentRecord(formatAgentRecord(r))).toEqual(r);
    expect(formatAgentRecord(r)).not.toContain(A10);
    expect(parseAgentRecord(formatAgentRecord({ ...r, agentCaPem: undefined, agentId: A10_PLAIN }))).toEqual({
      ...r,
      agentCaPem: undefined,
      agentId: A10_PLAIN,
    });
  });

  it.each([
    ['not json', '{'],
    ['another version', JSON.stringify({ version: 2, node: NODE, agentUrl: 'x' })],
    ['a hostile node name', JSON.stringify({ version: 1, node: '../x', agentUrl: 'x' })],
    ['a numeric CA', JSON.stringify({ version: 1, node: NODE, agentUrl: 'x', agentCaPem: 1 })],
  ])('refuse %s', (_n, text) => {
    expect(parseAgentRecord(text)).toBeUndefined();
  });
});

describe('AgentStore', () => {
  it('records only committed heartbeats', async () => {
    const s = store(undefined);
    await s.start();
    const hb = s.beginHeartbeat(NODE);
    hb.abort();
    expect(await s.resolve(NODE, A10)).toBeUndefined();
    await s.beginHeartbeat(NODE).commit({ url: 'https://192.0.2.10:9999', caPem: 'PEM' });
    expect(await s.resolve(NODE, A10)).toMatchObject({ agentUrl: 'https://192.0.2.10:9999', agentCaPem: 'PEM' });
  });

  it('resolves only the agent a callback URL names', async () => {
    const s = store(undefined);
    await s.beginHeartbeat(NODE).commit({ url: 'https://192.0.2.10:9999', caPem: 'PEM' });
    expect(await s.resolve(NODE, A10_PLAIN)).toBeUndefined();
    expect(await s.resolve(NODE, A11)).toBeUndefined();
    // Ironic let go of the old agent and accepted a new one: the old URL no longer leads anywhere.
    await s.beginHeartbeat(NODE).commit({ url: 'http://192.0.2.11:9999', caPem: undefined });
    expect(await s.resolve(NODE, A10)).toBeUndefined();
    expect((await s.resolve(NODE, A11))?.agentUrl).toBe('http://192.0.2.11:9999');
  });

  it('makes a callback wait for a pending heartbeat of its node', async () => {
    const s = store(undefined);
    const hb = s.beginHeartbeat(NODE);
    const resolved = s.resolve(NODE, A10_PLAIN);
    await new Promise((r) => setTimeout(r, 20));
    await hb.commit({ url: 'https://192.0.2.10:9999', caPem: undefined });
    expect((await resolved)?.agentUrl).toBe('https://192.0.2.10:9999');
  });

  it('stops waiting for a pending heartbeat after the bound', async () => {
    const s = store(undefined, { pendingWaitMs: 30 });
    s.beginHeartbeat(NODE);
    expect(await s.resolve(NODE, A10)).toBeUndefined();
  });

  it('persists records, survives a restart and keeps updatedAt when nothing changed', async () => {
    const dir = tmp();
    let t = 1000;
    const a = store(dir, { now: () => t });
    await a.start();
    await a.learnMacs(NODE, ['52:54:00:00:00:01']);
    await a.beginHeartbeat(NODE).commit({ url: 'https://192.0.2.10:9999', caPem: 'PEM' });
    t = 2000;
    await a.beginHeartbeat(NODE).commit({ url: 'https://192.0.2.10:9999', caPem: 'PEM' });
    await a.close();
    expect(readdirSync(path.join(dir, 'agents'))).toEqual([`node-${NODE}.json`]);

    const b = store(dir);
    await b.start();
    expect(b.get(NODE)).toEqual({
      node: NODE,
      agentUrl: 'https://192.0.2.10:9999',
      agentCaPem: 'PEM',
      agentId: A10,
      macs: ['52:54:00:00:00:01'],
      updatedAt: 1000,
    });
    expect(b.nodeForMac('52:54:00:00:00:01')).toBe(NODE);
    expect(b.explain('52:54:00:00:00:01', (n, a) => `https://cb/nodes/${n}/${a}`)).toMatchObject({
      ironicAgent: {
        node: NODE,
        callbackUrl: `https://cb/nodes/${NODE}/${A10}`,
        agentUrl: 'https://192.0.2.10:9999',
        agentCertificatePinned: true,
        persisted: true,
      },
    });
    expect(b.explain('52:54:00:00:00:99', undefined)).toBeUndefined();
  });

  it('finds a record another replica wrote to the shared directory', async () => {
    const dir = tmp();
    const a = store(dir);
    const b = store(dir);
    await a.start();
    await b.start();
    await a.beginHeartbeat(NODE).commit({ url: 'http://192.0.2.11:9999', caPem: undefined });
    expect(b.get(NODE)).toBeUndefined();
    expect((await b.resolve(NODE, A11))?.agentUrl).toBe('http://192.0.2.11:9999');
    // b remembers that agent; when a replaces it, b finds the new one on disk too.
    await a.beginHeartbeat(NODE).commit({ url: 'https://192.0.2.10:9999', caPem: 'PEM' });
    expect((await b.resolve(NODE, A10))?.agentUrl).toBe('https://192.0.2.10:9999');
    expect(await b.resolve(NODE, A11)).toBeUndefined();
  });

  it('skips malformed files at start', async () => {
    const dir = tmp();
    const a = store(dir);
    await a.start();
    writeFileSync(path.join(dir, 'agents', 'node-bad.json'), '{');
    const b = store(dir);
    await b.start();
    expect(b.get('bad')).toBeUndefined();
  });

  const mac = (i: number): string =>
    `52:54:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;

  it('keeps at most MAX_MACS_PER_NODE MACs per node, forgetting the first confirmed first', async () => {
    const dir = tmp();
    const a = store(dir);
    await a.start();
    await a.beginHeartbeat(NODE).commit({ url: 'http://192.0.2.11:9999', caPem: undefined });
    for (let i = 0; i < 100; i++) await a.learnMacs(NODE, [mac(i)]);
    const want = Array.from({ length: MAX_MACS_PER_NODE }, (_, i) => mac(100 - MAX_MACS_PER_NODE + i));
    expect(a.get(NODE)?.macs).toEqual(want);
    expect(a.nodeForMac(mac(0))).toBeUndefined();
    expect(a.nodeForMac(mac(99))).toBe(NODE);
    expect(JSON.parse(readFileSync(path.join(dir, 'agents', `node-${NODE}.json`), 'utf8')).macs).toEqual(want);
  });

  it('writes the node file only when its MACs changed', async () => {
    const dir = tmp();
    const a = store(dir);
    await a.start();
    await a.learnMacs(NODE, [mac(1)]);
    await a.beginHeartbeat(NODE).commit({ url: 'http://192.0.2.11:9999', caPem: undefined });
    const file = path.join(dir, 'agents', `node-${NODE}.json`);
    const first = statSync(file).ino;
    for (let i = 0; i < 50; i++) await a.learnMacs(NODE, [mac(1)]);
    await a.beginHeartbeat(NODE).commit({ url: 'http://192.0.2.11:9999', caPem: undefined });
    expect(statSync(file).ino).toBe(first);
    await a.learnMacs(NODE, [mac(2)]);
    expect(statSync(file).ino).not.toBe(first);
    expect(a.get(NODE)?.macs).toEqual([mac(1), mac(2)]);
  });

  it('bounds the MACs of a file written before lookups were confirmed', () => {
    const macs = Array.from({ length: 1000 }, (_, i) => mac(i));
    const r = parseAgentRecord(JSON.stringify({ version: 1, node: NODE, agentUrl: 'x', macs: [...macs, 'junk'] }));
    expect(r?.macs).toEqual(macs.slice(-MAX_MACS_PER_NODE));
  });

  it('merges MACs, telling an unchanged list by identity', () => {
    const known = ['52:54:00:00:00:01'];
    expect(mergeMacs(known, ['52:54:00:00:00:01'])).toBe(known);
    expect(mergeMacs(known, ['52:54:00:00:00:02', '52:54:00:00:00:01'])).toEqual([
      '52:54:00:00:00:02',
      '52:54:00:00:00:01',
    ]);
    expect(mergeMacs(['a', 'b', 'c'], ['d'], 3)).toEqual(['b', 'c', 'd']);
  });

  it('writes files readable only by the owner', async () => {
    const dir = tmp();
    const a = store(dir);
    await a.start();
    await a.beginHeartbeat(NODE).commit({ url: 'http://192.0.2.11:9999', caPem: undefined });
    const text = readFileSync(path.join(dir, 'agents', `node-${NODE}.json`), 'utf8');
    expect(JSON.parse(text)).toMatchObject({ version: 1, node: NODE });
  });
});
