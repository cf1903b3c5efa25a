/**
 * Longer than ~350 lines: the header below is the image proxy's whole contract, kept in one
 * place; the code itself is a thin adapter over store.ts, relay.ts and ranges.ts.
 *
 * The image proxy: everything a booting host fetches from Ironic's httpd (IPA kernel and
 * initramfs, per-node files, instance images) streamed from `--ironic-http-url`, with an
 * optional read-through cache. A fastify plugin; the HTTP app registers it beside its own
 * routes. Route paths are absolute: register it without a `prefix`.
 *
 * Paths (option `prefixes`, default {@link DEFAULT_IMAGE_PROXY_PREFIXES}), as Ironic lays out
 * its HTTP root (`[deploy]http_root`, `/shared/html` in metal3's ironic-image):
 * - `/images/…`        metal3's IPA kernel/initramfs (ironic-ipa-downloader) and other images
 * - `/agent_images/…`  instance images Ironic caches for IPA (`[deploy]http_image_subdir`)
 * - `/pxelinux.cfg/…`  Ironic's per-MAC iPXE configs (raw; the boot routes serve rewritten ones)
 * - `/<node-uuid>/…`   per-node `config`, `deploy_kernel`, `deploy_ramdisk` (`nodeDirectories`)
 * Not proxied, because metalboot answers them itself: `/boot.ipxe`, `/inspector.ipxe` and
 * `/boot/…` (rendered scripts) and `/ipxe/…` (iPXE binaries).
 *
 * Relaying (relay.ts; no cache, or a request the cache does not take): GET and HEAD go upstream
 * with Range, the conditional headers, User-Agent and Accept (headers.ts); status and
 * headers come back less the hop-by-hop ones; the body is piped, so a slow client slows the
 * upstream read instead of filling memory. The response is committed only when the first body
 * byte (or the end) has arrived: an upstream that fails before that gets a plain-text 502 (it
 * refused, reset, or does not resolve) or 504 (connect or idle timeout); one that fails after it
 * gets the client connection destroyed, so the client sees a transfer shorter than the
 * Content-Length it was promised, never a clean short body.
 *
 * Cache policy (option `cache`; paths in `cache.prefixes`, default `/images/`), all of it kept by
 * the image store (store.ts), which this plugin asks how to answer each request:
 * - Coalescing: one upstream request per artifact at a time. The first request for a missing
 *   (or stale) artifact starts it; requests arriving before its headers wait for them; once a
 *   storable 200 arrives, it is written to a temporary file that every request — the first,
 *   the waiters and any that arrive later — streams from as it grows (fill.ts, readers.ts).
 *   A boot storm costs one download per artifact, and nobody waits for the whole file before
 *   their first byte. If the answer cannot be stored, the first request gets it and the others
 *   relay on their own.
 * - Revalidation: an entry is served without asking the upstream for `revalidateAfterMs`
 *   (default 30 s) after it was stored or last confirmed. After that, the next request sends
 *   one conditional GET (If-None-Match/If-Modified-Since), which concurrent requests share:
 *   304 → serve the entry; 200 → a new version, stored and streamed like a miss (the old one
 *   is served to nobody after that); 404/410 → the entry is dropped and the answer relayed;
 *   a failure or 5xx → the stale entry is served (result `stale`), because during a boot
 *   storm a known-good kernel beats a 502.
 * - Partial and conditional requests are answered from an entry or a fill (206 with
 *   Content-Range, 416, 304, 412); for an artifact not cached they are relayed and start no
 *   download. HEAD never starts a download. Query strings bypass the cache.
 * - Eviction: least recently used first, done before a download starts (its Content-Length is
 *   reserved), so the directory never grows over `maxBytes`. An answer larger than `maxBytes`
 *   is relayed, not stored.
 * - A fill keeps going when the client that started it goes away, so the next one finds the
 *   entry; it stops at the idle timeout like any upstream read.
 *
 * Limits (docs/decisions/0008-image-proxy-limits.md), so that a client that stops reading never
 * starves the others; each is counted by reason in `metalboot_image_proxy_limits_total`:
 * - Client idle timeout (`clientIdleTimeoutMs`, 30 s): a response whose client has taken no
 *   bytes for that long, while the body waits for it, is cut, and with it the upstream
 *   connection of a relay (`client-stalled`); undici's bodyTimeout does not run while
 *   backpressure pauses a body, so without this a reader that never reads holds its connection
 *   forever. Answers from the cache are cut the same way (they hold a file descriptor).
 * - Upstream connections (`connections`, 128) are handed out by upstream-slots.ts, which takes
 *   the place of undici's queue: a client address may take them freely while less than half are
 *   in use, past that only up to `connectionsPerClient` (a quarter of `connections`, 32), else
 *   503 with Retry-After (`client-limit`); hosts behind one NAT can still use half the pool.
 *   Fills and revalidations are nobody's: never refused for a share, and served first.
 * - Queue timeout (`queueTimeoutMs`, 15 s): a request that gets no connection in that time is
 *   answered 503 with Retry-After (`queue-timeout`).
 * - A fill feeds its readers through the disk: a reader that never reads holds neither the
 *   fill nor a connection.
 *
 * Files: this plugin (parse the target, ask the store or relay, answer); store.ts (claims,
 * upstream requests, fills, revalidation); cache-book.ts (what is stored and under way, one per
 * cache), book-ipc.ts (the book across processes), cache-dir.ts (one process's files: entries,
 * fills, fills of others), cache-layout.ts (the directory), cache-index.ts (LRU and accounting),
 * cache-entry.ts (entry file format), cache-policy.ts (what is stored and when it is stale);
 * fill.ts and readers.ts (writing and reading cached bytes); relay.ts, upstream.ts and
 * first-byte.ts (the uncached path and the upstream pool); upstream-slots.ts and
 * client-idle.ts (the limits); paths.ts, headers.ts, ranges.ts (pure HTTP rules); errors.ts,
 * metrics.ts; image-app.ts, worker.ts, worker-service.ts (the image worker processes).
 */
