/**
 * Longer than ~350 lines: one Service (listener, TLS, connection cap, bounded close) and the
 * forwarding of one request; the rules are in callback-url.ts, agent-store.ts and
 * callback-tls.ts.
 *
 * The callback listener (`--callback-listen`): Ironic → IPA. Ironic is told, in every
 * heartbeat the API proxy rewrites, that the agent lives at `<callback-advertise-url>/nodes/
 * <node>/<agent>`; requests arriving there for IPA's API (`POST /v1/commands/`,
 * `GET /v1/commands/`, `GET /v1/commands/<id>`, `GET /v1/status`, the version documents), the
 * query (`agent_token`, `wait`) untouched and the body streamed, are forwarded to the agent's
 * real URL recorded from its accepted heartbeat — if `<agent>` names that agent.
 *
 * TLS towards IPA: verified against the certificate IPA itself sent as agent_verify_ca (that
 * PEM is the only trusted CA for the connection, and the host check runs against the IP in
 * IPA's URL, which IPA's auto-generated certificate carries as an IP subjectAltName); against
 * the system CAs when IPA sent none; not at all with `insecureSkipVerify`
 * (`--callback-insecure-skip-verify`).
 *
 * TLS towards Ironic: see callback-tls.ts (configured certificate, CA generated into the
 * state directory, or plain HTTP). The scheme of the callback URLs follows the listener, so
 * Ironic never gets an https URL for a plain listener or the reverse.
 *
 * Answers of its own, in plain text, without contacting any agent: 404 for a path outside
 * `/nodes/<node>/<agent>`, for a method and path IPA's API does not have, for an unknown node
 * or an agent that is not the node's current one; 400 for a path that would climb out of the
 * agent's API; 508 for a request that already passed through this listener (its Via entry: a
 * loop through some other address of metalboot); 502 (504 on timeouts) with the reason when IPA
 * cannot be reached or its certificate does not verify; 503 while closing. Everything IPA
 * answers (409 "Agent is busy" included) passes through.
 *
 * close() lets forwards in flight finish for `closeGraceMs`, then aborts them: a `wait=true`
 * command may run for many minutes and must not hold SIGTERM.
 */
import { createHash, randomBytes } from 'node:crypto';
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { Pool, type Dispatcher } from 'undici';
import { withBoundPort, type ListenAddress } from '../net/listen-address.js';
import { listening, type ReadinessCheck, type Service } from '../base/service.js';
import { countDroppedConnections, MAX_CONNECTIONS } from '../base/connection-cap.js';
import type { AgentRecord, AgentStore } from './agent-store.js';
import { limitedRequestBody } from './body-streams.js';
import {
  agentApiRoute,
  agentRequestTarget,
  nodeCallbackUrl,
  parseCallbackTarget,
  type AgentId,
  type CallbackRefusal,
} from './callback-url.js';
import {
  loadCallbackTls,
  tlsFromShared,
  type CallbackTls,
  type CallbackTlsSource,
  type SharedTlsFeed,
} from './callback-tls.js';
import type { CallbackEndpoint } from './heartbeat.js';
import {
  declaredLength,
  forwardRequestHeaders,
  forwardResponseHeaders,
  hasRequestBody,
  viaIncludes,
} from './proxy-headers.js';
import { classifyForwardError } from './proxy-errors.js';
import { MetalbootError } from '../base/errors.js';
import { createCallbackMetrics, type CallbackMetrics, type CallbackResult } from './proxy-metrics.js';
import { portOf } from './agent-address.js';
import { formatBaseUrl, parseBaseUrl, withProtocol, type BaseUrl } from './proxy-urls.js';
import { redactUrl } from '../relay/redact.js';

const MiB = 1024 * 1024;

