/**
 * The image server service (--image-listen): runs the image proxy in a worker thread
 * (worker.ts) and supervises it. The main event loop keeps DHCP, TFTP, scripts and the
 * API proxy; bytes of kernels and images are read, cached and written on the worker's loop.
 *
 * A worker that dies (a bug, out of memory) is logged and started again on the same port after
 * a back-off of 1 s doubling to 30 s; readiness reports it while it is down. close() asks the
 * worker to stop (fastify closes idle connections and lets downloads finish) and terminates it
 * after `closeTimeoutMs`.
 */
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import type { ListenAddress } from '../net/listen-address.js';
import type { ReadinessCheck, Service } from '../base/service.js';
import { MetalbootError } from '../base/errors.js';
import type { FromWorker, ImageWorkerData, ImageWorkerProxyOptions, ToWorker } from './worker.js';
import type { ImageServed } from './plugin.js';

export interface ImageServerOptions {
  readonly listen: ListenAddress;
  readonly proxy: ImageWorkerProxyOptions;
  readonly logger: Logger;
  /** Where `metalboot_image_worker_restarts_total` is registered (the worker's own metrics are merged into /metrics apart). */
  readonly registry: Registry;
  /** How long close() lets downloads finish before terminating the worker. Default 5000 ms. */
  readonly closeTimeoutMs?: number;
  /** How long a metrics request may take before it is left out. Default 2000 ms. */
  readonly metricsTimeoutMs?: number;
  /** The worker's code (tests of the supervision). Default worker.js. */
  readonly workerUrl?: URL;
  /** First restart delay after the worker died, doubling up to 30 s. Default 1000 ms. */
  readonly restartDelayMs?: number;
  /** Told of every request the worker answered (its `served` messages). */
  readonly onServed?: (event: ImageServed) => void;
}

/**
 * The worker's code: worker.js beside this file when built. From the TypeScript sources
 * (tests, `node --import tsx`) a bootstrap registers tsx in the worker first, because Node 20
 * does not hand module hooks on to worker threads.
 */
const WORKER_URL = new URL(import.meta.url.endsWith('.ts') ? './worker-dev.mjs' : './worker.js', import.meta.url);

