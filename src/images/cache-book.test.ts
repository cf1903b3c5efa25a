/** The cache book's bookkeeping: tickets, waiters, fills and a worker that goes away. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { CacheBook, type FillEvent } from './cache-book.js';
import type { EntryMeta } from './cache-entry.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function openBook(now = () => 1_000): Promise<CacheBook> {
  const dir = mkdtempSync(path.join(tmpdir(), 'metalboot-cache-book-'));
  dirs.push(dir);
  const book = new CacheBook({
    dir,
    maxBytes: 10_000,
    revalidateAfterMs: 60_000,
    logger: pino({ level: 'silent' }),
    now,
  });
  await book.open();
  return book;
}

const meta = (size: number): EntryMeta => ({
  key: '/images/k',
  size,
  etag: undefined,
  lastModified: undefined,
  contentType: undefined,
  storedAt: 1_000,
});
const GET = { head: false, partial: false };
const WORKER_A = 1;
const WORKER_B = 2;

describe('CacheBook', () => {
  it('gives the first request a ticket and its waiters what came of it', async () => {
    const book = await openBook();
    const first = await book.claim('/images/k', GET, WORKER_A);
    expect(first.kind).toBe('ask');
    if (first.kind !== 'ask') return;
    const waiting = book.claim('/images/k', GET, WORKER_B);
    book.settle(first.ticket, { kind: 'relay' });
    expect(await waiting).toEqual({ kind: 'relay' });
    // Nothing stored and nothing under way: the next request asks again.
    expect((await book.claim('/images/k', GET, WORKER_B)).kind).toBe('ask');
  });

  it('turns a ticket into a fill that waiters follow, and the fill into an entry', async () => {
    const book = await openBook();
    const first = await book.claim('/images/k', GET, WORKER_A);
    if (first.kind !== 'ask') throw new Error(first.kind);
    const waiting = book.claim('/images/k', GET, WORKER_B);
    const id = await book.startFill(first.ticket, meta(100), 20);
    expect(id).toBeDefined();
    expect(book.fillsRunning).toBe(1);
    book.filling(first.ticket, id!);
    const followed = await waiting;
    expect(followed).toMatchObject({ kind: 'fill', fill: { id, written: 0, headerLength: 20 } });
    const events: FillEvent[] = [];
    expect(book.watch(id!, (e) => events.push(e))).toBe(true);
    book.progress(id!, 60);
    book.filled(id!, 'file-1', undefined);
    expect(events).toEqual([
      { kind: 'progress', id, written: 60 },
      { kind: 'end', id, written: 100, stored: true, error: undefined },
    ]);
    expect(book.fillsRunning).toBe(0);
    expect(book.bytes).toBe(120);
    expect(await book.claim('/images/k', GET, WORKER_B)).toMatchObject({
      kind: 'entry',
      result: 'hit',
      entry: { file: 'file-1' },
    });
    // The fill is over: nobody can start following it now.
    expect(book.watch(id!, () => {})).toBe(false);
  });

  it('fails the tickets and fills of a worker that went away, so that nobody waits for it', async () => {
    const book = await openBook();
    const asking = await book.claim('/images/k', GET, WORKER_A);
    if (asking.kind !== 'ask') throw new Error(asking.kind);
    const waiting = book.claim('/images/k', GET, WORKER_B);
    book.abandon(WORKER_A);
    expect(await waiting).toMatchObject({ kind: 'failed', error: { code: 'IMAGE_CACHE_ERR_CLOSED' } });

    const again = await book.claim('/images/k', GET, WORKER_A);
    if (again.kind !== 'ask') throw new Error(again.kind);
    const id = (await book.startFill(again.ticket, meta(100), 20))!;
    book.filling(again.ticket, id);
    const events: FillEvent[] = [];
    book.watch(id, (e) => events.push(e));
    book.abandon(WORKER_A);
    expect(events).toEqual([
      {
        kind: 'end',
        id,
        written: 0,
        stored: false,
        error: expect.objectContaining({ code: 'IMAGE_CACHE_ERR_CLOSED' }),
      },
    ]);
    // Its reservation is given back and the key is free for a new download.
    expect(book.fillsRunning).toBe(0);
    expect((await book.claim('/images/k', GET, WORKER_B)).kind).toBe('ask');
  });

  it('relays a HEAD or a partial request for what it does not hold, without a ticket', async () => {
    const book = await openBook();
    expect(await book.claim('/images/k', { head: true, partial: false })).toEqual({ kind: 'relay' });
    expect(await book.claim('/images/k', { head: false, partial: true })).toEqual({ kind: 'relay' });
  });

  it('refuses a fill larger than the cache', async () => {
    const book = await openBook();
    const first = await book.claim('/images/k', GET);
    if (first.kind !== 'ask') throw new Error(first.kind);
    expect(await book.startFill(first.ticket, meta(20_000), 20)).toBeUndefined();
  });
});