export interface CallbackServerOptions {
  readonly listen: ListenAddress;
  /**
   * `--callback-advertise-url`; its scheme is replaced by the listener's (https with TLS), and a
   * port 0 by the port the listener is bound to (`--callback-listen :0`).
   */
  readonly advertiseUrl: string;
  readonly agents: AgentStore;
  /** Where the listener's certificate comes from (callbackTlsSource(config.proxy)). */
  readonly tls: CallbackTlsSource;
  /** Do not verify IPA's certificate (`--callback-insecure-skip-verify`). */
  readonly insecureSkipVerify?: boolean;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly now?: () => number;
  /** Upper bound of a request body (a command with a config drive), enforced while streaming. Default 256 MiB. */
  readonly maxBodyBytes?: number;
  /** Longest wait for IPA's answer headers and between body chunks (`wait=true` commands). Default 600 000 ms. */
  readonly timeoutMs?: number;
  /** TCP (and TLS) connect timeout to IPA. Default 5000 ms. */
  readonly connectTimeoutMs?: number;
  /** How long close() lets forwards in flight finish before aborting them. Default 10 000 ms. */
  readonly closeGraceMs?: number;
  /** Connections held at once; one more is closed as soon as it is accepted. Default MAX_CONNECTIONS (1024). */
  readonly maxConnections?: number;
  /** Told of every request forwarded to an agent, once IPA's answer headers arrive (boot timelines). */
  readonly onForwarded?: (call: AgentCallback) => void;
}

/** One call of Ironic's forwarded to IPA. */
export interface AgentCallback {
  readonly node: string;
  readonly method: string;
  /** The path in the agent's API (`/v1/commands/`, …). */
  readonly path: string;
  readonly status: number;
  /** Milliseconds until IPA's answer headers. */
  readonly ms: number;
}

const TEXT = 'text/plain; charset=utf-8';

const REFUSALS: Readonly<Record<CallbackRefusal, { readonly status: number; readonly message: string }>> = {
  'not-under-nodes': { status: 404, message: 'not found: callback URLs look like /nodes/<node>/<agent>/…' },
  'bad-node': { status: 404, message: 'not found: invalid node identifier' },
  'bad-agent': { status: 404, message: 'not found: callback URLs look like /nodes/<node>/<agent>/…' },
  'bad-path': {
    status: 400,
    message:
      'refused: the path must stay inside the agent API (no dot segments, encoded slashes or control characters)',
  },
  'not-agent-api': {
    status: 404,
    message: 'not found: only the agent API is forwarded (GET /, /v1/, /v1/status, /v1/commands/…; POST /v1/commands/)',
  },
  loop: { status: 508, message: 'loop detected: this request has already passed through this callback listener' },
};