import type { FastifyBaseLogger, FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Registry } from 'prom-client';
import { MetalbootError } from '../base/errors.js';
import { untilReadable } from './first-byte.js';
import { headerValue, isConditionalOrPartial, PLAIN_TEXT, storedObjectHeaders } from './headers.js';
import { createImageProxyMetrics, type ImageProxyMetrics } from './metrics.js';
import { matchesPrefix, NODE_DIRECTORY_ROUTE, parseTarget, prefixProblem, prefixRoute } from './paths.js';
import { Relay } from './relay.js';
import { ImageStore, type ImageRequest, type SharedBook, type StoreAnswer } from './store.js';
import { CacheBody } from './readers.js';
import { parseUpstream, Upstream } from './upstream.js';

/** What Ironic's httpd serves that a booting host or IPA fetches (see the file comment). */
export const DEFAULT_IMAGE_PROXY_PREFIXES: readonly string[] = ['/images/', '/agent_images/', '/pxelinux.cfg/'];

/** Shared artifacts: worth a cache entry. Per-node and per-MAC files are fetched once or twice. */
export const DEFAULT_IMAGE_CACHE_PREFIXES: readonly string[] = ['/images/'];

export interface ImageCacheSettings {
  /** Directory for entries (created if missing; `entries/` and `tmp/` inside are ours). */
  readonly dir: string;
  /** Upper bound of the bytes on disk. */
  readonly maxBytes: number;
  /** How long an entry is served without asking the upstream. Default 30 000 ms. */
  readonly revalidateAfterMs?: number;
  /** Path prefixes that are cached. Default {@link DEFAULT_IMAGE_CACHE_PREFIXES}. */
  readonly prefixes?: readonly string[];
  /**
   * The book of the main process, for an image worker (book-ipc.ts): the main process opened the
   * directory and reports the cache's gauges. Default: this process keeps its own.
   */
  readonly book?: SharedBook;
}

