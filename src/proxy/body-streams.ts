/**
 * Streams between the caller and the peer: a byte bound enforced while a body flows (the
 * inventory IPA posts can be megabytes; nothing buffers it whole), and a bounded read for the
 * small bodies the proxy rewrites, within a budget per listener and a time bound.
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
 * The bytes of the bodies one listener holds in memory at once: heartbeats and Ironic's answers
 * the API proxy reads whole to rewrite them. A body that would take it past `max` is refused
 * instead of read, so memory stays bounded however many callers send at once.
 */
export class BodyBudget {
  #used = 0;
  #peak = 0;

  constructor(readonly max: number) {
    if (!Number.isSafeInteger(max) || max <= 0)
      throw new MetalbootError('PROXY_ERR_BAD_OPTIONS', 'the body budget must be a positive integer');
  }

  /** Bytes held now. */
  get used(): number {
    return this.#used;
  }

  /** The most ever held at once. */
  get peak(): number {
    return this.#peak;
  }

  /**
   * A share for one body: it takes bytes as they arrive and gives them all back at release(),
   * after which it takes no more.
   */
  share(): BudgetShare {
    let taken = 0;
    let released = false;
    return {
      take: (n) => {
        if (released || this.#used + n > this.max) return false;
        this.#used += n;
        taken += n;
        if (this.#used > this.#peak) this.#peak = this.#used;
        return true;
      },
      release: () => {
        released = true;
        this.#used -= taken;
        taken = 0;
      },
    };
  }
}

export interface BudgetShare {
  /** Takes `n` more bytes if they fit in the budget. */
  take(n: number): boolean;
  /** Gives back every byte taken and takes no more; again is a no-op. */
  release(): void;
}

export interface ReadBoundedOptions {
  /** Every chunk is taken from this share first; PROXY_ERR_BODY_BUDGET when it does not fit. */
  readonly share?: BudgetShare;
  /** The whole body must arrive within this (ms); PROXY_ERR_BODY_TIMEOUT otherwise. */
  readonly timeoutMs?: number;
}

/**
 * Reads a whole stream of at most `max` bytes; rejects with PROXY_ERR_BODY_TOO_LARGE past it,
 * PROXY_ERR_BODY_BUDGET when the budget has no room for the next chunk, PROXY_ERR_BODY_TIMEOUT
 * when it takes too long, leaving the stream paused (not destroyed: the caller still answers on
 * its connection).
 */
export function readBounded(stream: Readable, max: number, o: ReadBoundedOptions = {}): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let seen = 0;
    let timer: NodeJS.Timeout | undefined;
    const cleanup = (): void => {
      clearTimeout(timer);
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onError);
    };
    const fail = (err: Error): void => {
      cleanup();
      stream.pause();
      chunks.length = 0;
      reject(err);
    };
    const onData = (chunk: Buffer): void => {
      seen += chunk.length;
      if (seen > max) fail(tooLarge(max));
      else if (o.share !== undefined && !o.share.take(chunk.length))
        fail(new MetalbootError('PROXY_ERR_BODY_BUDGET', 'the bodies in memory are at their budget'));
      else chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(Buffer.concat(chunks));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    if (o.timeoutMs !== undefined)
      timer = setTimeout(
        () => fail(new MetalbootError('PROXY_ERR_BODY_TIMEOUT', `the body did not arrive within ${o.timeoutMs} ms`)),
        o.timeoutMs,
      );
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
