/**
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
 * Cache policy (option `cache`; paths in `cache.prefixes`, default `/images/`):
 * - Coalescing: one upstream request per artifact at a time. The first request for a missing
 *   (or stale) artifact starts it; requests arriving before its headers wait for them; once a
 *   storable 200 arrives, it is written to a temporary file that every request — the first,
 *   the waiters and any that arrive later — streams from as it grows (fill.ts). A boot
 *   storm costs one download per artifact, and nobody waits for the whole file before their
 *   first byte. If the answer cannot be stored, the first request gets it and the others
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
 */
import type { FastifyBaseLogger, FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Registry } from 'prom-client';
import type { Dispatcher } from 'undici';
import { ImageCache } from './cache.js';
import type { IndexedEntry } from './cache-index.js';
import { cacheability, isFresh, revalidationHeaders, revalidationOutcome } from './cache-policy.js';
import { classifyUpstreamError, IMAGE_PROXY_ERROR_CODES, ImageProxyError } from './errors.js';
import { untilReadable } from './first-byte.js';
import { headerValue, isConditionalOrPartial, PLAIN_TEXT } from './headers.js';
import { createImageProxyMetrics, type RequestResult } from './metrics.js';
import { matchesPrefix, NODE_DIRECTORY_ROUTE, parseTarget, prefixProblem, prefixRoute } from './paths.js';
import { answerObjectRequest, contentRange } from './ranges.js';
import type { StoredObject } from './readers.js';
import { Relay } from './relay.js';
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
  /** Most connections to the upstream at once; further requests queue. Default 128. */
  readonly connections?: number;
  /** For an https upstream: a CA bundle (PEM), or no verification at all. */
  readonly tls?: { readonly ca?: string | Buffer; readonly insecureSkipVerify?: boolean };
  /** Metrics go here; never the global registry. */
  readonly registry: Registry;
  /** For events outside a request (cache fills). Default: the app logger, component image-proxy. */
  readonly logger?: FastifyBaseLogger;
  /** Epoch milliseconds; injectable for revalidation tests. Default Date.now. */
  readonly now?: () => number;
}

function checkPrefixes(prefixes: readonly string[], what: string): void {
  for (const p of prefixes) {
    const problem = prefixProblem(p);
    if (problem !== undefined) throw new ImageProxyError(IMAGE_PROXY_ERROR_CODES.BAD_PREFIX, `${what} ${JSON.stringify(p)} ${problem}`);
  }
}

/** The outcome of one shared upstream request for a cacheable key. */
type Flight =
  | { readonly kind: 'object'; readonly object: StoredObject }
  | { readonly kind: 'entry'; readonly entry: IndexedEntry; readonly result: 'revalidated' | 'stale' }
  | { readonly kind: 'relay'; response: Dispatcher.ResponseData | undefined }
  | { readonly kind: 'failed'; readonly error: unknown };