export interface ImageProxyOptions {
  /** Ironic's HTTP URL (`--ironic-http-url`): an http(s) origin with an optional base path. */
  readonly upstream: string;
  /** Path prefixes proxied. Default {@link DEFAULT_IMAGE_PROXY_PREFIXES}. */
  readonly prefixes?: readonly string[];
  /** Also proxy Ironic's per-node directories `/<node-uuid>/…`. Default true. */
  readonly nodeDirectories?: boolean;
  /** The read-through cache; none when absent. */
  readonly cache?: ImageCacheSettings;
  /** TCP (and TLS) connect timeout. Default 5000 ms. */
  readonly connectTimeoutMs?: number;
  /** Longest silence from the upstream, before its headers and between body chunks. Default 30 000 ms. */
  readonly idleTimeoutMs?: number;
  /** Most connections to the upstream at once; further requests wait for one. Default 128. */
  readonly connections?: number;
  /**
   * Upstream connections one client address may hold or wait for once half of them are in use;
   * past it, its requests get a 503. Default a quarter of `connections` (32).
   */
  readonly connectionsPerClient?: number;
  /** Longest wait for an upstream connection; then a 503. Default 15 000 ms. */
  readonly queueTimeoutMs?: number;
  /**
   * Longest time a response may wait for its client to take more bytes (relayed or from the
   * cache); then its connection and the upstream one are closed. Default 30 000 ms.
   */
  readonly clientIdleTimeoutMs?: number;
  /** For an https upstream: a CA bundle (PEM), or no verification at all. */
  readonly tls?: { readonly ca?: string | Buffer; readonly insecureSkipVerify?: boolean };
  /** Metrics go here; never the global registry. */
  readonly registry: Registry;
  /** For events outside a request (cache fills). Default: the app logger, component image-proxy. */
  readonly logger?: FastifyBaseLogger;
  /** Epoch milliseconds; injectable for revalidation tests. Default Date.now. */
  readonly now?: () => number;
  /** Told of every answered request once its response is over (boot timelines). */
  readonly onServed?: (event: ImageServed) => void;
}

/** One request the image proxy answered, once its response is over. */
export interface ImageServed {
  /** The client's address, as the socket gives it (`::ffff:` kept); '' when it is no longer known. */
  readonly peer: string;
  readonly method: string;
  /** The path asked for, without its query. */
  readonly path: string;
  readonly status: number;
  /** Body bytes the response announced (Content-Length); 0 when it announced none. */
  readonly bytes: number;
  /** Milliseconds from the request to the end of the response. */
  readonly ms: number;
  /** The whole response was handed to the connection (false: the client or the upstream went away). */
  readonly complete: boolean;
  /** The image worker that answered (1 to the worker count); absent in process. */
  readonly worker?: number;
}

interface Limits {
  readonly connections: number;
  readonly connectionsPerClient: number;
  readonly queueTimeoutMs: number;
  readonly clientIdleTimeoutMs: number;
}

/** Upstream connections unless configured (see the file comment); image workers share them out. */
export const IMAGE_PROXY_CONNECTIONS = 128;

/** The connection limits and timeouts with their defaults (see the file comment), checked. */
function imageProxyLimits(o: ImageProxyOptions): Limits {
  const connections = o.connections ?? IMAGE_PROXY_CONNECTIONS;
  const limits = {
    connections,
    connectionsPerClient: o.connectionsPerClient ?? Math.max(1, Math.floor(connections / 4)),
    queueTimeoutMs: o.queueTimeoutMs ?? 15_000,
    clientIdleTimeoutMs: o.clientIdleTimeoutMs ?? 30_000,
  };
  for (const [k, v] of Object.entries(limits)) {
    if (!Number.isSafeInteger(v) || v < 1)
      throw new MetalbootError('IMAGE_PROXY_ERR_BAD_LIMITS', `${k} must be a positive integer, not ${String(v)}`);
  }
  return limits;
}

function checkPrefixes(prefixes: readonly string[], what: string): void {
  for (const p of prefixes) {
    const problem = prefixProblem(p);
    if (problem !== undefined)
      throw new MetalbootError('IMAGE_PROXY_ERR_BAD_PREFIX', `${what} ${JSON.stringify(p)} ${problem}`);
  }
}

