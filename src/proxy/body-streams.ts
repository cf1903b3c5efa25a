/**
 * Streams between the caller and the peer: a byte bound enforced while a body flows (the
 * inventory IPA posts can be megabytes; nothing buffers it whole), and a bounded read for the
 * small bodies the proxy rewrites.
 */
import type { IncomingMessage } from 'node:http';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { MetalbootError } from '../base/errors.js';

function tooLarge(max: number): MetalbootError {
  return new MetalbootError('PROXY_ERR_BODY_TOO_LARGE', `the body exceeds ${max} bytes`);
}

/** Passes bytes through until more than `max` have gone by, then fails with PROXY_ERR_BODY_TOO_LARGE. */
export class ByteLimit extends Transform {
  #seen = 0;

  constructor(readonly max: number) {
    super();
  }

  get bytes(): number {
    return this.#seen;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#seen += chunk.length;
    if (this.#seen > this.max) cb(tooLarge(this.max));
    else cb(null, chunk);
  }
}

/**
 * Reads a whole stream of at most `max` bytes; rejects with PROXY_ERR_BODY_TOO_LARGE past it,
 * leaving the stream paused (not destroyed: the caller still answers on its connection).
 */
export function readBounded(stream: Readable, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let seen = 0;
    const cleanup = (): void => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onError);
    };
    const onData = (chunk: Buffer): void => {
      seen += chunk.length;
      if (seen > max) {
        cleanup();
        stream.pause();
        reject(tooLarge(max));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(Buffer.concat(chunks));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('error', onError);
  });
}

/**
 * A caller's request body through a ByteLimit. Not a pipeline(): when the limit trips, the
 * caller's stream is unpiped and paused rather than destroyed, so a 413 can still be answered
 * on its connection (which then closes). A caller that goes away mid-body fails the limit
 * stream (ABORT_ERR), and with it the forward.
 */
export function limitedRequestBody(raw: IncomingMessage, max: number): ByteLimit {
  const limit = new ByteLimit(max);
  raw.pipe(limit);
  limit.on('error', () => {
    raw.unpipe(limit);
    raw.pause();
  });
  raw.on('close', () => {
    if (!raw.complete) limit.destroy(Object.assign(new Error('the caller went away mid-body'), { code: 'ABORT_ERR' }));
  });
  return limit;
}
