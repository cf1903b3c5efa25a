/**
 * An image worker: a process of its own (a `cluster` worker) running the image proxy on the
 * image port (--image-listen), which all the workers share. Streaming hundreds of kernels and
 * initramfs images is the heaviest work of a boot storm; in its own processes it cannot delay a
 * DHCP reply, a TFTP block or a script, and it gets as many cores as there are workers.
 *
 * Protocol with worker-service.ts (the main process), over the IPC channel:
 * - main → worker: `start` {data} once, first, when the worker said `ready`; `metrics` {id} (prom-client JSON of the worker's
 *   registry); `close`; `book` {reply} (book-ipc.ts).
 * - worker → main: `ready` once its code is loaded; `listening` {host, port} once, or `failed` {message, code}; `metrics`
 *   {id, metrics}; `served` {event} for every answered request (its client's address, path,
 *   status, bytes and time: the boot timelines' image milestones); `book` {call}; `closed`
 *   after a `close`.
 * The worker exits when the channel closes (the main process is gone).
 */
import { pino, type Level } from 'pino';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { RemoteBook, type BookCall, type BookReply } from './book-ipc.js';
import { buildImageApp } from './image-app.js';
import type { ImageProxyOptions, ImageServed } from './plugin.js';
import type { ListenAddress } from '../net/listen-address.js';

/** What the main process hands a worker: plain data only (structured clone). */
export interface ImageWorkerData {
  readonly listen: ListenAddress;
  readonly logLevel: Level | 'silent';
  readonly proxy: ImageWorkerProxyOptions;
  /** This worker's number, 1 to the worker count: the `worker` label of its own metrics. */
  readonly slot: number;
}

export type ImageWorkerProxyOptions = Omit<ImageProxyOptions, 'registry' | 'logger' | 'now' | 'onServed'>;

export type ToWorker =
  | { readonly kind: 'start'; readonly data: ImageWorkerData }
  | { readonly kind: 'metrics'; readonly id: number }
  | { readonly kind: 'close' }
  | { readonly kind: 'book'; readonly reply: BookReply };
export type FromWorker =
  | { readonly kind: 'ready' }
  | { readonly kind: 'listening'; readonly host: string; readonly port: number }
  | { readonly kind: 'failed'; readonly message: string; readonly code: string | undefined }
  | { readonly kind: 'metrics'; readonly id: number; readonly metrics: unknown }
  | { readonly kind: 'served'; readonly event: ImageServed }
  | { readonly kind: 'book'; readonly call: BookCall }
  | { readonly kind: 'closed' };

/** Sends `m` to the main process; `then` runs once it is written (before the channel is closed). */
const post = (m: FromWorker, then?: () => void): void => {
  process.send?.(m, undefined, {}, () => then?.());
};

async function run(data: ImageWorkerData): Promise<void> {
  const logger = pino({
    level: data.logLevel,
    base: { service: 'metalboot', thread: 'image-worker', worker: data.slot },
  });
  const registry = new Registry();
  // Each worker's own event-loop delay, heap, GC and RSS, beside the main process's metalboot_nodejs_*.
  collectDefaultMetrics({
    register: registry,
    prefix: 'metalboot_image_worker_',
    labels: { worker: String(data.slot) },
  });
  const book = data.proxy.cache === undefined ? undefined : new RemoteBook((call) => post({ kind: 'book', call }));
  process.on('message', (m: ToWorker) => {
    if (m.kind === 'book') book?.receive(m.reply);
  });
  let app: Awaited<ReturnType<typeof buildImageApp>>;
  try {
    app = await buildImageApp({
      logger,
      registry,
      imageProxy: {
        ...data.proxy,
        cache: data.proxy.cache === undefined ? undefined : { ...data.proxy.cache, book },
        onServed: (event) => post({ kind: 'served', event }),
      },
    });
    await app.listen({ host: data.listen.host, port: data.listen.port });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    post({ kind: 'failed', message: e.message, code: e.code }, () => process.disconnect?.());
    return;
  }
  const a = app.server.address();
  if (a === null || typeof a === 'string') throw new Error('image worker: no TCP address');
  post({ kind: 'listening', host: a.address, port: a.port });
  process.on('message', (m: ToWorker) => {
    if (m.kind === 'metrics') {
      void registry.getMetricsAsJSON().then((metrics) => post({ kind: 'metrics', id: m.id, metrics }));
    } else if (m.kind === 'close') {
      void app.close().finally(() => post({ kind: 'closed' }, () => process.disconnect?.()));
    }
  });
}

if (process.send !== undefined) {
  // Without the main process there is nobody to serve for: the channel's end is the worker's.
  process.once('disconnect', () => process.exit(0));
  process.once('message', (m: ToWorker) => {
    if (m.kind === 'start') void run(m.data);
  });
  // Messages sent before a listener is there are lost: the main process waits for this one.
  post({ kind: 'ready' });
}
