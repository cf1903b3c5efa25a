/**
 * The upstream, Ironic's httpd (`--ironic-http-url`): its URL, checked once at start-up, and the
 * one connection pool that relaying (relay.ts) and the image store (store.ts) share. Every
 * request first gets one of the pool's connections from {@link UpstreamSlots} (fair share per
 * client address, fills first, a queue timeout) and gives it back when its body closes, so the
 * pool itself never queues.
 */
import { Pool, type Dispatcher } from 'undici';
import { MetalbootError } from '../base/errors.js';
import { upstreamTarget } from './paths.js';
import { UpstreamSlots, type Schedule } from './upstream-slots.js';

export interface UpstreamUrl {
  readonly origin: string;
  /** The URL's path without its trailing slashes; prefixed to every path sent. */
  readonly basePath: string;
}

/** Checks the `upstream` option: an http(s) origin with an optional base path. */
export function parseUpstream(raw: string): UpstreamUrl {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new MetalbootError('IMAGE_PROXY_ERR_BAD_UPSTREAM', `upstream ${JSON.stringify(raw)} is not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new MetalbootError('IMAGE_PROXY_ERR_BAD_UPSTREAM', 'upstream must be http or https');
  if (u.search !== '' || u.hash !== '')
    throw new MetalbootError('IMAGE_PROXY_ERR_BAD_UPSTREAM', 'upstream must not have a query or fragment');
  if (u.username !== '' || u.password !== '')
    throw new MetalbootError('IMAGE_PROXY_ERR_BAD_UPSTREAM', 'upstream must not carry credentials');
  return { origin: u.origin, basePath: u.pathname.replace(/\/+$/, '') };
}

export interface UpstreamPoolOptions {
  /** Most connections at once; further requests wait for one (upstream-slots.ts). */
  readonly connections: number;
  /** Connections one client address may hold or wait for while half the pool or more is in use. */
  readonly connectionsPerClient: number;
  /** Longest wait for a connection. */
  readonly queueTimeoutMs: number;
  /** TCP (and TLS) connect timeout. */
  readonly connectTimeoutMs: number;
  /** Longest silence, before the headers and between body chunks. */
  readonly idleTimeoutMs: number;
  readonly tls?: { readonly ca?: string | Buffer; readonly insecureSkipVerify?: boolean } | undefined;
  /** The queue timer; injectable for tests. */
  readonly schedule?: Schedule;
}

export interface UpstreamRequest {
  /** A canonical path (paths.ts), below the upstream's base path. */
  readonly path: string;
  readonly query?: string | undefined;
  readonly method: 'GET' | 'HEAD';
  readonly headers: Record<string, string>;
  readonly signal?: AbortSignal;
  /**
   * The client address a relayed request is for, counted against its share of the pool;
   * undefined for a request every client shares (a cache fill or revalidation).
   */
  readonly client?: string | undefined;
  /** Called once the request has its connection, as it is sent (for the request counter). */
  readonly onSend?: () => void;
}

export class Upstream {
  readonly origin: string;
  readonly basePath: string;
  readonly #pool: Pool;
  readonly #slots: UpstreamSlots;

  constructor(url: UpstreamUrl, o: UpstreamPoolOptions) {
    this.origin = url.origin;
    this.basePath = url.basePath;
    this.#slots = new UpstreamSlots(
      { connections: o.connections, perClient: o.connectionsPerClient, queueTimeoutMs: o.queueTimeoutMs },
      o.schedule,
    );
    this.#pool = new Pool(url.origin, {
      connections: o.connections,
      headersTimeout: o.idleTimeoutMs,
      bodyTimeout: o.idleTimeoutMs,
      connect: {
        timeout: o.connectTimeoutMs,
        ...(o.tls?.ca === undefined ? {} : { ca: o.tls.ca }),
        ...(o.tls?.insecureSkipVerify === true ? { rejectUnauthorized: false } : {}),
      },
    });
  }

  /** Connections held and requests waiting for one: for the gauges. */
  figures(): { readonly inUse: number; readonly waiting: number } {
    return { inUse: this.#slots.inUse, waiting: this.#slots.waiting };
  }

  /**
   * Sends a request once a connection is free. Rejects with IMAGE_PROXY_ERR_CLIENT_LIMIT or
   * IMAGE_PROXY_ERR_QUEUE_TIMEOUT when it gets none, IMAGE_PROXY_ERR_ABORTED when its signal
   * aborts (or the pool closes) while it waits, or with undici's error. The connection is held
   * until the response body closes (read to its end, dumped or destroyed).
   */
  async request(r: UpstreamRequest): Promise<Dispatcher.ResponseData> {
    const a = await this.#slots.acquire(r.client, r.signal);
    switch (a.kind) {
      case 'refused':
        throw a.reason === 'client-limit'
          ? new MetalbootError('IMAGE_PROXY_ERR_CLIENT_LIMIT', 'too many downloads from this client at once')
          : new MetalbootError('IMAGE_PROXY_ERR_QUEUE_TIMEOUT', 'no upstream connection became free in time');
      case 'aborted':
        throw new MetalbootError('IMAGE_PROXY_ERR_ABORTED', 'stopped waiting for an upstream connection');
      case 'granted':
        break;
    }
    r.onSend?.();
    let res: Dispatcher.ResponseData;
    try {
      res = await this.#pool.request({
        path: upstreamTarget(this.basePath, r.path, r.query),
        method: r.method,
        headers: r.headers,
        ...(r.signal === undefined ? {} : { signal: r.signal }),
      });
    } catch (err) {
      a.release();
      throw err;
    }
    if (res.body.closed) a.release();
    else res.body.once('close', a.release);
    return res;
  }

  /** Closes every connection, requests in flight and waiting included. */
  async close(): Promise<void> {
    this.#slots.close();
    await this.#pool.destroy();
  }
}
