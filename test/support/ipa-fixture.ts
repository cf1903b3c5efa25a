/**
 * A stand-in for ironic-python-agent, both halves:
 *
 * - its agent API (ironic_python_agent/api/app.py) on 127.0.0.1:0: `GET /`, `GET /v1/`,
 *   `GET /v1/status`, `GET /v1/commands/` and `/v1/commands/<id>` (agent_token checked once
 *   Ironic has sent one, as IPA's `require_agent_token_for_command` does), `POST /v1/commands/`
 *   (`{"name": "ext.cmd", "params": {}}`, agent_token always checked, `wait=true` honoured),
 *   a 409 "Agent is busy" on demand, werkzeug's 308 for `/v1/commands` without the slash, and
 *   WSME-style `{faultcode, faultstring}` errors. Over HTTPS with a certificate made the way
 *   IPA's auto-TLS makes one (tls_utils.py): self-signed, EC P-384, SHA-512, a critical
 *   subjectAltName with the agent's IP and nothing else — no basicConstraints.
 * - its Ironic API client (ironic_api_client.py): version discovery on `GET /`
 *   (`default_version.version`), lookup with `addresses`, heartbeats with callback_url,
 *   agent_token, agent_version and agent_verify_ca (from 1.68), continue_inspection.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { randomBytes, randomUUID, webcrypto } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Readable } from 'node:stream';
import { request } from 'undici';

export interface AgentCertificate {
  readonly certPem: string;
  readonly keyPem: string;
}

/** A certificate like IPA's auto-TLS one, for `ip` (and another host's, for forgeries). */
export async function ipaCertificate(ip = '127.0.0.1', commonName = 'ipa-host'): Promise<AgentCertificate> {
  const alg = { name: 'ECDSA', namedCurve: 'P-384', hash: 'SHA-512' };
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const serial = randomBytes(16);
  serial[0] = serial[0]! & 0x7f;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial.toString('hex'),
    name: `CN=${commonName}`,
    notBefore: new Date(Date.now() - 3600_000),
    notAfter: new Date(Date.now() + 90 * 86_400_000),
    keys,
    signingAlgorithm: alg,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'ip', value: ip }], true)],
  });
  const keyDer = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { certPem: cert.toString('pem'), keyPem: x509.PemConverter.encode(keyDer, 'PRIVATE KEY') };
}

export interface IpaRequestRecord {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

export interface IpaAgent {
  /** `https://127.0.0.1:<port>` (or http without TLS): what IPA puts in callback_url. */
  readonly url: string;
  /** The certificate it serves (what IPA sends as agent_verify_ca); undefined without TLS. */
  readonly certPem: string | undefined;
  /** Requests received, in order. */
  readonly requests: IpaRequestRecord[];
  /** The token from lookup; commands must carry it. */
  token: string | undefined;
  /** Answer POST /v1/commands/ with 409 "Agent is busy". */
  busy: boolean;
  close(): Promise<void>;
}

interface CommandResult {
  id: string;
  command_name: string;
  command_params: unknown;
  command_status: 'SUCCEEDED' | 'RUNNING';
  command_error: unknown;
  command_result: unknown;
}

/**
 * Starts the agent API. `tls`: a certificate (default: a fresh IPA-style one for 127.0.0.1),
 * or false for plain HTTP. `serve`: serve a different certificate than the one reported in
 * `certPem` (a forged agent: it claims one certificate and presents another).
 */
export async function startIpaAgent(
  o: { readonly tls?: AgentCertificate | false; readonly serve?: AgentCertificate } = {},
): Promise<IpaAgent> {
  const cert = o.tls === false ? undefined : (o.tls ?? (await ipaCertificate()));
  const served = o.serve ?? cert;
  const results: CommandResult[] = [];
  const requests: IpaRequestRecord[] = [];
  let securityGetTokenSupport = false;

  const json = (res: http.ServerResponse, status: number, value: unknown): void => {
    const body = JSON.stringify(value);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
  const fault = (res: http.ServerResponse, status: number, faultstring: string): void =>
    json(res, status, { faultcode: status >= 500 ? 'Server' : 'Client', faultstring });

  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      const u = new URL(req.url ?? '/', 'http://agent');
      const token = u.searchParams.get('agent_token');
      const root = `${served === undefined ? 'http' : 'https'}://${req.headers.host}`;
      const link = (rel: string, path: string): { href: string; rel: string } => ({ href: `${root}${path}`, rel });
      const tokenOk = (): boolean => agent.token !== undefined && token === agent.token;
      const requireTokenForGet = (): boolean => {
        if (token !== null) securityGetTokenSupport = true;
        if (securityGetTokenSupport && !tokenOk()) {
          fault(res, 401, 'Token invalid.');
          return false;
        }
        return true;
      };
      const p = u.pathname;
      if (req.method === 'GET' && p === '/')
        return json(res, 200, {
          name: 'OpenStack Ironic Python Agent API',
          versions: [{ id: 'v1', links: [link('self', '/v1/')] }],
          default_version: { id: 'v1', links: [link('self', '/v1/')] },
        });
      if (req.method === 'GET' && p === '/v1/')
        return json(res, 200, {
          id: 'v1',
          commands: [link('self', '/v1/commands')],
          status: [link('self', '/v1/status')],
        });
      if (req.method === 'GET' && p === '/v1/status')
        return json(res, 200, { started_at: 1700000000, version: '10.1.0' });
      if (p === '/v1/commands') {
        res.writeHead(308, { location: `${root}/v1/commands/${u.search}` });
        return res.end();
      }
      if (req.method === 'GET' && p === '/v1/commands/') {
        if (!requireTokenForGet()) return;
        return json(res, 200, { commands: results });
      }
      const one = /^\/v1\/commands\/([^/]+)$/.exec(p);
      if (req.method === 'GET' && one !== null) {
        if (!requireTokenForGet()) return;
        const r = results.find((c) => c.id === one[1]);
        return r === undefined ? fault(res, 404, 'Command not found') : json(res, 200, r);
      }
      if (req.method === 'POST' && p === '/v1/commands/') {
        let cmd: { name?: unknown; params?: unknown };
        try {
          cmd = JSON.parse(body) as typeof cmd;
        } catch {
          return fault(res, 400, 'Missing or invalid name or params');
        }
        if (
          typeof cmd.name !== 'string' ||
          cmd.params === null ||
          typeof cmd.params !== 'object' ||
          Array.isArray(cmd.params)
        )
          return fault(res, 400, 'Missing or invalid name or params');
        if (!tokenOk()) return fault(res, 401, 'Token invalid.');
        if (agent.busy) return fault(res, 409, 'Agent is busy');
        const wait = (u.searchParams.get('wait') ?? '').toLowerCase() === 'true';
        const r: CommandResult = {
          id: randomUUID(),
          command_name: cmd.name,
          command_params: cmd.params,
          command_status: wait ? 'SUCCEEDED' : 'RUNNING',
          command_error: null,
          command_result: wait ? { ran: cmd.name } : null,
        };
        results.push(r);
        return json(res, 200, r);
      }
      fault(res, 404, 'The requested URL was not found on the server.');
    });
  };

  const server =
    served === undefined
      ? http.createServer(handler)
      : https.createServer({ cert: served.certPem, key: served.keyPem }, handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const agent: IpaAgent = {
    url: `${served === undefined ? 'http' : 'https'}://127.0.0.1:${port}`,
    certPem: cert?.certPem,
    requests,
    token: undefined,
    busy: false,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  return agent;
}

export interface IpaResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
  json<T = unknown>(): T;
}