/** What the image store needs to know of a request. */
function imageRequest(request: FastifyRequest): ImageRequest {
  const h = request.headers;
  return {
    conditions: {
      method: request.method as 'GET' | 'HEAD',
      range: headerValue(h, 'range'),
      ifMatch: headerValue(h, 'if-match'),
      ifNoneMatch: headerValue(h, 'if-none-match'),
      ifModifiedSince: headerValue(h, 'if-modified-since'),
      ifUnmodifiedSince: headerValue(h, 'if-unmodified-since'),
      ifRange: headerValue(h, 'if-range'),
    },
    partial: isConditionalOrPartial(h),
    userAgent: headerValue(h, 'user-agent'),
  };
}

export const imageProxyPlugin: FastifyPluginAsync<ImageProxyOptions> = async (
  fastify: FastifyInstance,
  o: ImageProxyOptions,
) => {
  const upstreamUrl = parseUpstream(o.upstream);
  const prefixes = o.prefixes ?? DEFAULT_IMAGE_PROXY_PREFIXES;
  checkPrefixes(prefixes, 'prefix');
  const nodeDirectories = o.nodeDirectories ?? true;
  const cacheSettings = o.cache;
  const cachePrefixes = cacheSettings?.prefixes ?? DEFAULT_IMAGE_CACHE_PREFIXES;
  checkPrefixes(cachePrefixes, 'cache prefix');
  const revalidateAfterMs = cacheSettings?.revalidateAfterMs ?? 30_000;
  if (
    cacheSettings !== undefined &&
    (!Number.isSafeInteger(cacheSettings.maxBytes) || cacheSettings.maxBytes < 0 || revalidateAfterMs < 0)
  ) {
    throw new MetalbootError(
      'IMAGE_PROXY_ERR_BAD_CACHE_OPTIONS',
      'cache.maxBytes and cache.revalidateAfterMs must be non-negative integers',
    );
  }

  const limits = imageProxyLimits(o);
  // With the main process's book, the cache's gauges are the main process's to report.
  const m = createImageProxyMetrics(
    o.registry,
    cacheSettings === undefined || cacheSettings.book !== undefined ? undefined : () => store!.figures(),
    () => upstream.figures(),
  );
  const upstream = new Upstream(upstreamUrl, {
    connections: limits.connections,
    connectionsPerClient: limits.connectionsPerClient,
    queueTimeoutMs: limits.queueTimeoutMs,
    connectTimeoutMs: o.connectTimeoutMs ?? 5000,
    idleTimeoutMs: o.idleTimeoutMs ?? 30_000,
    tls: o.tls,
  });
  const store =
    cacheSettings === undefined
      ? undefined
      : new ImageStore({
          dir: cacheSettings.dir,
          maxBytes: cacheSettings.maxBytes,
          revalidateAfterMs,
          book: cacheSettings.book,
          upstream,
          metrics: m,
          logger: o.logger ?? fastify.log.child({ component: 'image-proxy' }),
          now: o.now ?? Date.now,
        });
  try {
    await store?.open();
  } catch (err) {
    await upstream.close();
    throw err;
  }
  const relay = new Relay({
    upstream,
    metrics: m,
    clientIdleTimeoutMs: limits.clientIdleTimeoutMs,
    now: o.now ?? Date.now,
  });

  fastify.addHook('onClose', async () => {
    await store?.close();
    await upstream.close();
  });

  fastify.setErrorHandler((err, request, reply) => {
    request.log.error({ err }, 'image proxy: unexpected error');
    if (reply.raw.headersSent) {
      reply.raw.destroy();
      return;
    }
    void reply.code(500).type(PLAIN_TEXT).send('internal error in the image proxy\n');
  });

  // Everything below sends on `reply` and resolves to nothing: a FastifyReply is a thenable
  // (it settles when the response is over), so it must not travel through an `await`.
  const handler = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const target = parseTarget(request.raw.url ?? '');
    if (target.kind === 'refuse' || !matchesPrefix(target.path, prefixes, nodeDirectories)) {
      const reason = target.kind === 'refuse' ? target.reason : 'outside-prefixes';
      m.requests.inc({ result: 'refused' });
      request.log.info({ reason }, 'image proxy: request target refused');
      return reply
        .code(reason === 'outside-prefixes' ? 404 : 400)
        .type(PLAIN_TEXT)
        .send(`request target refused: ${reason}\n`);
    }
    if (store === undefined || target.query !== undefined || !matchesPrefix(target.path, cachePrefixes, false)) {
      await relay.forward(request, reply, target.path, target.query);
      return reply;
    }
    const answer = await store.get(target.path, imageRequest(request));
    switch (answer.kind) {
      case 'object':
        await sendObject(request, reply, answer, m, relay);
        break;
      case 'relay':
        if (answer.response === undefined) await relay.forward(request, reply, target.path, undefined);
        else await relay.send(request, reply, answer.response);
        break;
      case 'failure':
        relay.fail(request, reply, answer.error);
        break;
    }
    return reply;
  };

  for (const prefix of prefixes) fastify.route({ method: ['GET', 'HEAD'], url: prefixRoute(prefix), handler });
  if (nodeDirectories) fastify.route({ method: ['GET', 'HEAD'], url: NODE_DIRECTORY_ROUTE, handler });
};

