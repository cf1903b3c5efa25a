import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { MetalbootError } from '../base/errors.js';
import { type CacheBody, EntryReader, FillReader, type GrowingFile, ReadStreams, readChunkFor } from './readers.js';

describe('readChunkFor', () => {
  it('reads 1 MiB at a time for a few clients and shrinks to 64 KiB in a storm', () => {
    expect(readChunkFor(1)).toBe(1024 * 1024);
    expect(readChunkFor(32)).toBe(1024 * 1024);
    expect(readChunkFor(33)).toBe(512 * 1024);
    expect(readChunkFor(100)).toBe(256 * 1024);
    expect(readChunkFor(500)).toBe(64 * 1024);
    expect(readChunkFor(100_000)).toBe(64 * 1024);
  });

  it('keeps the memory of all open streams near the budget', () => {
    for (const n of [1, 10, 50, 200, 512])
      expect(n * readChunkFor(n)).toBeLessThanOrEqual(Math.max(32 * 1024 * 1024, n * 64 * 1024));
  });
});

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A file of `header` bytes then `body`; returns its path. */
function entryFile(header: number, body: Buffer): string {
  const d = mkdtempSync(path.join(tmpdir(), 'metalboot-readers-'));
  dirs.push(d);
  const f = path.join(d, 'entry');
  writeFileSync(f, Buffer.concat([Buffer.alloc(header, 0xee), body]));
  return f;
}

/**
 * A response stand-in that behaves like a socket: it holds each chunk until it "sends" it a turn
 * later, and only then copies its bytes and calls back. A reader that reused a buffer before
 * the callback would show up as corrupted output.
 */
class SlowSink extends Writable {
  readonly parts: Buffer[] = [];
  maxPending = 0;
  #pending = 0;

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.#pending++;
    this.maxPending = Math.max(this.maxPending, this.#pending);
    setImmediate(() => {
      this.parts.push(Buffer.from(chunk));
      this.#pending--;
      cb();
    });
  }

  get bytes(): Buffer {
    return Buffer.concat(this.parts);
  }
}

const asResponse = (w: Writable): ServerResponse => w as unknown as ServerResponse;

async function writeAll(body: CacheBody, sink: SlowSink): Promise<void> {
  await body.firstChunk();
  const closed = new Promise((r) => body.once('close', r));
  const finished = new Promise((r) => sink.once('finish', r));
  body.writeTo(asResponse(sink));
  await Promise.all([closed, finished]);
}

/** A growing file in memory: `grow(n)` makes n more bytes readable, `fail()` fails it. */
function growingFile(data: Buffer): GrowingFile & { grow(n: number): void; fail(err: Error): void; released: number } {
  const waiters = new Set<() => void>();
  const wake = (): void => {
    const fns = [...waiters];
    waiters.clear();
    for (const fn of fns) fn();
  };
  const f = {
    written: 0,
    state: 'filling' as GrowingFile['state'],
    error: undefined as Error | undefined,
    released: 0,
    async read(buf: Buffer, length: number, position: number): Promise<number> {
      return data.copy(buf, 0, position, Math.min(position + length, f.written));
    },
    wait: (fn: () => void) => void waiters.add(fn),
    unwait: (fn: () => void) => void waiters.delete(fn),
    async release() {
      f.released++;
    },
    grow(n: number) {
      f.written = Math.min(data.length, f.written + n);
      if (f.written === data.length) f.state = 'complete';
      wake();
    },
    fail(err: Error) {
      f.state = 'failed';
      f.error = err;
      wake();
    },
  };
  return f;
}

