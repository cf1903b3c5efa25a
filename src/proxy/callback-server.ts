/**
 * The callback listener (`--callback-listen`): Ironic → IPA. Ironic is told, in every
 * heartbeat the API proxy rewrites, that the agent lives at `<callback-advertise-url>/nodes/
 * <node>`; requests arriving there — any method, any path below the node (`/v1/commands/`,
 * `/v1/commands/<id>`, `/v1/status`…), the query (`agent_token`, `wait`) untouched, the body
 * streamed — are forwarded to the agent's real URL recorded from its last accepted heartbeat.
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
 * Answers of its own, in plain text: 404 for an unknown node or a path outside `/nodes/<node>`,
 * 400 for a path that would climb out of the agent's API, 502 (504 on timeouts) with the
 * reason when IPA cannot be reached or its certificate does not verify. Everything IPA answers
 * (409 "Agent is busy" included) passes through.
 */
import { createHash } from 'node:crypto';
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { Pool, type Dispatcher } from 'undici';
import type { ListenAddress } from '../net/listen-address.js';
import { listening, type ReadinessCheck, type Service } from '../base/service.js';
import type { AgentRecord, AgentStore } from './agent-store.js';
import { limitedRequestBody } from './body-streams.js';
import { agentRequestTarget, nodeCallbackUrl, parseCallbackTarget, type CallbackRefusal } from './callback-url.js';
import { loadCallbackTls, type CallbackTls, type CallbackTlsSource } from './callback-tls.js';
import type { CallbackEndpoint } from './heartbeat.js';
import { declaredLength, forwardRequestHeaders, forwardResponseHeaders, hasRequestBody } from './proxy-headers.js';
import { classifyForwardError } from './proxy-errors.js';
import { MetalbootError } from '../base/errors.js';
import { createCallbackMetrics, type CallbackMetrics, type CallbackResult } from './proxy-metrics.js';
import { formatBaseUrl, parseBaseUrl, withProtocol, type BaseUrl } from './proxy-urls.js';
import { redactUrl } from '../relay/redact.js';

const MiB = 1024 * 1024;

export interface CallbackServerOptions {
  readonly listen: ListenAddress;
  /** `--callback-advertise-url`; its scheme is replaced by the listener's (https with TLS). */
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
}

const TEXT = 'text/plain; charset=utf-8';

const REFUSALS: Readonly<Record<CallbackRefusal, { readonly status: number; readonly message: string }>> = {
  'not-under-nodes': { status: 404, message: 'not found: callback URLs look like /nodes/<node>/…' },
  'bad-node': { status: 404, message: 'not found: invalid node identifier' },
  'bad-path': {
    status: 400,
    message:
      'refused: the path must stay inside the agent API (no dot segments, encoded slashes or control characters)',
  },
};

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
  readonly #advertised: BaseUrl;
  readonly #metrics: CallbackMetrics;
  readonly #pools = new Map<string, AgentPool>();
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

  /** The stable callback_url Ironic gets for `node`. */
  callbackUrlFor(node: string): string {
    return nodeCallbackUrl(this.#advertised, node);
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
    return this.#o.agents.explain(mac, (node) => this.callbackUrlFor(node));
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
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));
    app.all('*', (req, reply) => this.#handle(req, reply));
    app.addHook('onClose', async () => {
      await Promise.allSettled([...this.#pools.values()].map((p) => p.pool.close()));
      this.#pools.clear();
    });
    await app.listen({ host: o.listen.host, port: o.listen.port });
    this.#app = app;
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

  async close(): Promise<void> {
    await this.#app?.close();
  }

  #count(result: CallbackResult, status: number): void {
    this.#metrics.requests.inc({ result, status: String(status) });
  }

  #plain(reply: FastifyReply, result: CallbackResult, status: number, message: string, close = false): FastifyReply {
    this.#count(result, status);
    if (close) reply.header('connection', 'close');
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

  async #handle(req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const t0 = process.hrtime.bigint();
    const rawUrl = req.raw.url ?? '/';
    const target = parseCallbackTarget(rawUrl, this.#advertised.basePath);
    if (target.kind === 'refused') {
      const r = REFUSALS[target.reason];
      this.#log.info(
        { method: req.method, url: redactUrl(rawUrl), peer: req.ip, reason: target.reason },
        'refused a callback request',
      );
      return this.#plain(reply, 'refused', r.status, r.message);
    }
    const { node } = target;
    const log = this.#log.child({ node });
    const record = await this.#o.agents.resolve(node);
    if (record === undefined) {
      log.info(
        { method: req.method, path: target.path, peer: req.ip },
        'callback for a node without an accepted heartbeat',
      );
      return this.#plain(
        reply,
        'unknown-node',
        404,
        `unknown node ${node}: no heartbeat from its agent has been accepted through this proxy yet`,
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
    const headers = forwardRequestHeaders(req.headers, { clientIp: req.ip, contentLength: declared });
    let res: Dispatcher.ResponseData;
    try {
      res = await this.#poolFor(record, agent).request({
        method: req.method as Dispatcher.HttpMethod,
        path,
        headers,
        body,
      });
    } catch (err) {
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
    this.#metrics.duration.observe(Number(process.hrtime.bigint() - t0) / 1e9);
    this.#count('forwarded', res.statusCode);
    log.debug(
      { method: req.method, path: target.path, status: res.statusCode, agentUrl: record.agentUrl },
      'callback forwarded',
    );
    return reply.code(res.statusCode).headers(forwardResponseHeaders(res.headers)).send(res.body);
  }
}