export const imageProxyPlugin: FastifyPluginAsync<ImageProxyOptions> = async (fastify: FastifyInstance, o: ImageProxyOptions) => {
  const upstreamUrl = parseUpstream(o.upstream);
  const prefixes = o.prefixes ?? DEFAULT_IMAGE_PROXY_PREFIXES;
  checkPrefixes(prefixes, 'prefix');
  const nodeDirectories = o.nodeDirectories ?? true;
  const now = o.now ?? Date.now;
  const log = o.logger ?? fastify.log.child({ component: 'image-proxy' });

  const cacheSettings = o.cache;
  const cachePrefixes = cacheSettings?.prefixes ?? DEFAULT_IMAGE_CACHE_PREFIXES;
  checkPrefixes(cachePrefixes, 'cache prefix');
  const revalidateAfterMs = cacheSettings?.revalidateAfterMs ?? 30_000;
  if (cacheSettings !== undefined && (!Number.isSafeInteger(cacheSettings.maxBytes) || cacheSettings.maxBytes < 0 || revalidateAfterMs < 0)) {
    throw new ImageProxyError(IMAGE_PROXY_ERROR_CODES.BAD_CACHE_OPTIONS, 'cache.maxBytes and cache.revalidateAfterMs must be non-negative integers');
  }

  const m = createImageProxyMetrics(o.registry, cacheSettings === undefined ? undefined : () => ({ bytes: cache!.bytes, entries: cache!.entries, fillsRunning: cache!.fillsRunning }));
  const cache =
    cacheSettings === undefined
      ? undefined
      : new ImageCache({
          dir: cacheSettings.dir,
          maxBytes: cacheSettings.maxBytes,
          logger: log,
          now,
          onFillBytes: (n) => m.upstreamBytes.inc(n),
          onEvict: (n) => (n > 0 ? m.evictions.inc(n) : undefined),
          onFillEnd: (outcome) => m.fills.inc({ outcome }),
        });
  await cache?.open();

  const upstream = new Upstream(upstreamUrl, {
    connections: o.connections ?? 128,
    connectTimeoutMs: o.connectTimeoutMs ?? 5000,
    idleTimeoutMs: o.idleTimeoutMs ?? 30_000,
    tls: o.tls,
  });
  const relay = new Relay(upstream, m);

  /** One shared upstream request per cache key (see the file comment). */
  const flights = new Map<string, Promise<Flight>>();

  fastify.addHook('onClose', async () => {
    await cache?.close();
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

  // The helpers below send on `reply` and resolve to nothing: a FastifyReply is a thenable
  // (it settles when the response is over), so it must not travel through an `await`.
  const handler = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const target = parseTarget(request.raw.url ?? '');
    if (target.kind === 'refuse' || !matchesPrefix(target.path, prefixes, nodeDirectories)) {
      const reason = target.kind === 'refuse' ? target.reason : 'outside-prefixes';
      m.requests.inc({ result: 'refused' });
      request.log.info({ reason }, 'image proxy: request target refused');
      return reply.code(reason === 'outside-prefixes' ? 404 : 400).type(PLAIN_TEXT).send(`request target refused: ${reason}\n`);
    }
    if (cache !== undefined && target.query === undefined && matchesPrefix(target.path, cachePrefixes, false)) {
      await throughCache(request, reply, target.path);
    } else {
      await relay.forward(request, reply, target.path, target.query);
    }
    return reply;
  };

  // ---- the cache ----

  async function throughCache(request: FastifyRequest, reply: FastifyReply, key: string): Promise<void> {
    const c = cache!;
    // Two rounds at most: an entry can vanish (evicted, replaced) between lookup and open.
    for (let round = 0; round < 2; round++) {
      const found = c.lookup(key);
      if (found?.kind === 'filling') {
        const sent = await serveObject(request, reply, found.fill, 'coalesced');
        if (sent) return;
        continue;
      }
      if (found?.kind === 'entry' && isFresh(found.entry.validatedAt, now(), revalidateAfterMs)) {
        const sent = await serveObject(request, reply, c.entryObject(found.entry), 'hit');
        if (sent) return;
        continue;
      }
      let flight = flights.get(key);
      const first = flight === undefined;
      if (first && (request.method === 'HEAD' || (found === undefined && isConditionalOrPartial(request.headers)))) break;
      flight ??= startFlight(request, key, found?.entry);
      const outcome = await flight;
      switch (outcome.kind) {
        case 'object': {
          const sent = await serveObject(request, reply, outcome.object, first ? 'miss' : 'coalesced');
          if (sent) return;
          continue;
        }
        case 'entry': {
          const sent = await serveObject(request, reply, c.entryObject(outcome.entry), outcome.result);
          if (sent) return;
          continue;
        }
        case 'relay': {
          const res = outcome.response;
          if (first && res !== undefined) {
            outcome.response = undefined;
            await relay.send(request, reply, res);
            return;
          }
          await relay.forward(request, reply, key, undefined);
          return;
        }
        case 'failed':
          relay.fail(request, reply, outcome.error);
          return;
      }
    }
    await relay.forward(request, reply, key, undefined);
  }

  function startFlight(request: FastifyRequest, key: string, stale: IndexedEntry | undefined): Promise<Flight> {
    const run = async (): Promise<Flight> => {
      const headers: Record<string, string> = {
        'accept-encoding': 'identity',
        via: '1.1 metalboot',
        ...(stale === undefined ? {} : revalidationHeaders(stale.meta.etag, stale.meta.lastModified)),
      };
      const ua = headerValue(request.headers, 'user-agent');
      if (ua !== undefined) headers['user-agent'] = ua;
      m.upstreamRequests.inc({ kind: stale === undefined ? 'fill' : 'revalidate' });
      let res: Dispatcher.ResponseData;
      try {
        res = await upstream.request({ path: key, method: 'GET', headers });
      } catch (err) {
        const f = classifyUpstreamError(err);
        m.upstreamFailures.inc({ reason: f.reason });
        if (stale === undefined) return { kind: 'failed', error: err };
        log.warn({ err, key, reason: f.reason }, 'image proxy: revalidation failed, serving the stored entry');
        return { kind: 'entry', entry: stale, result: 'stale' };
      }
      if (stale !== undefined) {
        switch (revalidationOutcome(res.statusCode)) {
          case 'unchanged':
            await res.body.dump().catch(() => {});
            cache!.markValidated(stale);
            return { kind: 'entry', entry: stale, result: 'revalidated' };
          case 'stale':
            await res.body.dump().catch(() => {});
            log.warn({ key, status: res.statusCode }, 'image proxy: upstream error on revalidation, serving the stored entry');
            return { kind: 'entry', entry: stale, result: 'stale' };
          case 'gone':
            cache!.remove(stale);
            return { kind: 'relay', response: res };
          case 'relay':
            return { kind: 'relay', response: res };
          case 'replaced':
            break;
        }
      }
      const verdict = cacheability(res.statusCode, res.headers, cacheSettings!.maxBytes);
      if (!verdict.cacheable) {
        if (res.statusCode === 200) log.info({ key, reason: verdict.reason }, 'image proxy: answer not stored');
        return { kind: 'relay', response: res };
      }
      const fill = await cache!.startFill(
        {
          key,
          size: verdict.size,
          etag: headerValue(res.headers, 'etag'),
          lastModified: headerValue(res.headers, 'last-modified'),
          contentType: headerValue(res.headers, 'content-type'),
          storedAt: now(),
        },
        res.body,
      );
      if (fill === undefined) {
        log.info({ key, size: verdict.size }, 'image proxy: no room to store the answer');
        return { kind: 'relay', response: res };
      }
      return { kind: 'object', object: fill };
    };
    const flight = run().finally(() => flights.delete(key));
    flights.set(key, flight);
    return flight;
  }

  /**
   * Answers from a stored object: preconditions, Range, then the body. False when the object
   * vanished before it could be opened (the caller looks up again).
   */
  async function serveObject(request: FastifyRequest, reply: FastifyReply, object: StoredObject, result: RequestResult): Promise<boolean> {
    const meta = object.meta;
    const h = request.headers;
    const answer = answerObjectRequest(
      {
        method: request.method as 'GET' | 'HEAD',
        range: headerValue(h, 'range'),
        ifMatch: headerValue(h, 'if-match'),
        ifNoneMatch: headerValue(h, 'if-none-match'),
        ifModifiedSince: headerValue(h, 'if-modified-since'),
        ifUnmodifiedSince: headerValue(h, 'if-unmodified-since'),
        ifRange: headerValue(h, 'if-range'),
      },
      { size: meta.size, etag: meta.etag, lastModified: meta.lastModified },
    );
    const validators: Record<string, string> = { 'x-cache': result };
    if (meta.etag !== undefined) validators['etag'] = meta.etag;
    if (meta.lastModified !== undefined) validators['last-modified'] = meta.lastModified;

    if (answer.status === 304 || answer.status === 412) {
      m.requests.inc({ result });
      void reply.code(answer.status).headers(validators).send();
      return true;
    }
    if (answer.status === 416) {
      m.requests.inc({ result });
      void reply.code(416).headers(validators).header('content-range', contentRange(meta.size)).type(PLAIN_TEXT).send('range not satisfiable\n');
      return true;
    }
    const range = answer.status === 206 ? answer.range : { start: 0, end: meta.size - 1 };
    const headers: Record<string, string> = {
      ...validators,
      'accept-ranges': 'bytes',
      'content-type': meta.contentType ?? 'application/octet-stream',
      'content-length': String(range.end - range.start + 1),
    };
    if (answer.status === 206) headers['content-range'] = contentRange(meta.size, range);

    if (request.method === 'HEAD' || meta.size === 0) {
      m.requests.inc({ result });
      void reply.code(answer.status).headers(headers).send(request.method === 'HEAD' ? undefined : '');
      return true;
    }
    const stream = await object.open(range.start, range.end);
    if (stream === undefined) return false;
    try {
      await untilReadable(stream);
    } catch (err) {
      stream.destroy();
      relay.fail(request, reply, err);
      return true;
    }
    m.requests.inc({ result });
    stream.on('data', (chunk: Buffer) => m.servedBytes.inc({ source: 'cache' }, chunk.length));
    void reply.code(answer.status).headers(headers).send(stream);
    return true;
  }

  for (const prefix of prefixes) fastify.route({ method: ['GET', 'HEAD'], url: prefixRoute(prefix), handler });
  if (nodeDirectories) fastify.route({ method: ['GET', 'HEAD'], url: NODE_DIRECTORY_ROUTE, handler });
};

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
  const handler = async (request: FastifyRequest, reply: FastifyReply) => reply.code(307).header('location', `${target}${request.url}`).header('cache-control', 'no-store').send();
  for (const prefix of prefixes) fastify.route({ method: ['GET', 'HEAD'], url: prefixRoute(prefix), handler });
  if (o.nodeDirectories ?? true) fastify.route({ method: ['GET', 'HEAD'], url: NODE_DIRECTORY_ROUTE, handler });
};
