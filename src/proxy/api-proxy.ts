/**
 * Longer than ~350 lines: one fastify plugin whose four routes share the upstream client, the
 * per-listener body budget and the refusal helpers. The rules it applies are in heartbeat.ts,
 * lookup.ts, agent-address.ts and proxy-urls.ts; splitting the routes out, as the image proxy's
 * were, is the next step for this file.
 *
 * The Ironic API proxy for IPA: a fastify plugin on the HTTP listener. IPA is booted with
 * `ipa-api-url=<api-advertise-url>` and reaches Ironic (`ironicApiUrl`) only through here.
 *
 * Routes (under the advertised URL's path, usually `/`), and nothing else:
 * - `GET /`, `/v1`, `/v1/`            version discovery; `links[].href` pointing at Ironic are
 *                                      rewritten to the advertised URL so IPA stays on the proxy
 * - `GET /v1/lookup`                  `addresses`, `node_uuid` forwarded; the answer is read whole
 *                                      and relayed without the node's `links` (Ironic's address);
 *                                      the MAC it confirms (lookup.ts: one address asked alone) is
 *                                      recorded for the node (for /debug/explain)
 * - `POST /v1/heartbeat/{node}`       the body (bounded, 64 KiB) is rewritten (heartbeat.ts):
 *                                      callback_url → the agent's URL on the callback listener,
 *                                      agent_verify_ca → the listener's CA; once Ironic accepts
 *                                      it, the agent's real URL and certificate are recorded
 *                                      (agent-store.ts). A callback_url whose host is not the
 *                                      heartbeat's source, or that is one of metalboot's own
 *                                      listeners, is refused (400) before Ironic sees it
 * - `POST /v1/continue_inspection`    `node_uuid` forwarded; the inventory is streamed to
 *                                      Ironic, never buffered, and cut at `maxInventoryBytes`
 * - anything else under `/v1/`        404 from the proxy; never forwarded
 *
 * Memory: the bodies read whole (heartbeats, and Ironic's version documents and lookup answers,
 * to rewrite them) share one budget per listener (`maxBufferedBytes`, 32 MiB); a body that does
 * not fit is answered 503 (reason `body-budget`) instead of read, and a heartbeat body that does
 * not arrive within `bodyTimeoutMs` 408 (reason `body-timeout`). Inventories are streamed.
 *
 * Headers cross as proxy-headers.ts says (microversions and request ids both ways, hop-by-hop
 * dropped). Log lines carry the route, node and status, never a credential (redact.ts).
 * Errors the proxy itself answers use Ironic's body shape (`error_message` holding a JSON
 * `faultstring`), which IPA prints.
 */
