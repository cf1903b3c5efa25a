/** The images wing: the image proxy to Ironic's httpd, in worker processes of its own with --image-listen. */
import type { Config } from '../config/load.js';
import type { Service } from '../base/service.js';
import { IMAGE_PROXY_CONNECTIONS, type ImageProxyOptions, type ImageServed } from '../images/plugin.js';
import { ImageServer } from '../images/worker-service.js';
import type { Wiring } from './deps.js';

export interface ImagesWing {
  readonly services: readonly Service[];
  /** The proxy's options; undefined without --ironic-http-url. */
  readonly proxy: Omit<ImageProxyOptions, 'registry' | 'logger'> | undefined;
  /** The worker running it; undefined when the HTTP app runs it in-process. */
  readonly worker: ImageServer | undefined;
}

/** `onServed`: told of every request the proxy answered, in the worker or not (the boot timelines). */
export function imagesWing(config: Config, w: Wiring, onServed: (e: ImageServed) => void): ImagesWing {
  const h = config.http;
  if (config.proxy.ironicHttpUrl === undefined) return { services: [], proxy: undefined, worker: undefined };
  const proxy = {
    upstream: config.proxy.ironicHttpUrl,
    cache: h.imageCacheDir === undefined ? undefined : { dir: h.imageCacheDir, maxBytes: h.imageCacheMaxBytes },
  };
  if (h.imageListen === undefined) return { services: [], proxy: { ...proxy, onServed }, worker: undefined };
  const workers = h.imageWorkers;
  // The upstream connection limits are the proxy's in all: each worker takes its share.
  const connections = Math.max(1, Math.floor(IMAGE_PROXY_CONNECTIONS / workers));
  const worker = new ImageServer({
    listen: h.imageListen,
    proxy: { ...proxy, connections },
    workers,
    logger: w.logger,
    registry: w.registry,
    onServed,
  });
  return { services: [worker], proxy, worker };
}
