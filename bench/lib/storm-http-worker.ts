/**
 * The simulated hosts' HTTP downloads, in a worker thread of the client process. Real hosts
 * are separate machines: one host streaming 75 MB does not delay another host's TFTP ACK. In
 * one event loop it would (hundreds of MB/s of HTTP reads starve the UDP handlers), and the
 * storm would charge that client-side delay to metalboot. A thread gets its own slices of the
 * CPU from the kernel scheduler, so the DHCP/TFTP side stays responsive.
 *
 * Messages in: `{ id, op: 'get', localAddress, url, opts }` and `{ op: 'close', localAddress }`.
 * Messages out: `{ id, ok: true, fetched }` or `{ id, ok: false, code, message }`, and
 * `{ op: 'eld', … }` in answer to `{ op: 'eld' }`.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parentPort, Worker } from 'node:worker_threads';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { hostHttp, StormHttpError, type Fetched, type HostHttp } from './storm-http.js';

type GetOpts = Parameters<HostHttp['get']>[1];

interface GetMessage {
  readonly op: 'get';
  readonly id: number;
  readonly localAddress: string;
  readonly url: string;
  readonly opts: GetOpts;
}

type InMessage = GetMessage | { readonly op: 'close'; readonly localAddress: string } | { readonly op: 'eld' };

type OutMessage =
  | { readonly id: number; readonly ok: true; readonly fetched: Fetched }
  | { readonly id: number; readonly ok: false; readonly code: StormHttpError['code']; readonly message: string }
  | { readonly op: 'eld'; readonly p50: number; readonly p99: number; readonly max: number };

export interface EldSummary {
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

/** The main thread's handle: HostHttp objects whose requests run in the worker. */
export class HttpWorker {
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve: (f: Fetched) => void; reject: (e: Error) => void }>();
  #eldWaiter: ((e: EldSummary) => void) | undefined;
  #next = 0;

  constructor() {
    // Workers do not inherit `--import tsx`: register tsx in the worker, then load this file.
    const tsxApi = path.join(
      path.dirname(createRequire(import.meta.url).resolve('tsx/package.json')),
      'dist/esm/api/index.mjs',
    );
    const tsx = JSON.stringify(pathToFileURL(tsxApi).href);
    const self = JSON.stringify(import.meta.url);
    this.#worker = new Worker(`import(${tsx}).then(({ register }) => { register(); return import(${self}); })`, {
      eval: true,
    });
    this.#worker.on('message', (m: OutMessage) => {
      if ('op' in m) {
        this.#eldWaiter?.({ p50: m.p50, p99: m.p99, max: m.max });
        this.#eldWaiter = undefined;
        return;
      }
      const p = this.#pending.get(m.id);
      if (p === undefined) return;
      this.#pending.delete(m.id);
      if (m.ok) p.resolve(m.fetched);
      else p.reject(new StormHttpError(m.code, m.message));
    });
    this.#worker.on('error', (err) => {
      for (const p of this.#pending.values()) p.reject(err);
      this.#pending.clear();
    });
  }

  host(localAddress: string): HostHttp {
    return {
      get: (url, opts) =>
        new Promise<Fetched>((resolve, reject) => {
          const id = ++this.#next;
          this.#pending.set(id, { resolve, reject });
          this.#worker.postMessage({ op: 'get', id, localAddress, url, opts } satisfies InMessage);
        }),
      close: () => this.#worker.postMessage({ op: 'close', localAddress } satisfies InMessage),
    };
  }

  /** The worker's event-loop delay since it started, ms (NaN if it does not answer within 2 s). */
  eventLoopDelay(): Promise<EldSummary> {
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve({ p50: NaN, p99: NaN, max: NaN }), 2_000);
      this.#eldWaiter = (e) => {
        clearTimeout(t);
        resolve(e);
      };
      this.#worker.postMessage({ op: 'eld' } satisfies InMessage);
    });
  }

  terminate(): Promise<number> {
    return this.#worker.terminate();
  }
}

function serve(port: NonNullable<typeof parentPort>): void {
  const hosts = new Map<string, HostHttp>();
  const eld = monitorEventLoopDelay({ resolution: 10 });
  eld.enable();
  port.on('message', (m: InMessage) => {
    if (m.op === 'eld') {
      port.postMessage({
        op: 'eld',
        p50: eld.percentile(50) / 1e6,
        p99: eld.percentile(99) / 1e6,
        max: eld.max / 1e6,
      } satisfies OutMessage);
      return;
    }
    if (m.op === 'close') {
      hosts.get(m.localAddress)?.close();
      hosts.delete(m.localAddress);
      return;
    }
    let h = hosts.get(m.localAddress);
    if (h === undefined) {
      h = hostHttp(m.localAddress);
      hosts.set(m.localAddress, h);
    }
    h.get(m.url, m.opts).then(
      (fetched) => port.postMessage({ id: m.id, ok: true, fetched } satisfies OutMessage),
      (err: unknown) => {
        const code = err instanceof StormHttpError ? err.code : 'STORM_HTTP_SOCKET';
        port.postMessage({ id: m.id, ok: false, code, message: (err as Error).message } satisfies OutMessage);
      },
    );
  });
}

if (parentPort !== null) serve(parentPort);
