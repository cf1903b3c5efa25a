/**
 * Relaying without the cache: a request the cache does not take goes to the upstream with the
 * headers headers.ts allows, and its answer comes back piped (X-Cache `bypass`), so a slow
 * client slows the upstream read instead of filling memory. The response is committed only at
 * the first body byte (first-byte.ts); a failure before that is answered here with a plain-text
 * 502 or 504, one after it destroys the client connection. A request the pool's limits turn
 * away (upstream-slots.ts) gets a 503 with Retry-After; a client that stops reading is cut after
 * the client idle timeout (client-idle.ts), which frees its upstream connection.
 */
import type { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Dispatcher } from 'undici';
import { LogBudget } from '../base/log-budget.js';
import { cutStalledClient } from './client-idle.js';
import { classifyRefusal, classifyUpstreamError } from './errors.js';
import { untilReadable } from './first-byte.js';
import { clientResponseHeaders, PLAIN_TEXT, upstreamRequestHeaders } from './headers.js';
import type { ImageProxyMetrics, LimitReason } from './metrics.js';
import type { Upstream } from './upstream.js';

export interface RelayOptions {
  readonly upstream: Upstream;
  readonly metrics: ImageProxyMetrics;
  /** How long a response may wait for its client to take more bytes before it is cut. */
  readonly clientIdleTimeoutMs: number;
  /** Epoch milliseconds, for the log budget. */
  readonly now: () => number;
}

// The methods below send on `reply` and resolve to nothing: a FastifyReply is a thenable
// (it settles when the response is over), so it must not travel through an `await`.
export class Relay {
  readonly #upstream: Upstream;
  readonly #m: ImageProxyMetrics;
  readonly #clientIdleTimeoutMs: number;
  /** A flood of refusals or cuts costs a few log lines a second; the metrics count each. */
  readonly #logBudget: LogBudget<LimitReason>;

  constructor(o: RelayOptions) {
    this.#upstream = o.upstream;
    this.#m = o.metrics;
    this.#clientIdleTimeoutMs = o.clientIdleTimeoutMs;
    this.#logBudget = new LogBudget({ perSecond: 5, burst: 20, now: o.now });
  }

  /** Sends the request to the upstream and relays the answer; stops the upstream when the client goes. */
  async forward(request: FastifyRequest, reply: FastifyReply, path: string, query: string | undefined): Promise<void> {
    const abort = new AbortController();
    const onClose = (): void => {
      if (!reply.raw.writableFinished) abort.abort();
    };
    reply.raw.once('close', onClose);
    let res: Dispatcher.ResponseData;
    try {
      res = await this.#upstream.request({
        path,
        query,
        method: request.method as 'GET' | 'HEAD',
        headers: upstreamRequestHeaders(request.headers, { clientIp: request.ip, protocol: request.protocol }),
        signal: abort.signal,
        client: request.ip,
        onSend: () => this.#m.upstreamRequests.inc({ kind: 'relay' }),
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
    this.cutWhenStalled(request, reply, res.body);
  }

  /** Cuts the response (and closes `body`) once its client has taken nothing for the idle timeout. */
  cutWhenStalled(request: FastifyRequest, reply: FastifyReply, body: Readable): void {
    cutStalledClient(reply.raw, body, this.#clientIdleTimeoutMs, () => {
      this.#m.limits.inc({ reason: 'client-stalled' });
      this.#logLimit(request, 'client-stalled', 'image proxy: client stopped reading, download cut');
    });
  }

  #logLimit(request: FastifyRequest, reason: LimitReason, msg: string): void {
    const b = this.#logBudget.take(reason);
    if (!b.ok) return;
    if (b.suppressed > 0) request.log.info({ reason, suppressed: b.suppressed }, 'image proxy: limit lines not logged');
    request.log.info({ reason, peer: request.ip }, msg);
  }

  /**
   * Answers a failure before the response started (after it, destroys the connection), for an
   * upstream request that whoever made it has counted already.
   */
  fail(request: FastifyRequest, reply: FastifyReply, err: unknown): void {
    this.#fail(request, reply, err, false);
  }

  #fail(request: FastifyRequest, reply: FastifyReply, err: unknown, count: boolean): void {
    const refusal = classifyRefusal(err);
    if (refusal !== undefined) {
      this.#m.limits.inc({ reason: refusal.reason });
      this.#m.requests.inc({ result: 'busy' });
      if (reply.raw.destroyed) return;
      this.#logLimit(request, refusal.reason, 'image proxy: request refused, pool busy');
      void reply
        .code(refusal.status)
        .type(PLAIN_TEXT)
        .header('retry-after', String(refusal.retryAfterS))
        .header('cache-control', 'no-store')
        .header('x-cache', 'busy')
        .send(`${refusal.message}\n`);
      return;
    }
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