import type { FastifyBaseLogger, FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { networkInterfaces } from 'node:os';
import type { Registry } from 'prom-client';
import { Pool, type Dispatcher } from 'undici';
import { portOf, type OwnListeners } from './agent-address.js';
import type { AgentStore } from './agent-store.js';
import { BodyBudget, limitedRequestBody, readBounded, type ByteLimit } from './body-streams.js';
import { rewriteHeartbeat, type CallbackEndpoint } from './heartbeat.js';
import { confirmedLookupMacs, lookupAnswerForIpa, lookupNodeUuid } from './lookup.js';
import {
  declaredLength,
  forwardRequestHeaders,
  forwardResponseHeaders,
  headerValue,
  hasRequestBody,
} from './proxy-headers.js';
import { classifyForwardError, errorCode } from './proxy-errors.js';
import { MetalbootError } from '../base/errors.js';
import { LogBudget } from '../base/log-budget.js';
import { createApiProxyMetrics, type ApiRefusal, type ApiRoute } from './proxy-metrics.js';
import { allowedQuery, isNodeIdent, parseBaseUrl, parseMicroversion, rewriteHref, rewriteLinks } from './proxy-urls.js';
import { redactUrl } from '../relay/redact.js';

const MiB = 1024 * 1024;

export interface IronicApiProxyOptions {
  /** The Ironic API (`--ironic-api-url`). */
  readonly ironicApiUrl: string;
  /** The URL IPA is given (`--api-advertise-url`): routes mount under its path, links point at it. */
  readonly apiAdvertiseUrl: string;
  /** Where accepted heartbeats are recorded and lookups teach MAC → node. */
  readonly agents: AgentStore;
  /** The callback listener; without it heartbeats pass unchanged (Ironic must reach IPA itself). */
  readonly callback?: CallbackEndpoint | undefined;
  /**
   * metalboot's other TCP ports (the image worker's, say) that no agent may point at; the port a
   * heartbeat arrives on, the HTTP listener's, the advertised API port and the callback
   * listener's are added by the proxy itself.
   */
  readonly ownPorts?: readonly number[];
  readonly registry: Registry;
  /** Upper bound of a continue_inspection body, enforced while streaming. Default 64 MiB. */
  readonly maxInventoryBytes?: number;
  /**
   * Upper bound of a heartbeat body (read whole, to rewrite). Default 64 KiB: IPA's heartbeat
   * (callback_url, agent_token, agent_version, one PEM certificate) is a few KB.
   */
  readonly maxHeartbeatBytes?: number;
  /**
   * The bytes of bodies held in memory at once, over all requests on this listener
   * (heartbeats, and Ironic's answers read whole to rewrite them). Default 32 MiB.
   */
  readonly maxBufferedBytes?: number;
  /** How long a heartbeat body may take to arrive. Default 30 000 ms. */
  readonly bodyTimeoutMs?: number;
  /** Longest wait for Ironic's answer headers, and between body chunks. Default 120 000 ms. */
  readonly timeoutMs?: number;
  /** TCP (and TLS) connect timeout to Ironic. Default 5000 ms. */
  readonly connectTimeoutMs?: number;
  /** For an https Ironic API: a CA bundle (PEM), or no verification at all. */
  readonly tls?: { readonly ca?: string | Buffer | undefined; readonly insecureSkipVerify?: boolean | undefined };
  /** Default: the app's logger. */
  readonly logger?: FastifyBaseLogger;
  /** Told of every lookup, heartbeat and continue_inspection once answered (boot timelines). */
  readonly onAgentCall?: (call: AgentCall) => void;
}

/** One call of IPA's through the proxy, once answered (by Ironic or by the proxy's refusal). */
export interface AgentCall {
  readonly route: 'lookup' | 'heartbeat' | 'continue_inspection';
  /** The TCP peer (IPA's address). */
  readonly peer: string;
  readonly status: number;
  /** The node: the heartbeat's, the one a lookup found, continue_inspection's node_uuid. */
  readonly node: string | undefined;
  /** The MACs Ironic confirmed to a lookup (lookup.ts). */
  readonly macs: readonly string[];
  /** Request body bytes (the inventory of continue_inspection). */
  readonly bytes: number | undefined;
  readonly ms: number;
}

const VERSION_BODY_MAX = 1 * MiB;

/** A lookup answer, read whole to drop Ironic's links: a few KB in practice. */
const LOOKUP_BODY_MAX = 4 * MiB;

/** Ironic's error body: `{"error_message": "{\"faultcode\": …, \"faultstring\": …}"}`. */
function sendIronicError(reply: FastifyReply, status: number, faultstring: string, close = false): FastifyReply {
  const body = JSON.stringify({
    error_message: JSON.stringify({ faultcode: status >= 500 ? 'Server' : 'Client', faultstring, debuginfo: null }),
  });
  if (close) reply.header('connection', 'close');
  return reply.code(status).type('application/json').send(body);
}

export const ironicApiProxy: FastifyPluginAsync<IronicApiProxyOptions> = async (
  fastify: FastifyInstance,
  o: IronicApiProxyOptions,
) => {
  const upstream = parseBaseUrl(o.ironicApiUrl, 'ironicApiUrl');
  const advertised = parseBaseUrl(o.apiAdvertiseUrl, 'apiAdvertiseUrl');
  const maxInventory = o.maxInventoryBytes ?? 64 * MiB;
  const maxHeartbeat = o.maxHeartbeatBytes ?? 64 * 1024;
  const bodyTimeout = o.bodyTimeoutMs ?? 30_000;
  for (const [k, v] of [
    ['maxInventoryBytes', maxInventory],
    ['maxHeartbeatBytes', maxHeartbeat],
    ['bodyTimeoutMs', bodyTimeout],
  ] as const) {
    if (!Number.isSafeInteger(v) || v <= 0)
      throw new MetalbootError('PROXY_ERR_BAD_OPTIONS', `${k} must be a positive integer`);
  }
  const timeout = o.timeoutMs ?? 120_000;
  const budget = new BodyBudget(o.maxBufferedBytes ?? 32 * MiB);
  const metrics = createApiProxyMetrics(o.registry, () => budget.used);
  const log = (o.logger ?? fastify.log).child({ component: 'ironic-api-proxy' });
  const logBudget = new LogBudget<ApiRefusal>({ perSecond: 1, burst: 5, now: Date.now });
  const pool = new Pool(upstream.origin, {
    connections: 32,
    connectTimeout: o.connectTimeoutMs ?? 5000,
    headersTimeout: timeout,
    bodyTimeout: timeout,
    connect:
      upstream.protocol === 'https:'
        ? { ca: o.tls?.ca, rejectUnauthorized: o.tls?.insecureSkipVerify !== true }
        : undefined,
  });
  fastify.addHook('onClose', async () => {
    await pool.close();
  });

  // Bodies are never parsed by fastify here: each route reads request.raw itself, bounded.
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));

  const base = advertised.basePath;
  const upstreamPath = (p: string): string => `${upstream.basePath}${p}`;

  /** metalboot's addresses and ports as seen from one request, for the agent address rules. */
  const ownListeners = (req: FastifyRequest): OwnListeners => {
    const socket = req.raw.socket;
    const server = fastify.server.address();
    const ports = [portOf(advertised), ...(o.ownPorts ?? []), ...(o.callback?.ownPorts() ?? [])];
    if (socket.localPort !== undefined) ports.push(socket.localPort);
    if (server !== null && typeof server === 'object') ports.push(server.port);
    const addresses = Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address));
    if (socket.localAddress !== undefined) addresses.push(socket.localAddress);
    return { addresses, ports };
  };

  interface Forward {
    readonly route: ApiRoute;
    readonly method: 'GET' | 'POST';
    readonly path: string;
    readonly body?: Buffer | NodeJS.ReadableStream | undefined;
    readonly contentLength?: number | undefined;
    readonly extraHeaders?: Record<string, string>;
  }

  const started = new WeakMap<FastifyRequest, bigint>();
  fastify.addHook('onRequest', async (req) => {
    started.set(req, process.hrtime.bigint());
  });
  /** What onAgentCall is told of a lookup, heartbeat or continue_inspection, set by its route. */
  const calls = new WeakMap<FastifyRequest, Omit<AgentCall, 'peer' | 'status' | 'ms'>>();
  const onAgentCall = o.onAgentCall;
  if (onAgentCall !== undefined)
    fastify.addHook('onResponse', async (req, reply) => {
      const call = calls.get(req);
      if (call !== undefined)
        onAgentCall({
          ...call,
          peer: req.raw.socket.remoteAddress ?? req.ip,
          status: reply.statusCode,
          ms: reply.elapsedTime,
        });
    });
  const observe = (req: FastifyRequest, route: ApiRoute): void => {
    const t0 = started.get(req);
    if (t0 !== undefined) metrics.duration.observe({ route }, Number(process.hrtime.bigint() - t0) / 1e9);
  };

  /** Sends one request to Ironic; undefined after answering the caller with the failure. */
  async function send(
    req: FastifyRequest,
    reply: FastifyReply,
    f: Forward,
  ): Promise<Dispatcher.ResponseData | undefined> {
    const headers = forwardRequestHeaders(req.headers, { clientIp: req.ip, contentLength: f.contentLength });
    if (f.body === undefined) delete headers['content-type'];
    Object.assign(headers, f.extraHeaders);
    try {
      const res = await pool.request({
        method: f.method,
        path: f.path,
        headers,
        body: f.body as Dispatcher.DispatchOptions['body'],
      });
      observe(req, f.route);
      return res;
    } catch (err) {
      observe(req, f.route);
      const answer = classifyForwardError(err, 'the Ironic API');
      metrics.failures.inc({ reason: answer.reason });
      metrics.requests.inc({ route: f.route, status: String(answer.status) });
      req.log.warn(
        { component: 'ironic-api-proxy', route: f.route, url: redactUrl(req.url), reason: answer.reason, err },
        'forward to the Ironic API failed',
      );
      sendIronicError(reply, answer.status, answer.message, answer.status === 413);
      return undefined;
    }
  }

  function relay(
    reply: FastifyReply,
    route: ApiRoute,
    res: Dispatcher.ResponseData,
    body: NodeJS.ReadableStream = res.body,
  ): FastifyReply {
    metrics.requests.inc({ route, status: String(res.statusCode) });
    const headers = forwardResponseHeaders(res.headers);
    const location = headerValue(res.headers, 'location');
    if (location !== undefined) headers['location'] = rewriteHref(location, upstream, advertised);
    return reply.code(res.statusCode).headers(headers).send(body);
  }

  /** A share of the body budget, given back once the answer to `reply` is sent or its connection gone. */
  function budgetShare(reply: FastifyReply) {
    const share = budget.share();
    if (reply.raw.destroyed) share.release();
    else reply.raw.once('close', () => share.release());
    return share;
  }

  /** Answers a request refused for a memory or time bound (503 or 408), closing its connection. */
  function refuseBound(req: FastifyRequest, reply: FastifyReply, route: ApiRoute, reason: ApiRefusal): FastifyReply {
    metrics.refusals.inc({ route, reason });
    const b = logBudget.take(reason);
    if (b.ok)
      log.warn(
        { route, reason, peer: req.ip, buffered: budget.used, suppressed: b.suppressed },
        'refused a request at a bound',
      );
    return reason === 'body-budget'
      ? refuse(reply, route, 503, 'metalboot holds as many request bodies in memory as it may; retry later', true)
      : refuse(reply, route, 408, `the request body did not arrive within ${bodyTimeout} ms`, true);
  }

  /** Reads an answer of Ironic's whole (to rewrite it); undefined after answering 502 or 503. */
  async function readAnswer(
    req: FastifyRequest,
    reply: FastifyReply,
    route: ApiRoute,
    res: Dispatcher.ResponseData,
    max: number,
    what: string,
  ): Promise<Buffer | undefined> {
    try {
      return await readBounded(res.body, max, { share: budgetShare(reply) });
    } catch (err) {
      res.body.destroy();
      if (errorCode(err) === 'PROXY_ERR_BODY_BUDGET') {
        refuseBound(req, reply, route, 'body-budget');
        return undefined;
      }
      const answer = classifyForwardError(err, 'the Ironic API');
      metrics.failures.inc({ reason: answer.reason === 'body-too-large' ? 'other' : answer.reason });
      refuse(
        reply,
        route,
        502,
        answer.reason === 'body-too-large' ? `the Ironic API sent an oversized ${what}` : answer.message,
      );
      return undefined;
    }
  }

  /** A JSON answer parsed; undefined when it is not JSON (then it is relayed unchanged). */
  function parseJsonAnswer(res: Dispatcher.ResponseData, raw: Buffer): unknown {
    if (!/json/i.test(headerValue(res.headers, 'content-type') ?? '')) return undefined;
    try {
      return JSON.parse(raw.toString('utf8')) as unknown;
    } catch {
      return undefined;
    }
  }

  /** Relays Ironic's answer with a body the proxy rewrote. */
  function relayRewritten(
    reply: FastifyReply,
    route: ApiRoute,
    res: Dispatcher.ResponseData,
    out: Buffer,
  ): FastifyReply {
    metrics.requests.inc({ route, status: String(res.statusCode) });
    const headers = forwardResponseHeaders(res.headers, { rewrittenBody: true });
    const location = headerValue(res.headers, 'location');
    if (location !== undefined) headers['location'] = rewriteHref(location, upstream, advertised);
    return reply.code(res.statusCode).headers(headers).header('content-length', String(out.length)).send(out);
  }

  function refuse(reply: FastifyReply, route: ApiRoute, status: number, reason: string, close = false): FastifyReply {
    metrics.requests.inc({ route, status: String(status) });
    return sendIronicError(reply, status, reason, close);
  }

  /** A request body streamed through a ByteLimit; answers 413 up front when the declared length is too large. */
  function streamedBody(
    req: FastifyRequest,
    reply: FastifyReply,
    route: ApiRoute,
    max: number,
  ): { body: ByteLimit | undefined; length: number | undefined } | undefined {
    const declared = declaredLength(req.headers);
    if (declared === 'invalid') {
      refuse(reply, route, 400, 'invalid Content-Length', true);
      return undefined;
    }
    if (declared !== undefined && declared > max) {
      refuse(reply, route, 413, `the body exceeds ${max} bytes`, true);
      return undefined;
    }
    if (!hasRequestBody(req.headers)) return { body: undefined, length: declared };
    return { body: limitedRequestBody(req.raw, max), length: declared };
  }

  // --- version discovery ---------------------------------------------------------------
  const versionHandler = async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
    const sub = req.url.split('?')[0]!.slice(base.length);
    const path = sub === '' || sub === '/' ? '/' : sub === '/v1' ? '/v1' : '/v1/';
    const res = await send(req, reply, { route: 'version', method: 'GET', path: upstreamPath(path) });
    if (res === undefined) return reply;
    const raw = await readAnswer(req, reply, 'version', res, VERSION_BODY_MAX, 'version document');
    if (raw === undefined) return reply;
    const doc = parseJsonAnswer(res, raw);
    const out = doc === undefined ? raw : Buffer.from(JSON.stringify(rewriteLinks(doc, upstream, advertised)));
    return relayRewritten(reply, 'version', res, out);
  };
  for (const p of base === '' ? ['/', '/v1', '/v1/'] : [base, `${base}/`, `${base}/v1`, `${base}/v1/`])
    fastify.get(p, versionHandler);

  // --- lookup ----------------------------------------------------------------------------
  fastify.get(`${base}/v1/lookup`, async (req, reply) => {
    const search = allowedQuery(req.url.includes('?') ? req.url.slice(req.url.indexOf('?')) : '', [
      'addresses',
      'node_uuid',
    ]);
    const res = await send(req, reply, { route: 'lookup', method: 'GET', path: upstreamPath(`/v1/lookup${search}`) });
    if (res === undefined) return reply;
    if (res.statusCode !== 200) return relay(reply, 'lookup', res);
    const raw = await readAnswer(req, reply, 'lookup', res, LOOKUP_BODY_MAX, 'lookup answer');
    if (raw === undefined) return reply;
    const doc = parseJsonAnswer(res, raw);
    const node = lookupNodeUuid(doc);
    if (node !== undefined) {
      const confirmed = confirmedLookupMacs(search);
      calls.set(req, { route: 'lookup', node, macs: confirmed, bytes: undefined });
      req.log.info({ component: 'ironic-api-proxy', route: 'lookup', node, confirmed }, 'IPA looked up its node');
      if (confirmed.length > 0)
        o.agents
          .learnMacs(node, confirmed)
          .catch((err: unknown) => log.error({ err, node }, 'could not record the lookup'));
    }
    const out = doc === undefined ? raw : Buffer.from(JSON.stringify(lookupAnswerForIpa(doc, upstream, advertised)));
    return relayRewritten(reply, 'lookup', res, out);
  });

  // --- heartbeat -------------------------------------------------------------------------
  fastify.post<{ Params: { node: string } }>(`${base}/v1/heartbeat/:node`, async (req, reply) => {
    const node = req.params.node;
    const rlog = req.log.child({ component: 'ironic-api-proxy', route: 'heartbeat', node });
    calls.set(req, { route: 'heartbeat', node, macs: [], bytes: undefined });
    if (!isNodeIdent(node)) {
      metrics.heartbeats.inc({ outcome: 'invalid' });
      return refuse(reply, 'heartbeat', 400, 'invalid node identifier');
    }
    const declared = declaredLength(req.headers);
    if (declared === 'invalid' || (declared !== undefined && declared > maxHeartbeat)) {
      metrics.heartbeats.inc({ outcome: 'invalid' });
      return refuse(
        reply,
        'heartbeat',
        declared === 'invalid' ? 400 : 413,
        declared === 'invalid' ? 'invalid Content-Length' : `the heartbeat exceeds ${maxHeartbeat} bytes`,
        true,
      );
    }
    let raw: Buffer;
    try {
      raw = await readBounded(req.raw, maxHeartbeat, { share: budgetShare(reply), timeoutMs: bodyTimeout });
    } catch (err) {
      switch (errorCode(err)) {
        case 'PROXY_ERR_BODY_BUDGET':
          metrics.heartbeats.inc({ outcome: 'overloaded' });
          return refuseBound(req, reply, 'heartbeat', 'body-budget');
        case 'PROXY_ERR_BODY_TIMEOUT':
          metrics.heartbeats.inc({ outcome: 'invalid' });
          return refuseBound(req, reply, 'heartbeat', 'body-timeout');
        case 'PROXY_ERR_BODY_TOO_LARGE':
          metrics.heartbeats.inc({ outcome: 'invalid' });
          return refuse(reply, 'heartbeat', 413, `the heartbeat exceeds ${maxHeartbeat} bytes`, true);
        default:
          metrics.heartbeats.inc({ outcome: 'invalid' });
          throw err;
      }
    }
    const path = upstreamPath(`/v1/heartbeat/${node}`);
    const json = { 'content-type': 'application/json' };
    if (o.callback === undefined) {
      const res = await send(req, reply, {
        route: 'heartbeat',
        method: 'POST',
        path,
        body: raw,
        contentLength: raw.length,
        extraHeaders: json,
      });
      if (res === undefined) return reply;
      metrics.requestBytes.inc({ route: 'heartbeat' }, raw.length);
      metrics.heartbeats.inc({ outcome: 'passthrough' });
      return relay(reply, 'heartbeat', res);
    }
    const callback = o.callback;
    // The TCP peer, whatever fastify's trustProxy says: X-Forwarded-For is the caller's to write.
    const source = req.raw.socket.remoteAddress ?? '';
    const rw = rewriteHeartbeat(raw, {
      callbackUrlFor: (agent) => callback.callbackUrlFor(node, agent),
      source,
      own: ownListeners(req),
      listenerCaPem: callback.ironicCaPem(),
      microversion: parseMicroversion(headerValue(req.headers, 'x-openstack-ironic-api-version')),
    });
    if (rw.kind === 'invalid') {
      metrics.heartbeats.inc({ outcome: 'invalid' });
      rlog.warn({ reason: rw.reason, peer: req.ip }, 'refused a heartbeat');
      return refuse(reply, 'heartbeat', 400, rw.reason);
    }
    if (rw.kind === 'refused') {
      metrics.heartbeats.inc({ outcome: 'refused' });
      metrics.heartbeatRefusals.inc({ reason: rw.reason });
      rlog.warn({ reason: rw.reason, peer: source, detail: rw.message }, 'refused a heartbeat');
      return refuse(reply, 'heartbeat', 400, rw.message);
    }
    const pending = rw.kind === 'rewrite' ? o.agents.beginHeartbeat(node) : undefined;
    const res = await send(req, reply, {
      route: 'heartbeat',
      method: 'POST',
      path,
      body: rw.body,
      contentLength: rw.body.length,
      extraHeaders: json,
    });
    if (res === undefined) {
      pending?.abort();
      metrics.heartbeats.inc({ outcome: 'failed' });
      return reply;
    }
    metrics.requestBytes.inc({ route: 'heartbeat' }, rw.body.length);
    if (rw.kind === 'passthrough') {
      metrics.heartbeats.inc({ outcome: 'passthrough' });
      return relay(reply, 'heartbeat', res);
    }
    if (res.statusCode >= 200 && res.statusCode < 300) {
      await pending!.commit({ url: rw.agent.url, caPem: rw.agent.caPem });
      metrics.heartbeats.inc({ outcome: 'accepted' });
      rlog.debug(
        { agentUrl: rw.agent.url, agentCertificate: rw.agent.caPem !== undefined, sentCa: rw.sentCa },
        'heartbeat accepted',
      );
    } else {
      pending!.abort();
      metrics.heartbeats.inc({ outcome: 'rejected' });
      rlog.warn({ status: res.statusCode, agentUrl: rw.agent.url }, 'Ironic refused a heartbeat');
    }
    return relay(reply, 'heartbeat', res);
  });

  // --- continue_inspection -----------------------------------------------------------------
  fastify.post(`${base}/v1/continue_inspection`, async (req, reply) => {
    const search = allowedQuery(req.url.includes('?') ? req.url.slice(req.url.indexOf('?')) : '', ['node_uuid']);
    const streamed = streamedBody(req, reply, 'continue_inspection', maxInventory);
    if (streamed === undefined) return reply;
    const res = await send(req, reply, {
      route: 'continue_inspection',
      method: 'POST',
      path: upstreamPath(`/v1/continue_inspection${search}`),
      body: streamed.body,
      contentLength: streamed.length,
    });
    const bytes = streamed.body?.bytes ?? 0;
    metrics.requestBytes.inc({ route: 'continue_inspection' }, bytes);
    const inspected = new URLSearchParams(search).get('node_uuid') ?? undefined;
    calls.set(req, { route: 'continue_inspection', node: inspected, macs: [], bytes });
    if (res === undefined) return reply;
    req.log.info(
      { component: 'ironic-api-proxy', route: 'continue_inspection', bytes, status: res.statusCode, peer: req.ip },
      'inspection data forwarded',
    );
    return relay(reply, 'continue_inspection', res);
  });

  // --- everything else under /v1: never forwarded ---------------------------------------------
  fastify.all(`${base}/v1/*`, async (req, reply) => {
    req.log.info(
      { component: 'ironic-api-proxy', method: req.method, url: redactUrl(req.url), peer: req.ip },
      'refused a request outside the ramdisk endpoints',
    );
    return refuse(
      reply,
      'refused',
      404,
      'metalboot proxies only the ramdisk endpoints of the Ironic API (lookup, heartbeat, continue_inspection)',
    );
  });
};
