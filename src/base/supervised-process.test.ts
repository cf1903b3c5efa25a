/**
 * SupervisedProcess with small sh programs: readiness from a stderr line, lines passed on whole,
 * start failures by kind, restart after a death, no restart after a permanent failure, close().
 * (DeviceFeed's tests in test/integration/device-feed.test.ts run it with the real socat.)
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type StartFailure, SupervisedProcess, type SupervisedProcessOptions } from './supervised-process.js';
import { processAlive as alive } from '../../test/support/process-alive.js';

let dir: string;
const open: SupervisedProcess[] = [];

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'metalboot-supervised-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((p) => p.close()));
});

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function script(name: string, body: string): string {
  const p = path.join(dir, name);
  writeFileSync(p, `#!/bin/sh\n${body}\n`);
  chmodSync(p, 0o755);
  return p;
}

interface Log {
  level: number;
  msg: string;
  [k: string]: unknown;
}

function supervised(o: Partial<SupervisedProcessOptions> & { command: string }) {
  const lines: string[] = [];
  const logs: Log[] = [];
  const failures: StartFailure[] = [];
  let up = false;
  const p = new SupervisedProcess({
    args: [],
    program: 'helper',
    logger: pino({ level: 'debug' }, { write: (s: string) => logs.push(JSON.parse(s) as Log) }),
    isReady: () => up,
    startError: (f) => {
      failures.push(f);
      return Object.assign(new Error(`helper failed: ${f.kind}`), { failure: f });
    },
    onStderrLine: (l) => {
      lines.push(l);
      if (l === 'up') up = true;
    },
    readyTimeoutMs: 2000,
    restartDelayMs: 50,
    ...o,
  });
  open.push(p);
  return { p, lines, logs, failures, reset: () => (up = false) };
}

describe('SupervisedProcess', () => {
  it('is ready when isReady says so, passes each stderr line on whole, and close() stops it', async () => {
    // Two lines in one write, one line in two writes: each arrives once and whole.
    const cmd = script('lines', `printf 'one\\ntw' >&2; sleep 0.05; printf 'o\\nup\\n' >&2; exec sleep 30`);
    const { p, lines } = supervised({ command: cmd });
    expect(p.state).toBe('stopped');
    await p.start();
    expect(p.state).toBe('running');
    expect(lines).toEqual(['one', 'two', 'up']);
    const pid = p.pid!;
    expect(alive(pid)).toBe(true);
    await p.close();
    expect(alive(pid)).toBe(false);
    expect(p.state).toBe('stopped');
  });

  it.each([
    [
      'a missing program',
      'spawn',
      () => path.join(dir, 'no-such-program'),
      (f: StartFailure) => f.spawnError?.code === 'ENOENT',
    ],
    [
      'a program that exits first',
      'exit',
      () => script('exits', `echo 'cannot do it' >&2; exit 3`),
      (f: StartFailure) => f.code === 3 && f.stderr === 'cannot do it',
    ],
    [
      'a program never ready',
      'timeout',
      () => script('silent', 'exec sleep 30'),
      (f: StartFailure) => f.readyTimeoutMs === 200,
    ],
  ])('start() rejects for %s with startError(kind %s)', async (_name, kind, command, check) => {
    const { p, failures } = supervised({ command: command(), readyTimeoutMs: 200 });
    await expect(p.start()).rejects.toThrow(`helper failed: ${kind}`);
    expect(failures).toHaveLength(1);
    expect(failures[0]!.kind).toBe(kind);
    expect(check(failures[0]!)).toBe(true);
    expect(p.state).toBe('stopped');
    expect(p.pid).toBeUndefined();
  });

  it('restarts a program that died, with the exit logged at error, and tells onExit and onRestarted', async () => {
    const cmd = script('restartable', `echo up >&2; exec sleep 30`);
    const exits: unknown[] = [];
    const restarted: (number | undefined)[] = [];
    const { p, logs } = supervised({
      command: cmd,
      onExit: (e) => exits.push(e),
      onRestarted: (pid) => restarted.push(pid),
    });
    await p.start();
    const first = p.pid!;
    process.kill(first, 'SIGKILL');
    await until('restarted', () => restarted.length === 1);
    expect(exits).toEqual([{ code: null, signal: 'SIGKILL' }]);
    expect(logs.find((l) => l.msg === 'helper exited; restarting')).toMatchObject({
      level: 50,
      pid: first,
      signal: 'SIGKILL',
      restartInMs: 50,
    });
    expect(p.pid).not.toBe(first);
    expect(p.state).toBe('running');
    expect(p.restarts).toBe(1);
  });

  it('stops restarting after a permanent failure and tells onGiveUp', async () => {
    const flag = path.join(dir, 'permanent-flag');
    writeFileSync(flag, 'first');
    // The first run comes up; every later one fails the way a missing capability does.
    const cmd = script(
      'permanent',
      `if [ "$(cat '${flag}')" = first ]; then echo second > '${flag}'; echo up >&2; exec sleep 30; fi\necho 'Operation not permitted' >&2; exit 1`,
    );
    const gaveUp: Error[] = [];
    const { p, logs, reset } = supervised({
      command: cmd,
      isPermanent: (f) => f.stderr.includes('Operation not permitted'),
      onGiveUp: (e) => gaveUp.push(e),
    });
    await p.start();
    reset();
    process.kill(p.pid!, 'SIGKILL');
    await until('given up', () => gaveUp.length === 1);
    expect(p.gaveUp).toBe(true);
    expect(p.state).toBe('stopped');
    expect(logs.some((l) => l.msg === 'helper cannot run; not restarting')).toBe(true);
    await new Promise((r) => setTimeout(r, 200));
    expect(p.restarts).toBe(1);
  });

  it('retries a restart that fails for a passing reason, with the delay doubling', async () => {
    const flag = path.join(dir, 'passing-flag');
    writeFileSync(flag, '0');
    // Up, then two failed restarts, then up again.
    const cmd = script(
      'passing',
      `n=$(cat '${flag}'); echo $((n + 1)) > '${flag}'\nif [ "$n" = 1 ] || [ "$n" = 2 ]; then echo busy >&2; exit 1; fi\necho up >&2; exec sleep 30`,
    );
    const { p, logs, reset } = supervised({ command: cmd });
    await p.start();
    reset();
    process.kill(p.pid!, 'SIGKILL');
    await until('up again', () => p.restarts === 3 && p.state === 'running');
    const failed = logs.filter((l) => l.msg === 'helper restart failed');
    expect(failed.map((l) => l.restartInMs)).toEqual([100, 200]);
  });

  it('close() during the back-off cancels the restart', async () => {
    const cmd = script('backoff', `echo up >&2; exec sleep 30`);
    const { p } = supervised({ command: cmd, restartDelayMs: 10_000 });
    await p.start();
    process.kill(p.pid!, 'SIGKILL');
    await until('down', () => p.state === 'down');
    await p.close();
    expect(p.state).toBe('stopped');
    expect(p.restarts).toBe(0);
  });

  it('close() kills a program that ignores SIGTERM after stopTimeoutMs', async () => {
    const cmd = script('stubborn', `trap '' TERM; echo up >&2; while true; do sleep 0.05; done`);
    const { p, logs } = supervised({ command: cmd, stopTimeoutMs: 200 });
    await p.start();
    const pid = p.pid!;
    await p.close();
    expect(alive(pid)).toBe(false);
    expect(logs.some((l) => l.msg === 'helper did not stop in time; killing it')).toBe(true);
  });
});
