/**
 * The upstream, Ironic's httpd (`--ironic-http-url`): its URL, checked once at start-up, and the
 * one connection pool that relaying (relay.ts) and the image store (store.ts) share.
 */
import { Pool, type Dispatcher } from 'undici';
import { MetalbootError } from '../base/errors.js';
import { upstreamTarget } from './paths.js';

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
  /** Most connections at once; further requests queue. */
  readonly connections: number;
  /** TCP (and TLS) connect timeout. */
  readonly connectTimeoutMs: number;
  /** Longest silence, before the headers and between body chunks. */
  readonly idleTimeoutMs: number;
  readonly tls?: { readonly ca?: string | Buffer; readonly insecureSkipVerify?: boolean } | undefined;
}

export interface UpstreamRequest {
  /** A canonical path (paths.ts), below the upstream's base path. */
  readonly path: string;
  readonly query?: string | undefined;
  readonly method: 'GET' | 'HEAD';
  readonly headers: Record<string, string>;
  readonly signal?: AbortSignal;
}

export class Upstream {
  readonly origin: string;
  readonly basePath: string;
  readonly #pool: Pool;

  constructor(url: UpstreamUrl, o: UpstreamPoolOptions) {
    this.origin = url.origin;
    this.basePath = url.basePath;
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

  request(r: UpstreamRequest): Promise<Dispatcher.ResponseData> {
    return this.#pool.request({
      path: upstreamTarget(this.basePath, r.path, r.query),
      method: r.method,
      headers: r.headers,
      ...(r.signal === undefined ? {} : { signal: r.signal }),
    });
  }

  /** Closes every connection, requests in flight included. */
  async close(): Promise<void> {
    await this.#pool.destroy();
  }
}
