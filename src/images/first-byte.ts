/**
 * Waiting for a body's first byte before committing a response: until then a failure can still
 * become a clean 502/504; after it, only a destroyed connection can tell the client.
 */
import type { Readable } from 'node:stream';
import { MetalbootError } from '../base/errors.js';

/**
 * Resolves when a stream has its first chunk buffered (`data`) or has ended empty (`end`);
 * rejects if it fails first.
 */
export function untilReadable(stream: Readable): Promise<'data' | 'end'> {
  if (stream.readableLength > 0) return Promise.resolve('data');
  if (stream.readableEnded) return Promise.resolve('end');
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      stream.off('readable', onReadable);
      stream.off('end', onEnd);
      stream.off('error', onError);
      stream.off('close', onClose);
    };
    const onReadable = (): void => {
      if (stream.readableLength === 0 && !stream.readableEnded) return;
      cleanup();
      resolve(stream.readableLength > 0 ? 'data' : 'end');
    };
    const onEnd = (): void => {
      cleanup();
      resolve('end');
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const onClose = (): void => {
      cleanup();
      if (stream.readableEnded) resolve('end');
      else
        reject(stream.errored ?? new MetalbootError('IMAGE_CACHE_ERR_CLOSED', 'stream closed before its first byte'));
    };
    stream.on('readable', onReadable);
    stream.on('end', onEnd);
    stream.on('error', onError);
    stream.on('close', onClose);
  });
}