/** Resolves with true if `p` settles within `ms`, false otherwise. */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([
      p.then(
        () => true as const,
        () => true as const,
      ),
      late,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

interface AgentPool {
  readonly key: string;
  readonly pool: Pool;
}

export class CallbackServer implements Service, CallbackEndpoint {
  readonly name = 'ipa-callback';
  readonly readiness: readonly ReadinessCheck[] = [listening('ipa-callback', this)];
  readonly #o: CallbackServerOptions;
  readonly #log: Logger;
  readonly #configured: BaseUrl;
  /** What Ironic is told; its port follows the bound one once listening when configured as 0. */
  #advertised: BaseUrl;
  readonly #metrics: CallbackMetrics;
  readonly #pools = new Map<string, AgentPool>();
  /** This listener's Via pseudonym: a request that carries it has looped back here. */
  readonly #via = `metalboot-callback-${randomBytes(6).toString('hex')}`;
  /** Requests past the cheap checks, until their answer is sent; close() aborts them. */
  readonly #inflight = new Set<AbortController>();
  #idle: (() => void) | undefined;
  #closing = false;
  #tls: CallbackTls | undefined;
  #app: FastifyInstance | undefined;

  constructor(o: CallbackServerOptions) {
    this.#o = o;
    this.#log = o.logger.child({ component: 'ipa-callback' });
    this.#configured = parseBaseUrl(o.advertiseUrl, 'callbackAdvertiseUrl');
    this.#advertised = withProtocol(this.#configured, o.tls.kind === 'none' ? 'http:' : 'https:');
    this.#metrics = createCallbackMetrics(o.registry);
    const max = o.maxBodyBytes ?? 256 * MiB;
    if (!Number.isSafeInteger(max) || max <= 0)
      throw new MetalbootError('PROXY_ERR_BAD_OPTIONS', 'maxBodyBytes must be a positive integer');
  }

  /** The callback_url Ironic gets for agent `agent` of `node`. */
  callbackUrlFor(node: string, agent: AgentId): string {
    return nodeCallbackUrl(this.#advertised, node, agent);
  }

  /** The ports this listener is bound to and advertised at. */
  ownPorts(): readonly number[] {
    const ports = [portOf(this.#advertised), this.#o.listen.port];
    const a = this.#app?.server.address();
    if (a !== null && a !== undefined && typeof a !== 'string') ports.push(a.port);
    return ports;
  }

  /** The CA Ironic is told to trust, or undefined for a plain-HTTP listener (or before start). */
  ironicCaPem(): string | undefined {
    return this.#tls?.caPem;
  }

  /** The advertised base URL, with the listener's scheme. */
  get advertiseUrl(): string {
    return formatBaseUrl(this.#advertised);
  }

  address(): ListenAddress {
    const a = this.#app?.server.address();
    if (a === null || a === undefined || typeof a === 'string')
      throw new MetalbootError('SERVICE_ERR_NOT_LISTENING', 'the callback listener is not listening');
    return { host: a.address, port: a.port };
  }

  /** For /debug/explain: the callback mapping of the node a MAC belongs to. */
  explain(mac: string): Record<string, unknown> | undefined {
    return this.#o.agents.explain(mac, (node, agent) => this.callbackUrlFor(node, agent));
  }

  async start(): Promise<void> {
    const o = this.#o;
    if (this.#configured.protocol !== this.#advertised.protocol) {
      this.#log.warn(
        { configured: o.advertiseUrl, advertised: this.advertiseUrl, tls: o.tls.kind },
        'callback advertise URL scheme follows the listener: TLS is on when a certificate is configured or proxy.stateDir holds the generated CA',
      );
    }
    if (o.tls.kind === 'none')
      this.#log.warn(
        'callback listener without TLS (no proxy.tlsCertFile, no proxy.stateDir): Ironic reaches agents over plain HTTP through it',
      );
    const hosts = [this.#advertised.hostname];
    this.#tls = await loadCallbackTls(o.tls, { hosts, now: new Date((o.now ?? Date.now)()), logger: this.#log });
    const app = Fastify({
      loggerInstance: this.#log,
      logController: new LogController({ disableRequestLogging: true }),
      requestTimeout: 0,
      keepAliveTimeout: 65_000,
      ...(this.#tls === undefined ? {} : { https: { key: this.#tls.keyPem, cert: this.#tls.certPem } }),
    }) as unknown as FastifyInstance;
    app.server.maxConnections = o.maxConnections ?? MAX_CONNECTIONS;
    countDroppedConnections(app.server, {
      listener: 'ipa-callback',
      registry: o.registry,
      logger: this.#log,
      now: o.now,
    });
    // Bodies are streamed to the agent (limitedRequestBody), never parsed or buffered here.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));
    app.all('*', (req, reply) => this.#handle(req, reply));
    app.addHook('onClose', async () => {
      await Promise.allSettled([...this.#pools.values()].map((p) => p.pool.destroy()));
      this.#pools.clear();
    });
    await app.listen({ host: o.listen.host, port: o.listen.port });
    this.#app = app;
    if (o.tls.kind === 'shared') this.#follow(o.tls.feed, hosts);
    this.#advertised = parseBaseUrl(
      withBoundPort(formatBaseUrl(this.#advertised), this.address().port),
      'callbackAdvertiseUrl',
    );
    this.#log.info(
      {
        listen: this.address(),
        advertised: this.advertiseUrl,
        tls: this.#tls?.source ?? 'off',
        verifyAgents: o.insecureSkipVerify !== true,
      },
      'callback listener started',
    );
  }

  /** New shared material (the leader rotated it): new connections get it, open ones keep theirs. */
  #follow(feed: SharedTlsFeed, hosts: readonly string[]): void {
    feed.subscribe((m) => {
      void tlsFromShared(m, hosts, new Date((this.#o.now ?? Date.now)())).then(
        (tls) => {
          const server = this.#app?.server as unknown as { setSecureContext?: (o: object) => void } | undefined;
          if (this.#closing || server?.setSecureContext === undefined) return;
          server.setSecureContext({ key: tls.keyPem, cert: tls.certPem });
          const caChanged = tls.caPem !== this.#tls?.caPem;
          this.#tls = tls;
          this.#log.info({ from: feed.where, caChanged }, 'callback listener certificate replaced');
        },
        (err: unknown) => this.#log.error({ err, from: feed.where }, 'cannot use the new shared callback certificate'),
      );
    });
  }

  async close(): Promise<void> {
    const app = this.#app;
    if (app === undefined || this.#closing) return;
    this.#closing = true;
    // Stop accepting; fastify answers new requests 503 from here on.
    const closed = app.close();
    const grace = this.#o.closeGraceMs ?? 10_000;
    const drained = new Promise<void>((resolve) => {
      if (this.#inflight.size === 0) resolve();
      else this.#idle = resolve;
    });
    if (!(await settlesWithin(drained, grace))) {
      this.#log.warn({ forwards: this.#inflight.size, graceMs: grace }, 'aborting callbacks still in flight');
      const reason = new MetalbootError('PROXY_ERR_CLOSING', 'the callback listener is closing');
      for (const ac of this.#inflight) ac.abort(reason);
    }
    // Answers just sent on keep-alive connections may still hold them: a last bound, then cut.
    if (!(await settlesWithin(closed, 1000))) app.server.closeAllConnections();
    await closed;
  }

  /** Tracks a request until its answer is sent (or its connection goes); close() may abort it. */
  #track(reply: FastifyReply): AbortController {
    const ac = new AbortController();
    this.#inflight.add(ac);
    reply.raw.once('close', () => {
      this.#inflight.delete(ac);
      if (this.#inflight.size === 0) this.#idle?.();
    });
    return ac;
  }

  #count(result: CallbackResult, status: number): void {
    this.#metrics.requests.inc({ result, status: String(status) });
  }

  #plain(reply: FastifyReply, result: CallbackResult, status: number, message: string, close = false): FastifyReply {
    this.#count(result, status);
    if (close || this.#closing) reply.header('connection', 'close');
    return reply.code(status).type(TEXT).send(`${message}\n`);
  }

  #poolFor(record: AgentRecord, agent: BaseUrl): Pool {
    const skip = this.#o.insecureSkipVerify === true;
    const caHash = record.agentCaPem === undefined ? '-' : createHash('sha256').update(record.agentCaPem).digest('hex');
    const key = `${agent.origin}|${caHash}|${skip}`;
    const existing = this.#pools.get(record.node);
    if (existing !== undefined && existing.key === key) return existing.pool;
    if (existing !== undefined) existing.pool.close().catch(() => undefined);
    const timeout = this.#o.timeoutMs ?? 600_000;
    const pool = new Pool(agent.origin, {
      connections: 4,
      connectTimeout: this.#o.connectTimeoutMs ?? 5000,
      headersTimeout: timeout,
      bodyTimeout: timeout,
      connect:
        agent.protocol === 'https:'
          ? skip
            ? { rejectUnauthorized: false }
            : { ca: record.agentCaPem, rejectUnauthorized: true }
          : undefined,
    });
    this.#pools.set(record.node, { key, pool });
    return pool;
  }

  #refuse(req: FastifyRequest, reply: FastifyReply, reason: CallbackRefusal, rawUrl: string): FastifyReply {
    const r = REFUSALS[reason];
    this.#metrics.refusals.inc({ reason });
    this.#log.info({ method: req.method, url: redactUrl(rawUrl), peer: req.ip, reason }, 'refused a callback request');
    return this.#plain(reply, 'refused', r.status, r.message, reason === 'loop');
  }

  async #handle(req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const t0 = process.hrtime.bigint();
    const rawUrl = req.raw.url ?? '/';
    if (viaIncludes(req.headers, this.#via)) return this.#refuse(req, reply, 'loop', rawUrl);
    const target = parseCallbackTarget(rawUrl, this.#advertised.basePath);
    if (target.kind === 'refused') return this.#refuse(req, reply, target.reason, rawUrl);
    if (agentApiRoute(req.method, target.path) === undefined) return this.#refuse(req, reply, 'not-agent-api', rawUrl);
    const { node } = target;
    const log = this.#log.child({ node });
    const ac = this.#track(reply);
    const aborted = new Promise<undefined>((resolve) => ac.signal.addEventListener('abort', () => resolve(undefined)));
    const record = await Promise.race([this.#o.agents.resolve(node, target.agent), aborted]);
    if (ac.signal.aborted) return this.#plain(reply, 'error', 503, 'the callback listener is shutting down', true);
    if (record === undefined) {
      const current = this.#o.agents.get(node);
      log.info(
        { method: req.method, path: target.path, agent: target.agent, current: current?.agentId, peer: req.ip },
        current === undefined ? 'callback for a node without an accepted heartbeat' : 'callback for a replaced agent',
      );
      return current === undefined
        ? this.#plain(
            reply,
            'unknown-node',
            404,
            `unknown node ${node}: no heartbeat from its agent has been accepted through this proxy yet`,
          )
        : this.#plain(
            reply,
            'unknown-agent',
            404,
            `unknown agent ${target.agent} of node ${node}: its current agent is another one`,
          );
    }
    let agent: BaseUrl;
    try {
      agent = parseBaseUrl(record.agentUrl, 'agent URL');
    } catch {
      return this.#plain(reply, 'error', 502, `the recorded agent URL of node ${node} is unusable`);
    }
    const declared = declaredLength(req.headers);
    const max = this.#o.maxBodyBytes ?? 256 * MiB;
    if (declared === 'invalid') return this.#plain(reply, 'refused', 400, 'invalid Content-Length', true);
    if (declared !== undefined && declared > max)
      return this.#plain(reply, 'refused', 413, `the body exceeds ${max} bytes`, true);
    const body = hasRequestBody(req.headers) ? limitedRequestBody(req.raw, max) : undefined;
    const { path } = agentRequestTarget(agent, target.path, target.search);
    const headers = forwardRequestHeaders(req.headers, { clientIp: req.ip, contentLength: declared, via: this.#via });
    let res: Dispatcher.ResponseData;
    try {
      res = await this.#poolFor(record, agent).request({
        method: req.method as Dispatcher.HttpMethod,
        path,
        headers,
        body,
        signal: ac.signal,
      });
    } catch (err) {
      if (ac.signal.aborted && this.#closing) {
        log.warn({ method: req.method, path: target.path, agentUrl: record.agentUrl }, 'callback aborted at close');
        return this.#plain(reply, 'error', 503, 'the callback listener is shutting down', true);
      }
      const answer = classifyForwardError(err, `IPA at ${record.agentUrl}`);
      this.#metrics.failures.inc({ reason: answer.reason });
      log.warn(
        { method: req.method, path: target.path, agentUrl: record.agentUrl, reason: answer.reason, err },
        'forward to IPA failed',
      );
      return this.#plain(
        reply,
        answer.status === 413 ? 'refused' : 'error',
        answer.status,
        answer.message,
        answer.status === 413,
      );
    }
    const ns = Number(process.hrtime.bigint() - t0);
    this.#metrics.duration.observe(ns / 1e9);
    this.#count('forwarded', res.statusCode);
    this.#o.onForwarded?.({ node, method: req.method, path: target.path, status: res.statusCode, ms: ns / 1e6 });
    log.debug(
      { method: req.method, path: target.path, status: res.statusCode, agentUrl: record.agentUrl },
      'callback forwarded',
    );
    if (this.#closing) reply.header('connection', 'close');
    return reply.code(res.statusCode).headers(forwardResponseHeaders(res.headers)).send(res.body);
  }
}
