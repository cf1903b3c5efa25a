/**
 * The image server service (--image-listen): runs the image proxy in `workers` processes of its
 * own (worker.ts, `cluster` workers) that share the image port, and supervises them. The main
 * event loop keeps DHCP, TFTP, scripts and the API proxy; bytes of kernels and images are read,
 * cached and written by the workers, on as many cores as there are workers
 * (docs/decisions/0014-image-workers.md).
 *
 * - **One port for all.** The main process holds the listening socket (`cluster`, round-robin:
 *   it accepts each connection and hands it to the next worker), so a worker that dies never
 *   closes the port, and connections are spread evenly. The same on every Node version.
 * - **One cache.** The main process keeps the cache's book (cache-book.ts) and answers the
 *   workers over IPC (book-ipc.ts): one index, one upstream download per artifact for all.
 * - **Failure.** A worker that exits is logged and started again after a back-off of 1 s
 *   doubling to 30 s (per worker); its fills and tickets fail at once, so that requests in the
 *   other workers stop waiting for it. Readiness holds while at least one worker listens.
 * - **Memory.** Each worker's V8 heap is capped (`heapMiB`), and its RSS, heap and event-loop
 *   delay are in /metrics with a `worker` label.
 * - close() asks the workers to stop (fastify closes idle connections and lets downloads
 *   finish) and kills them after `closeTimeoutMs`.
 */
import cluster, { type Worker } from 'node:cluster';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ListenAddress } from '../net/listen-address.js';
import type { ReadinessCheck, Service } from '../base/service.js';
import { MetalbootError } from '../base/errors.js';
import { BookServer } from './book-ipc.js';
import { CacheBook } from './cache-book.js';
import { createCacheMetrics } from './metrics.js';
import type { FromWorker, ImageWorkerData, ImageWorkerProxyOptions, ToWorker } from './worker.js';
import type { ImageServed } from './plugin.js';

export interface ImageServerOptions {
  readonly listen: ListenAddress;
  readonly proxy: ImageWorkerProxyOptions;
  readonly logger: Logger;
  /** Where the supervision's and the cache's metrics are registered (the workers' own are merged into /metrics apart). */
  readonly registry: Registry;
  /** Worker processes. Default 1. */
  readonly workers?: number;
  /** Each worker's V8 old-space limit, MiB (`--max-old-space-size`). Default {@link DEFAULT_WORKER_HEAP_MIB}. */
  readonly heapMiB?: number;
  /** How long close() lets downloads finish before killing the workers. Default 5000 ms. */
  readonly closeTimeoutMs?: number;
  /** How long a metrics request may take before a worker is left out. Default 2000 ms. */
  readonly metricsTimeoutMs?: number;
  /** The workers' code (tests of the supervision). Default worker.js. */
  readonly workerUrl?: URL;
  /** First restart delay after a worker died, doubling up to 30 s. Default 1000 ms. */
  readonly restartDelayMs?: number;
  /** Told of every request a worker answered (its `served` messages). */
  readonly onServed?: (event: ImageServed) => void;
}

/** A worker's V8 old-space limit unless configured: see docs/decisions/0014-image-workers.md. */
export const DEFAULT_WORKER_HEAP_MIB = 128;

/** Node's profiling flags given to metalboot, which its workers get too (their other flags are their own). */
const PROFILING_FLAG = /^--(cpu-prof|heap-prof|prof$|prof-process)/;

/** A worker's V8 semi-space, MiB: V8's default on 64-bit machines (see the fork). */
const WORKER_SEMI_SPACE_MIB = 16;

/**
 * The worker's code: worker.js beside this file when built. From the TypeScript sources
 * (tests, `node --import tsx`) a bootstrap registers tsx in the worker process first.
 */
const WORKER_URL = new URL(import.meta.url.endsWith('.ts') ? './worker-dev.mjs' : './worker.js', import.meta.url);

/** One worker place: the process in it now, and its restart state. */
interface Slot {
  readonly n: number;
  worker: Worker | undefined;
  up: boolean;
  /** The address it was told to listen on (workers share the port only when they ask alike). */
  listen: ListenAddress | undefined;
  restartDelayMs: number;
  restartTimer: NodeJS.Timeout | undefined;
}

export class ImageServer implements Service {
  readonly name = 'image-worker';
  readonly readiness: readonly ReadinessCheck[] = [
    {
      name: 'image-worker',
      check: () => {
        const up = this.#slots.filter((s) => s.up).length;
        const detail = `${up} of ${this.#slots.length} workers listening`;
        return up > 0 ? { ok: true, detail } : { ok: false, detail };
      },
    },
  ];
  readonly #o: ImageServerOptions;
  readonly #log: Logger;
  readonly #slots: Slot[];
  readonly #book: CacheBook | undefined;
  readonly #bookServer: BookServer | undefined;
  #address: ListenAddress | undefined;
  #closing = false;
  #nextId = 0;
  readonly #pending = new Map<number, (metrics: unknown[] | undefined) => void>();
  readonly #restarts: Counter;