export class ImageServer implements Service {
  readonly name = 'image-worker';
  readonly readiness: readonly ReadinessCheck[] = [
    {
      name: 'image-worker',
      check: () => (this.#up ? { ok: true, detail: 'listening' } : { ok: false, detail: 'not listening' }),
    },
  ];
  readonly #o: ImageServerOptions;
  readonly #log: Logger;
  #worker: Worker | undefined;
  #address: ListenAddress | undefined;
  #up = false;
  #closing = false;
  #restartDelayMs: number;
  #restartTimer: NodeJS.Timeout | undefined;
  #nextId = 0;
  readonly #pending = new Map<number, (metrics: unknown[] | undefined) => void>();
  readonly #restarts: Counter;

  constructor(o: ImageServerOptions) {
    this.#o = o;
    this.#log = o.logger.child({ component: 'image-worker' });
    this.#restartDelayMs = o.restartDelayMs ?? 1000;
    this.#restarts = new Counter({
      name: 'metalboot_image_worker_restarts_total',
      help: 'Times the image worker thread exited unexpectedly and a restart was scheduled',
      registers: [o.registry],
    });
  }

  /** True while the worker is listening. */
  get up(): boolean {
    return this.#up;
  }

  address(): ListenAddress {
    if (!this.#up || this.#address === undefined)
      throw new MetalbootError('SERVICE_ERR_NOT_LISTENING', 'not listening');
    return this.#address;
  }

  async start(): Promise<void> {
    this.#address = await this.#spawn(this.#o.listen);
    this.#log.info({ listen: `${this.#address.host}:${this.#address.port}` }, 'image worker listening');
  }

  #spawn(listen: ListenAddress): Promise<ListenAddress> {
    const data: ImageWorkerData = {
      listen,
      logLevel: this.#o.logger.level as ImageWorkerData['logLevel'],
      proxy: this.#o.proxy,
    };
    const worker = new Worker(this.#o.workerUrl ?? WORKER_URL, { workerData: data, stdout: false, stderr: false });
    this.#worker = worker;
    return new Promise<ListenAddress>((resolve, reject) => {
      let started = false;
      worker.on('message', (m: FromWorker) => {
        switch (m.kind) {
          case 'listening':
            started = true;
            this.#up = true;
            this.#restartDelayMs = this.#o.restartDelayMs ?? 1000;
            resolve({ host: m.host, port: m.port });
            return;
          case 'failed':
            // The worker's listen error keeps Node's code (EADDRINUSE, EACCES: main.ts's hint reads it).
            reject(
              m.code === undefined
                ? new MetalbootError(
                    'IMAGE_WORKER_ERR_START',
                    `image worker cannot listen on ${listen.host}:${listen.port}: ${m.message}`,
                  )
                : Object.assign(
                    new Error(`image worker cannot listen on ${listen.host}:${listen.port}: ${m.message}`),
                    { code: m.code },
                  ),
            );
            return;
          case 'metrics':
            this.#pending.get(m.id)?.(m.metrics as unknown[]);
            this.#pending.delete(m.id);
            return;
          case 'served':
            try {
              this.#o.onServed?.(m.event);
            } catch (err) {
              // A report is never worth the main thread.
              this.#log.error({ err }, 'image request report failed');
            }
            return;
          case 'closed':
            return;
        }
      });
      worker.on('error', (err) => {
        this.#log.error({ err }, 'image worker failed');
        if (!started)
          reject(
            new MetalbootError('IMAGE_WORKER_ERR_START', `image worker failed to start: ${err.message}`, {
              cause: err,
            }),
          );
      });
      worker.on('exit', (code) => {
        if (this.#worker === worker) this.#worker = undefined;
        this.#up = false;
        for (const done of this.#pending.values()) done(undefined);
        this.#pending.clear();
        if (!started) {
          reject(new MetalbootError('IMAGE_WORKER_ERR_START', `image worker exited (code ${code}) before listening`));
          return;
        }
        if (this.#closing) return;
        const delay = this.#restartDelayMs;
        this.#restartDelayMs = Math.min(delay * 2, 30_000);
        this.#restarts.inc();
        this.#log.error({ code, restartInMs: delay }, 'image worker exited; restarting');
        this.#restartTimer = setTimeout(() => this.#restart(), delay);
      });
    });
  }

  #restart(): void {
    this.#restartTimer = undefined;
    if (this.#closing || this.#address === undefined) return;
    // The same port as before: scripts already handed out point there.
    this.#spawn(this.#address).then(
      () => this.#log.info('image worker restarted'),
      (err: unknown) => {
        this.#log.error({ err }, 'image worker restart failed');
        if (!this.#closing) {
          const delay = this.#restartDelayMs;
          this.#restartDelayMs = Math.min(delay * 2, 30_000);
          this.#restartTimer = setTimeout(() => this.#restart(), delay);
        }
      },
    );
  }

  /** The worker's metrics as prom-client JSON; undefined when it is down or does not answer. */
  metrics(): Promise<unknown[] | undefined> {
    const worker = this.#worker;
    if (worker === undefined || !this.#up) return Promise.resolve(undefined);
    const id = this.#nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        resolve(undefined);
      }, this.#o.metricsTimeoutMs ?? 2000);
      this.#pending.set(id, (m) => {
        clearTimeout(timer);
        resolve(m);
      });
      worker.postMessage({ kind: 'metrics', id } satisfies ToWorker);
    });
  }

  async close(): Promise<void> {
    this.#closing = true;
    if (this.#restartTimer !== undefined) clearTimeout(this.#restartTimer);
    const worker = this.#worker;
    if (worker === undefined) return;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.postMessage({ kind: 'close' } satisfies ToWorker);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.#o.closeTimeoutMs ?? 5000);
    });
    if ((await Promise.race([exited, timedOut])) === 'timeout') {
      this.#log.warn('image worker did not stop in time; terminating it');
      await worker.terminate();
    }
    clearTimeout(timer);
  }
}
