import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { cutStalledClient } from './client-idle.js';

/** Just what cutStalledClient uses of a response: whether it waits for drain, destroy and close. */
class FakeResponse extends EventEmitter {
  writableNeedDrain = false;
  writableFinished = false;
  destroyed = false;
  destroy(): void {
    this.destroyed = true;
    this.emit('close');
  }
}

function watch(idleMs: number) {
  const response = new FakeResponse();
  const body = new PassThrough();
  body.on('data', () => {}); // flowing, as when piped
  const stalls: number[] = [];
  cutStalledClient(response as unknown as ServerResponse, body, idleMs, () => stalls.push(Date.now()), Date.now);
  return { response, body, stalls };
}

describe('cutStalledClient', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('cuts both sides once the client has taken nothing for the idle time', () => {
    const w = watch(1000);
    w.response.writableNeedDrain = true;
    vi.advanceTimersByTime(999);
    expect(w.stalls).toHaveLength(0);
    vi.advanceTimersByTime(1);
    expect(w.stalls).toHaveLength(1);
    expect([w.body.destroyed, w.response.destroyed]).toEqual([true, true]);
  });

  it('counts from the last chunk the client took', () => {
    const w = watch(1000);
    w.response.writableNeedDrain = true;
    vi.advanceTimersByTime(600);
    w.body.write('x');
    vi.advanceTimersByTime(600);
    expect(w.stalls).toHaveLength(0);
    vi.advanceTimersByTime(400);
    expect(w.stalls).toHaveLength(1);
  });

  it('leaves a body alone that is waiting for its source while the client could take more', () => {
    const w = watch(1000);
    vi.advanceTimersByTime(5000);
    expect([w.stalls.length, w.body.destroyed]).toEqual([0, false]);
    w.response.writableNeedDrain = true;
    vi.advanceTimersByTime(1000);
    expect(w.stalls).toHaveLength(1);
  });

  it('stops watching when the response closes', () => {
    const w = watch(1000);
    w.response.writableNeedDrain = true;
    w.response.destroy();
    vi.advanceTimersByTime(5000);
    expect(w.stalls).toHaveLength(0);
    expect(vi.getTimerCount()).toBe(0);
  });
});