async function toResponse(res: {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: { text(): Promise<string> };
}): Promise<IpaResponse> {
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text, json: <T>() => JSON.parse(text) as T };
}

/** IPA's Ironic API client, pointed at `ipa-api-url`. */
export class IpaApiClient {
  #version: readonly [number, number] | undefined;
  constructor(readonly apiUrl: string) {}

  /** IPA's MAX_KNOWN_VERSION is newer than anything it needs; heartbeats use min(server, it). */
  static readonly MAX_KNOWN: readonly [number, number] = [1, 84];

  async discover(): Promise<readonly [number, number]> {
    if (this.#version !== undefined) return this.#version;
    const res = await toResponse(await request(`${this.apiUrl}/`, { headers: { accept: 'application/json' } }));
    const v = res.json<{ default_version: { version: string } }>().default_version.version.split('.').map(Number);
    this.#version = [v[0]!, v[1]!];
    return this.#version;
  }

  async versionHeader(): Promise<Record<string, string>> {
    const v = await this.discover();
    const m = IpaApiClient.MAX_KNOWN;
    const use = v[0] > m[0] || (v[0] === m[0] && v[1] > m[1]) ? m : v;
    return { 'x-openstack-ironic-api-version': `${use[0]}.${use[1]}` };
  }

  async get(path: string): Promise<IpaResponse> {
    return toResponse(
      await request(`${this.apiUrl}${path}`, {
        headers: { accept: 'application/json', ...(await this.versionHeader()) },
      }),
    );
  }

  async lookup(macs: readonly string[]): Promise<IpaResponse> {
    return this.get(`/v1/lookup?addresses=${encodeURIComponent(macs.join(','))}`);
  }

  async heartbeat(
    node: string,
    body: Record<string, unknown>,
    headers: Record<string, string> = {},
  ): Promise<IpaResponse> {
    return toResponse(
      await request(`${this.apiUrl}/v1/heartbeat/${node}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json',
          connection: 'close',
          ...(await this.versionHeader()),
          ...headers,
        },
        body: JSON.stringify(body),
      }),
    );
  }

  /** POSTs an inventory body (a stream is sent chunked, a Buffer with its length). */
  async continueInspection(body: Buffer | Readable, query = ''): Promise<IpaResponse> {
    return toResponse(
      await request(`${this.apiUrl}/v1/continue_inspection${query}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json', ...(await this.versionHeader()) },
        body,
      }),
    );
  }
}
