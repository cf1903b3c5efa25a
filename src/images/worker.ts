/**
 * The image worker: a worker thread running the image proxy (and its cache) on a port of its
 * own (--image-listen). Streaming hundreds of kernels and initramfs images is the heaviest work
 * of a boot storm; on its own event loop it cannot delay a DHCP reply, a TFTP block or a script.
 *
 * Protocol with worker-service.ts (the main thread), over parentPort:
 * - worker → main: `listening` {host, port} once, or `failed` {message, code}; `metrics`
 *   {id, metrics} answering a request; `served` {event} for every answered request (its
 *   client's address, path, status, bytes and time: the boot timelines' image milestones);
 *   `closed` after a `close`.
 * - main → worker: `metrics` {id} (prom-client JSON of the worker's registry), `close`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { pino, type Level } from 'pino';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { buildImageApp } from './image-app.js';
import type { ImageProxyOptions, ImageServed } from './plugin.js';
import type { ListenAddress } from '../net/listen-address.js';

/** What the main thread hands the worker: plain data only (structured clone). */
export interface ImageWorkerData {
  readonly listen: ListenAddress;
  readonly logLevel: Level | 'silent';
  readonly proxy: ImageWorkerProxyOptions;
}

export type ImageWorkerProxyOptions = Omit<ImageProxyOptions, 'registry' | 'logger' | 'now' | 'onServed'>;

export type ToWorker = { readonly kind: 'metrics'; readonly id: number } | { readonly kind: 'close' };
export type FromWorker =
  | { readonly kind: 'listening'; readonly host: string; readonly port: number }
  | { readonly kind: 'failed'; readonly message: string; readonly code: string | undefined }
  | { readonly kind: 'metrics'; readonly id: number; readonly metrics: unknown }
  | { readonly kind: 'served'; readonly event: ImageServed }
  | { readonly kind: 'closed' };

async function run(port: NonNullable<typeof parentPort>, data: ImageWorkerData): Promise<void> {
  const post = (m: FromWorker) => port.postMessage(m);
  const logger = pino({ level: data.logLevel, base: { service: 'metalboot', thread: 'image-worker' } });
  const registry = new Registry();
  // The worker's own event-loop delay, heap and GC, beside the main thread's metalboot_nodejs_*.
  collectDefaultMetrics({ register: registry, prefix: 'metalboot_image_worker_' });
  let app: Awaited<ReturnType<typeof buildImageApp>>;
  try {
    app = await buildImageApp({
      logger,
      registry,
      imageProxy: { ...data.proxy, onServed: (event) => post({ kind: 'served', event }) },
    });
    await app.listen({ host: data.listen.host, port: data.listen.port });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    post({ kind: 'failed', message: e.message, code: e.code });
    port.close();
    return;
  }
  const a = app.server.address();
  if (a === null || typeof a === 'string') throw new Error('image worker: no TCP address');
  post({ kind: 'listening', host: a.address, port: a.port });
  port.on('message', (m: ToWorker) => {
    if (m.kind === 'metrics') {
      void registry.getMetricsAsJSON().then((metrics) => post({ kind: 'metrics', id: m.id, metrics }));
    } else if (m.kind === 'close') {
      void app.close().finally(() => {
        post({ kind: 'closed' });
        port.close();
      });
    }
  });
}

if (parentPort !== null) void run(parentPort, workerData as ImageWorkerData);