  constructor(o: ImageServerOptions) {
    this.#o = o;
    this.#log = o.logger.child({ component: 'image-worker' });
    const count = o.workers ?? 1;
    if (!Number.isSafeInteger(count) || count < 1)
      throw new MetalbootError('IMAGE_WORKER_ERR_START', `image workers must be a positive integer, not ${count}`);
    this.#slots = Array.from({ length: count }, (_, i) => ({
      n: i + 1,
      worker: undefined,
      up: false,
      listen: undefined,
      restartDelayMs: o.restartDelayMs ?? 1000,
      restartTimer: undefined,
    }));
    this.#restarts = new Counter({
      name: 'metalboot_image_worker_restarts_total',
      help: 'Times an image worker process exited unexpectedly and a restart was scheduled',
      registers: [o.registry],
    });
    const slots = this.#slots;
    new Gauge({
      name: 'metalboot_image_workers',
      help: 'Image worker processes, by state (up: listening; down: starting or waiting for a restart)',
      labelNames: ['state'],
      registers: [o.registry],
      collect() {
        const up = slots.filter((s) => s.up).length;
        this.set({ state: 'up' }, up);
        this.set({ state: 'down' }, slots.length - up);
      },
    });
    const cache = o.proxy.cache;
    if (cache !== undefined) {
      const evictions = createCacheMetrics(o.registry, () => book);
      const book = new CacheBook({
        dir: cache.dir,
        maxBytes: cache.maxBytes,
        revalidateAfterMs: cache.revalidateAfterMs ?? 30_000,
        logger: this.#log,
        now: Date.now,
        onEvict: (n) => (n > 0 ? evictions.inc(n) : undefined),
      });
      this.#book = book;
      this.#bookServer = new BookServer(book);
    }
  }

  /** True while at least one worker is listening. */
  get up(): boolean {
    return this.#slots.some((s) => s.up);
  }

  /** The process ids of the workers up now, by worker number (tests). */
  pids(): ReadonlyMap<number, number> {
    return new Map(
      this.#slots.filter((s) => s.up && s.worker?.process.pid !== undefined).map((s) => [s.n, s.worker!.process.pid!]),
    );
  }

  address(): ListenAddress {
    if (!this.up || this.#address === undefined) throw new MetalbootError('SERVICE_ERR_NOT_LISTENING', 'not listening');
    return this.#address;
  }

  async start(): Promise<void> {
    await this.#book?.open();
    const [first, ...rest] = this.#slots;
    // The first worker binds the port; the others ask for the same address and share it.
    this.#address = await this.#spawn(first!, this.#o.listen);
    try {
      await Promise.all(rest.map((s) => this.#spawn(s, this.#o.listen)));
    } catch (err) {
      await this.close();
      throw err;
    }
    this.#log.info(
      { listen: `${this.#address.host}:${this.#address.port}`, workers: this.#slots.length },
      'image workers listening',
    );
  }

  #spawn(slot: Slot, listen: ListenAddress): Promise<ListenAddress> {
    const data: ImageWorkerData = {
      listen,
      logLevel: this.#o.logger.level as ImageWorkerData['logLevel'],
      proxy: this.#o.proxy,
      slot: slot.n,
    };
    cluster.schedulingPolicy = cluster.SCHED_RR;
    cluster.setupPrimary({
      exec: fileURLToPath(this.#o.workerUrl ?? WORKER_URL),
      args: [],
      // The young generation at V8's usual size: with only an old-space cap, V8 sizes the
      // semi-spaces from it (0.5 MiB for 128 MiB) and scavenges a busy stream's garbage far
      // more often.
      execArgv: [
        ...process.execArgv.filter((a) => PROFILING_FLAG.test(a)),
        `--max-old-space-size=${this.#o.heapMiB ?? DEFAULT_WORKER_HEAP_MIB}`,
        `--max-semi-space-size=${WORKER_SEMI_SPACE_MIB}`,
      ],
      serialization: 'advanced',
      silent: false,
    });
    // glibc returns freed heap to the kernel once 128 KiB of it sits at the top, so a worker
    // relaying or serving images faults in and zeroes a fresh page for every buffer; it keeps
    // 128 MiB instead (the image sets it for the main process too; an operator's value wins).
    const worker = cluster.fork({ MALLOC_TRIM_THRESHOLD_: process.env['MALLOC_TRIM_THRESHOLD_'] ?? '134217728' });
    slot.worker = worker;
    slot.listen = listen;
    const owner = worker.id;
    this.#bookServer?.attach(owner, (reply) => this.#send(worker, { kind: 'book', reply }));
    return new Promise<ListenAddress>((resolve, reject) => {
      let started = false;
      worker.on('message', (m: FromWorker) => {
        switch (m.kind) {
          case 'book':
            this.#bookServer?.handle(owner, m.call);
            return;
          case 'ready':
            this.#send(worker, { kind: 'start', data });
            return;
          case 'listening':
            started = true;
            slot.up = true;
            slot.restartDelayMs = this.#o.restartDelayMs ?? 1000;
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
              this.#o.onServed?.({ ...m.event, worker: slot.n });
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
        this.#log.error({ err, worker: slot.n }, 'image worker failed');
      });
      worker.on('exit', (code, signal) => {
        if (slot.worker === worker) slot.worker = undefined;
        slot.up = false;
        this.#bookServer?.detach(owner);
        if (!started) {
          reject(
            new MetalbootError(
              'IMAGE_WORKER_ERR_START',
              `image worker exited (code ${code}${signal === null ? '' : `, signal ${signal}`}) before listening`,
            ),
          );
          return;
        }
        if (this.#closing) return;
        const delay = slot.restartDelayMs;
        slot.restartDelayMs = Math.min(delay * 2, 30_000);
        this.#restarts.inc();
        this.#log.error({ code, signal, worker: slot.n, restartInMs: delay }, 'image worker exited; restarting');
        slot.restartTimer = setTimeout(() => this.#restart(slot), delay);
      });
    });
  }

  /**
   * Starts a worker in `slot` again, on the port scripts already point at: asking as the
   * workers still up asked (so that it shares their socket), or, with none up, for the port
   * the first one got.
   */
  #restart(slot: Slot): void {
    slot.restartTimer = undefined;
    if (this.#closing || this.#address === undefined) return;
    const alive = this.#slots.find((s) => s !== slot && s.worker !== undefined && s.listen !== undefined);
    const listen = alive?.listen ?? this.#address;
    this.#spawn(slot, listen).then(
      () => this.#log.info({ worker: slot.n }, 'image worker restarted'),
      (err: unknown) => {
        this.#log.error({ err, worker: slot.n }, 'image worker restart failed');
        if (!this.#closing) {
          const delay = slot.restartDelayMs;
          slot.restartDelayMs = Math.min(delay * 2, 30_000);
          slot.restartTimer = setTimeout(() => this.#restart(slot), delay);
        }
      },
    );
  }

  #send(worker: Worker, m: ToWorker): void {
    if (!worker.isConnected()) return;
    try {
      worker.send(m);
    } catch (err) {
      this.#log.warn({ err }, 'image worker: message not sent');
    }
  }

  /** Each listening worker's metrics as prom-client JSON; a worker that does not answer in time is left out. */
  metrics(): Promise<unknown[][]> {
    const timeoutMs = this.#o.metricsTimeoutMs ?? 2000;
    const asks = this.#slots
      .filter((s) => s.up && s.worker !== undefined)
      .map(
        (s) =>
          new Promise<unknown[] | undefined>((resolve) => {
            const id = this.#nextId++;
            const timer = setTimeout(() => {
              this.#pending.delete(id);
              resolve(undefined);
            }, timeoutMs);
            this.#pending.set(id, (m) => {
              clearTimeout(timer);
              resolve(m);
            });
            this.#send(s.worker!, { kind: 'metrics', id });
          }),
      );
    return Promise.all(asks).then((all) => all.filter((m) => m !== undefined));
  }

  async close(): Promise<void> {
    this.#closing = true;
    const workers: Worker[] = [];
    for (const s of this.#slots) {
      if (s.restartTimer !== undefined) clearTimeout(s.restartTimer);
      if (s.worker !== undefined) workers.push(s.worker);
    }
    await Promise.all(workers.map((w) => this.#stop(w)));
    for (const done of this.#pending.values()) done(undefined);
    this.#pending.clear();
  }

  /** Asks a worker to stop; kills it when it has not exited after the close timeout. */
  async #stop(worker: Worker): Promise<void> {
    if (worker.process.exitCode !== null || worker.process.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    this.#send(worker, { kind: 'close' });
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.#o.closeTimeoutMs ?? 5000);
    });
    if ((await Promise.race([exited, timedOut])) === 'timeout') {
      this.#log.warn('image worker did not stop in time; killing it');
      worker.process.kill('SIGKILL');
      await exited;
    }
    clearTimeout(timer);
  }
}
