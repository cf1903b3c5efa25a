/**
 * Relaying without the cache: a request the cache does not take goes to the upstream with the
 * headers headers.ts allows, and its answer comes back piped (X-Cache `bypass`), so a slow
 * client slows the upstream read instead of filling memory. The response is committed only at
 * the first body byte (first-byte.ts); a failure before that is answered here with a plain-text
 * 502 or 504, one after it destroys the client connection.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Dispatcher } from 'undici';
import { classifyUpstreamError } from './errors.js';
import { untilReadable } from './first-byte.js';
import { clientResponseHeaders, PLAIN_TEXT, upstreamRequestHeaders } from './headers.js';
import type { ImageProxyMetrics } from './metrics.js';
import type { Upstream } from './upstream.js';

// The methods below send on `reply` and resolve to nothing: a FastifyReply is a thenable
// (it settles when the response is over), so it must not travel through an `await`.
export class Relay {
  readonly #upstream: Upstream;
  readonly #m: ImageProxyMetrics;

  constructor(upstream: Upstream, metrics: ImageProxyMetrics) {
    this.#upstream = upstream;
    this.#m = metrics;
  }

  /** Sends the request to the upstream and relays the answer; stops the upstream when the client goes. */
  async forward(request: FastifyRequest, reply: FastifyReply, path: string, query: string | undefined): Promise<void> {
    const abort = new AbortController();
    const onClose = (): void => {
      if (!reply.raw.writableFinished) abort.abort();
    };
    reply.raw.once('close', onClose);
    this.#m.upstreamRequests.inc({ kind: 'relay' });
    let res: Dispatcher.ResponseData;
    try {
      res = await this.#upstream.request({
        path,
        query,
        method: request.method as 'GET' | 'HEAD',
        headers: upstreamRequestHeaders(request.headers, { clientIp: request.ip, protocol: request.protocol }),
        signal: abort.signal,
      });
    } catch (err) {
      reply.raw.off('close', onClose);
      this.#fail(request, reply, err, true);
      return;
    }
    await this.send(request, reply, res);
  }

  /** Relays an upstream answer: status, headers less the hop-by-hop ones, and the body. */
  async send(request: FastifyRequest, reply: FastifyReply, res: Dispatcher.ResponseData): Promise<void> {
    let noBody = request.method === 'HEAD' || res.statusCode === 304 || res.statusCode === 204;
    if (noBody) {
      await res.body.dump().catch(() => {});
    } else {
      try {
        noBody = (await untilReadable(res.body)) === 'end';
      } catch (err) {
        this.#fail(request, reply, err, true);
        return;
      }
    }
    const m = this.#m;
    m.requests.inc({ result: 'bypass' });
    reply
      .code(res.statusCode)
      .headers(clientResponseHeaders(res.headers, this.#upstream.origin, this.#upstream.basePath))
      .header('x-cache', 'bypass');
    if (noBody) {
      res.body.destroy();
      void reply.send();
      return;
    }
    res.body.on('data', (chunk: Buffer) => {
      m.upstreamBytes.inc(chunk.length);
      m.servedBytes.inc({ source: 'upstream' }, chunk.length);
    });
    void reply.send(res.body);
  }

  /**
   * Answers a failure before the response started (after it, destroys the connection), for an
   * upstream request that whoever made it has counted already.
   */
  fail(request: FastifyRequest, reply: FastifyReply, err: unknown): void {
    this.#fail(request, reply, err, false);
  }

  #fail(request: FastifyRequest, reply: FastifyReply, err: unknown, count: boolean): void {
    const f = classifyUpstreamError(err);
    if (count) this.#m.upstreamFailures.inc({ reason: f.reason });
    this.#m.requests.inc({ result: 'error' });
    if (reply.raw.destroyed) return;
    request.log.warn({ err, reason: f.reason }, 'image proxy: upstream failed');
    if (reply.raw.headersSent) {
      reply.raw.destroy();
      return;
    }
    void reply
      .code(f.status)
      .type(PLAIN_TEXT)
      .header('cache-control', 'no-store')
      .header('x-cache', 'error')
      .send(`${f.message}\n`);
  }
}