/** Answers from a stored object: the status and headers the store's answer implies, then the body. */
async function sendObject(
  request: FastifyRequest,
  reply: FastifyReply,
  a: Extract<StoreAnswer, { kind: 'object' }>,
  m: ImageProxyMetrics,
  relay: Relay,
): Promise<void> {
  const status = a.answer.status;
  const headers = storedObjectHeaders(a.meta, a.answer, a.result);
  if (status === 304 || status === 412) {
    m.requests.inc({ result: a.result });
    void reply.code(status).headers(headers).send();
    return;
  }
  if (status === 416) {
    m.requests.inc({ result: a.result });
    void reply.code(416).headers(headers).type(PLAIN_TEXT).send('range not satisfiable\n');
    return;
  }
  const body = a.body;
  if (body === undefined) {
    m.requests.inc({ result: a.result });
    void reply
      .code(status)
      .headers(headers)
      .send(request.method === 'HEAD' ? undefined : '');
    return;
  }
  const direct = body instanceof CacheBody;
  try {
    await (direct ? body.firstChunk() : untilReadable(body));
  } catch (err) {
    body.destroy();
    relay.fail(request, reply, err);
    return;
  }
  m.requests.inc({ result: a.result });
  body.on('data', (chunk: Buffer) => m.servedBytes.inc({ source: 'cache' }, chunk.length));
  if (direct) {
    // Written here rather than piped by fastify, so that its buffers are reused once the socket
    // has their bytes (readers.ts). Fastify's onResponse hooks still run when it finishes.
    reply.code(status).headers(headers).hijack();
    body.on('error', (err) => request.log.warn({ err }, 'image proxy: cache read failed, response cut'));
    reply.raw.writeHead(status, headers);
    body.writeTo(reply.raw);
  } else {
    void reply.code(status).headers(headers).send(body);
  }
  // A reader that never reads holds only a file descriptor and its buffers, never the fill or
  // an upstream connection; it is still cut, so that a flood of them cannot exhaust descriptors.
  relay.cutWhenStalled(request, reply, body);
}

export interface ImageRedirectOptions {
  /** Where the image worker is reached (--image-advertise-url), without a trailing slash. */
  readonly target: string;
  /** The paths the worker proxies (same defaults as the proxy). */
  readonly prefixes?: readonly string[];
  readonly nodeDirectories?: boolean;
}

/**
 * With the image proxy in its worker (--image-listen), the main port answers its paths with a
 * 307 to the worker: the scripts metalboot renders already point there, so this only serves
 * clients that were given a main-port URL by hand. iPXE, curl -L and IPA follow it.
 */
export const imageRedirects: FastifyPluginAsync<ImageRedirectOptions> = async (fastify, o) => {
  const prefixes = o.prefixes ?? DEFAULT_IMAGE_PROXY_PREFIXES;
  checkPrefixes(prefixes, 'prefix');
  const target = o.target.replace(/\/+$/, '');
  const handler = async (request: FastifyRequest, reply: FastifyReply) =>
    reply.code(307).header('location', `${target}${request.url}`).header('cache-control', 'no-store').send();
  for (const prefix of prefixes) fastify.route({ method: ['GET', 'HEAD'], url: prefixRoute(prefix), handler });
  if (o.nodeDirectories ?? true) fastify.route({ method: ['GET', 'HEAD'], url: NODE_DIRECTORY_ROUTE, handler });
};