describe('EntryReader written into a response', () => {
  it.each([
    { name: 'the whole body', start: 0, end: 3 * 1024 * 1024 + 17 - 1 },
    { name: 'a range inside one chunk', start: 1000, end: 5000 },
    { name: 'a range across chunks', start: 512 * 1024, end: 2 * 1024 * 1024 + 3 },
    { name: 'one byte', start: 7, end: 7 },
  ])('sends $name, reusing its buffers only once the sink is done with them', async ({ start, end }) => {
    const body = randomBytes(3 * 1024 * 1024 + 17);
    const header = 100;
    const handle = await open(entryFile(header, body), 'r');
    const reads = new ReadStreams();
    const reader = new EntryReader(handle, reads, header + start, header + end);
    let counted = 0;
    reader.on('data', (c: Buffer) => (counted += c.length));
    const sink = new SlowSink();
    await writeAll(reader, sink);
    expect(sink.bytes.equals(body.subarray(start, end + 1))).toBe(true);
    expect(counted).toBe(end + 1 - start);
    expect(sink.maxPending).toBeLessThanOrEqual(2);
    expect(reads.pooled).toBeGreaterThan(0);
    expect(handle.fd).toBe(-1); // closed
  });

  it('stops reading and closes the file when the response goes away', async () => {
    const body = randomBytes(4 * 1024 * 1024);
    const handle = await open(entryFile(0, body), 'r');
    const reader = new EntryReader(handle, new ReadStreams(), 0, body.length - 1);
    const sink = new SlowSink();
    await reader.firstChunk();
    const closed = new Promise((r) => reader.once('close', r));
    reader.writeTo(asResponse(sink));
    sink.destroy();
    await closed;
    expect(handle.fd).toBe(-1);
    expect(sink.bytes.length).toBeLessThan(body.length);
  });

  it('fails, and destroys the response, when the file is shorter than promised', async () => {
    const body = randomBytes(1000);
    const handle = await open(entryFile(0, body), 'r');
    const reader = new EntryReader(handle, new ReadStreams(), 0, 1999);
    const sink = new SlowSink();
    await reader.firstChunk();
    const failed = new Promise<Error>((r) => reader.once('error', r));
    reader.writeTo(asResponse(sink));
    expect((await failed) as MetalbootError).toMatchObject({ code: 'IMAGE_CACHE_ERR_LENGTH_MISMATCH' });
    await new Promise((r) => setImmediate(r));
    expect(sink.destroyed).toBe(true);
  });

  it('still reads as a Readable', async () => {
    const body = randomBytes(2 * 1024 * 1024 + 5);
    const handle = await open(entryFile(10, body), 'r');
    const reader = new EntryReader(handle, new ReadStreams(), 10 + 3, 10 + body.length - 1);
    const parts: Buffer[] = [];
    for await (const c of reader) parts.push(c as Buffer);
    expect(Buffer.concat(parts).equals(body.subarray(3))).toBe(true);
  });
});

describe('FillReader written into a response', () => {
  it('follows the file as it grows, to its end', async () => {
    const data = randomBytes(300_000);
    const fill = growingFile(data);
    const reader = new FillReader(fill, new ReadStreams(), 0, data.length - 1);
    const first = reader.firstChunk();
    fill.grow(1000);
    await first;
    const sink = new SlowSink();
    const done = new Promise((r) => sink.once('finish', r));
    reader.writeTo(asResponse(sink));
    for (let i = 0; i < 10; i++) {
      await new Promise((r) => setImmediate(r));
      fill.grow(50_000);
    }
    await done;
    expect(sink.bytes.equals(data)).toBe(true);
    await new Promise((r) => setImmediate(r));
    expect(fill.released).toBe(1);
  });

  it('rejects firstChunk when the fill fails before its first byte', async () => {
    const fill = growingFile(randomBytes(10));
    const reader = new FillReader(fill, new ReadStreams(), 0, 9);
    const first = reader.firstChunk();
    fill.fail(new MetalbootError('IMAGE_CACHE_ERR_CLOSED', 'upstream died'));
    await expect(first).rejects.toMatchObject({ code: 'IMAGE_CACHE_ERR_CLOSED' });
  });

  it('cuts the response when the fill fails midway', async () => {
    const data = randomBytes(100_000);
    const fill = growingFile(data);
    const reader = new FillReader(fill, new ReadStreams(), 0, data.length - 1);
    const first = reader.firstChunk();
    fill.grow(10_000);
    await first;
    const sink = new SlowSink();
    const failed = new Promise<Error>((r) => reader.once('error', r));
    reader.writeTo(asResponse(sink));
    await new Promise((r) => setImmediate(r));
    fill.fail(new MetalbootError('IMAGE_CACHE_ERR_CLOSED', 'upstream died'));
    expect(await failed).toMatchObject({ code: 'IMAGE_CACHE_ERR_CLOSED' });
    await new Promise((r) => setImmediate(r));
    expect(sink.destroyed).toBe(true);
    expect(sink.bytes.equals(data.subarray(0, sink.bytes.length))).toBe(true);
  });
});
